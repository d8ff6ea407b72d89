"""The pacer's queue: who goes first, and what a crowd of waiters costs."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from bot.services.pacing import Halted, Pacer


async def test_replies_go_before_waiting_deliveries_and_each_kind_in_order() -> None:
    """Urgent turns jump the queue; within each kind, whoever asked first goes first."""
    pacer = Pacer(rate=50.0, per_chat=0.0)
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        await pacer.acquire(hash(name), urgent=urgent)
        order.append(name)

    await pacer.acquire(0)  # the next grant now has to wait a full interval
    tasks = [asyncio.create_task(take(f"delivery {n}", False)) for n in range(5)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(take(f"reply {n}", True)) for n in range(3)]
    await asyncio.gather(*tasks)
    assert order == [f"reply {n}" for n in range(3)] + [f"delivery {n}" for n in range(5)]


async def test_a_crowd_is_granted_one_at_a_time_without_waking_everyone() -> None:
    """300 waiters: each granted once, an interval apart, in arrival order; a cancelled one
    gives its turn to the next."""
    pacer = Pacer(rate=1000.0, per_chat=0.0)
    granted: list[tuple[int, float]] = []

    async def take(chat_id: int) -> None:
        await pacer.acquire(chat_id, urgent=True)
        # When the pacer let it start (no other task runs before this line reads it).
        granted.append((chat_id, pacer._started))

    tasks = [asyncio.create_task(take(chat)) for chat in range(300)]
    await asyncio.sleep(0)
    tasks[150].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[150], asyncio.CancelledError)
    assert [chat for chat, _ in granted] == [c for c in range(300) if c != 150]
    moments = [moment for _, moment in granted]
    assert min(b - a for a, b in itertools.pairwise(moments)) >= 0.001 - 1e-4
    # The queue is empty and no timer is left behind.
    assert not pacer._queue and pacer._timer is None


async def test_a_pause_turns_the_queue_away_and_later_sends_wait_it_out() -> None:
    """Everyone waiting when Telegram asks for a pause gives up its turn; the next send
    waits until the pause is over."""
    pacer = Pacer(rate=10.0, per_chat=0.0)
    await pacer.acquire(1, urgent=True)
    waiting = [asyncio.create_task(pacer.acquire(n, urgent=n % 2 == 0)) for n in range(2, 6)]
    await asyncio.sleep(0)
    pacer.pause(0.3)
    for task in waiting:
        with pytest.raises(Halted):
            await task
    started = time.monotonic()
    await pacer.acquire(9, urgent=True)
    assert time.monotonic() - started >= 0.29
