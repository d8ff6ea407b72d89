"""The delivery engine on a real database, with the channel played by a scripted sender.

Each recipient ends in one final state; Telegram's answers (pause, blocked, refused, flaky)
move rows the way the issue says; a crash leaves "uncertain" rows that are never resent.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.messages import Reply
from bot.db.models import Broadcast, Delivery, User
from bot.runtime import Runtime
from bot.security import Cipher
from bot.services.broadcasts import set_text, text_of
from bot.services.delivery import (
    Counts,
    DeliveryEngine,
    Halted,
    Pacer,
    SendOutcome,
    broadcast_counts,
    busiest_window,
    default_progress,
    final_report,
    progress_bar,
    set_broadcast_state,
)
from tests.conftest import DATA_KEY

# The tests' runtimes use DATA_KEY: broadcast texts are stored under it.
CIPHER = Cipher(DATA_KEY.encode())


@dataclass
class Sent:
    """One call the engine made to the channel."""

    chat_id: int
    text: str
    at: float
    message_id: int | None = None


@dataclass
class ScriptedSender:
    """The channel as a test double: per chat, the answers to give in order; then "sent"."""

    script: dict[int, list[SendOutcome]] = field(default_factory=dict)
    sends: list[Sent] = field(default_factory=list)
    edits: list[Sent] = field(default_factory=list)

    async def send(
        self, chat_id: int, reply: Reply, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        self.sends.append(Sent(chat_id, reply.text, time.monotonic()))
        if left is not None:
            left()
        answers = self.script.get(chat_id)
        if answers:
            return answers.pop(0)
        return SendOutcome("sent", message_id=len(self.sends))

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> SendOutcome:
        self.edits.append(Sent(chat_id, reply.text, time.monotonic(), message_id))
        return SendOutcome("sent", message_id=message_id)

    def received(self) -> Counter[int]:
        """How many messages each chat was sent."""
        return Counter(sent.chat_id for sent in self.sends)


class Clock:
    """The engine's idea of now, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def render(broadcast: Broadcast, user: User) -> Reply:
    """What a recipient reads: the broadcast text, tagged with their language."""
    return Reply(f"{text_of(broadcast, CIPHER)} [{user.language}]")


def make_engine(
    runtime: Runtime, sender: ScriptedSender, clock: Clock, **options: Any
) -> DeliveryEngine:
    settings: dict[str, Any] = {
        "rate": 1000.0,
        "max_attempts": 3,
        "worker_id": "test-worker",
        "per_chat_interval": 0.0,
        "backoff_seconds": 10.0,
        "progress_interval": 0.0,
        "clock": clock,
        **options,
    }
    return DeliveryEngine(runtime.sessions, sender, render, **settings)


async def queue_broadcast(
    runtime: Runtime,
    chat_ids: Iterable[int],
    *,
    state: str = "sending",
    text: str = "Kabar desa",
    scheduled_at: datetime | None = None,
    progress_chat_id: int | None = None,
    leader_language: str = "id",
) -> int:
    """A broadcast with one pending delivery per chat (people created on first use)."""
    async with runtime.sessions() as session, session.begin():
        people = []
        for chat_id in chat_ids:
            user = await session.scalar(select(User).where(User.telegram_id == chat_id))
            if user is None:
                user = User(telegram_id=chat_id, language="en" if chat_id % 2 else "id")
                session.add(user)
            people.append(user)
        leader = None
        if progress_chat_id is not None:
            leader = User(telegram_id=progress_chat_id, language=leader_language)
            session.add(leader)
        await session.flush()
        broadcast = Broadcast(
            scope_kind="village",
            scope_code="51.71.01.1001",
            state=state,
            scheduled_at=scheduled_at,
            created_by=leader.id if leader else None,
            progress_chat_id=progress_chat_id,
            progress_message_id=7 if progress_chat_id is not None else None,
        )
        set_text(broadcast, CIPHER, text)
        session.add(broadcast)
        await session.flush()
        session.add_all(Delivery(broadcast_id=broadcast.id, user_id=user.id) for user in people)
    return broadcast.id


