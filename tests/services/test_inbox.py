"""The inbox on a real database: stored once, one chat in order, chats side by side, retries.

The handler here is the inbox's own extension point (what the channel plugs in), written for
the test: it records what it saw and writes a row in the update's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.flood import Verdict
from bot.core.messages import Reply
from bot.db.models import InboxUpdate, OutboxMessage, User
from bot.runtime import Runtime
from bot.services.inbox import MAX_ATTEMPTS, Handled, InboxWorkers, Intake, Received
from bot.services.outbox import Outgoing
from tests.services.test_delivery import until


class Recorder:
    """Handles an update by adding a user row and one reply; remembers the order of events."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.slow_chats: set[int] = set()
        self.failures: dict[int, int] = {}  # update id -> how many times to fail first

    async def __call__(
        self, session: AsyncSession, payload: dict[str, Any], flooded: bool
    ) -> Handled:
        chat, number = payload["chat"], payload["n"]
        if chat in self.slow_chats:
            await asyncio.sleep(0.15)
        session.add(User(telegram_id=chat * 1000 + number, language="id"))
        await session.flush()
        if self.failures.get(payload["update_id"], 0) > 0:
            self.failures[payload["update_id"]] -= 1
            raise RuntimeError("the handler broke")
        self.seen.append((chat, number))
        return Handled([Outgoing(chat, reply=Reply(f"{'!' if flooded else ''}{number}"))])


def updates(chat: int, count: int, first_id: int) -> list[Received]:
    return [
        Received(first_id + n, chat, {"chat": chat, "n": n, "update_id": first_id + n})
        for n in range(count)
    ]


@asynccontextmanager
async def running(workers: InboxWorkers) -> AsyncIterator[InboxWorkers]:
    stop = asyncio.Event()
    task = asyncio.create_task(workers.run(stop))
    try:
        yield workers
    finally:
        stop.set()
        await task


def make_workers(runtime: Runtime, handler: Recorder, **options: Any) -> InboxWorkers:
    settings: dict[str, Any] = {"concurrency": 4, "poll_interval": 0.05, "backoff_seconds": 0.05}
    return InboxWorkers(runtime.sessions, runtime.cipher, handler, **(settings | options))


async def count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def all_done(runtime: Runtime, expected: int) -> bool:
    return await count(runtime, InboxUpdate, InboxUpdate.state == "done") == expected


async def test_an_update_delivered_twice_is_stored_and_handled_once(runtime: Runtime) -> None:
    handler = Recorder()
    intake = Intake(runtime.sessions, runtime.cipher)
    batch = updates(5, 3, 100)
    assert await intake.accept(batch) == 3
    assert await intake.accept(batch[1:]) == 0
    async with running(make_workers(runtime, handler)):
        await until(lambda: all_done(runtime, 3), 10)
    assert handler.seen == [(5, 0), (5, 1), (5, 2)]
    assert await count(runtime, User) == 3
    assert await count(runtime, OutboxMessage) == 3
    # Handled updates keep no content.
    async with runtime.sessions() as session:
        assert set(await session.scalars(select(InboxUpdate.payload))) == {""}


async def test_one_chat_in_order_while_another_is_not_held_up(runtime: Runtime) -> None:
    handler = Recorder()
    handler.slow_chats = {1}
    intake = Intake(runtime.sessions, runtime.cipher)
    await intake.accept(updates(1, 6, 200))
    await intake.accept(updates(2, 6, 300))
    async with running(make_workers(runtime, handler)):
        await until(lambda: len(handler.seen) == 12, 20)
    assert [n for chat, n in handler.seen if chat == 1] == list(range(6))
    assert [n for chat, n in handler.seen if chat == 2] == list(range(6))
    # Chat 2 was stored after chat 1's six slow updates, yet finished long before them.
    assert handler.seen.index((2, 5)) < handler.seen.index((1, 2))


async def test_a_failing_update_is_retried_and_nothing_of_a_failed_attempt_stays(
    runtime: Runtime,
) -> None:
    handler = Recorder()
    handler.failures = {400: MAX_ATTEMPTS - 1}
    intake = Intake(runtime.sessions, runtime.cipher)
    await intake.accept(updates(4, 2, 400))
    async with running(make_workers(runtime, handler)):
        await until(lambda: len(handler.seen) == 2, 10)
    # The second update waited behind the first: order holds through retries.
    assert handler.seen == [(4, 0), (4, 1)]
    # The failed attempts' rows were rolled back with them.
    assert await count(runtime, User) == 2
    async with runtime.sessions() as session:
        attempts = await session.scalar(
            select(InboxUpdate.attempts).where(InboxUpdate.update_id == 400)
        )
    assert attempts == MAX_ATTEMPTS - 1


async def test_an_update_that_always_fails_is_set_aside_with_an_apology(runtime: Runtime) -> None:
    handler = Recorder()
    handler.failures = {500: 99}
    intake = Intake(runtime.sessions, runtime.cipher)
    await intake.accept(updates(6, 2, 500))

    def apology(payload: dict[str, Any]) -> list[Outgoing]:
        return [Outgoing(payload["chat"], reply=Reply("maaf"))]

    async with running(make_workers(runtime, handler, apology=apology)):
        await until(lambda: len(handler.seen) == 1, 10)
    assert handler.seen == [(6, 1)]
    async with runtime.sessions() as session:
        states = dict(
            (await session.execute(select(InboxUpdate.update_id, InboxUpdate.state))).all()
        )
        texts = [
            runtime.cipher.decrypt(p)["reply"]["text"]
            for p in await session.scalars(select(OutboxMessage.payload))
        ]
    assert states == {500: "failed", 501: "done"}
    assert sorted(texts) == ["1", "maaf"]


async def test_the_flood_gate_drops_before_storing_and_marks_the_warning(
    runtime: Runtime,
) -> None:
    verdicts: Iterator[Verdict] = iter(["admit", "warn", "drop", "drop"])
    dropped: list[int] = []
    intake = Intake(
        runtime.sessions,
        runtime.cipher,
        flood=lambda chat: next(verdicts),
        on_dropped=dropped.append,
    )
    assert await intake.accept(updates(8, 4, 600)) == 2
    assert dropped == [8, 8]
    handler = Recorder()
    async with running(make_workers(runtime, handler)):
        await until(lambda: len(handler.seen) == 2, 10)
    async with runtime.sessions() as session:
        texts = sorted(
            runtime.cipher.decrypt(p)["reply"]["text"]
            for p in await session.scalars(select(OutboxMessage.payload))
        )
    assert texts == ["!1", "0"]
