"""Broadcasts through the real Bot API client against the fake Telegram, faults included.

The fake refuses sends over its flood limit (429), for users who blocked the bot (403), answers
slowly or with server errors; and sender processes are killed outright. Whatever happens,
every recipient ends in a final state, nobody gets a message twice, and the fake never sees
more than the configured pace (measured on the fake's own clock).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.telegram_sender import TelegramSender
from bot.config import Settings
from bot.core.messages import Reply
from bot.db.models import Broadcast, User
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from bot.services.broadcasts import text_of
from bot.services.delivery import (
    Counts,
    DeliveryEngine,
    busiest_window,
    final_report,
    set_broadcast_state,
)
from tests.conftest import DATA_KEY
from tests.services.test_delivery import (
    CIPHER,
    counts_of,
    load_broadcast,
    queue_broadcast,
    rows,
    until,
)

ROOT = Path(__file__).resolve().parents[2]
SEND_METHODS = {"sendmessage", "sendphoto", "editmessagetext", "editmessagecaption"}


def render(broadcast: Broadcast, user: User) -> Reply:
    """What every recipient reads in these tests."""
    return Reply(text_of(broadcast, CIPHER) or "")


def people(fake: FakeTelegram, chat_ids: Iterable[int]) -> list[int]:
    """Residents who have a chat with the bot on the fake."""
    return [fake.user(chat_id).chat_id for chat_id in chat_ids]


def send_times(fake: FakeTelegram) -> dict[int, list[float]]:
    """When each chat's sends reached the fake (refused ones included), per chat."""
    times: dict[int, list[float]] = {}
    for call in fake.calls:
        if call.method.lower() in SEND_METHODS:
            times.setdefault(int(call.params["chat_id"]), []).append(call.at)
    return times


def assert_paced(fake: FakeTelegram, rate: float) -> None:
    """No chat got two sends within a second; no second held more than the rate (+ jitter)."""
    times = send_times(fake)
    for chat_id, moments in times.items():
        moments.sort()
        gaps = [b - a for a, b in itertools.pairwise(moments)]
        assert all(gap >= 1.0 for gap in gaps), f"chat {chat_id} got sends {gaps} s apart"
    busiest = busiest_window(moment for moments in times.values() for moment in moments)
    assert busiest <= rate + 2, f"{busiest} sends within one second at {rate}/s"


def messages_per_chat(fake: FakeTelegram, chat_ids: Iterable[int]) -> dict[int, int]:
    return {chat_id: len(fake.messages(chat_id)) for chat_id in chat_ids}


@asynccontextmanager
async def engine_running(engine: DeliveryEngine) -> AsyncIterator[DeliveryEngine]:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        yield engine
    finally:
        stop.set()
        await task


async def finished(runtime: Runtime, broadcast_id: int) -> bool:
    async with runtime.sessions() as session:
        state = await session.scalar(select(Broadcast.state).where(Broadcast.id == broadcast_id))
    return state == "done"


# The channel's faults do not depend on the database: SQLite is enough for these two.
ON_SQLITE = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


