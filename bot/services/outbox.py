"""The outbox: what the bot decided to send, written in the transaction that decided it.

Handling an update writes its replies here (`enqueue`) before it commits; `OutboxSender`
sends them afterwards, through the same pacer as broadcasts so that both stay within one
budget of the channel's limits, replies first. A row stays "pending" until it is sent, and
is deleted then: after a crash every row not yet deleted is simply sent, so a reply that was
in flight at the crash is sent once more. The person may then see one message twice, which
is better than waiting for an answer that never comes.

Notices (`Outgoing.once`: a status change told to a worker, a payment reminder, news to
someone other than the person acting) are never sent twice, as broadcast deliveries
(`bot.services.delivery`) are not: such a row is committed as "sending" just before its
request leaves, and a row still "sending" when a sender starts (its request was in flight at
a crash) becomes "uncertain" instead of being sent again.

Rows of one chat go out in the order they were written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.messages import Attachment, Button, Reply
from bot.db.models import OutboxMessage, User, utcnow
from bot.security import Cipher
from bot.services.delivery import SendOutcome
from bot.services.pacing import Halted, Looks, wait_at_most

log = logging.getLogger(__name__)

# Core statements on the table: the unit of work and identity map are not needed here.
_outbox = cast(Table, OutboxMessage.__table__)

_NO_SYNC = {"synchronize_session": False}
# How many of a chat's rows a lane reads at a time.
_LANE_BATCH = 20
# How long sent rows wait to be deleted together.
_FLUSH_DELAY = 0.01
MAX_ATTEMPTS = 5


class Action(StrEnum):
    """What an outbox row asks of the channel."""

    SEND = "send"
    EDIT = "edit"
    # Answer a button press (stops the client's spinner); not a message.
    ANSWER = "answer"
    # Set a person's command menu; not a message.
    MENU = "menu"


# Actions that count as messages against the channel's limits.
MESSAGES = frozenset({Action.SEND, Action.EDIT})


@dataclass(frozen=True)
class Outgoing:
    """One thing to send to one chat."""

    chat_id: int
    action: Action = Action.SEND
    reply: Reply | None = None
    # EDIT: the message to change.
    message_id: int | None = None
    # ANSWER: the button press to answer.
    callback_id: str | None = None
    # MENU: (command, description) in the person's language.
    menu: tuple[tuple[str, str], ...] = ()
    # A cosmetic edit: if the channel refuses it, nothing is lost.
    quiet: bool = False
    # 0 for a reply to the person who just acted, 1 for a notice to someone else.
    priority: int = 0
    # Never sent twice: a crash while its request is out leaves it "uncertain", not resent.
    once: bool = False


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """A reply as JSON-ready data."""
    data: dict[str, Any] = {"text": reply.text}
    if reply.buttons:
        data["buttons"] = [[[b.label, b.data] for b in row] for row in reply.buttons]
    if reply.contact_button is not None:
        data["contact_button"] = reply.contact_button
    if reply.typed_buttons:
        data["typed_buttons"] = list(reply.typed_buttons)
    if reply.remove_keyboard:
        data["remove_keyboard"] = True
    if reply.attachment is not None:
        attachment = reply.attachment
        data["attachment"] = {
            "file_name": attachment.file_name,
            "content": base64.b64encode(attachment.content).decode(),
            "is_photo": attachment.is_photo,
        }
    if reply.track is not None:
        data["track"] = reply.track
    return data


def reply_from_dict(data: Mapping[str, Any]) -> Reply:
    """The reply `reply_to_dict` described."""
    attachment = None
    if "attachment" in data:
        a = data["attachment"]
        attachment = Attachment(a["file_name"], base64.b64decode(a["content"]), a["is_photo"])
    return Reply(
        data["text"],
        buttons=tuple(
            tuple(Button(label, d) for label, d in row) for row in data.get("buttons", ())
        ),
        contact_button=data.get("contact_button"),
        typed_buttons=tuple(data.get("typed_buttons", ())),
        remove_keyboard=bool(data.get("remove_keyboard")),
        attachment=attachment,
        track=data.get("track"),
    )


def encode(item: Outgoing) -> dict[str, Any]:
    """An outgoing item as JSON-ready data (stored encrypted)."""
    data: dict[str, Any] = {"action": item.action.value}
    if item.reply is not None:
        data["reply"] = reply_to_dict(item.reply)
    if item.message_id is not None:
        data["message_id"] = item.message_id
    if item.callback_id is not None:
        data["callback_id"] = item.callback_id
    if item.menu:
        data["menu"] = [list(entry) for entry in item.menu]
    if item.quiet:
        data["quiet"] = True
    if item.once:
        data["once"] = True
    return data


def decode(chat_id: int, priority: int, data: Mapping[str, Any]) -> Outgoing:
    """The outgoing item `encode` described."""
    reply = data.get("reply")
    return Outgoing(
        chat_id,
        Action(data["action"]),
        reply=reply_from_dict(reply) if reply is not None else None,
        message_id=data.get("message_id"),
        callback_id=data.get("callback_id"),
        menu=tuple((name, text) for name, text in data.get("menu", ())),
        quiet=bool(data.get("quiet")),
        priority=priority,
        once=bool(data.get("once")),
    )


async def enqueue(
    session: AsyncSession,
    cipher: Cipher,
    items: Sequence[Outgoing],
    *,
    update_id: int | None = None,
) -> list[int]:
    """Write outgoing items in the current transaction; return their row ids, in order."""
    if not items:
        return []
    now = utcnow()
    rows = [
        {
            "chat_id": item.chat_id,
            "priority": item.priority,
            "payload": cipher.encrypt(encode(item)),
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "update_id": update_id,
        }
        for item in items
    ]
    result = await session.execute(insert(_outbox).values(rows).returning(_outbox.c.id))
    return sorted(result.scalars())


async def outbox_depth(session: AsyncSession) -> int:
    """Messages waiting to be sent."""
    count = await session.scalar(
        select(func.count()).select_from(_outbox).where(_outbox.c.state == "pending")
    )
    return int(count or 0)


class ChannelSender(Protocol):
    """What the outbox needs of a channel: one call per row, never retrying by itself."""

    async def perform(
        self, item: Outgoing, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        """Do what the row asks; say how it went. `left`: called once the request is out."""
        ...


class Pace(Protocol):
    """The shared pacer (see `bot.services.delivery.Pacer`)."""

    @property
    def paused_for(self) -> float:
        """Seconds until a pause ends."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop all sending for a while."""
        ...

    async def acquire(self, chat_id: int, *, urgent: bool = False) -> None:
        """Wait until one message may go to the chat."""
        ...


