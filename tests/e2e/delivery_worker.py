"""A delivery engine in a process of its own, for the kill-and-restart tests.

Run as ``python -m tests.e2e.delivery_worker`` with the bot's settings in the environment
(DATABASE_URL, DATA_KEY, TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL) and:
DELIVERY_RATE (messages a second), DELIVERY_BATCH, DELIVERY_LEASE (seconds),
DELIVERY_WORKER (its name) and, on PostgreSQL, DELIVERY_PG_SCHEMA (the tests' schema).
It prints "ready" once the engine runs, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

from bot.channels.telegram_sender import TelegramSender
from bot.config import load_settings
from bot.core.messages import Reply
from bot.db.models import Broadcast, User
from bot.runtime import open_runtime
from bot.security import Cipher
from bot.services.broadcasts import text_of
from bot.services.delivery import DeliveryEngine


def renderer(cipher: Cipher) -> Callable[[Broadcast, User], Reply]:
    """The broadcast text as it is."""
    return lambda broadcast, user: Reply(text_of(broadcast, cipher) or "")


async def main() -> None:
    """Run the engine until SIGTERM."""
    settings = load_settings(_env_file=None)
    options: dict[str, Any] = {}
    if schema := os.environ.get("DELIVERY_PG_SCHEMA"):
        options["connect_args"] = {"server_settings": {"search_path": schema}}
    assert settings.telegram_bot_token is not None
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with (
        open_runtime(settings, **options) as runtime,
        TelegramSender(
            settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base_url
        ) as sender,
    ):
        engine = DeliveryEngine(
            runtime.sessions,
            sender,
            renderer(runtime.cipher),
            rate=float(os.environ["DELIVERY_RATE"]),
            max_attempts=settings.broadcast_max_attempts,
            worker_id=os.environ.get("DELIVERY_WORKER"),
            batch=int(os.environ.get("DELIVERY_BATCH", "50")),
            lease_seconds=float(os.environ.get("DELIVERY_LEASE", "60")),
            poll_interval=0.2,
        )
        run = asyncio.create_task(engine.run(stop))
        await asyncio.sleep(0)
        print("ready", flush=True)
        await run


if __name__ == "__main__":
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    asyncio.run(main())
