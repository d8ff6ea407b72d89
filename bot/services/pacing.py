"""When the next message may leave: one budget for everything the bot sends.

Replies, notices and broadcast deliveries all ask the same `Pacer`, so together they stay
within the channel's limits (Telegram: about 30 messages a second bot-wide, about one a
second to any one chat with short bursts allowed). Replies ask with `urgent=True` and go
before broadcast deliveries that are waiting, so a broadcast never slows a conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable

# A little over a second: requests reach Telegram with some jitter, and it counts arrivals.
PER_CHAT_INTERVAL = 1.05
# How many chats' buckets are kept before the full ones are forgotten.
_CHATS_KEPT = 4096


class Halted(Exception):
    """The pacer stopped a wait: the channel asked for a pause, or the sender is stopping."""


class Pacer:
    """A bot-wide spacing of sends and a small bucket per chat.

    Sends are granted one at a time, at least 1/`rate` seconds apart, so no second ever
    holds more than `rate` of them. Whoever waits stands in one queue: urgent sends first,
    each kind in the order it asked, and one timer grants the next turn (a crowd of
    waiters costs nothing while it waits). Each chat has a bucket of `chat_burst` sends
    refilled at one per `per_chat` seconds; an urgent send (a reply to what the person just
    did, which comes no faster than the person writes, and the flood gate bounds that)
    takes from it without waiting for it. A pause (Telegram's RetryAfter) stops everything
    until it ends and turns away everyone waiting (`Halted`), as does `close`.
    """

    def __init__(
        self,
        rate: float,
        per_chat: float = PER_CHAT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        *,
        chat_burst: int = 1,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.per_chat = per_chat
        self.chat_burst = max(1, chat_burst)
        self._clock = clock
        self._granted = -math.inf
        self._started = -math.inf
        self._last_start: asyncio.Future[None] | None = None
        self._paused_until = 0.0
        # Waiting turns: (0 urgent / 1 not, arrival, future); granted by `_grant`.
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        # Per chat: (tokens, when they were counted).
        self._chat_tokens: dict[int, tuple[float, float]] = {}
        self._forget_above = _CHATS_KEPT
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._chat_users: Counter[int] = Counter()
        self._generation = 0
        self._interrupt = asyncio.Event()
        self.closed = False

    @property
    def last_start(self) -> float:
        """When the latest send was let go, on the pacer's clock: sends are spaced by this."""
        return self._started

    @property
    def paused_for(self) -> float:
        """Seconds until a pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Stop all sending for `seconds`; waits in progress end with `Halted`."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._turn_everyone_away()

    def close(self) -> None:
        """Refuse every further send; waits in progress end with `Halted`."""
        self.closed = True
        self._turn_everyone_away()

    def reopen(self) -> None:
        """Grant sends again after `close` (a process that lost the lead has it back)."""
        self.closed = False

    async def acquire(self, chat_id: int, *, urgent: bool = False) -> None:
        """Wait until one message may go to `chat_id`, and count it as gone."""
        if self.closed:
            raise Halted
        if urgent:
            await self._turn(0)
            self._take_chat_token(chat_id)
            return
        generation = self._generation
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        self._chat_users[chat_id] += 1
        try:
            async with lock:
                await self._sleep_until(self._chat_ready(chat_id), generation)
                await self._turn(1)
                self._take_chat_token(chat_id)
        finally:
            self._chat_users[chat_id] -= 1
            if not self._chat_users[chat_id]:
                del self._chat_users[chat_id]
                del self._chat_locks[chat_id]

    async def _turn(self, rank: int) -> None:
        """Stand in the queue until this send's moment comes."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (rank, next(self._arrivals), turn))
        self._grant()
        await turn
        # Granted an interval after the one before; a busy event loop may still wake two
        # waiters together, so where the sends really start they are spaced again, in the
        # order they were granted.
        before = self._last_start
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_start = mine
        try:
            if before is not None and not before.done():
                await asyncio.shield(before)
            # No one else starts meanwhile: the next in line waits for this one. Until the
            # pacer's own clock says so: uvloop's timers count whole milliseconds and may
            # wake up to half of one early.
            wait = self._started + self.interval - self._clock()
            while wait > 0:
                await asyncio.sleep(wait)
                wait = self._started + self.interval - self._clock()
            self._started = self._clock()
        finally:
            mine.set_result(None)

    def _grant(self) -> None:
        """Grant the first waiting turn if its moment has come, else set the timer for it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue = self._queue
        while queue and queue[0][2].done():
            # Its waiter was cancelled.
            heapq.heappop(queue)
        if not queue:
            return
        now = self._clock()
        due = max(self._granted + self.interval, self._paused_until)
        if now < due:
            self._timer = asyncio.get_running_loop().call_later(due - now, self._grant)
            return
        heapq.heappop(queue)[2].set_result(None)
        self._granted = now
        if queue:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._grant)

    def _turn_everyone_away(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue, self._queue = self._queue, []
        for _, _, turn in queue:
            if not turn.done():
                turn.set_exception(Halted())
        self._generation += 1
        self._interrupt.set()
        self._interrupt = asyncio.Event()

    def _chat_tokens_now(self, chat_id: int) -> float:
        tokens, counted = self._chat_tokens.get(chat_id, (float(self.chat_burst), 0.0))
        if self.per_chat <= 0:
            return float(self.chat_burst)
        refill = (self._clock() - counted) / self.per_chat
        return min(float(self.chat_burst), tokens + refill)

    def _chat_ready(self, chat_id: int) -> float:
        """When the chat's bucket has a whole send in it."""
        tokens = self._chat_tokens_now(chat_id)
        if tokens >= 1.0:
            return 0.0
        return self._clock() + (1.0 - tokens) * self.per_chat

    def _take_chat_token(self, chat_id: int) -> None:
        self._chat_tokens[chat_id] = (self._chat_tokens_now(chat_id) - 1.0, self._clock())
        if len(self._chat_tokens) > self._forget_above:
            # Chats whose bucket is full again need no entry.
            full = float(self.chat_burst)
            self._chat_tokens = {
                chat: value
                for chat, value in self._chat_tokens.items()
                if self._chat_tokens_now(chat) < full
            }
            self._forget_above = max(_CHATS_KEPT, 2 * len(self._chat_tokens))

    async def _sleep_until(self, deadline: float, generation: int) -> None:
        while True:
            if self.closed or generation != self._generation:
                raise Halted
            delay = deadline - self._clock()
            if delay <= 0:
                return
            interrupt = self._interrupt
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await interrupt.wait()


def busiest_window(moments: Iterable[float], width: float = 1.0) -> int:
    """The most events in any window of `width` seconds: how a pacer's output is checked."""
    ordered = sorted(moments)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most


class Looks:
    """When a queue's table is read again: whenever asked, and at least every `interval` s.

    The inbox workers and the outbox sender learn of their own work in memory; the table is
    read for the rest (another process's rows, retries coming due).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._asked = True
        self._last = -math.inf

    def ask(self) -> None:
        """Read the table at the next chance."""
        self._asked = True

    def due(self) -> bool:
        """Whether to read the table now (counted as read when True)."""
        now = time.monotonic()
        if not self._asked and now - self._last < self.interval:
            return False
        self._asked, self._last = False, now
        return True


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
