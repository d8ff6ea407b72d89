"""Starting `python -m bot run` on a mistake: one line naming it, no traceback, no secret.

The real process is started against the fake Telegram, as an operator (or systemd) would.
A start-up that goes wrong must end the process with one line that names the problem; a
traceback would bury it and, worse, could print the token, a password or the data key.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bot.config import Settings, load_settings
from bot.db.models import Application, AuditEntry, KeyCheck, User
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime, open_runtime
from bot.security import generate_key
from tests.conftest import DATA_KEY, PG_URL
from tests.e2e.test_crash import ROOT
from tests.services.test_conversation_property import COMPLETE


@dataclass
class Started:
    """How a start of the bot ended: its exit code (None: it was serving) and its output."""

    returncode: int | None
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def bot_env(fake: FakeTelegram, settings: Settings | None, schema: str | None) -> dict[str, str]:
    """The environment of a bot process on the test's database and the fake Telegram."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PTB_TIMEDELTA": "true",
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "LOG_LEVEL": "WARNING",
    }
    if settings is not None:
        env["DATABASE_URL"] = settings.database_url
    if schema:
        env["DATABASE_SCHEMA"] = schema
    return env


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m bot ARGS` in the project folder, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def start(fake: FakeTelegram, env: dict[str, str], *args: str) -> Started:
    """Run `python -m bot run` until it exits, or until it serves (then stop it)."""
    mark = len(fake.calls)
    process = spawn(env, "run", *args)
    serving = False
    try:
        async with asyncio.timeout(120):
            while process.poll() is None:
                if any(c.method in ("getUpdates", "setWebhook") for c in fake.calls[mark:]):
                    serving = True
                    process.terminate()
                    break
                await asyncio.sleep(0.05)
            out, err = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Started(None if serving else process.returncode, out, err)


def assert_one_line(started: Started, *secrets: str) -> str:
    """The process stopped with one line on stderr: no traceback, no secret."""
    assert started.returncode not in (None, 0), "the bot started: " + started.stderr[-2000:]
    assert "Traceback" not in started.stderr
    assert len(started.lines) == 1, started.stderr[-3000:]
    for secret in secrets:
        assert secret not in started.stderr and secret not in started.stdout
    return started.lines[0]


def schema_of(settings: Settings, request: pytest.FixtureRequest) -> str | None:
    return None if settings.is_sqlite else str(request.getfixturevalue("postgres_schema"))


async def add_application(runtime: Runtime) -> None:
    """A worker's draft, encrypted under the runtime's key."""
    async with runtime.sessions() as session, session.begin():
        user = User(telegram_id=4401, language="id")
        session.add(user)
        await session.flush()
        session.add(
            Application(
                user_id=user.id, status="draft", answers_enc=runtime.cipher.encrypt(COMPLETE)
            )
        )


# ---------------------------------------------------------------- the data key


async def test_a_different_data_key_is_refused_in_one_line(
    runtime: Runtime, fake: FakeTelegram, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """Started with another DATA_KEY than the data was written with, the bot does not serve:
    every person with a draft would get an error on every message, and a NIK registered
    twice would no longer be noticed."""
    await add_application(runtime)
    env = bot_env(fake, settings, schema_of(settings, request))
    wrong = generate_key()
    refused = await start(fake, {**env, "DATA_KEY": wrong})
    line = assert_one_line(refused, wrong, DATA_KEY)
    assert line.startswith("Configuration error: DATA_KEY:")
    assert "does not open" in line
    # With the right key it starts as before.
    assert (await start(fake, {**env, "DATA_KEY": DATA_KEY})).returncode is None


async def test_a_database_from_before_the_key_check_is_tried_on_a_stored_row(
    runtime: Runtime, fake: FakeTelegram, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """A database without the stored check value (older than it) is checked by opening one
    stored row; with the right key the check value is then written."""
    await add_application(runtime)
    async with runtime.sessions() as session, session.begin():
        await session.execute(delete(KeyCheck))
    env = bot_env(fake, settings, schema_of(settings, request))
    wrong = generate_key()
    line = assert_one_line(await start(fake, {**env, "DATA_KEY": wrong}), wrong, DATA_KEY)
    assert line.startswith("Configuration error: DATA_KEY:")
    assert (await start(fake, {**env, "DATA_KEY": DATA_KEY})).returncode is None
    async with runtime.sessions() as session:
        assert await session.get(KeyCheck, 1) is not None
    # From now on even an empty database would refuse another key.
    async with runtime.sessions() as session, session.begin():
        await session.execute(delete(Application))
    line = assert_one_line(await start(fake, {**env, "DATA_KEY": wrong}), wrong, DATA_KEY)
    assert "does not open" in line


async def test_a_rotation_keeps_the_check_value_under_the_new_key(
    runtime: Runtime, fake: FakeTelegram, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """During a rotation both keys open it; `keys rotate` moves it to the new key, so the
    bot starts with the new key alone and refuses the old one."""
    await add_application(runtime)
    env = bot_env(fake, settings, schema_of(settings, request))
    new = generate_key()
    both = {**env, "DATA_KEY": new, "DATA_KEY_OLD": DATA_KEY}
    assert (await start(fake, both)).returncode is None
    rotated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "keys", "rotate"],
        cwd=ROOT,
        env=both,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "key_check: 1 re-encrypted" in rotated.stdout
    async with runtime.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "keys_rotate"))
    assert entry is not None and entry.actor_label == "cli"
    assert json.loads(entry.details)["finished"] is True
    assert (await start(fake, {**env, "DATA_KEY": new})).returncode is None
    line = assert_one_line(await start(fake, {**env, "DATA_KEY": DATA_KEY}), new, DATA_KEY)
    assert "does not open" in line


async def add_data_with_key_file(tmp_path: Path) -> Settings:
    """An embedded database whose key lives in the key file beside it, holding a draft."""
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    async with open_runtime(settings) as runtime:
        await add_application(runtime)
    return settings


@pytest.mark.parametrize("with_check_value", [True, False], ids=["checked", "older database"])
async def test_a_missing_key_file_is_not_replaced_beside_encrypted_data(
    tmp_path: Path, fake: FakeTelegram, with_check_value: bool
) -> None:
    """The key file is gone (a restore without it, a wrong folder): a new key would leave
    every stored answer unreadable, so the bot refuses and names the file."""
    settings = await add_data_with_key_file(tmp_path)
    key_file = tmp_path / "bot.key"
    old_key = key_file.read_text().strip()
    if not with_check_value:
        async with (
            open_runtime(settings) as runtime,
            runtime.sessions() as session,
            session.begin(),
        ):
            await session.execute(delete(KeyCheck))
    key_file.unlink()

    refused = await start(fake, bot_env(fake, settings, None))
    line = assert_one_line(refused, old_key)
    assert str(key_file) in line and "DATA_KEY" in line
    assert not key_file.exists()


async def test_a_new_database_still_gets_its_key_file(tmp_path: Path, fake: FakeTelegram) -> None:
    """Without DATA_KEY, a first start makes the key file, and the next start uses it."""
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    env = bot_env(fake, settings, None)
    assert (await start(fake, env)).returncode is None
    assert (tmp_path / "bot.key").exists()
    assert (await start(fake, env)).returncode is None


# ---------------------------------------------------------------- other start-up failures

WRONG_TOKEN = "987654321:AAHwrongTokenForTheTest-abcdefghijklmn"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_env(fake: FakeTelegram, tmp_path: Path) -> dict[str, str]:
    """A bot on a new embedded database with a data key, against the fake Telegram."""
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    return {**bot_env(fake, settings, None), "DATA_KEY": DATA_KEY}


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_token_telegram_refuses_is_named_not_printed(
    tmp_path: Path, fake: FakeTelegram, mode: str
) -> None:
    env = {**fresh_env(fake, tmp_path), "TELEGRAM_BOT_TOKEN": WRONG_TOKEN}
    if mode == "webhook":
        env |= {
            "WEBHOOK_URL": "http://127.0.0.1/telegram",
            "WEBHOOK_SECRET": "s3cret-for-the-webhook",
            "WEBHOOK_PORT": str(closed_port()),
        }
    line = assert_one_line(await start(fake, env), WRONG_TOKEN, "s3cret-for-the-webhook")
    assert line.startswith("Cannot start: TELEGRAM_BOT_TOKEN:")
    assert "refused" in line


async def test_an_unreachable_bot_api_is_one_line(tmp_path: Path, fake: FakeTelegram) -> None:
    address = f"http://127.0.0.1:{closed_port()}/bot"
    env = {**fresh_env(fake, tmp_path), "TELEGRAM_API_BASE_URL": address}
    line = assert_one_line(await start(fake, env), fake.token)
    assert line.startswith("Cannot start: TELEGRAM_API_BASE_URL:")
    assert f"127.0.0.1:{address.split(':')[2].split('/')[0]}" in line


async def test_an_unreachable_postgresql_is_one_line_without_the_password(
    fake: FakeTelegram,
) -> None:
    url = f"postgresql+asyncpg://bebas:pw-Rahasia-77@127.0.0.1:{closed_port()}/bebas"
    env = {**bot_env(fake, None, None), "DATABASE_URL": url, "DATA_KEY": DATA_KEY}
    line = assert_one_line(await start(fake, env), "pw-Rahasia-77")
    assert line.startswith("Cannot start: DATABASE_URL:")
    assert "127.0.0.1" in line


@pytest.mark.postgres
async def test_a_missing_postgresql_database_is_one_line(
    fake: FakeTelegram, postgres_schema: str
) -> None:
    url = PG_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    env = {**bot_env(fake, None, None), "DATABASE_URL": url, "DATA_KEY": DATA_KEY}
    line = assert_one_line(await start(fake, env))
    assert line.startswith("Cannot start: DATABASE_URL:")
    assert "no_such_database_here" in line


async def test_an_embedded_database_that_cannot_be_opened_is_one_line(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    (tmp_path / "plain-file").write_text("not a folder")
    env = {
        **fresh_env(fake, tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/plain-file/bot.db",
    }
    line = assert_one_line(await start(fake, env))
    assert line.startswith("Cannot start: DATABASE_URL:")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://bebas:pw-Rahasia-77@db/bebas"),
        ("BROADCAST_RATE", "-1"),
        ("FLOOD_BURST", "many"),
        ("TIMEZONE", "Mars/Olympus"),
        ("WEBHOOK_PORT", "99999"),
        ("DATA_KEY", "pw-Rahasia-77-not-a-fernet-key"),
        ("BRANCH_REGENCIES", "51,71"),
    ],
)
async def test_a_bad_setting_is_named_in_one_line(
    tmp_path: Path, fake: FakeTelegram, setting: str, value: str
) -> None:
    env = {**fresh_env(fake, tmp_path), setting: value}
    line = assert_one_line(await start(fake, env), "pw-Rahasia-77")
    assert line.startswith(f"Configuration error: {setting}:")


async def test_a_webhook_port_in_use_is_one_line(tmp_path: Path, fake: FakeTelegram) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **fresh_env(fake, tmp_path),
            "WEBHOOK_URL": "http://127.0.0.1/telegram",
            "WEBHOOK_SECRET": "s3cret-for-the-webhook",
            "WEBHOOK_PORT": str(port),
        }
        line = assert_one_line(await start(fake, env, "--webhook"), fake.token)
    assert line.startswith("Cannot start: WEBHOOK_PORT:")
    assert str(port) in line
