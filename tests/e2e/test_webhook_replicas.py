"""`python -m bot run --webhook` as real processes: two replicas on one PostgreSQL database
behind one fake Telegram, and a replica stopped with SIGTERM in the middle of a conversation."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import load_settings
from bot.db.models import Application, InboxUpdate, OutboxMessage
from bot.db.session import pending_migrations
from bot.fakebot import FakeTelegram
from bot.fakebot.rules import SEND_METHODS
from bot.runtime import Runtime, open_runtime
from bot.services.delivery import Counts
from bot.services.export import export_rows
from bot.services.pacing import busiest_window
from tests.conftest import DATA_KEY, PG_URL
from tests.e2e.chat import Person, texts
from tests.e2e.test_delivery_telegram import messages_per_chat, people
from tests.e2e.test_registration import register_until_summary
from tests.e2e.test_webhook import free_port
from tests.services.test_delivery import counts_of, queue_broadcast, until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "replica-secret_0123456789"
PATH = "/telegram"
# Telegram allows about 30 messages a second; at that pace 2 000 followers take 70 s. The
# test raises the bot's budget and the fake's enforced limit together to 60 a second: what
# it proves (no 429, never over the budget, everyone exactly once) does not depend on it.
RATE = 60


@dataclass
class Replica:
    """One `python -m bot run --webhook` process."""

    process: asyncio.subprocess.Process
    url: str
    port: int
    log: Path

    async def healthy(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://127.0.0.1:{self.port}/healthz") as response,
            ):
                return response.status == 200
        return False

    async def terminate(self) -> float:
        """SIGTERM; the seconds it took to exit (fails beyond 10 s)."""
        started = time.monotonic()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise
        return time.monotonic() - started

    def errors(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def replica_env_base() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PTB_TIMEDELTA": "true",
        "DATA_KEY": DATA_KEY,
    }


def replica_env(fake: FakeTelegram, database_url: str, port: int) -> dict[str, str]:
    return {
        **replica_env_base(),
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "WEBHOOK_URL": f"http://127.0.0.1:{port}{PATH}",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_PORT": str(port),
        "BROADCAST_RATE": str(RATE),
        # The simulated people answer the form in seconds, faster than the gate lets anyone.
        "FLOOD_BURST": "100",
        "LOG_LEVEL": "WARNING",
    }


async def start_replica(
    fake: FakeTelegram, database_url: str, workdir: Path, name: str, port: int | None = None
) -> Replica:
    """Start a webhook process in `workdir` (no .env there) and wait until it is healthy."""
    port = port or free_port()
    log = workdir / f"{name}.log"
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--webhook",
            cwd=workdir,
            env=replica_env(fake, database_url, port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
        )
    replica = Replica(process, f"http://127.0.0.1:{port}{PATH}", port, log)
    async with asyncio.timeout(60):
        while not await replica.healthy():
            assert process.returncode is None, replica.errors()
            await asyncio.sleep(0.1)
    return replica


async def upgrade(database_url: str, workdir: Path) -> None:
    """Migrate, as an operator does before starting replicas (`python -m bot db upgrade`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "db",
        "upgrade",
        cwd=workdir,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": database_url,
            "DATA_KEY": DATA_KEY,
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


@pytest.fixture
def replica_database(postgres_schema: str) -> Iterator[str]:
    """A PostgreSQL database of its own, for processes that cannot be given a search_path."""
    name = f"bc_replica_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(sql))
        await engine.dispose()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextlib.asynccontextmanager
async def runtime_on(database_url: str) -> AsyncIterator[Runtime]:
    settings = load_settings(_env_file=None, database_url=database_url, data_key=DATA_KEY)
    async with open_runtime(settings) as runtime:
        yield runtime


@pytest.mark.postgres
async def test_replicas_starting_together_on_a_fresh_database_migrate_one_after_another(
    replica_database: str, tmp_path: Path
) -> None:
    """Three processes migrating one new database at once all succeed; it ends up current.

    Without the start-up lock all but one failed with "relation already exists".
    """
    await asyncio.gather(*(upgrade(replica_database, tmp_path) for _ in range(3)))
    async with runtime_on(replica_database) as runtime:
        assert await pending_migrations(runtime.engine) == []


NAMES = ("Wayan Sukadana", "Made Arsana", "Nyoman Sudarsa", "Ketut Wirawan")


@contextlib.asynccontextmanager
async def handled_from_database(
    fake: FakeTelegram, runtime: Runtime, chat_ids: list[int]
) -> AsyncIterator[None]:
    """Tell the fake when the bot processes have answered an update, read from the database.

    An update is answered once its inbox row is done and its chat has nothing left in the
    outbox (both are written in one transaction), so a person waits for exactly the whole
    answer, however busy the processes are.
    """
    reported = dict.fromkeys(chat_ids, 0)
    fake.tracks_handling = True

    async def watch() -> None:
        while True:
            async with runtime.sessions() as session:
                rows = await session.execute(
                    select(InboxUpdate.chat_id, func.count())
                    .where(InboxUpdate.chat_id.in_(chat_ids), InboxUpdate.state == "done")
                    .group_by(InboxUpdate.chat_id)
                )
                done = {int(chat_id): int(count) for chat_id, count in rows}
                sending = set(
                    await session.scalars(
                        select(OutboxMessage.chat_id).where(OutboxMessage.chat_id.in_(chat_ids))
                    )
                )
            for chat_id in chat_ids:
                if chat_id not in sending:
                    for _ in range(done.get(chat_id, 0) - reported[chat_id]):
                        fake.note_handled(chat_id)
                    reported[chat_id] = max(reported[chat_id], done.get(chat_id, 0))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def nik_of(number: int) -> str:
    """A valid NIK of Tabanan, born 17-08-1985, with its own serial."""
    return f"51020517088500{number + 1:02d}"


async def register(person: Person, number: int) -> None:
    await register_until_summary(person, nik=nik_of(number), name=NAMES[number])
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)


