"""Running a python-telegram-bot Application against the fake Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from telegram.ext import Application, ApplicationBuilder

from bot.fakebot.server import FakeTelegram

AnyApplication = TypeVar("AnyApplication", bound=Application[Any, Any, Any, Any, Any, Any])


def application_for(fake: FakeTelegram) -> Application[Any, Any, Any, Any, Any, Any]:
    """A bare python-telegram-bot application that talks to the fake (add handlers, then poll)."""
    return (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )


@asynccontextmanager
async def polling(application: AnyApplication) -> AsyncIterator[AnyApplication]:
    """Run an application with long polling for the duration of the block, then shut it down.

    Build it with ``base_url(fake.base_url)`` and ``base_file_url(fake.base_file_url)``.
    """
    if application.updater is None:
        raise ValueError("the application needs an updater to poll")
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0)
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