async def rows(runtime: Runtime, broadcast_id: int) -> dict[int, Delivery]:
    """The delivery rows of a broadcast by recipient chat."""
    async with runtime.sessions() as session:
        result = await session.execute(
            select(User.telegram_id, Delivery)
            .join(User, User.id == Delivery.user_id)
            .where(Delivery.broadcast_id == broadcast_id)
        )
        return {int(chat_id or 0): delivery for chat_id, delivery in result}


async def load_broadcast(runtime: Runtime, broadcast_id: int) -> Broadcast:
    async with runtime.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast


async def until(check: Callable[[], bool | Awaitable[bool]], seconds: float = 30.0) -> None:
    """Wait until `check` holds (polling), or fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


async def counts_of(runtime: Runtime, broadcast_id: int) -> Counts:
    async with runtime.sessions() as session:
        return await broadcast_counts(session, broadcast_id)


# The happy path.


async def test_every_recipient_gets_the_broadcast_once_in_their_language(runtime: Runtime) -> None:
    """Five residents each receive one message; the broadcast ends "done" with its time."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, range(101, 106))
    await make_engine(runtime, sender, clock).drain()

    assert sender.received() == Counter({chat: 1 for chat in range(101, 106)})
    assert {s.chat_id: s.text for s in sender.sends}[101] == "Kabar desa [en]"
    assert {s.chat_id: s.text for s in sender.sends}[102] == "Kabar desa [id]"
    assert {d.state for d in (await rows(runtime, broadcast_id)).values()} == {"sent"}
    broadcast = await load_broadcast(runtime, broadcast_id)
    assert broadcast.state == "done"
    assert broadcast.finished_at is not None
    assert await counts_of(runtime, broadcast_id) == Counts(total=5, sent=5)


async def test_a_resident_in_two_audiences_has_one_delivery_row(runtime: Runtime) -> None:
    """The database refuses a second delivery of the same broadcast to the same person."""
    broadcast_id = await queue_broadcast(runtime, [201])
    async with runtime.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == 201))
        assert user_id is not None
        session.add(Delivery(broadcast_id=broadcast_id, user_id=user_id))
        with pytest.raises(IntegrityError):
            await session.commit()


# What Telegram answers.


async def test_retry_after_pauses_all_sending_and_costs_no_attempt(runtime: Runtime) -> None:
    """A 429 for one chat stops every send for the time asked; that row waits, unpunished."""
    sender, clock = ScriptedSender(), Clock()
    sender.script[301] = [SendOutcome("retry_after", retry_after=0.3)]
    broadcast_id = await queue_broadcast(runtime, [301, 302, 303])
    engine = make_engine(runtime, sender, clock)

    await engine.step()

    refused = sender.sends[0]
    assert refused.chat_id == 301
    row = (await rows(runtime, broadcast_id))[301]
    assert (row.state, row.attempts) == ("pending", 0)
    assert row.next_attempt_at is not None

    clock.advance(seconds=1)
    await engine.drain()
    row = (await rows(runtime, broadcast_id))[301]
    assert (row.state, row.attempts) == ("sent", 1)
    # The others were sent too, none of them during the pause (whether a row waiting then
    # was handed back and claimed again, or waited it out, depends on timing).
    others = [s for s in sender.sends if s.chat_id != 301]
    assert sorted(s.chat_id for s in others) == [302, 303]
    assert all(s.at - refused.at >= 0.3 for s in others)
    assert sender.received()[301] == 2


async def test_a_resident_who_blocked_the_bot_is_marked_and_left_out_later(
    runtime: Runtime,
) -> None:
    """A 403 ends the row as blocked, marks the person, and the next broadcast skips them."""
    sender, clock = ScriptedSender(), Clock()
    sender.script[401] = [SendOutcome("blocked", reason="Forbidden: bot was blocked by the user")]
    first = await queue_broadcast(runtime, [401, 402])
    engine = make_engine(runtime, sender, clock)
    await engine.drain()

    row = (await rows(runtime, first))[401]
    assert (row.state, row.attempts) == ("blocked", 1)
    async with runtime.sessions() as session:
        blocked_at = await session.scalar(select(User.blocked_at).where(User.telegram_id == 401))
    assert blocked_at is not None

    second = await queue_broadcast(runtime, [401, 402])
    await engine.drain()
    assert sender.received() == Counter({401: 1, 402: 2})
    assert (await rows(runtime, second))[401].state == "skipped"
    assert await counts_of(runtime, second) == Counts(total=2, sent=1, skipped=1)