async def applications_by_nik(runtime: Runtime) -> dict[str, dict[str, object]]:
    async with runtime.sessions() as session:
        rows = [
            row
            async for row in export_rows(session, runtime.cipher, runtime.areas, runtime.settings)
        ]
    return {str(row["nik"]): row for row in rows}


def expected_row(number: int) -> dict[str, object]:
    return {
        "nik": nik_of(number),
        "full_name": NAMES[number],
        "phone": "+6281234567890",
        "village_code": "51.02.05.2006",
        "village_name": "Dajan Peken",
        "monthly_contribution": 21800,
        "per_payment": 65400,
        "heir_phone": "+6281311112222",
    }


@contextlib.asynccontextmanager
async def loop_lag() -> AsyncIterator[list[float]]:
    """The longest this process's event loop was late while inside (a list of one number):
    how long the fake, which runs in it, may have left requests waiting unstamped."""
    worst = [0.0]
    loop = asyncio.get_running_loop()
    tick = 0.005

    async def watch() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(tick)
            worst[0] = max(worst[0], loop.time() - before - tick)

    watching = asyncio.create_task(watch())
    try:
        yield worst
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


@pytest.mark.postgres
async def test_two_replicas_register_people_and_broadcast_to_2000_exactly_once_within_budget(
    fake: FakeTelegram, replica_database: str, tmp_path: Path
) -> None:
    """Two webhook processes, one database, updates alternating between them.

    Three people register while a broadcast goes to 2 000 followers: every application is
    complete and right field by field, each person's updates were taken by both processes,
    each follower gets the news exactly once, and all the bot sent (replies and broadcast,
    from whichever process leads) stayed within the budget: the fake, enforcing RATE a
    second, never answered 429, and no five seconds held more than five seconds' worth.
    """
    await upgrade(replica_database, tmp_path)
    fake.rate_limit = RATE
    ports = [free_port(), free_port()]
    fake.webhook_targets = [f"http://127.0.0.1:{port}{PATH}" for port in ports]
    replicas = await asyncio.gather(
        *(
            start_replica(fake, replica_database, tmp_path, f"replica{n}", port)
            for n, port in enumerate(ports)
        )
    )
    try:
        async with loop_lag() as lag, runtime_on(replica_database) as runtime:
            followers = people(fake, range(500_001, 502_001))
            broadcast_id = await queue_broadcast(runtime, followers)
            persons = [Person(fake.user(600_000 + n, f"Wayan{n}")) for n in range(3)]
            chats = [person.user.chat_id for person in persons]
            async with handled_from_database(fake, runtime, chats):
                await asyncio.gather(*(register(p, n) for n, p in enumerate(persons)))

            async def finished() -> bool:
                return (await counts_of(runtime, broadcast_id)).remaining == 0

            await until(finished, 180)
            counts = await counts_of(runtime, broadcast_id)
            found = await applications_by_nik(runtime)
            async with runtime.sessions() as session:
                submitted = list(await session.scalars(select(Application.status)))
    finally:
        stops = await asyncio.gather(*(r.terminate() for r in replicas), return_exceptions=True)

    for replica in replicas:
        assert replica.process.returncode == 0, replica.errors()
    assert all(isinstance(took, float) for took in stops), stops
    assert counts == Counts(total=2000, sent=2000)
    assert messages_per_chat(fake, followers) == {chat: 1 for chat in followers}
    assert submitted == ["submitted"] * 3
    assert set(found) == {nik_of(n) for n in range(3)}
    for n in range(3):
        assert found[nik_of(n)] == {**found[nik_of(n)], **expected_row(n)}, "as answered"
    for person in persons:
        taken_by = {post.url for post in fake.webhook_posts if post.chat_id == person.user.chat_id}
        assert taken_by == set(fake.webhook_targets), "each person's updates reached both"
    assert fake.stats().total.rate_limited == 0
    sends = [call.at for call in fake.calls if call.method.lower() in SEND_METHODS]
    assert len(sends) >= 2000
    # The pacer starts sends 1/RATE s apart, but the fake stamps them when its event loop
    # gets to them: a stall of that loop lets the sends that waited through it in together.
    # Over five seconds the sustained rate must hold, give or take the sends a window's
    # edge can gain from the longest stall measured in this run (none on a quiet machine).
    # A single second may hold more when the machine is busy, within what the fake's limit
    # (like Telegram's) allows, a burst of one second's worth on top of the rate: nothing
    # was refused (`rate_limited == 0`).
    stalled = math.ceil(RATE * lag[0])
    assert busiest_window(sends, width=5.0) <= 5 * RATE + 2 + stalled, f"stalled {lag[0]:.3f} s"
    assert busiest_window(sends) <= 2 * RATE