@ON_SQLITE
async def test_429s_and_403s_leave_every_resident_with_one_message_at_a_legal_pace(
    runtime: Runtime, fake: FakeTelegram
) -> None:
    """The fake allows 5/s and the engine tries 30/s: 429s pause it, 403s mark the blocked.

    (At 15/s a slow, busy machine sometimes never reached the limit.)
    """
    fake.rate_limit = 5
    fake.retry_after = 1
    chats = people(fake, range(2001, 2041))
    blocked = set(chats[::10])
    fake.blocked_chats |= blocked
    leader = people(fake, [2000])[0]
    async with TelegramSender(fake.token, fake.base_url) as sender:
        shown = await sender.send(leader, Reply("📣"))
        broadcast_id = await queue_broadcast(runtime, chats, progress_chat_id=leader)
        async with runtime.sessions() as session, session.begin():
            broadcast = await session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            broadcast.progress_message_id = shown.message_id
        engine = DeliveryEngine(
            runtime.sessions, sender, render, rate=30, max_attempts=5, poll_interval=0.2
        )
        async with engine_running(engine):
            await until(lambda: finished(runtime, broadcast_id))
            await until(lambda: len(fake.messages(leader)) == 2)

    assert fake.stats().total.rate_limited > 0, "the fake's flood limit was reached"
    received = messages_per_chat(fake, chats)
    assert received == {chat: 0 if chat in blocked else 1 for chat in chats}
    found = await rows(runtime, broadcast_id)
    assert {chat for chat, row in found.items() if row.state == "blocked"} == blocked
    assert {row.state for chat, row in found.items() if chat not in blocked} == {"sent"}
    async with runtime.sessions() as session:
        marked = set(
            await session.scalars(select(User.telegram_id).where(User.blocked_at.is_not(None)))
        )
    assert marked == blocked
    progress, report = fake.messages(leader)
    assert progress.edits >= 1 and "100%" in (progress.text or "")
    assert not progress.has_keyboard, "no pause/cancel buttons once it is done"
    done = await load_broadcast(runtime, broadcast_id)
    counts = await counts_of(runtime, broadcast_id)
    assert counts == Counts(total=40, sent=36, blocked=4)
    assert report.text == final_report(done, counts, "id").text
    assert_paced(fake, 30)


@ON_SQLITE
async def test_slow_and_failing_answers_end_in_final_states_without_duplicates(
    runtime: Runtime, fake: FakeTelegram
) -> None:
    """Answers slower than the timeout are "uncertain" (never resent); 500s are retried."""
    chats = people(fake, range(3001, 3061))
    async with TelegramSender(fake.token, fake.base_url, read_timeout=0.3) as sender:
        broadcast_id = await queue_broadcast(runtime, chats)
        engine = DeliveryEngine(
            runtime.sessions,
            sender,
            render,
            rate=60,
            max_attempts=5,
            batch=5,
            backoff_seconds=0.2,
            poll_interval=0.2,
        )
        fake.delay = 1.0

        def sends() -> list[str | None]:
            return [c.error for c in fake.calls if c.method.lower() == "sendmessage"]

        async with engine_running(engine):
            await until(lambda: len(sends()) >= 3)
            fake.delay = 0.0
            seen = len(sends())
            fake.failing_methods = {"sendMessage": 500}
            await until(lambda: len(sends()) >= seen + 5)
            fake.failing_methods = {}
            await until(lambda: finished(runtime, broadcast_id))
        # Let the slow answers the client gave up on arrive at the fake.
        await asyncio.sleep(1.0)

    found = await rows(runtime, broadcast_id)
    counts = await counts_of(runtime, broadcast_id)
    assert counts.remaining == 0
    assert counts.uncertain >= 1, "some answers came too late"
    assert counts.sent + counts.uncertain == 60
    assert any(row.attempts >= 2 and row.state == "sent" for row in found.values())
    received = messages_per_chat(fake, chats)
    assert max(received.values()) == 1, "nobody receives a message twice"
    assert all(received[chat] == 1 for chat, row in found.items() if row.state == "sent")
    assert_paced(fake, 60)


@ON_SQLITE
async def test_two_broadcasts_to_the_same_people_reach_each_chat_a_second_apart(
    runtime: Runtime, fake: FakeTelegram
) -> None:
    """A leader's and the branch's broadcast at once: one message of each, paced per chat."""
    chats = people(fake, range(3501, 3516))
    async with TelegramSender(fake.token, fake.base_url) as sender:
        village = await queue_broadcast(runtime, chats, text="Kabar desa")
        branch = await queue_broadcast(runtime, chats, text="Kabar cabang")
        engine = DeliveryEngine(
            runtime.sessions, sender, render, rate=60, max_attempts=5, poll_interval=0.2
        )
        async with engine_running(engine):
            await until(lambda: finished(runtime, village))
            await until(lambda: finished(runtime, branch))

    for chat in chats:
        assert sorted(m.text or "" for m in fake.messages(chat)) == ["Kabar cabang", "Kabar desa"]
    assert_paced(fake, 60)


# Sender processes.