async def test_a_resident_who_opted_out_after_queueing_gets_nothing(runtime: Runtime) -> None:
    """/berhenti between queueing and sending is honoured."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, [451, 452])
    async with runtime.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.telegram_id == 451))
        assert user is not None
        user.opted_out_at = clock()
    await make_engine(runtime, sender, clock).drain()
    assert sender.received() == Counter({452: 1})
    assert (await rows(runtime, broadcast_id))[451].state == "skipped"


async def test_a_refused_message_fails_for_good_with_its_reason(runtime: Runtime) -> None:
    """A 400 is final: no retry, and the reason is kept."""
    sender, clock = ScriptedSender(), Clock()
    sender.script[501] = [SendOutcome("failed", reason="Bad Request: chat not found")]
    broadcast_id = await queue_broadcast(runtime, [501])
    engine = make_engine(runtime, sender, clock)
    await engine.drain()
    clock.advance(hours=1)
    await engine.drain()

    row = (await rows(runtime, broadcast_id))[501]
    assert (row.state, row.error, row.attempts) == ("failed", "Bad Request: chat not found", 1)
    assert sender.received()[501] == 1


async def test_a_flaky_network_is_retried_with_growing_waits_then_given_up(
    runtime: Runtime,
) -> None:
    """Timeouts and 5xx retry after 10 s, then 20 s; the third failure (max 3) is final."""
    sender, clock = ScriptedSender(), Clock()
    flaky = SendOutcome("transient", reason="Internal Server Error (500)")
    sender.script[601] = [flaky, flaky, flaky]
    sender.script[602] = [flaky]
    broadcast_id = await queue_broadcast(runtime, [601, 602])
    engine = make_engine(runtime, sender, clock)
    start = clock()

    await engine.step()
    row = (await rows(runtime, broadcast_id))[601]
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=UTC) == start + timedelta(seconds=10)
    assert await engine.step() == 0, "nothing is due before the back-off ends"

    clock.advance(seconds=10)
    await engine.step()
    row = (await rows(runtime, broadcast_id))[601]
    assert (row.state, row.attempts) == ("pending", 2)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=UTC) == clock() + timedelta(seconds=20)

    clock.advance(seconds=20)
    await engine.drain()
    found = await rows(runtime, broadcast_id)
    assert (found[601].state, found[601].attempts) == ("failed", 3)
    assert found[601].error == "Internal Server Error (500)"
    assert (found[602].state, found[602].attempts) == ("sent", 2)
    assert sender.received() == Counter({601: 3, 602: 2})
    assert (await load_broadcast(runtime, broadcast_id)).state == "done"


async def test_a_send_whose_answer_never_came_is_uncertain_and_not_resent(
    runtime: Runtime,
) -> None:
    """A timeout after the request left may have delivered it: report, never resend."""
    sender, clock = ScriptedSender(), Clock()
    sender.script[651] = [SendOutcome("uncertain", reason="Timed out")]
    broadcast_id = await queue_broadcast(runtime, [651])
    engine = make_engine(runtime, sender, clock)
    await engine.drain()
    clock.advance(hours=1)
    await engine.drain()
    assert sender.received()[651] == 1
    assert await counts_of(runtime, broadcast_id) == Counts(total=1, uncertain=1)


# Crashes.


async def test_rows_left_mid_send_by_a_crash_become_uncertain_and_are_not_resent(
    runtime: Runtime,
) -> None:
    """At start, rows a dead sender left "sending" are reported, the pending ones sent.

    SQLite runs one sender, so every "sending" row at start is stale; on PostgreSQL another
    process may still be sending, so only a lease that ran out makes a row uncertain.
    """
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, [701, 702, 703])
    async with runtime.sessions() as session, session.begin():
        found = {d.user_id: d for d in await session.scalars(select(Delivery))}
        old, fresh = sorted(found.values(), key=lambda d: d.id)[:2]
        old.state, old.claimed_by, old.claimed_at = "sending", "dead", clock() - timedelta(hours=1)
        fresh.state, fresh.claimed_by, fresh.claimed_at = "sending", "other", clock()
    engine = make_engine(runtime, sender, clock, lease_seconds=60)

    expected = 2 if runtime.settings.is_sqlite else 1
    assert await engine.recover() == expected
    await engine.drain()
    assert sender.received() == Counter({703: 1})
    if not runtime.settings.is_sqlite:
        assert (await rows(runtime, broadcast_id))[702].state == "sending"
        clock.advance(seconds=61)
        await engine.drain()
    assert sender.received() == Counter({703: 1})
    assert await counts_of(runtime, broadcast_id) == Counts(total=3, sent=1, uncertain=2)
    assert (await load_broadcast(runtime, broadcast_id)).state == "done"


async def test_stopping_the_loop_puts_waiting_rows_back_unsent(runtime: Runtime) -> None:
    """A graceful stop leaves nothing "sending": a restart would otherwise call it uncertain."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, range(801, 841))
    engine = make_engine(runtime, sender, clock, rate=10.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.run(stop))
    await until(lambda: len(sender.sends) >= 3)
    stop.set()
    async with asyncio.timeout(20):
        await loop

    counts = await counts_of(runtime, broadcast_id)
    assert counts.sending == counts.uncertain == 0
    assert counts.sent == len(sender.sends) < 40
    assert counts.pending == 40 - counts.sent


