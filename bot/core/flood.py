"""Flood control: one person sending far faster than anyone filling in a form is slowed down.

Each chat has a bucket of `burst` tokens that refills at `per_minute` a minute; every update
takes one. When the bucket is empty the next update is answered once with a polite warning
and the chat's updates are dropped for `pause_seconds`; meanwhile the bucket fills again.
The gate is in memory, per process: behind several replicas each one counts the share of a
chat's updates it receives, which only makes the gate more lenient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["admit", "warn", "drop"]


@dataclass
class _Bucket:
    tokens: float
    at: float
    silent_until: float = 0.0


class FloodGate:
    """Says of each update from a chat whether to handle it, warn once, or drop it."""

    def __init__(
        self,
        *,
        burst: int,
        per_minute: float,
        pause_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_chats: int = 100_000,
    ) -> None:
        if burst < 1 or per_minute <= 0 or pause_seconds < 0:
            raise ValueError("burst must be at least 1, per_minute and pause_seconds positive")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.pause = pause_seconds
        self.clock = clock
        self.max_chats = max_chats
        self._buckets: dict[int, _Bucket] = {}

    def check(self, chat_id: int) -> Verdict:
        now = self.clock()
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            if len(self._buckets) >= self.max_chats:
                self._forget_idle(now)
            bucket = self._buckets[chat_id] = _Bucket(self.burst, now)
        if now < bucket.silent_until:
            return "drop"
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return "admit"
        bucket.silent_until = now + self.pause
        return "warn"

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        """Drop the chats whose bucket would be full again: they are as good as new."""
        idle = [
            chat_id
            for chat_id, bucket in self._buckets.items()
            if now >= bucket.silent_until
            and bucket.tokens + (now - bucket.at) * self.rate >= self.burst
        ]
        for chat_id in idle:
            del self._buckets[chat_id]
        if len(self._buckets) >= self.max_chats:
            # Everyone is busy: the oldest entries go (insertion order).
            for chat_id in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[chat_id]