# Remembers what sent messages need kept (their ids), in the transaction that settles them:
# (session, [(item, message id), ...]).
Recorder = Callable[[AsyncSession, list[tuple[Outgoing, int]]], Awaitable[None]]


class OutboxSender:
    """Sends every pending outbox row: chats in parallel, each chat's rows in order."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        sender: ChannelSender,
        pacer: Pace,
        *,
        record: Recorder | None = None,
        on_sent: Callable[[int, int | None], None] | None = None,
        poll_interval: float = 1.0,
        batch: int = 200,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.sender = sender
        self.pacer = pacer
        self.record = record
        # Told (chat id, update id) once a row is settled (sent, or given up).
        self.on_sent = on_sent
        self.poll_interval = poll_interval
        self.batch = batch
        self.backoff = backoff_seconds
        self._wake = asyncio.Event()
        self._lanes: dict[int, asyncio.Task[None]] = {}
        # Chats this process wrote rows for since the last look (`nudge`): their lanes start
        # without a query. Anything else (other replicas' rows, retries) is found by
        # `_dispatch`, which runs when asked for and at least every `poll_interval`.
        self._due: set[int] = set()
        self._again: set[int] = set()
        self._looks = Looks(poll_interval)
        self._more = False
        self._running = False
        self._stopping = False
        self.outcomes: Counter[str] = Counter()
        # Sent rows not yet deleted (see `flush`): (row id, item, message id, update id).
        self._sent: list[tuple[int, Outgoing, int | None, int | None]] = []
        self._unflushed: set[int] = set()
        self._flushing = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        # Held from marking a notice "sending" until its request has left: a crash then
        # finds at most one row marked whose request never went out.
        self._leaving = asyncio.Lock()

    def nudge(self, chats: Iterable[int] | None = None) -> None:
        """Rows were committed (for `chats`, or for chats not known): send them now."""
        if not self._running:
            # Another process sends (it is told through the database).
            return
        if chats is None:
            self._looks.ask()
        else:
            self._due.update(chats)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; what is being sent then is finished first.

        It may run again after it returned: a process that lost the lead and has it back.
        """
        self._stopping = False
        self._looks.ask()
        self._running = True
        watcher = asyncio.create_task(self._wake_on(stop))
        try:
            await self.recover()
            while not stop.is_set():
                self._wake.clear()
                due, self._due = self._due, set()
                for chat_id in due:
                    self._start_lane(chat_id)
                if self._looks.due():
                    try:
                        await self._dispatch()
                    except Exception:
                        log.exception("Could not read the outbox; trying again shortly")
                        await wait_at_most(stop, 2.0)
                        continue
                await wait_at_most(self._wake, max(self.poll_interval, self.pacer.paused_for))
        finally:
            watcher.cancel()
            self._stopping = True
            self._running = False
            self._due.clear()
            self._again.clear()
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
            # What was sent is recorded before the process goes (else it is sent again).
            with contextlib.suppress(Exception):
                await self.flush()

    async def recover(self) -> int:
        """Mark notices left "sending" (in flight at a crash) as "uncertain"; return how many.

        Only the one sender (the leader) marks rows, and a term starts after the last one's
        sends have finished or died with it, so every row still "sending" now was interrupted.
        """
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(_outbox)
                .where(_outbox.c.state == "sending")
                .values(state="uncertain", error="interrupted while sending")
                .returning(_outbox.c.id)
                .execution_options(**_NO_SYNC)
            )
            count = len(result.all())
        if count:
            log.warning("%d notices were interrupted mid-send; reported as uncertain", count)
        return count

    async def drain(self) -> None:
        """Send everything due now, then return (for tests and one-off runs)."""
        await self._dispatch()
        while self._lanes:
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
            await self.flush()
            await self._dispatch()
        await self.flush()
        self._due.clear()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _dispatch(self) -> None:
        now = utcnow()
        async with self.sessions() as session:
            chats = list(
                await session.scalars(
                    select(_outbox.c.chat_id)
                    .where(
                        _outbox.c.state == "pending",
                        (_outbox.c.next_attempt_at.is_(None)) | (_outbox.c.next_attempt_at <= now),
                        _outbox.c.id.not_in(self._unflushed),
                    )
                    .group_by(_outbox.c.chat_id)
                    .order_by(func.min(_outbox.c.priority), func.min(_outbox.c.id))
                    .limit(self.batch)
                )
            )
        # More chats may be waiting than were read: look again as lanes finish.
        self._more = len(chats) >= self.batch
        for chat_id in chats:
            if chat_id not in self._lanes:
                self._start_lane(chat_id)

    def _start_lane(self, chat_id: int) -> None:
        """Send the chat's rows; if it is being sent to, once more when that is done."""
        if chat_id in self._lanes:
            # The lane may have read the chat's rows before these were written.
            self._again.add(chat_id)
            return
        task = asyncio.create_task(self._lane(chat_id), name=f"outbox-chat-{chat_id}")
        self._lanes[chat_id] = task
        task.add_done_callback(self._forget_lane(chat_id))

    def _forget_lane(self, chat_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._lanes.pop(chat_id, None)
            if chat_id in self._again:
                self._again.discard(chat_id)
                self._due.add(chat_id)
                self._wake.set()
            if self._more:
                self._looks.ask()
                self._wake.set()

        return done

    async def _lane(self, chat_id: int) -> None:
        """Send one chat's rows in order; stop at a row that has to wait."""
        while not self._stopping:
            try:
                rows = await self._pending_of(chat_id)
                for row in rows:
                    if self._stopping or not await self._send(chat_id, row):
                        return
                if len(rows) < _LANE_BATCH:
                    # All sent; rows written meanwhile are found by the next dispatch,
                    # which the end of this lane wakes.
                    return
            except Exception:
                log.exception("Sending to a chat failed")
                return

    async def _pending_of(self, chat_id: int) -> list[Any]:
        """The chat's waiting rows, oldest first (a few at a time)."""
        async with self.sessions() as session:
            return list(
                (
                    await session.execute(
                        select(
                            _outbox.c.id,
                            _outbox.c.priority,
                            _outbox.c.payload,
                            _outbox.c.next_attempt_at,
                            _outbox.c.attempts,
                            _outbox.c.update_id,
                        )
                        .where(
                            _outbox.c.chat_id == chat_id,
                            _outbox.c.state == "pending",
                            _outbox.c.id.not_in(self._unflushed),
                        )
                        .order_by(_outbox.c.id)
                        .limit(_LANE_BATCH)
                    )
                ).all()
            )

    async def _send(self, chat_id: int, row: Any) -> bool:
        """Send one row and settle it; False when the chat's rows must wait (or stop)."""
        row_id, priority, token, next_attempt_at, attempts, update_id = row
        if next_attempt_at is not None and next_attempt_at > utcnow():
            return False
        item = decode(chat_id, priority, self.cipher.decrypt(token))
        if item.action in MESSAGES:
            try:
                await self.pacer.acquire(chat_id, urgent=priority == 0)
            except Halted:
                # A pause (or the end): the row stays pending and is sent after it.
                return False
        if self._stopping:
            return False
        request: Awaitable[SendOutcome]
        if item.once:
            # (If the mark cannot be written, nothing was sent and the row stays pending.)
            sending = await self._start_once(row_id, item)
            if sending is None:
                # Settled or taken meanwhile (by a sender of an earlier term).
                return True
            request = sending
        else:
            # The row stays "pending" while its request is out: if the process dies now, the
            # row is simply sent again after the restart (a reply twice rather than never).
            request = self.sender.perform(item)
        try:
            outcome = await request
        except Exception as exc:
            log.exception("The channel failed on an outgoing message")
            outcome = SendOutcome("uncertain", reason=f"sender: {type(exc).__name__}")
        settled = await self._settle(row_id, item, attempts, outcome, update_id)
        return settled or outcome.kind == "retry_after"

    async def _start_once(self, row_id: int, item: Outgoing) -> asyncio.Future[SendOutcome] | None:
        """Commit the row as "sending", then send; return once the request has left.

        None when the row was no longer pending (nothing was sent).
        """
        async with self._leaving:
            async with self.sessions() as session, session.begin():
                marked = await session.execute(
                    update(_outbox)
                    .where(_outbox.c.id == row_id, _outbox.c.state == "pending")
                    .values(state="sending")
                    .returning(_outbox.c.id)
                    .execution_options(**_NO_SYNC)
                )
                if marked.first() is None:
                    return None
            gone = asyncio.Event()
            sending = asyncio.ensure_future(self.sender.perform(item, left=gone.set))
            left = asyncio.ensure_future(gone.wait())
            try:
                await asyncio.wait({sending, left}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                left.cancel()
            return sending

    async def _settle(
        self,
        row_id: int,
        item: Outgoing,
        attempts: int,
        outcome: SendOutcome,
        update_id: int | None = None,
    ) -> bool:
        """Record how a row went; True when it is settled (sent, or given up for good).

        A sent row is deleted with the others sent within a few milliseconds, in one
        transaction (`flush`); until then it is neither read again nor sent again.
        """
        kind = outcome.kind
        if item.quiet and kind == "failed":
            kind = "sent"
        self.outcomes[kind] += 1
        if kind == "uncertain" and not item.once:
            # No answer in time: it may not have arrived. As after a crash, a reply is sent
            # again rather than risk a person waiting for it (a notice is not: see above).
            kind = "transient"
        if kind == "sent":
            self._sent.append((row_id, item, outcome.message_id, update_id))
            self._unflushed.add(row_id)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_soon())
            return True
        now = utcnow()
        async with self.sessions() as session, session.begin():
            row = _outbox.c.id == row_id
            if kind == "retry_after":
                self.pacer.pause(outcome.retry_after)
                values: dict[str, Any] = {
                    "state": "pending",
                    "next_attempt_at": now + timedelta(seconds=outcome.retry_after),
                }
            elif kind == "transient" and attempts + 1 < MAX_ATTEMPTS:
                delay = min(self.backoff * 2**attempts, 60.0)
                values = {
                    "state": "pending",
                    "attempts": attempts + 1,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "error": outcome.reason[:200] or None,
                }
            else:
                final = "failed" if kind == "transient" else kind
                if final == "blocked":
                    await session.execute(
                        update(User)
                        .where(User.telegram_id == item.chat_id, User.blocked_at.is_(None))
                        .values(blocked_at=now)
                        .execution_options(**_NO_SYNC)
                    )
                values = {"state": final, "error": (outcome.reason or final)[:200]}
            await session.execute(
                update(_outbox).where(row).values(**values).execution_options(**_NO_SYNC)
            )
        if kind not in ("retry_after", "transient"):
            log.warning("An outgoing message was not delivered (%s)", kind)
            if self.on_sent is not None:
                self.on_sent(item.chat_id, update_id)
            return True
        return False

    async def _flush_soon(self) -> None:
        await asyncio.sleep(_FLUSH_DELAY)
        # Rows sent from now on need a flush of their own: this one may have taken its batch.
        self._flusher = None
        await self.flush()

    async def flush(self) -> None:
        """Delete the rows sent since the last flush and record what they need, at once."""
        async with self._flushing:
            batch, self._sent = self._sent, []
            if not batch:
                return
            try:
                async with self.sessions() as session, session.begin():
                    await session.execute(
                        delete(_outbox).where(_outbox.c.id.in_([b[0] for b in batch]))
                    )
                    sent = [(item, mid) for _, item, mid, _ in batch if mid is not None]
                    if self.record is not None and sent:
                        await self.record(session, sent)
            except Exception:
                # The database is away: keep them (unsent again) and try once more later.
                log.exception("Could not record sent messages; trying again shortly")
                self._sent = batch + self._sent
                self._flusher = asyncio.create_task(self._flush_later())
                return
            for row_id, item, _, update_id in batch:
                self._unflushed.discard(row_id)
                if self.on_sent is not None:
                    self.on_sent(item.chat_id, update_id)

    async def _flush_later(self) -> None:
        await asyncio.sleep(1.0)
        self._flusher = None
        await self.flush()


def message_count(items: Iterable[Outgoing]) -> int:
    """How many of the items count as messages against the channel's limits."""
    return sum(1 for item in items if item.action in MESSAGES)