def worker_env(
    fake: FakeTelegram, settings: Settings, schema: str | None, **extra: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": settings.database_url,
        "DATA_KEY": DATA_KEY,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "LOG_LEVEL": "WARNING",
        "PTB_TIMEDELTA": "true",
        **extra,
    }
    if schema:
        env["DELIVERY_PG_SCHEMA"] = schema
    return env


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start `tests.e2e.delivery_worker` and wait until its engine runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.delivery_worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = await process.stdout.readline()
    assert line.strip() == b"ready", f"the worker did not start (exit {process.returncode})"
    return process


async def stop_worker(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        await process.wait()


def schema_of(settings: Settings, request: pytest.FixtureRequest) -> str | None:
    return None if settings.is_sqlite else str(request.getfixturevalue("postgres_schema"))


async def test_a_sender_killed_mid_broadcast_finishes_after_restart_with_no_duplicate(
    runtime: Runtime, fake: FakeTelegram, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """SIGKILL half-way: the restarted sender sends the rest; the interrupted are reported."""
    chats = people(fake, range(4001, 4121))
    broadcast_id = await queue_broadcast(runtime, chats)
    env = worker_env(
        fake,
        settings,
        schema_of(settings, request),
        DELIVERY_RATE="60",
        DELIVERY_BATCH="10",
        DELIVERY_LEASE="1",
    )

    def delivered() -> int:
        return sum(len(fake.messages(chat)) for chat in chats)

    first = await start_worker(env)
    try:
        await until(lambda: delivered() >= 40)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        await stop_worker(first)
    at_kill = await counts_of(runtime, broadcast_id)
    assert at_kill.remaining > 0, "killed before the end"

    second = await start_worker({**env, "DELIVERY_WORKER": "after-restart"})
    try:
        await until(lambda: finished(runtime, broadcast_id))
    finally:
        await stop_worker(second)

    counts = await counts_of(runtime, broadcast_id)
    found = await rows(runtime, broadcast_id)
    received = messages_per_chat(fake, chats)
    assert counts.remaining == 0
    assert counts.sent + counts.uncertain == len(chats)
    # Only requests really in flight at the kill may be uncertain. One whose message arrived
    # was: its answer was not yet recorded. Of those that never arrived, at most as many as
    # the fake ever saw open at once, and one more whose mark was committed just before.
    uncertain = [chat for chat, row in found.items() if row.state == "uncertain"]
    never_arrived = [chat for chat in uncertain if received[chat] == 0]
    assert len(never_arrived) <= fake.peak_open_sends + 1, (counts, fake.peak_open_sends)
    assert max(received.values()) == 1, "nobody receives a message twice"
    assert all(received[chat] == 1 for chat, row in found.items() if row.state == "sent")
    assert any(row.claimed_by == "after-restart" for row in found.values())
    assert_paced(fake, 60)


# SQLite runs one sender by design; several senders are a PostgreSQL feature.
@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
async def test_two_sender_processes_on_postgresql_never_send_twice(
    runtime: Runtime, fake: FakeTelegram, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """Two processes claim with SKIP LOCKED: both work, each resident gets exactly one."""
    chats = people(fake, range(5001, 5201))
    broadcast_id = await queue_broadcast(runtime, chats, state="paused")
    env = worker_env(fake, settings, schema_of(settings, request), DELIVERY_RATE="50")
    workers = await asyncio.gather(
        start_worker({**env, "DELIVERY_WORKER": "one"}),
        start_worker({**env, "DELIVERY_WORKER": "two"}),
    )
    try:
        async with runtime.sessions() as session, session.begin():
            assert await set_broadcast_state(session, broadcast_id, "sending")
        await until(lambda: finished(runtime, broadcast_id))
    finally:
        await asyncio.gather(*(stop_worker(worker) for worker in workers))

    assert await counts_of(runtime, broadcast_id) == Counts(total=200, sent=200)
    assert messages_per_chat(fake, chats) == {chat: 1 for chat in chats}
    found = await rows(runtime, broadcast_id)
    assert {row.claimed_by for row in found.values()} == {"one", "two"}