async def test_sigterm_mid_registration_exits_in_time_and_loses_nothing(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """The "Kirim" press arrives as the process is told to stop: it exits 0 within 10 s, and
    the press is not lost (handled before the exit, or posted again to the next process):
    the application is submitted once and the person gets the reference number."""
    database_url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    port = free_port()
    first = await start_replica(fake, database_url, tmp_path, "first", port)
    person = Person(fake.user(610_001, "Ketut"))
    async with (
        runtime_on(database_url) as runtime,
        handled_from_database(fake, runtime, [person.user.chat_id]),
    ):
        try:
            await register_until_summary(person, nik=nik_of(3), name=NAMES[3])
            await person.user.press(person.t("summary.send"))
            took = await first.terminate()
        finally:
            if first.process.returncode is None:
                first.process.kill()
                await first.process.wait()
        assert first.process.returncode == 0, first.errors()
        assert took < 10

        second = await start_replica(fake, database_url, tmp_path, "second", port)
        try:
            replies = await person.user.replies(timeout=30)
            found = await applications_by_nik(runtime)
            async with runtime.sessions() as session:
                submitted = list(await session.scalars(select(Application.status)))
        finally:
            await second.terminate()
    assert second.process.returncode == 0, second.errors()
    assert "BC-" in texts(replies)
    assert submitted == ["submitted"]
    assert found[nik_of(3)] == {**found[nik_of(3)], **expected_row(3)}
