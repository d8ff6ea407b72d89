"""A person chatting with the bot through the fake Telegram, in their own language."""

from __future__ import annotations

from typing import Any

from bot.fakebot import BotMessage, FakeUser
from bot.i18n import Translator, translator


class Person:
    """Drives one simulated user: says things, taps buttons, reads the bot's answers."""

    def __init__(self, user: FakeUser, language: str = "id") -> None:
        self.user = user
        self.t: Translator = translator(language)

    def use_language(self, language: str) -> None:
        """Expect texts in `language` from now on."""
        self.t = translator(language)

    async def say(self, text: str) -> list[BotMessage]:
        """Send text (or a /command) and return the bot's replies."""
        await self.user.send_text(text)
        return await self.user.replies()

    async def tap(self, key: str, **params: Any) -> list[BotMessage]:
        """Press the button whose label is the text of message id `key`."""
        await self.user.press(self.t(key, **params))
        return await self.user.replies()

    async def tap_label(self, label: str) -> list[BotMessage]:
        """Press a button by its literal label (area names, amounts)."""
        await self.user.press(label)
        return await self.user.replies()

    async def share_contact(self, phone: str, *, own: bool = True) -> list[BotMessage]:
        """Share a contact: one's own, or someone else's."""
        if own:
            await self.user.send_contact(phone)
        else:
            await self.user.send_contact(phone, user_id=self.user.user_id + 1)
        return await self.user.replies()

    @property
    def last_text(self) -> str:
        """The text of the bot's newest message."""
        last = self.user.last
        assert last is not None, "the bot has said nothing yet"
        return last.text or last.caption or ""


def texts(messages: list[BotMessage]) -> str:
    """All texts of some messages, joined for `in` checks."""
    return "\n".join(m.text or m.caption or "" for m in messages)
