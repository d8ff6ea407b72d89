"""The outbox on a real database: each chat in order, retries, a 429 pauses, nothing lost.

The channel here is the outbox's extension point, scripted for the test; the real Telegram
sender is exercised end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update

from bot.core.messages import Reply
from bot.db.models import OutboxMessage
from bot.runtime import Runtime
from bot.services.delivery import SendOutcome
from bot.services.outbox import OutboxSender, Outgoing, enqueue
from bot.services.pacing import Pacer


class Channel:
    """Records every request; answers from a script per text, else "sent"."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, float]] = []
        self.script: dict[str, list[SendOutcome]] = {}

    async def perform(
        self, item: Outgoing, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        if left is not None:
            left()
        text = item.reply.text if item.reply else ""
        self.sent.append((item.chat_id, text, time.monotonic()))
        answers = self.script.get(text)
        if answers:
            return answers.pop(0)
        return SendOutcome("sent", message_id=len(self.sent))


async def queue(
    runtime: Runtime, chat_id: int, *texts: str, priority: int = 0, once: bool = False
) -> None:
    async with runtime.sessions() as session, session.begin():
        await enqueue(
            session,
            runtime.cipher,
            [Outgoing(chat_id, reply=Reply(t), priority=priority, once=once) for t in texts],
        )


def make_sender(runtime: Runtime, channel: Channel, **options: Any) -> OutboxSender:
    pacer = Pacer(1000.0, 0.0)
    return OutboxSender(
        runtime.sessions, runtime.cipher, channel, pacer, backoff_seconds=0.01, **options
    )


async def rows_left(runtime: Runtime) -> list[tuple[str, int]]:
    async with runtime.sessions() as session:
        return [
            (state, attempts)
            for state, attempts in await session.execute(
                select(OutboxMessage.state, OutboxMessage.attempts)
            )
        ]


async def drain_until_empty(sender: OutboxSender, runtime: Runtime, rounds: int = 50) -> None:
    for _ in range(rounds):
        await sender.drain()
        async with runtime.sessions() as session:
            if not await session.scalar(select(func.count()).select_from(OutboxMessage)):
                return
        await asyncio.sleep(0.02)


async def test_each_chat_gets_its_rows_in_order_and_sent_rows_are_deleted(
    runtime: Runtime,
) -> None:
    channel = Channel()
    await queue(runtime, 1, "a1", "a2", "a3")
    await queue(runtime, 2, "b1", "b2")
    await queue(runtime, 1, "a4")
    sender = make_sender(runtime, channel)
    await sender.drain()
    assert [t for c, t, _ in channel.sent if c == 1] == ["a1", "a2", "a3", "a4"]
    assert [t for c, t, _ in channel.sent if c == 2] == ["b1", "b2"]
    assert await rows_left(runtime) == []


async def test_a_transient_failure_is_retried_and_later_rows_wait_behind_it(
    runtime: Runtime,
) -> None:
    channel = Channel()
    channel.script["first"] = [SendOutcome("transient", reason="500"), SendOutcome("uncertain")]
    await queue(runtime, 3, "first", "second")
    sender = make_sender(runtime, channel)
    await drain_until_empty(sender, runtime)
    # "uncertain" (no answer in time) is tried again for a reply: better twice than never.
    assert [t for _, t, _ in channel.sent] == ["first", "first", "first", "second"]
    assert await rows_left(runtime) == []


async def test_a_refused_row_is_kept_as_failed_and_the_chat_goes_on(runtime: Runtime) -> None:
    channel = Channel()
    channel.script["bad"] = [SendOutcome("failed", reason="400 Bad Request")]
    await queue(runtime, 4, "bad", "good")
    sender = make_sender(runtime, channel)
    await drain_until_empty(sender, runtime)
    assert [t for _, t, _ in channel.sent] == ["bad", "good"]
    assert await rows_left(runtime) == [("failed", 0)]


async def test_a_429_pauses_every_chat_and_costs_the_row_nothing(runtime: Runtime) -> None:
    channel = Channel()
    channel.script["x1"] = [SendOutcome("retry_after", retry_after=0.3)]
    await queue(runtime, 5, "x1")
    sender = make_sender(runtime, channel)
    await sender.drain()
    await queue(runtime, 6, "y1")
    await drain_until_empty(sender, runtime)
    refused_at = channel.sent[0][2]
    later = [at for _, t, at in channel.sent if t in ("x1", "y1")][1:]
    assert all(at - refused_at >= 0.25 for at in later), channel.sent
    assert sorted(t for _, t, _ in channel.sent) == ["x1", "x1", "y1"]


async def test_a_notice_without_an_answer_is_uncertain_and_never_sent_again(
    runtime: Runtime,
) -> None:
    channel = Channel()
    channel.script["told"] = [SendOutcome("uncertain", reason="timeout")]
    channel.script["retried"] = [SendOutcome("transient", reason="502")]
    await queue(runtime, 7, "told", "retried", priority=1, once=True)
    sender = make_sender(runtime, channel)
    await drain_until_empty(sender, runtime, rounds=20)
    # It may have arrived: a notice is not risked twice. A refusal that sent nothing
    # (502) is tried again as any row is.
    assert [t for _, t, _ in channel.sent] == ["told", "retried", "retried"]
    assert await rows_left(runtime) == [("uncertain", 0)]


async def test_a_notice_left_sending_by_a_crash_becomes_uncertain_when_a_sender_starts(
    runtime: Runtime,
) -> None:
    await queue(runtime, 8, "in flight at the crash", priority=1, once=True)
    await queue(runtime, 8, "a reply never marked")
    # What a sender killed between marking the row and hearing back leaves behind.
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == select(func.min(OutboxMessage.id)).scalar_subquery())
            .values(state="sending")
        )
    channel = Channel()
    sender = make_sender(runtime, channel)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop))
    for _ in range(200):
        if channel.sent:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert [t for _, t, _ in channel.sent] == ["a reply never marked"]
    assert await rows_left(runtime) == [("uncertain", 0)]


async def test_a_notice_is_marked_sending_before_its_request_leaves(runtime: Runtime) -> None:
    seen: list[str] = []

    class Watching(Channel):
        async def perform(
            self, item: Outgoing, *, left: Callable[[], None] | None = None
        ) -> SendOutcome:
            async with runtime.sessions() as session:
                seen.extend(await session.scalars(select(OutboxMessage.state)))
            return await super().perform(item, left=left)

    sender = make_sender(runtime, Watching())
    await queue(runtime, 9, "notice", priority=1, once=True)
    await drain_until_empty(sender, runtime)
    await queue(runtime, 10, "reply")
    await drain_until_empty(sender, runtime)
    # While the notice's request was out its row said "sending"; a reply's stays pending.
    assert seen == ["sending", "pending"]
    assert await rows_left(runtime) == []
