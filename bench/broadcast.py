"""Broadcast benchmark: the delivery engine against a naive send loop, on the fake Telegram.

    python -m bench.broadcast [--recipients 10000] [--rate 30] [--limit 30] [--blocked 0.02]

The fake Telegram enforces `--limit` messages a second bot-wide (429 beyond it) and one a second
per chat, and 2 % of the recipients have blocked the bot. First the delivery engine (rate
`--rate`, a temporary SQLite database) sends one broadcast to everyone; then, in the same
process against a fresh fake with the same faults, a naive loop does: one message after
another with a fixed 0.05 s sleep, RetryAfter answered by sleeping and retrying once, blocked
users logged and skipped, nothing remembered. Each prints its achieved rate, duplicates
(messages beyond the first in a chat) and lost recipients (reachable but without a message).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select
from telegram import Bot
from telegram.error import Forbidden, RetryAfter, TelegramError

from bot.channels.telegram_sender import TelegramSender
from bot.config import load_settings
from bot.core.messages import Reply
from bot.db.models import Broadcast, Delivery, User
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime, open_runtime
from bot.security import generate_key
from bot.services.broadcasts import set_text, text_of
from bot.services.delivery import Counts, DeliveryEngine, broadcast_counts, busiest_window

TEXT = "Kerja Keras Bebas Cemas! Iuran BPJS Ketenagakerjaan mulai Rp16.800 per bulan."
FIRST_CHAT = 700_000_000
log = logging.getLogger("bench.broadcast")


@dataclass
class Result:
    """What one way of broadcasting achieved, as the fake Telegram saw it."""

    name: str
    recipients: int
    seconds: float
    api_calls: int
    delivered: int
    refused_429: int
    duplicates: int
    lost: int
    busiest_second: int
    blocked: int = 0
    uncertain: int = 0

    @property
    def rate(self) -> float:
        """Sends answered (delivered or refused as blocked) per second of sending."""
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def answered(self) -> int:
        """Recipients whose send got a final answer: a message, or 403."""
        return self.delivered - self.duplicates + self.blocked


def fake_telegram(limit: float, blocked: set[int], chats: Sequence[int]) -> FakeTelegram:
    """A fake Telegram with the benchmark's faults and a chat for every recipient."""
    fake = FakeTelegram()
    fake.rate_limit = limit
    fake.per_chat_limit = 1
    fake.retry_after = 1
    fake.blocked_chats = set(blocked)
    for chat_id in chats:
        fake.user(chat_id)
    return fake


def measure(
    name: str,
    fake: FakeTelegram,
    chats: Sequence[int],
    blocked: set[int],
    started: float,
    uncertain: int = 0,
) -> Result:
    """Read the outcome off the fake: messages per chat, refusals, the timing of sends.

    The time runs from `started` (monotonic, as the fake's clock) to the last send.
    """
    sends = [c for c in fake.calls if c.method.lower() == "sendmessage"]
    moments = [c.at for c in sends]
    per_chat = {chat: len(fake.messages(chat)) for chat in chats}
    stats = fake.stats().total
    return Result(
        name=name,
        recipients=len(chats),
        seconds=(max(moments) - started) if moments else 0.0,
        api_calls=len(sends),
        delivered=sum(per_chat.values()),
        refused_429=stats.rate_limited,
        duplicates=sum(max(0, n - 1) for n in per_chat.values()),
        lost=sum(1 for chat, n in per_chat.items() if n == 0 and chat not in blocked),
        busiest_second=busiest_window(moments),
        uncertain=uncertain,
        blocked=sum(1 for chat in blocked if per_chat[chat] == 0),
    )


async def queue(runtime: Runtime, chats: Sequence[int]) -> int:
    """One broadcast in state "sending" with a delivery row per recipient."""
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            insert(User), [{"telegram_id": chat, "language": "id"} for chat in chats]
        )
        user_ids = list(await session.scalars(select(User.id).order_by(User.id)))
        broadcast = Broadcast(scope_kind="all", state="sending")
        set_text(broadcast, runtime.cipher, TEXT)
        session.add(broadcast)
        await session.flush()
        await session.execute(
            insert(Delivery), [{"broadcast_id": broadcast.id, "user_id": u} for u in user_ids]
        )
        return broadcast.id


async def run_engine(chats: Sequence[int], blocked: set[int], rate: float, limit: float) -> Result:
    """Broadcast with the delivery engine on a temporary SQLite database."""
    fake = fake_telegram(limit, blocked, chats)
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = load_settings(
                _env_file=None,
                database_url=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
                data_key=generate_key(),
            )
            async with (
                open_runtime(settings) as runtime,
                TelegramSender(fake.token, fake.base_url) as sender,
            ):
                broadcast_id = await queue(runtime, chats)
                engine = DeliveryEngine(
                    runtime.sessions,
                    sender,
                    lambda broadcast, user: Reply(text_of(broadcast, runtime.cipher) or ""),
                    rate=rate,
                    max_attempts=settings.broadcast_max_attempts,
                )
                stop = asyncio.Event()
                started = time.monotonic()
                task = asyncio.create_task(engine.run(stop))
                counts = await _watch(runtime, broadcast_id, task)
                stop.set()
                await task
    finally:
        await fake.stop()
    return measure("delivery engine", fake, chats, blocked, started, uncertain=counts.uncertain)


