"""The fake's state of one private chat, and the small timing tools it needs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.fakebot.records import BotMessage, SendStats


class Signal:
    """Wakes everyone waiting each time something happens; waiters give up after a timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake the current waiters; later waiters wait for the next notification."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next notification; return False when ``seconds`` passed first."""
        event = self._event
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True


@dataclass
class TokenBucket:
    """A flood limit: bursts up to one second's worth of sends, refilled at ``rate`` per second."""

    tokens: float | None = None
    updated: float = 0.0

    def allows(self, rate: float, now: float) -> bool:
        """Refill for the time passed and tell whether one more send fits."""
        capacity = max(1.0, rate)
        if self.tokens is None:
            self.tokens = capacity
        else:
            self.tokens = min(capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        return self.tokens >= 1.0

    def take(self) -> None:
        """Spend one send."""
        if self.tokens is not None:
            self.tokens -= 1.0


@dataclass
class ChatState:
    """One private chat: the bot's messages, the ids users sent, and who is waiting for what."""

    chat_id: int
    messages: list[BotMessage] = field(default_factory=list)
    user_message_ids: set[int] = field(default_factory=set)
    changes: list[BotMessage] = field(default_factory=list)
    activity: Signal = field(default_factory=Signal)
    stats: SendStats = field(default_factory=SendStats)
    bucket: TokenBucket = field(default_factory=TokenBucket)
    last_message_id: int = 0
    # Updates queued for the bot from this chat, and how many a driver reported handled.
    updates_sent: int = 0
    updates_handled: int = 0

    def next_message_id(self) -> int:
        """Return a fresh message id (user and bot messages share one sequence per chat)."""
        self.last_message_id += 1
        return self.last_message_id

    def find(self, message_id: int) -> BotMessage | None:
        """Return the bot's message with this id unless it was deleted."""
        for message in self.messages:
            if message.message_id == message_id and not message.deleted:
                return message
        return None

    def current(self) -> list[BotMessage]:
        """Return the bot's messages that are still in the chat, oldest first."""
        return [message for message in self.messages if not message.deleted]

    def changed_since(self, mark: int) -> list[BotMessage]:
        """Return the messages sent or edited after change number ``mark``, in order."""
        seen: dict[int, BotMessage] = {}
        for message in self.changes[mark:]:
            seen.setdefault(message.message_id, message)
        return [message for message in seen.values() if not message.deleted]

    def newest_keyboard(self) -> BotMessage | None:
        """Return the newest message of the bot that has buttons."""
        for message in reversed(self.messages):
            if not message.deleted and message.has_keyboard:
                return message
        return None

    def shown_reply_keyboard(self) -> BotMessage | None:
        """Return the message whose reply keyboard is on screen now, if any."""
        for message in reversed(self.messages):
            markup = message.reply_markup or {}
            if "remove_keyboard" in markup:
                return None
            if markup.get("keyboard"):
                return message
        return None

    def record_change(self, message: BotMessage) -> None:
        """Note that the bot sent, edited or deleted a message, and wake whoever waits."""
        self.changes.append(message)
        self.activity.notify()