async def test_the_loop_sends_a_whole_broadcast_and_reports(runtime: Runtime) -> None:
    """`run`, as started with the application: all sent, the leader gets the report."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, range(851, 911), progress_chat_id=850)
    engine = make_engine(runtime, sender, clock, rate=200.0, batch=20, poll_interval=0.05)
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.run(stop))
    try:
        await until(lambda: any(s.chat_id == 850 for s in sender.sends))
    finally:
        stop.set()
        await loop
    assert sender.received() == Counter({chat: 1 for chat in [*range(851, 911), 850]})
    assert await counts_of(runtime, broadcast_id) == Counts(total=60, sent=60)


# Scheduling, pausing, cancelling.


async def test_a_scheduled_broadcast_goes_out_at_its_time(runtime: Runtime) -> None:
    """Nothing leaves before the time; at the time, everything does."""
    sender, clock = ScriptedSender(), Clock()
    at = clock() + timedelta(hours=1)
    broadcast_id = await queue_broadcast(runtime, [901, 902], state="scheduled", scheduled_at=at)
    engine = make_engine(runtime, sender, clock)

    clock.advance(minutes=59)
    await engine.drain()
    assert sender.sends == []
    assert (await load_broadcast(runtime, broadcast_id)).state == "scheduled"

    clock.advance(minutes=1)
    await engine.drain()
    assert sender.received() == Counter({901: 1, 902: 1})
    broadcast = await load_broadcast(runtime, broadcast_id)
    assert broadcast.state == "done"
    assert broadcast.started_at is not None
    assert broadcast.started_at.replace(tzinfo=UTC) == at


async def test_a_paused_broadcast_waits_and_resumes(runtime: Runtime) -> None:
    """Paused: nothing is claimed. Resumed: everything goes."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, [1001, 1002])
    engine = make_engine(runtime, sender, clock)
    async with runtime.sessions() as session, session.begin():
        assert await set_broadcast_state(session, broadcast_id, "paused")
    await engine.drain()
    assert sender.sends == []
    assert await counts_of(runtime, broadcast_id) == Counts(total=2, pending=2)

    async with runtime.sessions() as session, session.begin():
        assert await set_broadcast_state(session, broadcast_id, "sending")
    await engine.drain()
    assert sender.received() == Counter({1001: 1, 1002: 1})
    async with runtime.sessions() as session, session.begin():
        assert not await set_broadcast_state(session, broadcast_id, "paused"), "already done"


async def test_resuming_a_paused_scheduled_broadcast_keeps_its_time(runtime: Runtime) -> None:
    """Paused before its time, a resumed broadcast is scheduled again, not sent at once."""
    at = datetime.now(UTC) + timedelta(days=1)
    broadcast_id = await queue_broadcast(runtime, [1051], state="scheduled", scheduled_at=at)
    async with runtime.sessions() as session, session.begin():
        assert await set_broadcast_state(session, broadcast_id, "paused")
        assert await set_broadcast_state(session, broadcast_id, "sending")
    assert (await load_broadcast(runtime, broadcast_id)).state == "scheduled"


