"""Waking another process at once when there is work for it (PostgreSQL LISTEN/NOTIFY).

With several replicas, an update handled by one of them writes replies that the leader
sends. Instead of the leader finding them at its next poll (up to a second later), the
handling transaction notifies a channel and the leader, listening, looks at once. A
notification is delivered only when the transaction commits, and never to a process that
was not listening: polling stays as the safety net. On SQLite there is one process, which
nudges itself, and these functions do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

log = logging.getLogger(__name__)


def channel_name(namespace: str, kind: str) -> str:
    """One deployment's channel for one kind of work (schemas on one server stay apart)."""
    digest = hashlib.blake2b(namespace.encode(), digest_size=6).hexdigest()
    return f"bebas_cemas_{digest}_{kind}"


async def notify(session: AsyncSession, channel: str) -> None:
    """Tell the listeners of `channel` once the current transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(channel, "")))


async def listen(
    engine: AsyncEngine,
    channel: str,
    callback: Callable[[], None],
    stop: asyncio.Event,
    *,
    check_seconds: float = 5.0,
) -> None:
    """Call `callback` on every notification of `channel` until `stop` is set.

    The connection is checked every few seconds and opened again when it was lost (the
    callback is then called once, in case something was missed meanwhile).
    """
    if engine.dialect.name != "postgresql":
        await stop.wait()
        return

    def heard(*_args: Any) -> None:
        callback()

    while not stop.is_set():
        try:
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.add_listener(channel, heard)
                callback()
                try:
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(check_seconds):
                                await stop.wait()
                        if not stop.is_set():
                            await driver.execute("SELECT 1")
                finally:
                    with contextlib.suppress(Exception):
                        await driver.remove_listener(channel, heard)
        except Exception:
            log.warning("Lost the connection that listens for work; listening again shortly")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await stop.wait()
