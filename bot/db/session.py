"""The database engine, sessions, and applying migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import NullPool

# Connections kept open, and how many more may be opened at a peak (then closed again).
# A pool of 15 kept open saved opening connections at peaks but cost about 25 MB more with
# 10 000 people mid-form on SQLite (docs/BENCHMARKS.md); memory is the tighter limit.
POOL_SIZE, POOL_OVERFLOW = 5, 10


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; for SQLite, the folder, WAL mode and foreign keys."""
    in_memory = url.startswith("sqlite") and (":memory:" in url or url.endswith("://"))
    # A database error's message would otherwise quote the statement's values (what people
    # typed), and such messages end up in logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if kwargs.get("poolclass") is not NullPool and not in_memory:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "bot.db:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _pending(connection: Connection) -> list[str]:
    script = ScriptDirectory.from_config(_alembic_config())
    current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(script.get_heads())
    if current == heads:
        return []
    return [rev.revision for rev in script.walk_revisions() if rev.revision not in current]


async def upgrade_database(engine: AsyncEngine) -> None:
    """Apply every pending migration."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def pending_migrations(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied (empty when the database is current)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_pending)


__all__ = [
    "AsyncSession",
    "NullPool",
    "make_engine",
    "make_sessionmaker",
    "pending_migrations",
    "upgrade_database",
]