async def test_a_cancelled_broadcast_skips_everyone_not_yet_reached(runtime: Runtime) -> None:
    """Cancel: pending rows become skipped, nothing more is sent, and it cannot resume."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, [1101, 1102, 1103])
    async with runtime.sessions() as session, session.begin():
        assert await set_broadcast_state(session, broadcast_id, "cancelled")
    await make_engine(runtime, sender, clock).drain()

    assert sender.sends == []
    assert await counts_of(runtime, broadcast_id) == Counts(total=3, skipped=3)
    broadcast = await load_broadcast(runtime, broadcast_id)
    assert broadcast.state == "cancelled"
    assert broadcast.finished_at is not None
    async with runtime.sessions() as session, session.begin():
        assert not await set_broadcast_state(session, broadcast_id, "sending")
        with pytest.raises(ValueError):
            await set_broadcast_state(session, broadcast_id, "done")


async def test_a_cancel_while_sending_stops_the_rest(runtime: Runtime) -> None:
    """Cancelled after the first message: the others are skipped, none is left hanging."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, [1151, 1152, 1153, 1154], progress_chat_id=1150)
    engine = make_engine(runtime, sender, clock, rate=2.0)
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.run(stop))
    try:
        await until(lambda: any(s.chat_id != 1150 for s in sender.sends))
        async with runtime.sessions() as session, session.begin():
            assert await set_broadcast_state(session, broadcast_id, "cancelled")

        async def settled() -> bool:
            return not (await counts_of(runtime, broadcast_id)).remaining

        await until(settled)
    finally:
        stop.set()
        await loop
    counts = await counts_of(runtime, broadcast_id)
    reached = sum(1 for s in sender.sends if s.chat_id != 1150)
    assert counts.sent == reached < 4
    assert counts.skipped == 4 - reached
    assert counts.uncertain == counts.failed == 0


# Counting and showing progress.


async def test_counts_tell_every_state_apart(runtime: Runtime) -> None:
    """Each state is counted on its own, and the totals add up."""
    chats = range(1201, 1209)
    broadcast_id = await queue_broadcast(runtime, chats)
    states = ["pending", "sending", "sent", "sent", "blocked", "failed", "uncertain", "skipped"]
    async with runtime.sessions() as session, session.begin():
        found = sorted(await session.scalars(select(Delivery)), key=lambda d: d.id)
        for delivery, state in zip(found, states, strict=True):
            delivery.state = state
    counts = await counts_of(runtime, broadcast_id)
    assert counts == Counts(
        total=8, pending=1, sending=1, sent=2, blocked=1, failed=1, uncertain=1, skipped=1
    )
    assert (counts.settled, counts.remaining) == (6, 2)


async def test_the_leader_sees_progress_in_place_and_a_report_in_their_language(
    runtime: Runtime,
) -> None:
    """The progress message is edited (never re-sent); the report arrives once, at the end."""
    sender, clock = ScriptedSender(), Clock()
    sender.script[1302] = [SendOutcome("blocked", reason="Forbidden")]
    broadcast_id = await queue_broadcast(
        runtime, [1301, 1302, 1303], progress_chat_id=1300, leader_language="en"
    )
    await make_engine(runtime, sender, clock).drain()

    assert sender.edits, "the progress message was edited"
    assert {(e.chat_id, e.message_id) for e in sender.edits} == {(1300, 7)}
    last = sender.edits[-1].text
    assert "▓▓▓▓▓▓▓▓▓▓ 100%" in last
    assert "Sent: 2 of 3" in last
    broadcast = await load_broadcast(runtime, broadcast_id)
    counts = await counts_of(runtime, broadcast_id)
    reports = [s.text for s in sender.sends if s.chat_id == 1300]
    assert reports == [final_report(broadcast, counts, "en").text]
    assert "Blocked the bot: 1" in reports[0]


