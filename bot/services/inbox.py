"""The inbox: every update is stored before the channel is told it arrived, then handled once.

`Intake.accept` writes a batch of updates and commits; only then may the channel acknowledge
them (advance the polling offset, answer the webhook with 200). `InboxWorkers` handle them:
one chat's updates strictly in order, different chats concurrently. Handling an update, the
replies it causes (written to the outbox) and deleting it from the inbox are one transaction,
so a crash at any moment either leaves the update to be handled again or has handled it fully.

On PostgreSQL several processes may share the inbox: a worker takes a transaction-scoped
advisory lock on the chat before it looks at the chat's oldest update, so no two processes
ever handle one chat at the same time, and the order holds across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.flood import Verdict
from bot.db.models import InboxUpdate, utcnow
from bot.security import Cipher
from bot.services.outbox import Outgoing, enqueue
from bot.services.pacing import Looks, wait_at_most
from bot.services.wakeup import notify

log = logging.getLogger(__name__)

# Core statements on the table: the unit of work and identity map are not needed here.
_inbox = cast(Table, InboxUpdate.__table__)

_NO_SYNC = {"synchronize_session": False}
# How often handling an update may fail before it is set aside as "failed".
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Received:
    """One update as a channel received it: its id, the chat it belongs to, its content."""

    update_id: int
    chat_id: int
    payload: dict[str, Any]


@dataclass
class Handled:
    """What handling one update decided to send (written to the outbox in its transaction)."""

    outgoing: list[Outgoing] = field(default_factory=list)


# What the flood gate (`bot.core.flood`) says of one more update from a chat.
FloodCheck = Callable[[int], Verdict]

# Handles one stored update inside the given transaction. `flooded` is set when the person
# sent more than the flood limit allows: the handler then only answers with the warning.
Handler = Callable[[AsyncSession, dict[str, Any], bool], Awaitable[Handled]]
# What to send when an update could not be handled at all (an apology), from its payload.
Apology = Callable[[dict[str, Any]], list[Outgoing]]


def chat_lock_key(namespace: str, chat_id: int) -> int:
    """A signed 64-bit advisory-lock key for one chat in one schema."""
    digest = hashlib.blake2b(f"{namespace}:chat:{chat_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def store(
    session: AsyncSession, cipher: Cipher, channel: str, items: Sequence[Any]
) -> list[int]:
    """Insert the updates not stored before (a repeated update id is ignored).

    `items` are `(Received, flooded)` pairs; returns the chat id of each update stored.
    """
    if not items:
        return []
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    rows = [
        {
            "channel": channel,
            "update_id": received.update_id,
            "chat_id": received.chat_id,
            "payload": cipher.encrypt(
                {"update": received.payload, **({"flooded": True} if flooded else {})}
            ),
            "received_at": now,
            "state": "pending",
            "attempts": 0,
        }
        for received, flooded in items
    ]
    statement = (
        insert(_inbox)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["channel", "update_id"])
        .returning(_inbox.c.chat_id)
    )
    return list((await session.execute(statement)).scalars())


class Intake:
    """Where a channel hands in what it received; `accept` returns once it is committed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        *,
        channel: str = "telegram",
        flood: FloodCheck | None = None,
        on_stored: Callable[[list[int]], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.channel = channel
        self.flood = flood
        self.on_stored = on_stored
        self.on_dropped = on_dropped
        self.dropped = 0

    async def accept(self, received: Sequence[Received]) -> int:
        """Store the updates (the flood gate may drop some); return how many were new."""
        items: list[tuple[Received, bool]] = []
        for one in received:
            verdict = self.flood(one.chat_id) if self.flood and one.chat_id else "admit"
            if verdict == "drop":
                self.dropped += 1
                if self.on_dropped is not None:
                    self.on_dropped(one.chat_id)
                continue
            items.append((one, verdict == "warn"))
        if not items:
            return 0
        async with self.sessions() as session, session.begin():
            stored = await store(session, self.cipher, self.channel, items)
        if stored and self.on_stored is not None:
            self.on_stored(stored)
        return len(stored)


async def purge_inbox(
    sessions: async_sessionmaker[AsyncSession], *, keep: timedelta = timedelta(days=1)
) -> int:
    """Delete handled updates older than `keep`, always keeping the newest (polling's mark)."""
    async with sessions() as session, session.begin():
        newest = await session.scalar(select(func.max(_inbox.c.id)))
        result = await session.execute(
            delete(_inbox)
            .where(
                _inbox.c.state == "done",
                _inbox.c.received_at < utcnow() - keep,
                _inbox.c.id != (newest or 0),
            )
            .returning(_inbox.c.id)
            .execution_options(**_NO_SYNC)
        )
        return len(result.all())


async def inbox_depth(session: AsyncSession) -> tuple[int, float]:
    """Updates waiting to be handled, and the age in seconds of the oldest of them."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(_inbox.c.received_at)).where(_inbox.c.state == "pending")
        )
    ).one()
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return int(count), age


class _ChatBusy(Exception):
    """Another process holds the chat's lock (PostgreSQL)."""


class InboxWorkers:
    """Handle stored updates: one chat at a time per chat, up to `concurrency` chats at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        handler: Handler,
        *,
        apology: Apology | None = None,
        channel: str = "telegram",
        concurrency: int = 4,
        poll_interval: float = 1.0,
        backoff_seconds: float = 2.0,
        namespace: str = "",
        on_committed: Callable[[int, int, list[int], set[int]], None] | None = None,
        on_handled: Callable[[int, float], None] | None = None,
        outbox_channel: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.handler = handler
        self.apology = apology
        self.channel = channel
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.backoff = backoff_seconds
        self.namespace = namespace
        # Told (chat id, update id, outbox row ids, the chats they go to) once an update is
        # committed as handled.
        self.on_committed = on_committed
        # Told (chat id, seconds the handling took) after each handled update.
        self.on_handled = on_handled
        # PostgreSQL: notified when replies are written, so the sending replica looks at once.
        self.outbox_channel = outbox_channel
        self._wake = asyncio.Event()
        self._lanes: dict[int, asyncio.Task[None]] = {}
        # Updates this process stored and has not yet given a lane, per chat, oldest chat
        # first (`nudge`): no query is needed to find them. Other processes' updates and
        # retries are found by `_dispatch`, at least every `poll_interval`.
        self._due: dict[int, int] = {}
        self._looks = Looks(poll_interval)
        self._look_when_free = False
        self._stopping = False
        self.handled = 0
        self.failed = 0

    def nudge(self, chats: Sequence[int] | None = None) -> None:
        """Updates were stored (one per chat id in `chats`; or not known): handle them now."""
        if chats is None:
            self._looks.ask()
        else:
            for chat_id in chats:
                self._due[chat_id] = self._due.get(chat_id, 0) + 1
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Handle updates until `stop` is set; updates in hand are finished first."""
        watcher = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                self._wake.clear()
                self._start_due()
                if self._looks.due():
                    try:
                        await self._dispatch()
                    except Exception:
                        log.exception("Could not read the inbox; trying again shortly")
                        await wait_at_most(stop, 2.0)
                        continue
                await wait_at_most(self._wake, self.poll_interval)
        finally:
            watcher.cancel()
            self._stopping = True
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    def _start_due(self) -> None:
        """Give lanes to the chats this process stored updates for, oldest first."""
        for chat_id in list(self._due):
            if len(self._lanes) >= self.concurrency:
                return
            if chat_id in self._lanes:
                # Its lane is at work: these updates follow when it is done.
                continue
            waiting = self._due.pop(chat_id)
            self._start_lane(chat_id, waiting)

    def _start_lane(self, chat_id: int, waiting: int) -> None:
        task = asyncio.create_task(self._lane(chat_id, waiting), name=f"inbox-chat-{chat_id}")
        self._lanes[chat_id] = task
        task.add_done_callback(self._lane_done(chat_id))

    async def _dispatch(self) -> None:
        room = self.concurrency - len(self._lanes)
        if room <= 0:
            self._look_when_free = True
            return
        busy = set(self._lanes)
        now = utcnow()
        async with self.sessions() as session:
            statement = (
                select(
                    _inbox.c.chat_id,
                    func.min(_inbox.c.id).label("first"),
                    func.count().label("waiting"),
                )
                .where(
                    _inbox.c.state == "pending",
                    _inbox.c.channel == self.channel,
                    (_inbox.c.not_before.is_(None)) | (_inbox.c.not_before <= now),
                )
                .group_by(_inbox.c.chat_id)
                .order_by("first")
                .limit(room + len(busy))
            )
            chats = [
                (chat, int(waiting))
                for chat, _, waiting in await session.execute(statement)
                if chat not in busy
            ]
        for chat_id, waiting in chats[:room]:
            if chat_id in self._lanes:
                continue
            # The lane takes all of the chat's waiting updates, also those just handed in.
            self._due.pop(chat_id, None)
            self._start_lane(chat_id, waiting)
        if len(chats) > room:
            # More chats wait than lanes were free: look again when one is.
            self._look_when_free = True

    def _lane_done(self, chat_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._lanes.pop(chat_id, None)
            # A lane is free: other chats may be waiting for it.
            if self._look_when_free:
                self._look_when_free = False
                self._looks.ask()
            self._wake.set()

        return done

    async def _lane(self, chat_id: int, waiting: int) -> None:
        """Handle the chat's `waiting` updates in order (newer ones: the next dispatch)."""
        for _ in range(waiting):
            if self._stopping:
                return
            try:
                if not await self._handle_when_free(chat_id):
                    return
            except Exception:
                log.exception("Handling an update of a chat failed")
                return
            # Let other lanes run between two updates of a busy chat.
            await asyncio.sleep(0)

    async def _handle_when_free(self, chat_id: int) -> bool:
        """`handle_next`, waiting a little while another process has the chat in hand."""
        for _ in range(40):
            try:
                return await self.handle_next(chat_id)
            except _ChatBusy:
                # It is handling the chat's earlier updates; ours follow within moments.
                await asyncio.sleep(0.05)
        return False

    async def handle_next(self, chat_id: int) -> bool:
        """Handle the oldest waiting update of a chat; False when there is none to handle now."""
        started = time.perf_counter()
        row_id: int | None = None
        update_id = 0
        payload: dict[str, Any] = {}
        outbox_ids: list[int] = []
        recipients: set[int] = set()
        try:
            async with self.sessions() as session, session.begin():
                if session.get_bind().dialect.name == "postgresql":
                    key = chat_lock_key(self.namespace, chat_id)
                    if not await session.scalar(select(func.pg_try_advisory_xact_lock(key))):
                        # Another process is handling this chat right now.
                        raise _ChatBusy
                row = (
                    await session.execute(
                        select(
                            _inbox.c.id,
                            _inbox.c.update_id,
                            _inbox.c.payload,
                            _inbox.c.not_before,
                        )
                        .where(
                            _inbox.c.chat_id == chat_id,
                            _inbox.c.channel == self.channel,
                            _inbox.c.state == "pending",
                        )
                        .order_by(_inbox.c.id)
                        .limit(1)
                    )
                ).first()
                if row is None:
                    return False
                row_id, update_id, token, not_before = row
                if not_before is not None and not_before > utcnow():
                    # The oldest update waits for a retry; the later ones wait behind it.
                    return False
                stored = self.cipher.decrypt(token)
                payload = stored["update"]
                handled = await self.handler(session, payload, bool(stored.get("flooded")))
                outbox_ids = await enqueue(
                    session, self.cipher, handled.outgoing, update_id=update_id
                )
                recipients = {item.chat_id for item in handled.outgoing}
                if outbox_ids and self.outbox_channel:
                    await notify(session, self.outbox_channel)
                # Kept (without its content) for a day: a repeated delivery of the same
                # update is recognised and ignored, and polling knows where it stopped.
                await session.execute(
                    update(_inbox)
                    .where(_inbox.c.id == row_id)
                    .values(state="done", payload="")
                    .execution_options(**_NO_SYNC)
                )
        except _ChatBusy:
            raise
        except Exception as exc:
            if row_id is None:
                raise
            await self._failed(row_id, chat_id, update_id, payload, exc)
            return True
        self.handled += 1
        if self.on_committed is not None:
            self.on_committed(chat_id, update_id, outbox_ids, recipients)
        if self.on_handled is not None:
            self.on_handled(chat_id, time.perf_counter() - started)
        return True

    async def _failed(
        self, row_id: int, chat_id: int, update_id: int, payload: dict[str, Any], exc: Exception
    ) -> None:
        """Count a failed attempt; after the last one, set the update aside and apologise."""
        log.error("Error while handling an update", exc_info=exc)
        async with self.sessions() as session, session.begin():
            attempts = await session.scalar(select(_inbox.c.attempts).where(_inbox.c.id == row_id))
            if attempts is None:
                return
            attempts += 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "error": f"{type(exc).__name__}"[:200],
                "not_before": utcnow()
                + timedelta(seconds=min(self.backoff * 2 ** (attempts - 1), 30.0)),
            }
            outbox_ids: list[int] = []
            recipients: set[int] = set()
            if attempts >= MAX_ATTEMPTS:
                values["state"] = "failed"
                self.failed += 1
                if self.apology is not None and payload:
                    with contextlib.suppress(Exception):
                        apology = self.apology(payload)
                        outbox_ids = await enqueue(session, self.cipher, apology)
                        recipients = {item.chat_id for item in apology}
            await session.execute(
                update(_inbox)
                .where(_inbox.c.id == row_id)
                .values(**values)
                .execution_options(**_NO_SYNC)
            )
        if attempts >= MAX_ATTEMPTS and self.on_committed is not None:
            self.on_committed(chat_id, update_id, outbox_ids, recipients)
