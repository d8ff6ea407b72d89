"""Which process sends: one sender for all replicas, so they share one budget.

Every replica handles updates, but only the leader sends the outbox, delivers broadcasts
and runs the scheduled jobs, so each of those happens once however many replicas run. On
PostgreSQL the leader holds a session-level advisory lock on a connection of its own; if it
dies, the lock goes with its connection and another replica takes over within seconds. On
SQLite there is one process, and it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services.pacing import wait_at_most

log = logging.getLogger(__name__)

Duty = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def lock_key(namespace: str, name: str) -> int:
    """A signed 64-bit advisory-lock key."""
    digest = hashlib.blake2b(f"{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def namespace_of(engine: AsyncEngine) -> str:
    """What keeps one deployment's locks apart from another's on the same server."""
    if engine.dialect.name != "postgresql":
        return ""
    async with engine.connect() as connection:
        schema = await connection.scalar(
            text("SELECT current_database() || '.' || current_schema()")
        )
    return str(schema)


class Leadership:
    """Runs a duty while this process is the leader, until `stop` is set."""

    def __init__(self, engine: AsyncEngine, namespace: str, *, retry_seconds: float = 2.0) -> None:
        self.engine = engine
        self.key = lock_key(namespace, "sender")
        self.retry = retry_seconds
        self.leading = asyncio.Event()

    async def run(self, stop: asyncio.Event, duty: Duty) -> None:
        """Take the lead when it is free and run `duty` while holding it."""
        if self.engine.dialect.name != "postgresql":
            self.leading.set()
            try:
                await duty(stop)
            finally:
                self.leading.clear()
            return
        while not stop.is_set():
            try:
                await self._lead_once(stop, duty)
            except Exception:
                log.exception("Lost the connection that holds the lead; trying again")
            await wait_at_most(stop, self.retry)

    async def _lead_once(self, stop: asyncio.Event, duty: Duty) -> None:
        async with self.engine.connect() as raw:
            connection = await raw.execution_options(isolation_level="AUTOCOMMIT")
            if not await connection.scalar(select(func.pg_try_advisory_lock(self.key))):
                return
            log.info("This process leads: it sends and runs the scheduled jobs")
            self.leading.set()
            ended = asyncio.Event()
            work = asyncio.create_task(duty(ended))
            stopping = asyncio.create_task(stop.wait())
            try:
                while not work.done():
                    if stop.is_set():
                        break
                    await asyncio.wait(
                        {work, stopping}, timeout=self.retry, return_when=asyncio.FIRST_COMPLETED
                    )
                    if not work.done() and not stop.is_set():
                        # The lock lives as long as this connection: check it is alive.
                        await connection.scalar(select(1))
            finally:
                stopping.cancel()
                ended.set()
                self.leading.clear()
                with contextlib.suppress(Exception):
                    await work
                with contextlib.suppress(Exception):
                    await connection.scalar(select(func.pg_advisory_unlock(self.key)))
