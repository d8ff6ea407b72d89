"""The outbox on a real database: each chat in order, retries, a 429 pauses, nothing lost.

The channel here is the outbox's extension point, scripted for the test; the real Telegram
sender is exercised end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

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

    async def perform(self, item: Outgoing) -> SendOutcome:
        text = item.reply.text if item.reply else ""
        self.sent.append((item.chat_id, text, time.monotonic()))
        answers = self.script.get(text)
        if answers:
            return answers.pop(0)
        return SendOutcome("sent", message_id=len(self.sent))


async def queue(runtime: Runtime, chat_id: int, *texts: str, priority: int = 0) -> None:
    async with runtime.sessions() as session, session.begin():
        await enqueue(
            session,
            runtime.cipher,
            [Outgoing(chat_id, reply=Reply(t), priority=priority) for t in texts],
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
