"""Shared fixtures: real databases (SQLite file and PostgreSQL), the fake Telegram, the bot."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.channels.telegram import serving
from bot.config import Settings, load_settings
from bot.db.models import AuditEntry, Base
from bot.db.session import make_engine
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime, open_runtime
from bot.security import generate_key, log_filters, quiet_libraries

# python-telegram-bot 22 warns on every RetryAfter unless it may use timedelta; opt in.
os.environ.setdefault("PTB_TIMEDELTA", "true")

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Tables that tests fill; the area tables are loaded once and kept.
# Every table a test may fill, children before parents; the area directory stays.
AREA_TABLES = frozenset({"provinces", "regencies", "districts", "villages"})
USER_TABLES = tuple(
    table.name for table in reversed(Base.metadata.sorted_tables) if table.name not in AREA_TABLES
)
DATA_KEY = generate_key()


async def _postgres_ready() -> str | None:
    engine = create_async_engine(PG_URL)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own in the test database for this test run."""
    problem = asyncio.run(_postgres_ready())
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    schema = f"bc_test_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        engine = create_async_engine(PG_URL)
        async with engine.begin() as connection:
            await connection.execute(text(sql))
        await engine.dispose()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    yield schema
    asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(scope="session")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file for the run; tests empty the user tables between them."""
    return tmp_path_factory.mktemp("db") / "bot.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings for one test, on SQLite or on PostgreSQL."""
    # A test types far faster than a person: the flood gate is tried by tests of its own.
    overrides: dict[str, Any] = {"data_key": DATA_KEY, "_env_file": None, "flood_burst": 10_000}
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        overrides["database_url"] = f"sqlite+aiosqlite:///{path}"
    else:
        request.getfixturevalue("postgres_schema")
        overrides["database_url"] = PG_URL
    return load_settings(**overrides)


def _engine_options(settings: Settings, request: pytest.FixtureRequest) -> dict[str, Any]:
    if settings.is_sqlite:
        return {}
    schema = request.getfixturevalue("postgres_schema")
    return {"connect_args": {"server_settings": {"search_path": schema}}}


RuntimeFactory = Callable[[], AbstractAsyncContextManager[Runtime]]


@pytest.fixture
def runtime_factory(settings: Settings, request: pytest.FixtureRequest) -> RuntimeFactory:
    """Opens a runtime on the test's database, as a restarted bot would."""
    options = _engine_options(settings, request)
    return lambda: open_runtime(settings, **options)


