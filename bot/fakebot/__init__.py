"""One fake Telegram: a Bot API server on loopback for tests, the terminal chat and benchmarks.

``server`` answers the Bot API, ``user`` plays the people who chat with the bot, ``records``
holds what the fake remembers, ``driver`` exposes user actions over HTTP for other processes,
and ``harness`` runs a python-telegram-bot application against the fake.
"""

from bot.fakebot.records import (
    ApiCall,
    BotMessage,
    ChatEvent,
    SendStats,
    TrafficStats,
    WebhookPost,
)
from bot.fakebot.server import FakeTelegram
from bot.fakebot.user import FakeUser

__all__ = [
    "ApiCall",
    "BotMessage",
    "ChatEvent",
    "FakeTelegram",
    "FakeUser",
    "SendStats",
    "TrafficStats",
    "WebhookPost",
]
