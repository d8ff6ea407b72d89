"""The bots under test as operating-system processes: started, watched in /proc, killed.

A deployment is a list of processes sharing one database; CPU seconds and memory are read from
``/proc/<pid>/stat`` and ``/proc/<pid>/status`` (Linux), the same way for every bot.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.fakebot import FakeTelegram

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class BotCommand:
    """How to start one bot process: its arguments and environment (beyond PATH)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5), counted from the state field (3) after the name.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """The resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class BotProcess:
    """One running bot: ``python -m ...`` with its own environment and a log file."""

    def __init__(self, command: BotCommand, folder: Path, number: int = 0) -> None:
        self.command = command
        self.log_path = folder / f"{command.name}-{number}-{time.monotonic_ns()}.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **command.env}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, *command.argv],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._process.poll() is None

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return rss_bytes(self.pid)

    def log_tail(self, lines: int = 15) -> str:
        """The end of what the process wrote."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory killer would."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self._process.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not end in time."""
        if self.alive():
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


async def wait_until_polling(fake: FakeTelegram, since: int, process: BotProcess) -> None:
    """Wait for the bot's first getUpdates after call number `since`."""
    for _ in range(600):
        if any(call.method.lower() == "getupdates" for call in fake.calls[since:]):
            return
        if not process.alive():
            raise RuntimeError(f"{process.command.name} ended:\n{process.log_tail()}")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{process.command.name} never started polling:\n{process.log_tail()}")


WEBHOOK_SECRET = "bench-" + secrets.token_hex(16)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until_webhook(fake: FakeTelegram, since: int, process: BotProcess) -> None:
    """Wait for the bot's setWebhook after call number `since` (it listens by then)."""
    for _ in range(600):
        if any(call.method.lower() == "setwebhook" for call in fake.calls[since:]):
            return
        if not process.alive():
            raise RuntimeError(f"{process.command.name} ended:\n{process.log_tail()}")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{process.command.name} never set its webhook:\n{process.log_tail()}")


class Deployment:
    """N processes of one bot against one fake Telegram, started and stopped together."""

    def __init__(self, command: BotCommand, fake: FakeTelegram, folder: Path, count: int = 1):
        self.command = command
        self.fake = fake
        self.folder = folder
        self.count = count
        self.processes: list[BotProcess] = []

    async def start(self) -> None:
        """Start every process and wait until each takes updates.

        Several processes cannot share one long poll: they run in webhook mode, each on a
        port of its own, and the fake spreads the updates over them as a proxy would.
        """
        if self.count == 1:
            mark = len(self.fake.calls)
            process = BotProcess(self.command, self.folder, 0)
            self.processes.append(process)
            await wait_until_polling(self.fake, mark, process)
            return
        targets = []
        for number in range(self.count):
            port = _free_port()
            url = f"http://127.0.0.1:{port}/telegram"
            env = {
                **self.command.env,
                "WEBHOOK_URL": url,
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "WEBHOOK_PORT": str(port),
            }
            command = BotCommand(self.command.name, (*self.command.argv, "--webhook"), env)
            mark = len(self.fake.calls)
            process = BotProcess(command, self.folder, number)
            self.processes.append(process)
            await wait_until_webhook(self.fake, mark, process)
            targets.append(url)
        self.fake.webhook_targets = targets

    def cpu(self) -> float:
        """CPU seconds of all processes together."""
        return sum(process.cpu() for process in self.processes if process.alive())

    def rss(self) -> int:
        """Resident memory of all processes together."""
        return sum(process.rss() for process in self.processes if process.alive())

    def pids(self) -> list[int]:
        """The process ids."""
        return [process.pid for process in self.processes]

    def kill(self) -> None:
        """SIGKILL every process."""
        for process in self.processes:
            process.kill()
        self.processes = []

    def stop(self) -> None:
        """SIGTERM every process and wait for it."""
        for process in self.processes:
            process.stop()
        self.processes = []


@asynccontextmanager
async def running(deployment: Deployment) -> AsyncIterator[Deployment]:
    """The deployment started for the block and stopped after it, even on errors."""
    try:
        await deployment.start()
        yield deployment
    finally:
        deployment.stop()


async def _administer(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_postgres(admin_url: str = POSTGRES_ADMIN_URL) -> AsyncIterator[str]:
    """A new empty PostgreSQL database for the block (its SQLAlchemy URL), dropped after it."""
    name = f"bc_bench_{secrets.token_hex(4)}"
    await _administer(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def webhook_supported(argv: Sequence[str] = ("-m", "bot", "run", "--help")) -> bool:
    """Whether this build's ``python -m bot run`` offers ``--webhook``."""
    shown = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False
    )
    return "--webhook" in shown.stdout