@pytest.fixture
async def runtime(
    runtime_factory: RuntimeFactory, settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[Runtime]:
    """The bot's runtime on a database whose user tables start empty."""
    # Emptied before start-up: what an earlier test left (under another key, say) must not
    # meet this test's start-up key check.
    await _empty_before_start(settings, _engine_options(settings, request))
    async with runtime_factory() as rt:
        yield rt


async def _empty_before_start(settings: Settings, options: dict[str, Any]) -> None:
    """Empty the user tables (where they exist yet) before a runtime opens the database."""
    engine = make_engine(settings.database_url, **options)
    try:
        await _empty_user_tables(engine)
    finally:
        await engine.dispose()


async def _empty_user_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        existing = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        tables = [table for table in USER_TABLES if table in existing]
        if not tables:
            return
        if engine.dialect.name == "sqlite":
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))
            return
        # DELETE, children before parents: a few milliseconds for these small tables, where
        # TRUNCATE, which gives each table new files, took 100-400 ms before every test. The
        # audit log's trigger refuses DELETE (migration 0009); it is switched off for this
        # transaction only, so no other connection ever sees the audit log without it.
        for table in tables:
            if table != AuditEntry.__tablename__:
                await connection.execute(text(f"DELETE FROM {table}"))
            elif await connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {table})")):
                trigger = "audit_log_append_only"
                await connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
                await connection.execute(text(f"DELETE FROM {table}"))
                await connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))
        # Ids start at 1 again, as after TRUNCATE ... RESTART IDENTITY: the sequences the
        # tables' columns own.
        await connection.execute(
            text(
                "SELECT setval(depend.objid::regclass, 1, false) FROM pg_depend AS depend "
                "JOIN pg_class AS sequence ON sequence.oid = depend.objid "
                "WHERE sequence.relkind = 'S' AND depend.deptype IN ('a', 'i') "
                "AND depend.refobjid = ANY(CAST(:tables AS regclass[]))"
            ),
            {"tables": tables},
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Telegram Bot API server on loopback."""
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class RunningBot:
    """The real bot serving the fake Telegram, and what it runs on."""

    fake: FakeTelegram
    runtime: Runtime
    application: Any
    _serving: AbstractAsyncContextManager[Any]
    stopped: bool = False

    async def stop(self) -> None:
        """Stop polling and delivering, and shut the application down (once)."""
        if self.stopped:
            return
        self.stopped = True
        await self._serving.__aexit__(None, None, None)


async def start_bot(fake: FakeTelegram, runtime: Runtime) -> RunningBot:
    """Start the real bot against the fake Telegram (real HTTP on loopback)."""
    context = serving(runtime, fake.token, fake.base_url, poll_timeout=1)
    served = await context.__aenter__()
    # Told once an update is handled and every reply to it has been sent.
    served.on_handled.append(fake.note_handled)
    return RunningBot(fake, runtime, served, context)


@pytest.fixture
async def bot(fake: FakeTelegram, runtime: Runtime) -> AsyncIterator[RunningBot]:
    """The running bot."""
    running = await start_bot(fake, runtime)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def loop_runtime(
    settings: Settings, request: pytest.FixtureRequest
) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    """A runtime driven from a plain event loop, for hypothesis (which is synchronous)."""
    options = _engine_options(settings, request)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_empty_before_start(settings, options))
    manager = open_runtime(settings, **options)
    runtime = loop.run_until_complete(manager.__aenter__())
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()


# ---------------------------------------------------------------- LOG_SCAN=1

# `LOG_SCAN=1 make test` (or pytest): every test logs at DEBUG through the filters the bot's
# own log handlers carry, and a test whose log holds personal data it typed (through the
# fake Telegram) fails. See README, "Tests".
LOG_SCAN = os.environ.get("LOG_SCAN", "") == "1"


class _Captured(logging.Handler):
    """Every record, as the bot's handlers would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _spread(digits: str) -> re.Pattern[str]:
    """The digits in order, with up to three non-alphanumerics between any two."""
    return re.compile(r"[^0-9A-Za-z]{0,3}".join(digits))


def typed_personal_data(updates: list[dict[str, Any]]) -> dict[str, re.Pattern[str]]:
    """What people typed or shared through the fake, as patterns a log must not match."""
    found: dict[str, re.Pattern[str]] = {}
    for update in updates:
        message = update.get("message") or {}
        sender = message.get("from") or {}
        for key in ("first_name", "last_name", "username"):
            name = str(sender.get(key) or "")
            if len(name) >= 4:
                found[f"profile {key} {name!r}"] = re.compile(rf"\b{re.escape(name)}\b")
        text = str(message.get("text") or "")
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 9 and not re.search(r"[A-Za-z]", text):
            # A NIK or a phone number in whatever form it was typed: its digits in order.
            found[f"number {text!r}"] = _spread(digits.lstrip("0").removeprefix("62").lstrip("0"))
        elif len(text) >= 6 and not text.startswith("/"):
            found[f"text {text!r}"] = re.compile(re.escape(text))
        contact = message.get("contact") or {}
        phone = re.sub(r"\D", "", str(contact.get("phone_number") or ""))
        if phone:
            found[f"contact {phone}"] = _spread(phone.lstrip("0").removeprefix("62").lstrip("0"))
    return found


@pytest.fixture(autouse=True)
def log_scan(request: pytest.FixtureRequest) -> Iterator[None]:
    """With LOG_SCAN=1: capture every record at DEBUG, fail a test that logged what it typed."""
    if not LOG_SCAN:
        yield
        return
    fake: FakeTelegram | None = (
        request.getfixturevalue("fake") if "fake" in request.fixturenames else None
    )
    captured = _Captured()
    for log_filter in log_filters([fake.token] if fake is not None else []):
        captured.addFilter(log_filter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(captured)
    root.setLevel(logging.DEBUG)
    quiet_libraries()
    try:
        yield
    finally:
        root.removeHandler(captured)
        root.setLevel(level)
    if fake is None:
        return
    leaks = [
        f"{what}: {line[:300]}"
        for line in captured.lines
        for what, pattern in typed_personal_data(fake.queued).items()
        if pattern.search(line)
    ]
    if leaks:
        pytest.fail("personal data in the log:\n" + "\n".join(leaks[:20]), pytrace=False)


# The tests that wait longest (on bot processes, kills and restarts, and Telegram's per-chat
# pace) go first: handed out last, one of them would keep a pytest-xdist worker busy after
# the others have finished. Measured with `pytest --durations=30`; the rest keep their order.
LONGEST_FIRST = (
    "tests/e2e/test_crash.py",
    "tests/e2e/test_forged_input.py",
    "tests/e2e/test_webhook_replicas.py",
    "tests/e2e/test_log_privacy.py",
    "tests/e2e/test_status_workflow.py",
    "tests/e2e/test_key_rotation.py",
    "tests/e2e/test_export.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the longest tests first, on every worker (each file keeps its own order)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.partition("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers > 1:
        items[:] = _dealt(items, [rank(item) < len(LONGEST_FIRST) for item in items], workers)


def _dealt(items: list[pytest.Item], long: list[bool], workers: int) -> list[pytest.Item]:
    """The items ordered so that each worker's first share begins with its turn of the long
    ones. `--dist worksteal` hands each worker one contiguous share of the list (the first
    gets a quarter of it, the next a third of the rest, ...) and steals from the end of a
    share: sorted as they are, every long test would be in the first worker's share."""
    longest = [item for item, is_long in zip(items, long, strict=True) if is_long]
    rest = [item for item, is_long in zip(items, long, strict=True) if not is_long]
    dealt: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        share = left // (workers - worker)
        mine = longest[worker::workers]
        others = max(0, share - len(mine))
        dealt += mine + rest[:others]
        del rest[:others]
        left -= share
    return dealt + rest
