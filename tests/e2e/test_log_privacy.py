"""A DEBUG log of the real bot holds no personal data: not a NIK or phone in any form the
parsers accept, no name, email, birth date, income, token or typed message text.

`python -m bot run` serves the fake Telegram with LOG_LEVEL=DEBUG, its every log record (of
every logger, the libraries' too) written to a file. A worker registers with the whole form
(heir, email, a typed income), a guest types personal data in every form the parsers take,
a broadcast goes out to the village and staff export the applications, both commands at
DEBUG as well. Then every line the processes logged is searched for what was typed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.core.money import format_rupiah
from bot.core.questions import package
from bot.db.models import Follow, User
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from tests.e2e.chat import Person, texts
from tests.e2e.test_crash import ROOT, BotProcess

TOKEN = "7012345678:AAHfakeButRealisticTokenForLogs_x9"
NIK = "5102051708850003"
NIK_FORMS = ("5102 0517 0885 0003", "5102-0517-0885-0003", "5102.0517.0885.0003", NIK)
PHONE_FORMS = (
    "0812.3456.7890",
    "+62 812-3456-7890",
    "(0812) 3456 7890",
    "0812-3456-7890",
    "62 812 3456 7890",
    "0062 812 3456 7890",
    "081234567890",
)
NAME = "I Made Sukadana"
HEIR = "Ni Luh Sari Dewi"
EMAIL = "made.sukadana@example.com"
BANJAR = "Banjar Dukuh Sari"
INCOME = 2_750_000
BROADCAST = "Rapat BPJS di balai banjar bersama Pak Nyoman Suarjana, hubungi 0857-1234-9876."
# Telegram profile of the worker (sent with every update).
PROFILE = ("Kadek", "Wirawan", "kadek_wirawan_88")


def spread(digits: str) -> re.Pattern[str]:
    """The digits in that order with up to three non-alphanumerics between any two."""
    return re.compile(r"[^0-9A-Za-z]{0,3}".join(digits))


def needles(typed: list[str]) -> dict[str, re.Pattern[str]]:
    """What must not be in a log line, by what it is."""
    plain = {
        "name": NAME.split()[-1],
        "heir name": "Luh Sari",
        "email": EMAIL.split("@")[0],
        "banjar": "Dukuh Sari",
        "broadcast": "Suarjana",
        "profile name": PROFILE[1],
        "username": PROFILE[2],
        "token": TOKEN.split(":")[1],
        "birth date": "17 Agustus 1985",
    }
    found = {what: re.compile(re.escape(text), re.IGNORECASE) for what, text in plain.items()}
    found |= {
        "NIK": spread(NIK),
        "phone": spread("81234567890"),
        "heir phone": spread("81311112222"),
        "phone in the broadcast": spread("85712349876"),
        "birth date (day first)": re.compile(r"17[-/. ]0?8[-/. ](19)?85(?!\d)"),
        "birth date (ISO)": re.compile(r"1985-08-17"),
        "income": spread(str(INCOME)),
    }
    for number, text in enumerate(typed):
        if len(text) >= 6 and not text.startswith("/"):
            found[f"typed text {number}"] = re.compile(re.escape(text), re.IGNORECASE)
    return found


class LoggedBot(BotProcess):
    """The bot process with everything it writes (stdout and stderr) going to a file."""

    def __init__(self, fake: FakeTelegram, settings: Settings, schema: str | None, log: Path):
        super().__init__(fake, settings, schema)
        self.log_path = log
        self.env.update(TELEGRAM_BOT_TOKEN=TOKEN, LOG_LEVEL="DEBUG")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )

    def _stderr(self) -> bytes:
        return b""


def command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


async def register(person: Person, typed: list[str]) -> None:
    """The whole form, typed where typing is possible, with an heir and an email."""

    async def say(text: str) -> None:
        typed.append(text)
        await person.say(text)

    await person.say("/start")
    await person.tap("menu.register")
    await person.tap("consent.yes")
    await say(NIK_FORMS[0])
    await say(NAME)
    await say("17-08-1985")
    await person.tap("gender.male")
    await say(PHONE_FORMS[0])
    await person.tap_label("Kabupaten Tabanan")
    await person.tap_label("Tabanan")
    await say("dajan peken")
    await say(BANJAR)
    await person.tap("nav.skip")
    await person.tap("occupation.petani")
    await say("2.750.000")
    settings = Settings(_env_file=None)
    basic = package(INCOME, settings.rates, with_jht=False)
    await person.tap("programs.basic", amount=format_rupiah(basic.monthly))
    await person.tap("period.option.3", amount=format_rupiah(basic.monthly * 3))
    await say(HEIR)
    await person.tap("relationship.pasangan")
    await say("+62 813-1111-2222")
    await say(EMAIL)
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies), person.last_text


async def test_a_debug_log_holds_no_personal_data(
    runtime: Runtime, settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    schema = None if settings.is_sqlite else str(request.getfixturevalue("postgres_schema"))
    typed: list[str] = []
    logs: list[str] = []
    async with FakeTelegram(token=TOKEN) as fake:
        bot = LoggedBot(fake, settings, schema, tmp_path / "bot.log")
        await bot.start()
        try:
            worker = Person(fake.user(5501, PROFILE[0], last_name=PROFILE[1], username=PROFILE[2]))
            await register(worker, typed)
            # The worker asks for everything held about them (a text and a JSON file).
            replies = await worker.say("/dataku")
            assert any(m.file_name for m in replies), texts(replies)
            # Someone types personal data where no question asks for it.
            guest = Person(fake.user(5502, "Tamu"))
            await guest.say("/start")
            for text in (*NIK_FORMS, *PHONE_FORMS, f"NIK saya {NIK_FORMS[2]} HP {PHONE_FORMS[1]}"):
                typed.append(text)
                await guest.say(text)

            async with runtime.sessions() as session, session.begin():
                user = await session.scalar(select(User).where(User.telegram_id == 5501))
                assert user is not None
                if not await session.scalar(select(Follow).where(Follow.user_id == user.id)):
                    session.add(Follow(user_id=user.id, village_code="51.02.05.2006"))
            news = tmp_path / "news.txt"
            news.write_text(BROADCAST, encoding="utf-8")
            typed.append(BROADCAST)
            sent = await asyncio.to_thread(
                command,
                bot.env,
                "broadcast",
                "--village",
                "51.02.05.2006",
                "--text-file",
                str(news),
            )
            assert sent.returncode == 0, sent.stderr
            logs.append(sent.stderr)
            await worker.user.replies(timeout=60)
            assert "Suarjana" in worker.last_text

            for fmt in ("csv", "xlsx"):
                output = tmp_path / f"export.{fmt}"
                exported = await asyncio.to_thread(
                    command, bot.env, "export", "--format", fmt, "--output", str(output)
                )
                assert exported.returncode == 0, exported.stderr
                logs.append(exported.stderr)
            assert NIK in (tmp_path / "export.csv").read_text(encoding="utf-8-sig")
        finally:
            await bot.stop()
    logs.append(bot.log_path.read_text(encoding="utf-8", errors="replace"))

    lines = [line for log in logs for line in log.splitlines()]
    # DEBUG is on: the log is not empty, so an empty scan cannot pass by accident.
    assert any(" DEBUG " in line for line in lines)
    leaks = [
        f"{what}: {line[:300]}"
        for line in lines
        for what, pattern in needles(typed).items()
        if pattern.search(line)
    ]
    assert leaks == [], "\n".join(leaks[:40])
