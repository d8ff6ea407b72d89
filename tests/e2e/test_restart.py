"""Progress survives restarts: a new bot process continues exactly where the person stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.config import load_settings
from bot.db.models import Follow, User
from bot.fakebot import FakeTelegram
from bot.runtime import open_runtime
from bot.security import generate_key
from tests.conftest import RunningBot, RuntimeFactory, start_bot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers


async def test_a_new_application_object_continues_the_draft(
    bot: RunningBot, fake: FakeTelegram, runtime_factory: RuntimeFactory
) -> None:
    """Half-way answers are still there after the bot is stopped and built anew."""
    person = Person(fake.user(3001, "Komang", language_code="id"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say("5102051708850003")
    await person.say("Komang Ardana")
    await bot.stop()

    async with runtime_factory() as fresh:
        again = await start_bot(fake, fresh)
        try:
            replies = await person.say("/daftar")
            assert person.t("register.resumed") in texts(replies)
            assert person.t("progress", step=3, total=12) in texts(replies)
            answers = await stored_answers(fresh, 3001)
            assert answers == {"nik": "5102051708850003", "full_name": "Komang Ardana"}
            await person.say("17-08-1985")
            assert await current_step(fresh, 3001) == "gender"
        finally:
            await again.stop()


async def _wait_for_polling(fake: FakeTelegram, since: int) -> None:
    for _ in range(300):
        if any(call.method == "getUpdates" for call in fake.calls[since:]):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the bot process never started polling")


def _start_process(
    fake: FakeTelegram, tmp_path: Path, key: str, rate: str = "25"
) -> subprocess.Popen[bytes]:
    env = {
        "BROADCAST_RATE": rate,
        "PTB_TIMEDELTA": "true",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "DATA_KEY": key,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_sigkill_mid_registration_loses_no_answer(fake: FakeTelegram, tmp_path: Path) -> None:
    """`python -m bot run` killed with SIGKILL and started again keeps every answer."""
    key = generate_key()
    process = _start_process(fake, tmp_path, key)
    try:
        await _wait_for_polling(fake, 0)
        person = Person(fake.user(3002, "Nyoman", language_code="id"))
        await person.say("/daftar")
        await person.tap("consent.yes")
        await person.say("5102051708850003")
        await person.say("Nyoman Sudarsa")
        await person.say("17 agt 1985")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()

    mark = len(fake.calls)
    process = _start_process(fake, tmp_path, key)
    try:
        await _wait_for_polling(fake, mark)
        replies = await person.say("/bantuan")
        assert person.t("q.gender.help") in texts(replies)
        replies = await person.tap("gender.male")
        assert person.t("progress", step=5, total=12) in texts(replies)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            if process.stderr is not None:
                stderr = process.stderr.read().decode()
                process.stderr.close()
    assert process.returncode == 0, stderr
    assert "5102051708850003" not in stderr


async def _add_followers(database_url: str, key: str, telegram_ids: list[int]) -> None:
    settings = load_settings(_env_file=None, database_url=database_url, data_key=key)
    async with (
        open_runtime(settings) as runtime,
        runtime.sessions() as session,
        session.begin(),
    ):
        for telegram_id in telegram_ids:
            user = User(telegram_id=telegram_id, language="id")
            session.add(user)
            await session.flush()
            session.add(Follow(user_id=user.id, village_code="51.02.05.2006"))


def _cli(tmp_path: Path, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            "DATA_KEY": key,
            "PTB_TIMEDELTA": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_sigkill_mid_broadcast_finishes_without_doubles(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """`python -m bot run` killed half-way through a broadcast finishes it after a restart;
    nobody is messaged twice except rows reported as uncertain."""
    key = generate_key()
    ids = list(range(910_000, 910_060))
    for telegram_id in ids:
        fake.user(telegram_id, "Warga")
    await _add_followers(f"sqlite+aiosqlite:///{tmp_path}/bot.db", key, ids)
    text_file = tmp_path / "kabar.txt"
    text_file.write_text("Om Swastiastu. Sosialisasi BPJS Ketenagakerjaan Minggu ini.")
    queued = _cli(
        tmp_path, key, "broadcast", "--village", "51.02.05.2006", "--text-file", str(text_file)
    )
    assert queued.returncode == 0, queued.stderr
    number = queued.stdout.strip()

    def delivered() -> int:
        return sum(len(fake.messages(i)) for i in ids)

    process = _start_process(fake, tmp_path, key, rate="15")
    try:
        for _ in range(400):
            if delivered() >= 20:
                break
            await asyncio.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        _close(process)
    assert 20 <= delivered() < len(ids), "the kill should land half-way"

    process = _start_process(fake, tmp_path, key, rate="15")
    try:
        for _ in range(600):
            status = _cli(tmp_path, key, "broadcast-status", number)
            if "pending: 0" in status.stdout and "sending: 0" in status.stdout:
                break
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        _close(process)
    counts = dict(line.strip().split(": ") for line in status.stdout.splitlines()[1:])
    doubles = [i for i in ids if len(fake.messages(i)) > 1]
    missing = [i for i in ids if not fake.messages(i)]
    assert int(counts["sent"]) + int(counts["uncertain"]) == len(ids), status.stdout
    assert len(doubles) == 0, doubles
    assert len(missing) <= int(counts["uncertain"])


def _close(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)
    if process.stderr is not None:
        process.stderr.close()
