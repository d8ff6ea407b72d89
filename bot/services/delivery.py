"""The broadcast delivery engine: a loop over `Delivery` rows that claims, commits, sends, records.

It knows no Telegram: a `Sender` (the channel) sends one `Reply` to one chat and says how it
went in a `SendOutcome`. Pacing keeps under the channel's limits: one bot-wide bucket for every
message and edit, and at most one message a second to any chat. A row is committed as
"sending" just before its request leaves, so nothing is ever sent twice: rows still "sending" after
a crash (or once their lease ran out) become "uncertain" and are reported, never resent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased, defer

from bot.core.callbacks import BroadcastControl, encode
from bot.core.messages import Button, Reply
from bot.core.states import (
    FINAL_DELIVERY_STATES,
    BroadcastState,
    DeliveryState,
    control_sources,
)
from bot.db.models import Broadcast, Delivery, User, utcnow
from bot.i18n import translator
from bot.services.pacing import PER_CHAT_INTERVAL, Halted, Pacer, busiest_window, wait_at_most

__all__ = ["PER_CHAT_INTERVAL", "Halted", "Pacer", "busiest_window"]

log = logging.getLogger(__name__)

OutcomeKind = Literal["sent", "retry_after", "blocked", "failed", "transient", "uncertain"]
# Where a delivery row ends; "pending" and "sending" are the only states still moving.
FINAL_STATES = FINAL_DELIVERY_STATES
# What `set_broadcast_state` may change a broadcast to (the rest is the engine's own work).
CONTROLLED = (BroadcastState.PAUSED, BroadcastState.SENDING, BroadcastState.CANCELLED)
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class SendOutcome:
    """How one send went.

    `retry_after`: the channel asked for a pause of that many seconds (nothing was sent);
    `blocked`: the person blocked the bot; `failed`: refused for good (`reason` says why);
    `transient`: not sent this time, worth retrying; `uncertain`: the request may have been
    delivered but no answer came, so it must not be retried.
    """

    kind: OutcomeKind
    retry_after: float = 0.0
    reason: str = ""
    message_id: int | None = None


class Sender(Protocol):
    """A channel that delivers replies to chats, one call per message."""

    async def send(
        self, chat_id: int, reply: Reply, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        """Send a new message; `left` is called once the request has been written out."""
        ...

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> SendOutcome:
        """Replace the text and buttons of a message sent before."""
        ...


# What a recipient reads: the broadcast in the recipient's language.
Render = Callable[[Broadcast, User], Reply]


@dataclass(frozen=True)
class Counts:
    """How the delivery rows of one broadcast stand."""

    total: int = 0
    pending: int = 0
    sending: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0

    @property
    def settled(self) -> int:
        """Rows in a final state."""
        return self.sent + self.blocked + self.failed + self.uncertain + self.skipped

    @property
    def remaining(self) -> int:
        """Rows still to be sent (or being sent)."""
        return self.pending + self.sending


# The live progress message: broadcast, counts, the leader's language, seconds left if known.
ProgressView = Callable[[Broadcast, Counts, str, float | None], Reply]
# The final report: broadcast, counts, the leader's language.
ReportView = Callable[[Broadcast, Counts, str], Reply]


async def broadcast_counts(session: AsyncSession, broadcast_id: int) -> Counts:
    """Count the delivery rows of a broadcast by state."""
    rows = await session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.broadcast_id == broadcast_id)
        .group_by(Delivery.state)
    )
    by_state = {state: count for state, count in rows}
    known = {s.value: by_state.get(s, 0) for s in DeliveryState}
    return Counts(total=sum(by_state.values()), **known)


async def set_broadcast_state(session: AsyncSession, broadcast_id: int, state: str) -> bool:
    """Pause ("paused"), resume ("sending") or cancel ("cancelled") a broadcast.

    Returns False when the broadcast is not in a state that allows the change (already done,
    cancelled, ...). Cancelling skips every row not yet sent; rows being sent at that moment
    finish as they go. A resumed broadcast whose scheduled time has not come waits for it.
    """
    if state not in CONTROLLED:
        raise ValueError(f"no transition to broadcast state {state!r}")
    sources = control_sources(BroadcastState(state))
    now = utcnow()
    values: dict[str, Any] = {"state": state}
    if state == BroadcastState.SENDING:
        not_yet = and_(Broadcast.started_at.is_(None), Broadcast.scheduled_at > now)
        values["state"] = case(
            (not_yet, BroadcastState.SCHEDULED.value), else_=BroadcastState.SENDING.value
        )
    if state == BroadcastState.CANCELLED:
        values["finished_at"] = now
    changed = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.state.in_(sources))
        .values(**values)
        .returning(Broadcast.id)
        .execution_options(**_NO_SYNC)
    )
    if changed.first() is None:
        return False
    if state == BroadcastState.CANCELLED:
        await session.execute(
            update(Delivery)
            .where(Delivery.broadcast_id == broadcast_id, Delivery.state == DeliveryState.PENDING)
            .values(state=DeliveryState.SKIPPED.value, error="cancelled")
            .execution_options(**_NO_SYNC)
        )
    return True


# Texts of the progress message and the final report.

_STATUS_KEYS: dict[str, str] = {
    BroadcastState.COMPOSING: "broadcast.progress.composing",
    BroadcastState.SCHEDULED: "broadcast.progress.scheduled",
    BroadcastState.SENDING: "broadcast.progress.sending",
    BroadcastState.PAUSED: "broadcast.progress.paused",
    BroadcastState.CANCELLED: "broadcast.progress.cancelled",
    BroadcastState.DONE: "broadcast.progress.done",
}


def state_key(state: str) -> str:
    """Message id of a broadcast state as the progress message names it ("dijeda")."""
    return _STATUS_KEYS.get(state, "broadcast.progress.sending")


def progress_bar(done: int, total: int, width: int = 10) -> str:
    """A text bar with the percentage, e.g. "▓▓▓▓▓░░░░░ 52%"."""
    share = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
    filled = round(share * width)
    return "▓" * filled + "░" * (width - filled) + f" {math.floor(share * 100)}%"


def _eta_text(language: str, state: str, eta_seconds: float | None) -> str:
    t = translator(language)
    if state in (BroadcastState.DONE, BroadcastState.CANCELLED):
        return t("broadcast.progress.eta.done")
    if state != BroadcastState.SENDING:
        return t("broadcast.progress.eta.waiting")
    if eta_seconds is None:
        return t("broadcast.progress.eta.unknown")
    if eta_seconds < 60:
        return t("broadcast.progress.eta.soon")
    return t("broadcast.progress.eta.minutes", minutes=math.ceil(eta_seconds / 60))


def control_buttons(broadcast_id: int, state: str, language: str) -> tuple[tuple[Button, ...], ...]:
    """Pause/resume and cancel buttons for a broadcast in `state` (none once it has ended)."""
    t = translator(language)

    def button(key: str, action: str) -> Button:
        return Button(t(key), encode(BroadcastControl(action, broadcast_id)))

    cancel = button("broadcast.progress.cancel", "cancel")
    if state == BroadcastState.SENDING:
        return ((button("broadcast.progress.pause", "pause"), cancel),)
    if state == BroadcastState.PAUSED:
        return ((button("broadcast.progress.resume", "resume"), cancel),)
    if state == BroadcastState.SCHEDULED:
        return ((cancel,),)
    return ()


def default_progress(
    broadcast: Broadcast, counts: Counts, language: str, eta_seconds: float | None = None
) -> Reply:
    """The live progress message: counts, a bar, the time left, and the control buttons."""
    t = translator(language)
    text = t(
        "broadcast.progress",
        number=broadcast.id,
        status=t(state_key(broadcast.state)),
        # A cancelled broadcast's skipped rows are settled but were never sent: the bar shows
        # what went out, so a cancelled card never reads 100 %.
        bar=progress_bar(
            counts.sent if broadcast.state == BroadcastState.CANCELLED else counts.settled,
            counts.total,
        ),
        sent=counts.sent,
        total=counts.total,
        blocked=counts.blocked,
        failed=counts.failed,
        uncertain=counts.uncertain,
        eta=_eta_text(language, broadcast.state, eta_seconds),
    )
    return Reply(text, buttons=control_buttons(broadcast.id, broadcast.state, language))


def duration_text(language: str, seconds: int) -> str:
    """A duration as people say it: "1 detik", "2 menit", "2 menit 5 detik"."""
    t = translator(language)
    minutes, rest = divmod(max(0, seconds), 60)
    if minutes == 0:
        return t("broadcast.report.duration.seconds", seconds=rest)
    if rest == 0:
        return t("broadcast.report.duration.minutes", minutes=minutes)
    return t("broadcast.report.duration", minutes=minutes, seconds=rest)


def final_report(broadcast: Broadcast, counts: Counts, language: str) -> Reply:
    """The report sent to the leader when a broadcast has finished (or was cancelled)."""
    t = translator(language)
    seconds = 0
    if broadcast.started_at is not None:
        end = broadcast.finished_at or utcnow()
        seconds = max(0, round((end - broadcast.started_at).total_seconds()))
    duration = duration_text(language, seconds)
    key = (
        "broadcast.report.cancelled"
        if broadcast.state == BroadcastState.CANCELLED
        else "broadcast.report"
    )
    text = t(
        key,
        number=broadcast.id,
        duration=duration,
        sent=counts.sent,
        total=counts.total,
        blocked=counts.blocked,
        failed=counts.failed,
        uncertain=counts.uncertain,
        skipped=counts.skipped,
    )
    if counts.uncertain:
        text += "\n\n" + t("broadcast.report.uncertain_note")
    return Reply(text)


# The engine.


@dataclass(frozen=True)
class Claimed:
    """A delivery row this engine has claimed, with what sending it needs."""

    delivery_id: int
    broadcast_id: int
    user: User
    chat_id: int
    attempts: int


@dataclass
class _Progress:
    """What the engine remembers of one broadcast's progress message."""

    shown_at: float
    text: str = ""
    # (monotonic time, settled rows): the observed pace behind the time estimate.
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def eta(self, now: float, counts: Counts) -> float | None:
        """Seconds left at the pace of the last half minute, None while unknown."""
        self.samples.append((now, counts.settled))
        while self.samples and now - self.samples[0][0] > 30:
            self.samples.popleft()
        first_at, first_settled = self.samples[0]
        if now - first_at < 1 or counts.settled <= first_settled:
            return None
        pace = (counts.settled - first_settled) / (now - first_at)
        return counts.remaining / pace