async def _watch(runtime: Runtime, broadcast_id: int, task: asyncio.Task[None]) -> Counts:
    """Wait for the broadcast to finish, printing its counts now and then."""
    started = time.monotonic()
    shown = started
    while True:
        await asyncio.sleep(0.5)
        if task.done():
            task.result()
            raise RuntimeError("the engine stopped before the broadcast was done")
        async with runtime.sessions() as session:
            counts = await broadcast_counts(session, broadcast_id)
            state = await session.scalar(
                select(Broadcast.state).where(Broadcast.id == broadcast_id)
            )
        if state == "done":
            return counts
        if time.monotonic() - shown >= 30:
            shown = time.monotonic()
            print(
                f"  engine: {counts.settled}/{counts.total} after {shown - started:.0f} s",
                flush=True,
            )


async def run_naive(chats: Sequence[int], blocked: set[int], limit: float) -> Result:
    """Broadcast the way popular bot templates do: a loop, a fixed sleep, one retry."""
    fake = fake_telegram(limit, blocked, chats)
    await fake.start()
    try:
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            started = time.monotonic()
            for number, chat in enumerate(chats, 1):
                try:
                    await bot.send_message(chat, TEXT)
                except RetryAfter as error:
                    pause = error.retry_after
                    seconds = pause.total_seconds() if isinstance(pause, timedelta) else pause
                    await asyncio.sleep(seconds)
                    try:
                        await bot.send_message(chat, TEXT)
                    except TelegramError:
                        log.debug("gave up on a recipient")
                except Forbidden:
                    log.debug("a recipient blocked the bot")
                except TelegramError:
                    log.debug("a send failed")
                await asyncio.sleep(0.05)
                if number % 1000 == 0:
                    print(
                        f"  naive: {number}/{len(chats)} after {time.monotonic() - started:.0f} s",
                        flush=True,
                    )
    finally:
        await fake.stop()
    return measure("naive loop", fake, chats, blocked, started)


def report(results: list[Result], rate: float, limit: float) -> str:
    """The results as a Markdown table, with the engine's rate against the target."""
    lines = [
        "| | engine | naive loop |",
        "|---|---:|---:|",
    ]
    engine, naive = results

    def row(label: str, a: object, b: object) -> None:
        lines.append(f"| {label} | {a} | {b} |")

    row("recipients", engine.recipients, naive.recipients)
    row("time to the last send (s)", f"{engine.seconds:.1f}", f"{naive.seconds:.1f}")
    row("achieved rate (answered sends/s)", f"{engine.rate:.2f}", f"{naive.rate:.2f}")
    row("sendMessage calls", engine.api_calls, naive.api_calls)
    row("429 refusals", engine.refused_429, naive.refused_429)
    row("busiest second (sends)", engine.busiest_second, naive.busiest_second)
    row("blocked (403)", engine.blocked, naive.blocked)
    row("duplicates", engine.duplicates, naive.duplicates)
    row("lost", engine.lost, naive.lost)
    row("uncertain", engine.uncertain, "n/a")
    ratio = engine.rate / naive.rate if naive.rate else float("inf")
    share = engine.rate / rate
    target = share >= 0.9 and engine.duplicates == 0 and engine.lost == 0
    lines += [
        "",
        f"Engine rate {rate:g}/s, fake limit {limit:g}/s: achieved {share:.1%} of the configured "
        f"rate; {ratio:.2f}x the naive loop. Target (>= 90 %, 0 duplicates, 0 lost): "
        f"{'met' if target else 'NOT met'}.",
    ]
    return "\n".join(lines)


def machine() -> str:
    """Where the benchmark ran: CPU model, cores, Python."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {sys.platform}"


async def main(recipients: int, rate: float, limit: float, blocked_share: float) -> int:
    """Run both ways of broadcasting and print the comparison."""
    chats = [FIRST_CHAT + n for n in range(recipients)]
    step = max(1, round(1 / blocked_share)) if blocked_share > 0 else 0
    blocked = set(chats[::step]) if step else set()
    print(f"Machine: {machine()}", flush=True)
    print(f"{recipients} recipients, {len(blocked)} of them blocked the bot", flush=True)
    engine = await run_engine(chats, blocked, rate, limit)
    print(f"  engine done in {engine.seconds:.1f} s", flush=True)
    naive = await run_naive(chats, blocked, limit)
    print(report([engine, naive], rate, limit), flush=True)
    return 0 if engine.duplicates == 0 and engine.lost == 0 else 1


def cli(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0, help="the engine's messages/s")
    parser.add_argument("--limit", type=float, default=30.0, help="the fake's bot-wide limit/s")
    parser.add_argument("--blocked", type=float, default=0.02, help="share who blocked the bot")
    args = parser.parse_args(argv)
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(main(args.recipients, args.rate, args.limit, args.blocked))


if __name__ == "__main__":
    sys.exit(cli())
