"""Everything the running bot holds: settings, database, cipher, area directory, conversation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, make_url, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings, StartupError
from bot.db.session import (
    make_engine,
    make_sessionmaker,
    pending_migrations,
    upgrade_database,
)
from bot.security import Cipher, configured_cipher
from bot.services.areas import AreaDirectory, load_areas
from bot.services.broadcasts import seal_plain
from bot.services.conversation import Conversation
from bot.services.key_check import verified_cipher
from bot.services.leader import lock_key, namespace_of
from bot.services.turn import Services

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The bot's long-lived parts, created by `open_runtime`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cipher: Cipher
    areas: AreaDirectory
    conversation: Conversation

    def today(self) -> date:
        """Today in the configured time zone (WITA by default)."""
        return datetime.now(self.settings.tz).date()


@asynccontextmanager
async def one_process_at_a_time(engine: AsyncEngine) -> AsyncIterator[None]:
    """On PostgreSQL, hold a lock so replicas starting together migrate one after another.

    Without it, two processes on a fresh database both create the tables and all but one
    fail ("relation already exists"); the second now waits and finds nothing left to do.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    key = lock_key(await namespace_of(engine), "start-up")
    async with engine.connect() as connection:
        await connection.execute(select(func.pg_advisory_lock(key)))
        await connection.commit()
        try:
            yield
        finally:
            await connection.execute(select(func.pg_advisory_unlock(key)))
            await connection.commit()


async def prepare_database(
    settings: Settings, engine: AsyncEngine, cipher: Cipher | None
) -> tuple[AreaDirectory, Cipher]:
    """Apply pending migrations, check the data key, load missing areas, read the directory.

    `cipher` is the configured key (None: no key file yet); the one returned has been shown
    to open the data already stored (see `bot.services.key_check`).
    """
    sessions = make_sessionmaker(engine)
    async with one_process_at_a_time(engine):
        pending = await pending_migrations(engine)
        if pending:
            await upgrade_database(engine)
            log.info("Applied %d database migration(s)", len(pending))
        async with sessions() as session, session.begin():
            cipher = await verified_cipher(session, settings, cipher)
            sealed = await seal_plain(session, cipher)
            if sealed:
                log.info("Encrypted %d broadcast text(s) or photo(s) stored plain", sealed)
            added = await load_areas(session, settings.branch_regencies)
            if added:
                log.info("Loaded %d villages into the database", added)
    async with sessions() as session:
        return await AreaDirectory.load(session, settings.branch_regencies), cipher


def database_problem(settings: Settings, exc: BaseException) -> StartupError:
    """One line naming the database (never its password) and why it could not be used."""
    url = make_url(settings.database_url)
    where = (
        str(settings.sqlite_path or "in memory")
        if settings.is_sqlite
        else f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    )
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    said = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    first = said.strip().partition("\n")[0]
    reason = f"{type(cause).__name__}: {first}" if first else type(cause).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return StartupError(f"DATABASE_URL: cannot use the database at {where} ({reason})")


@asynccontextmanager
async def open_runtime(settings: Settings, **engine_options: Any) -> AsyncIterator[Runtime]:
    """Connect, migrate, load areas; dispose of the engine at the end."""
    # A DATA_KEY that is no key at all is refused before the database is touched.
    configured = configured_cipher(settings)
    if settings.database_schema and not settings.is_sqlite:
        engine_options.setdefault(
            "connect_args", {"server_settings": {"search_path": settings.database_schema}}
        )
    try:
        engine = make_engine(settings.database_url, **engine_options)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise database_problem(settings, exc) from None
    try:
        try:
            areas, cipher = await prepare_database(settings, engine, configured)
        except (OSError, DBAPIError) as exc:
            raise database_problem(settings, exc) from None
        runtime = Runtime(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            cipher=cipher,
            areas=areas,
            conversation=None,  # type: ignore[arg-type]
        )
        runtime.conversation = Conversation(
            Services(settings=settings, cipher=cipher, areas=areas, today=runtime.today)
        )
        yield runtime
    finally:
        await engine.dispose()