def default_worker_id() -> str:
    """A name for this sender process, unique among processes sharing the database."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class DeliveryEngine:
    """Sends every due delivery row of the broadcasts being sent, paced and crash-safe.

    `run` is the loop started with the application; `recover`, `claim` and `step` are the
    pieces it is made of, usable one at a time in tests.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        render: Render,
        *,
        rate: float,
        max_attempts: int,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        batch: int = 50,
        progress_interval: float = 2.0,
        progress: ProgressView | None = None,
        report: ReportView | None = None,
        default_language: str = "id",
        clock: Callable[[], datetime] = utcnow,
        per_chat_interval: float = PER_CHAT_INTERVAL,
        backoff_seconds: float = 2.0,
        poll_interval: float = 1.0,
        pacer: Pacer | None = None,
    ) -> None:
        self.sessions = sessions
        self.sender = sender
        self.render = render
        self.max_attempts = max_attempts
        self.worker_id = (worker_id or default_worker_id())[:60]
        self.lease = timedelta(seconds=lease_seconds)
        # About one second of sending is claimed at a time. A claimed row stays "pending"
        # (with this worker's lease) until its request leaves; only then is it "sending", so a
        # crash turns only the requests truly in flight into "uncertain".
        self.window = max(1, min(batch, math.ceil(rate)))
        self.progress_interval = progress_interval
        self.progress = progress or default_progress
        self.report = report or final_report
        self.default_language = default_language
        self.clock = clock
        self.backoff = backoff_seconds
        self.poll_interval = poll_interval
        # Shared with the outbox when given: one budget for every message the bot sends.
        self.pacer = pacer or Pacer(rate, per_chat_interval)
        self._tasks: set[asyncio.Task[None]] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._broadcasts: dict[int, Broadcast] = {}
        self._in_flight: Counter[int] = Counter()
        # Recorded outcomes of sends, by kind (read by the channel's metrics).
        self.outcomes: Counter[str] = Counter()
        # Rows this engine holds (claimed, waiting for the pacer or being sent).
        self._held: set[int] = set()
        # When the last request to each chat left (monotonic seconds).
        self._left_at: dict[int, float] = {}
        # Held from marking a row "sending" until its request has left.
        self._leaving = asyncio.Lock()
        self._halted: dict[int, str] = {}
        self._progress: dict[int, _Progress] = {}
        self._showing: dict[int, asyncio.Lock] = {}
        # Set by a nudge or stop; `_room` also when a send finishes.
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    # The loop.

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; rows not yet sent then go back to the queue."""
        await self.recover()
        watcher = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                try:
                    await self._tick()
                    room = self.window - len(self._tasks)
                    claimed: list[Claimed] = []
                    if not self.pacer.paused_for and room >= max(1, self.window // 2):
                        claimed = await self.claim(room)
                        for row in claimed:
                            self._spawn(self._tasks, self._deliver(row))
                except Exception:
                    # The database may be restarting: the loop carries on once it is back.
                    log.exception("Delivery round failed; trying again shortly")
                    await wait_at_most(self._wake, 5.0)
                    self._wake.clear()
                    continue
                await self._rest(busy=bool(claimed) and len(claimed) == room)
        finally:
            watcher.cancel()
            await self._wind_down()

    def nudge(self) -> None:
        """Look for work now rather than at the next poll (e.g. after a broadcast was created)."""
        self._wake.set()
        self._room.set()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.nudge()

    async def _rest(self, *, busy: bool) -> None:
        """When busy, wait until half the window is free; else until the next poll."""
        if busy:
            while len(self._tasks) > self.window // 2 and not self._wake.is_set():
                self._room.clear()
                await wait_at_most(self._room, self.poll_interval)
        else:
            await wait_at_most(self._wake, max(self.pacer.paused_for, self.poll_interval))
        self._wake.clear()

    async def _wind_down(self) -> None:
        # Rows waiting for their turn go back to "pending"; sends under way may finish.
        self.pacer.close()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)

    def _spawn(self, into: set[asyncio.Task[None]], work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        into.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            into.discard(finished)
            self._room.set()

        task.add_done_callback(done)

    async def step(self) -> int:
        """One round: tick, claim a window, send it and record every outcome; return the count."""
        await self._tick()
        claimed = await self.claim(self.window)
        await asyncio.gather(*(self._deliver(row) for row in claimed))
        await self._tick()
        await asyncio.gather(*self._side_tasks)
        return len(claimed)

    async def drain(self, rounds: int = 1000) -> None:
        """Run `step` until no row is due (for tests and one-off runs)."""
        for _ in range(rounds):
            if not await self.step():
                return
        raise RuntimeError(f"still claiming rows after {rounds} rounds")

    # Rows.

    async def recover(self) -> int:
        """Mark rows left "sending" by a dead sender as "uncertain"; return how many.

        On SQLite only one sender runs, so at start every "sending" row was left by a crash
        and every claim is free again; on PostgreSQL another process may be sending them,
        so only expired leases count.
        """
        async with self.sessions() as session, session.begin():
            single = session.get_bind().dialect.name == "sqlite"
            if single:
                # Claimed but never sent: simply due again.
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.state == DeliveryState.PENDING, Delivery.claimed_at.is_not(None)
                    )
                    .values(claimed_at=None, claimed_by=None)
                    .execution_options(**_NO_SYNC)
                )
            return await self._expire(session, None if single else self.clock() - self.lease)

    async def _expire(self, session: AsyncSession, claimed_before: datetime | None) -> int:
        stale = [Delivery.state == DeliveryState.SENDING]
        if claimed_before is not None:
            stale.append(Delivery.claimed_at < claimed_before)
        result = await session.execute(
            update(Delivery)
            .where(*stale)
            .values(state="uncertain", error="interrupted while sending")
            .returning(Delivery.id)
            .execution_options(**_NO_SYNC)
        )
        count = len(result.all())
        if count:
            log.warning("%d deliveries were interrupted mid-send; reported as uncertain", count)
        return count

    async def claim(self, limit: int) -> list[Claimed]:
        """Claim up to `limit` due rows of broadcasts being sent, and commit the claim."""
        now = self.clock()
        row = aliased(Delivery)
        due = (
            select(row.id)
            .join(Broadcast, Broadcast.id == row.broadcast_id)
            .where(
                row.state == DeliveryState.PENDING,
                Broadcast.state == BroadcastState.SENDING,
                or_(row.next_attempt_at.is_(None), row.next_attempt_at <= now),
                # Unclaimed, or claimed by a sender whose lease ran out.
                or_(row.claimed_at.is_(None), row.claimed_at < now - self.lease),
                row.id.not_in(self._held),
            )
            .order_by(row.id)
            .limit(limit)
            # Other processes skip what this one is claiming instead of waiting (PostgreSQL).
            .with_for_update(skip_locked=True, of=row)
        )
        async with self.sessions() as session, session.begin():
            taken = await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(due))
                .values(claimed_at=now, claimed_by=self.worker_id)
                .returning(Delivery.id, Delivery.broadcast_id, Delivery.user_id, Delivery.attempts)
                .execution_options(**_NO_SYNC)
            )
            rows = sorted(tuple(row) for row in taken)
            if not rows:
                return []
            users = {
                user.id: user
                for user in await session.scalars(
                    select(User).where(User.id.in_({r[2] for r in rows}))
                )
            }
            missing = {r[1] for r in rows} - self._broadcasts.keys()
            if missing:
                for broadcast in await session.scalars(
                    select(Broadcast).where(Broadcast.id.in_(missing))
                ):
                    self._broadcasts[broadcast.id] = broadcast
            claimed, unreachable = [], []
            for delivery_id, broadcast_id, user_id, attempts in rows:
                user = users[user_id]
                if user.telegram_id is None or user.opted_out_at or user.blocked_at:
                    unreachable.append(delivery_id)
                else:
                    claimed.append(
                        Claimed(delivery_id, broadcast_id, user, user.telegram_id, attempts)
                    )
            if unreachable:
                # Opted out or blocked after the broadcast was queued: leave them alone.
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(unreachable))
                    .values(state="skipped", error="unreachable")
                    .execution_options(**_NO_SYNC)
                )
        for item in claimed:
            self._in_flight[item.broadcast_id] += 1
            self._held.add(item.delivery_id)
        return claimed

    async def _deliver(self, row: Claimed) -> None:
        """Send one claimed row when the pacer allows, then record how it went."""
        try:
            try:
                reply = self.render(self._broadcasts[row.broadcast_id], row.user)
            except Exception as exc:
                log.exception("Could not render broadcast %d", row.broadcast_id)
                await self._record(
                    row, SendOutcome("failed", reason=f"render: {type(exc).__name__}")
                )
                return
            while True:
                try:
                    await self.pacer.acquire(row.chat_id)
                except Halted:
                    await self._release(row, "pending")
                    return
                halted = self._halted.get(row.broadcast_id)
                if halted is not None:
                    await self._release(row, "skipped" if halted == "cancelled" else "pending")
                    return
                await self._wait_for_chat(row.chat_id)
                # One row at a time between "sending" and its request having left: a crash
                # then finds at most one row marked whose request never went out.
                async with self._leaving:
                    if not await self._mark_sending(row):
                        return
                    if self.pacer.paused_for:
                        # Telegram asked for a pause while the row was being marked.
                        await self._mark_sending(row, back=True)
                        continue
                    log.debug("Sending broadcast %d to chat %d", row.broadcast_id, row.chat_id)
                    sending = await self._start_sending(row.chat_id, reply)
                    break
            try:
                outcome = await sending
            except Exception as exc:
                # An unexpected failure may have happened after the message left.
                log.exception("Sender failed on broadcast %d", row.broadcast_id)
                outcome = SendOutcome("uncertain", reason=f"sender: {type(exc).__name__}")
            await self._record(row, outcome)
        except Exception:
            log.exception("Delivery %d could not be recorded", row.delivery_id)
        finally:
            self._held.discard(row.delivery_id)
            self._in_flight[row.broadcast_id] -= 1
            if not self._in_flight[row.broadcast_id]:
                del self._in_flight[row.broadcast_id]

    async def _wait_for_chat(self, chat_id: int) -> None:
        """Leave the per-chat interval after the last request to the chat that really left.

        The pacer spaced the grants, but a slow database write between a grant and its
        request must not bring two sends to a chat closer.
        """
        wait = self._left_at.get(chat_id, -math.inf) + self.pacer.per_chat - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _start_sending(self, chat_id: int, reply: Reply) -> asyncio.Future[SendOutcome]:
        """Send, returning once the request has left (or failed): its outcome is to come."""
        gone = asyncio.Event()
        sending = asyncio.ensure_future(self.sender.send(chat_id, reply, left=gone.set))
        left = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({sending, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
        self._note_left(chat_id)
        return sending

    def _note_left(self, chat_id: int) -> None:
        self._left_at[chat_id] = time.monotonic()
        if len(self._left_at) > 4096:
            horizon = time.monotonic() - self.pacer.per_chat
            self._left_at = {c: at for c, at in self._left_at.items() if at > horizon}

    async def _mark_sending(self, row: Claimed, *, back: bool = False) -> bool:
        """Record that this row's request is about to leave; False if the claim was lost.

        With `back`, the row returns to "pending" (still claimed): it did not leave after all.
        """
        before, after = (
            (DeliveryState.SENDING, "pending") if back else (DeliveryState.PENDING, "sending")
        )
        async with self.sessions() as session, session.begin():
            marked = await session.execute(
                update(Delivery)
                .where(
                    Delivery.id == row.delivery_id,
                    Delivery.claimed_by == self.worker_id,
                    Delivery.state == before,
                )
                .values(state=after, claimed_at=self.clock())
                .returning(Delivery.id)
                .execution_options(**_NO_SYNC)
            )
            return marked.first() is not None

    async def _release(self, row: Claimed, state: str) -> None:
        """Give a claimed row back unsent."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id == row.delivery_id,
                    Delivery.claimed_by == self.worker_id,
                    Delivery.state.in_((DeliveryState.PENDING, DeliveryState.SENDING)),
                )
                .values(state=state, claimed_at=None, claimed_by=None)
                .execution_options(**_NO_SYNC)
            )

    async def _record(self, row: Claimed, outcome: SendOutcome) -> None:
        """Write the outcome of one send in its own short transaction."""
        now = self.clock()
        kind = outcome.kind
        attempts = row.attempts if kind == "retry_after" else row.attempts + 1
        if kind == "transient" and attempts >= self.max_attempts:
            kind = "failed"
        self.outcomes[kind] += 1
        reason = outcome.reason[:200] or None
        values: dict[str, Any] = {"attempts": attempts, "error": reason}
        if kind == "sent":
            values.update(state="sent", sent_at=now, error=None)
        elif kind == "retry_after":
            self.pacer.pause(outcome.retry_after)
            log.info("Telegram asked for a pause of %.1f s; all sending waits", outcome.retry_after)
            values.update(
                state="pending",
                next_attempt_at=now + timedelta(seconds=outcome.retry_after),
                claimed_at=None,
                claimed_by=None,
            )
        elif kind == "transient":
            delay = min(self.backoff * 2 ** (attempts - 1), 300.0)
            values.update(
                state="pending",
                next_attempt_at=now + timedelta(seconds=delay),
                claimed_at=None,
                claimed_by=None,
            )
        else:
            values.update(state=kind, error=reason or kind)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id == row.delivery_id,
                    Delivery.claimed_by == self.worker_id,
                    # A row whose lease ran out meanwhile is "uncertain"; the truth wins.
                    # (A row that could not be rendered is still "pending".)
                    Delivery.state.in_(
                        (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.UNCERTAIN)
                    ),
                )
                .values(**values)
                .execution_options(**_NO_SYNC)
            )
            if kind == "sent" and outcome.message_id is not None:
                # The news is now the person's newest message from the bot.
                await session.execute(
                    update(User)
                    .where(User.id == row.user.id)
                    .values(last_message_id=outcome.message_id)
                    .execution_options(**_NO_SYNC)
                )
            if kind == "blocked":
                await session.execute(
                    update(User)
                    .where(User.id == row.user.id, User.blocked_at.is_(None))
                    .values(blocked_at=now)
                    .execution_options(**_NO_SYNC)
                )

    # Broadcasts.

    async def _tick(self) -> None:
        """Start due scheduled broadcasts, expire leases, finish broadcasts, show progress."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Broadcast)
                .where(Broadcast.state == BroadcastState.SCHEDULED, Broadcast.scheduled_at <= now)
                .values(state=BroadcastState.SENDING.value)
                .execution_options(**_NO_SYNC)
            )
            await session.execute(
                update(Broadcast)
                .where(Broadcast.state == BroadcastState.SENDING, Broadcast.started_at.is_(None))
                .values(started_at=now)
                .execution_options(**_NO_SYNC)
            )
            await self._expire(session, now - self.lease)
            left = exists().where(
                Delivery.broadcast_id == Broadcast.id,
                Delivery.state.in_((DeliveryState.PENDING, DeliveryState.SENDING)),
            )
            finished = await session.execute(
                update(Broadcast)
                .where(Broadcast.state == BroadcastState.SENDING, ~left)
                .values(state=BroadcastState.DONE.value, finished_at=now)
                .returning(Broadcast.id)
                .execution_options(**_NO_SYNC)
            )
            done_ids = set(finished.scalars())
            watched = (
                select(Broadcast, User.language)
                .outerjoin(User, User.id == Broadcast.created_by)
                .options(defer(Broadcast.photo_enc, raiseload=True))
                .where(
                    or_(
                        Broadcast.id.in_(done_ids | set(self._in_flight)),
                        and_(
                            Broadcast.state == BroadcastState.SENDING,
                            Broadcast.progress_message_id.is_not(None),
                        ),
                    )
                )
            )
            shown = (await session.execute(watched)).all()
            sending = set(
                await session.scalars(
                    select(Broadcast.id).where(Broadcast.state == BroadcastState.SENDING)
                )
            )
        self._halted = {
            b.id: b.state
            for b, _ in shown
            if b.state not in (BroadcastState.SENDING, BroadcastState.DONE)
        }
        live = {broadcast.id for broadcast, _ in shown}
        for gone in self._progress.keys() - live:
            del self._progress[gone]
        for broadcast, language in shown:
            self._show(broadcast, language or self.default_language, broadcast.id in done_ids)
        for broadcast_id in done_ids:
            log.info("Broadcast %d is done", broadcast_id)
        for idle in self._broadcasts.keys() - sending - self._in_flight.keys():
            del self._broadcasts[idle]

    def _show(self, broadcast: Broadcast, language: str, finished: bool) -> None:
        """Update the progress message if it is due; at the end, also send the report."""
        if broadcast.progress_chat_id is None:
            return
        lock = self._showing.setdefault(broadcast.id, asyncio.Lock())
        now = time.monotonic()
        # The first edit waits an interval: the message was only just sent to that chat.
        state = self._progress.setdefault(broadcast.id, _Progress(shown_at=now))
        if finished:
            self._progress.pop(broadcast.id, None)
        else:
            due = now - state.shown_at >= self.progress_interval
            if lock.locked() or broadcast.state != BroadcastState.SENDING or not due:
                return
        state.shown_at = now
        self._spawn(self._side_tasks, self._show_progress(broadcast, language, state, finished))

    async def _show_progress(
        self, broadcast: Broadcast, language: str, state: _Progress, finished: bool
    ) -> None:
        chat_id = broadcast.progress_chat_id
        assert chat_id is not None
        # The final report waits for an edit under way, so it comes last.
        async with self._showing[broadcast.id]:
            try:
                async with self.sessions() as session:
                    counts = await broadcast_counts(session, broadcast.id)
                eta = None if finished else state.eta(time.monotonic(), counts)
                view = self.progress(broadcast, counts, language, eta)
                message_id = broadcast.progress_message_id
                if message_id is not None and view.text != state.text:
                    state.text = view.text
                    await self._control(
                        chat_id, lambda: self.sender.edit(chat_id, message_id, view)
                    )
                if finished:
                    report = self.report(broadcast, counts, language)
                    await self._control(chat_id, lambda: self.sender.send(chat_id, report))
            except Exception:
                log.exception("Could not show the progress of broadcast %d", broadcast.id)
        if finished:
            self._showing.pop(broadcast.id, None)

    async def _control(self, chat_id: int, call: Callable[[], Awaitable[SendOutcome]]) -> bool:
        """Send a message to the leader through the same pacer, honouring pauses."""
        for _ in range(3):
            try:
                await self.pacer.acquire(chat_id)
            except Halted:
                if self.pacer.closed:
                    return False
                await asyncio.sleep(self.pacer.paused_for)
                continue
            outcome = await call()
            if outcome.kind == "retry_after":
                self.pacer.pause(outcome.retry_after)
                continue
            return outcome.kind == "sent"
        return False
