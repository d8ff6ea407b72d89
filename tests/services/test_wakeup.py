"""LISTEN/NOTIFY wake-ups: a committed notification reaches the listener; a rolled-back one not."""

from __future__ import annotations

import asyncio

import pytest

from bot.runtime import Runtime
from bot.services.wakeup import channel_name, listen, notify
from tests.services.test_delivery import until

ON_POSTGRES = pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@ON_POSTGRES
async def test_a_notification_wakes_the_listener_only_once_committed(runtime: Runtime) -> None:
    channel = channel_name("test-namespace", "outbox")
    heard: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(listen(runtime.engine, channel, lambda: heard.append(1), stop))
    try:
        # Listening begins with one call, in case something was missed before.
        await until(lambda: len(heard) == 1, 10)
        async with runtime.sessions() as session, session.begin():
            await notify(session, channel)
            await asyncio.sleep(0.2)
            assert len(heard) == 1, "heard before the commit"
        await until(lambda: len(heard) == 2, 10)
        async with runtime.sessions() as session:
            transaction = await session.begin()
            await notify(session, channel)
            await transaction.rollback()
        await notify_elsewhere(runtime, channel_name("another-namespace", "outbox"))
        await asyncio.sleep(0.3)
        assert len(heard) == 2
    finally:
        stop.set()
        await task


async def notify_elsewhere(runtime: Runtime, channel: str) -> None:
    async with runtime.sessions() as session, session.begin():
        await notify(session, channel)


def test_channels_of_two_deployments_differ_and_fit_postgres_names() -> None:
    one, other = channel_name("test.public", "outbox"), channel_name("test.bc", "outbox")
    assert one != other
    assert len(one) <= 63 and one.isidentifier()
