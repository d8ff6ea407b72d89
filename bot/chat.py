"""`python -m bot chat`: the real bot against the fake Telegram, chatted with in this terminal."""

from __future__ import annotations

import sys

from bot.channels.telegram import serving
from bot.config import Settings
from bot.fakebot import FakeTelegram
from bot.i18n import translator
from bot.runtime import open_runtime
from bot.terminal import run_terminal_chat, stdin_lines

# Simulated people: a worker first; more join when a later feature needs them (leaders).
SIMULATED_USERS = ((700001, "Made"), (700002, "Ketut"), (700003, "Wayan"))


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def run_chat(settings: Settings, *, language: str | None = None) -> int:
    """Start the fake Telegram and the bot, and chat in the terminal until `:keluar` or EOF."""
    language = language or settings.default_language
    async with (
        FakeTelegram() as fake,
        open_runtime(settings) as runtime,
        serving(runtime, fake.token, fake.base_url, poll_timeout=5),
    ):
        users = [
            fake.user(user_id, name, language_code=language) for user_id, name in SIMULATED_USERS
        ]
        await run_terminal_chat(
            fake,
            users=users,
            read_line=stdin_lines(),
            write=_write,
            text=translator(language),
        )
    return 0