def test_the_progress_message_offers_the_buttons_of_its_state() -> None:
    """Sending: pause and cancel. Paused: resume and cancel. Done: none."""
    broadcast = Broadcast(id=42, state="sending")
    counts = Counts(total=200, sent=100, blocked=3, failed=1, uncertain=0, pending=96)
    view = default_progress(broadcast, counts, "id", eta_seconds=150)
    assert [[b.data for b in row] for row in view.buttons] == [["bc:pause:42", "bc:cancel:42"]]
    assert "sekitar 3 menit" in view.text
    assert progress_bar(counts.settled, counts.total) in view.text

    broadcast.state = "paused"
    view = default_progress(broadcast, counts, "en")
    assert [[b.data for b in row] for row in view.buttons] == [["bc:resume:42", "bc:cancel:42"]]
    broadcast.state = "done"
    assert default_progress(broadcast, counts, "en").buttons == ()


def test_the_bar_shows_the_share_handled() -> None:
    assert progress_bar(52, 100) == "▓▓▓▓▓░░░░░ 52%"
    assert progress_bar(0, 0) == "▓▓▓▓▓▓▓▓▓▓ 100%"
    assert progress_bar(1, 3) == "▓▓▓░░░░░░░ 33%"


# Several senders at once (PostgreSQL).


# SQLite runs one sender by design; several senders are a PostgreSQL feature.
@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
async def test_two_engines_share_the_work_and_nobody_gets_two(runtime: Runtime) -> None:
    """With FOR UPDATE SKIP LOCKED, two engines never claim the same row."""
    sender, clock = ScriptedSender(), Clock()
    broadcast_id = await queue_broadcast(runtime, range(1401, 1501))
    first = make_engine(runtime, sender, clock, worker_id="one", batch=10)
    second = make_engine(runtime, sender, clock, worker_id="two", batch=10)
    await asyncio.gather(first.drain(), second.drain())

    assert sender.received() == Counter({chat: 1 for chat in range(1401, 1501)})
    found = await rows(runtime, broadcast_id)
    assert {d.claimed_by for d in found.values()} == {"one", "two"}


# The pacer on its own.


async def test_the_pacer_spaces_sends_by_the_rate_and_per_chat() -> None:
    """At 100 a second, sends are granted 1/100 s apart at least: no second holds more."""
    pacer = Pacer(rate=100.0, per_chat=0.2)
    granted: list[float] = []

    async def take(chat_id: int) -> None:
        await pacer.acquire(chat_id)
        # When the pacer let the send go, by its clock. A reading taken here would add the
        # time this task took to get here, which a busy machine may stretch for one send and
        # not the next (two sends once looked 8.4 ms apart that way).
        granted.append(pacer.last_start)

    await asyncio.gather(*(take(chat) for chat in range(120)))
    assert min(b - a for a, b in itertools.pairwise(granted)) >= 0.01 - 1e-4
    assert busiest_window(granted) <= 100

    first = time.monotonic()
    await pacer.acquire(7)
    await pacer.acquire(7)
    assert time.monotonic() - first >= 0.2


async def test_a_pause_stops_every_waiting_send() -> None:
    """Telegram's RetryAfter: whoever waits gives up its turn; later sends wait it out."""
    pacer = Pacer(rate=1.0, per_chat=0.0)
    await pacer.acquire(1)
    waiting = asyncio.create_task(pacer.acquire(2))
    await asyncio.sleep(0.05)
    pacer.pause(0.3)
    with pytest.raises(Halted):
        await waiting
    assert pacer.paused_for > 0.2
    pacer.close()
    with pytest.raises(Halted):
        await pacer.acquire(3)


def test_the_busiest_window_is_counted_correctly() -> None:
    assert busiest_window([0.0, 0.5, 0.99, 1.0, 1.5, 1.9]) == 4
    assert busiest_window([]) == 0


def test_the_report_explains_uncertain_rows_only_when_there_are_some() -> None:
    """The note on "tidak pasti" appears only when some deliveries are uncertain."""
    from bot.i18n import translator

    note = translator("id")("broadcast.report.uncertain_note")
    broadcast = Broadcast(id=3, state="done")
    assert note not in final_report(broadcast, Counts(total=2, sent=2), "id").text
    assert note in final_report(broadcast, Counts(total=2, sent=1, uncertain=1), "id").text
