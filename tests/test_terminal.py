"""A tester chats with the real bot from the terminal, through the fake Telegram."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.fakebot import FakeTelegram, FakeUser
from bot.fakebot.harness import application_for, polling
from bot.security import setup_logging
from bot.terminal import run_terminal_chat, stdin_lines

MENU = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Daftar", callback_data="register"),
            InlineKeyboardButton("Info program", callback_data="info"),
        ]
    ]
)
PNG = b"\x89PNG\r\n\x1a\n chart"
JPEG = b"\xff\xd8\xff\xe0 photo"
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
ATTACHMENTS = ("contact", "location", "sticker", "photo", "voice", "document")


def message_of(update: Update) -> Message:
    assert update.effective_message is not None
    return update.effective_message


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the main menu."""
    await message_of(update).reply_text("Selamat datang", reply_markup=MENU)


async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send a spreadsheet."""
    await message_of(update).reply_document(b"PK report", filename="laporan.xlsx")


async def pictures(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send a chart photo without a name, a named photo and a PNG poster as a document."""
    message = message_of(update)
    await message.reply_photo(PNG)
    await message.reply_photo(JPEG, filename="siaran.jpg")
    await message.reply_document(PNG, filename="poster-51-02-05-2006.png")


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a menu button and replace the menu with the choice."""
    assert update.callback_query is not None
    await update.callback_query.answer("Dipilih")
    await update.callback_query.edit_message_text(f"chosen {update.callback_query.data}")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Repeat a text."""
    await message_of(update).reply_text(f"echo {message_of(update).text}")


async def describe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say what kind of attachment arrived (and whose contact it is)."""
    message = message_of(update)
    kind = next(name for name in ATTACHMENTS if getattr(message, name))
    detail = f" {message.contact.phone_number} {message.contact.user_id}" if message.contact else ""
    await message.reply_text(f"got {kind}{detail}")


@pytest.fixture
async def app(fake: FakeTelegram) -> AsyncIterator[None]:
    """Run a small real bot against the fake while the test runs."""
    application = application_for(fake)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("laporan", report))
    application.add_handler(CommandHandler("gambar", pictures))
    application.add_handler(CallbackQueryHandler(choose))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(MessageHandler(~filters.TEXT, describe))
    async with polling(application):
        yield


def files_in(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


class ScriptedTester:
    """Someone at the keyboard: waits until the screen shows a text, then types a line."""

    def __init__(self, *steps: tuple[str, str]) -> None:
        self.steps = list(steps)
        self.screen: list[str] = []
        self._unread_from = 0
        self._written = asyncio.Event()

    def write(self, line: str) -> None:
        self.screen.append(line)
        self._written.set()

    async def read_line(self) -> str | None:
        if not self.steps:
            return None
        expected, typed = self.steps.pop(0)
        async with asyncio.timeout(5):
            while not any(expected in line for line in self.screen[self._unread_from :]):
                self._written.clear()
                await self._written.wait()
        self._unread_from = len(self.screen)
        return typed

    async def chat(self, fake: FakeTelegram, *users: FakeUser, files_dir: Path) -> str:
        await run_terminal_chat(
            fake,
            users=users,
            read_line=self.read_line,
            write=self.write,
            text=lambda key: key,
            files_dir=files_dir,
        )
        return "\n".join(self.screen)


@pytest.mark.usefixtures("app")
async def test_a_tester_types_button_numbers_and_sees_the_message_change(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    tester = ScriptedTester(
        ("terminal.welcome", "/start"),
        ("[1] Daftar  [2] Info program", "2"),
        ("chosen info", "7"),
        ("echo 7", ":keluar"),
    )

    screen = await tester.chat(fake, fake.user(1001), files_dir=tmp_path)

    assert "Bebas Cemas:\nSelamat datang\n  [1] Daftar  [2] Info program" in screen
    assert "Bebas Cemas terminal.edited:\nchosen info" in screen
    assert "terminal.alert" in screen
    assert screen.endswith("terminal.bye")


@pytest.mark.usefixtures("app")
async def test_colon_commands_share_contacts_and_send_attachments(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    made = fake.user(1001)
    tester = ScriptedTester(
        ("terminal.welcome", ":kontak"),
        ("terminal.contact.ask", ":kontak 081234567890"),
        ("got contact 081234567890 1001", ":kontak-lain 081298765432"),
        ("got contact 081298765432 None", ":lokasi"),
        ("got location", ":stiker"),
        ("got sticker", ":foto"),
        ("got photo", ":suara"),
        ("got voice", ":berkas kk.pdf"),
        ("got document", ":bantuan"),
        ("terminal.help", ":apa"),
    )

    screen = await tester.chat(fake, made, files_dir=tmp_path)

    assert screen.endswith("terminal.command.unknown")
    assert made.phone_number == "081234567890"


@pytest.mark.usefixtures("app")
async def test_a_leader_and_a_resident_take_turns_in_one_session(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    leader, resident = fake.user(1001, "Made"), fake.user(1002, "Ketut")
    tester = ScriptedTester(
        ("terminal.welcome", ":pengguna 2"),
        ("terminal.users.switched", "halo"),
        ("echo halo", ":pengguna 9"),
        ("terminal.users.unknown", ":pengguna"),
    )

    screen = await tester.chat(fake, leader, resident, files_dir=tmp_path)

    assert "Bebas Cemas → Ketut:\necho halo" in screen
    assert fake.messages(leader.chat_id) == []
    assert screen.endswith("[1] Made (1001)\n  [2] Ketut (1002) terminal.users.active")


@pytest.mark.usefixtures("app")
async def test_a_document_from_the_bot_is_saved_for_the_tester(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    tester = ScriptedTester(
        ("terminal.welcome", "/laporan"), ("terminal.document.saved", ":keluar")
    )

    await tester.chat(fake, fake.user(1001), files_dir=tmp_path)

    assert files_in(tmp_path) == {"2-laporan.xlsx": b"PK report"}


@pytest.mark.usefixtures("app")
async def test_pictures_from_the_bot_are_saved_with_the_extension_of_their_kind(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """A nameless chart is saved as PNG, a named photo keeps its JPG name, a poster its PNG."""
    tester = ScriptedTester(("terminal.welcome", "/gambar"), ("terminal.document.saved", ":keluar"))

    await tester.chat(fake, fake.user(1001), files_dir=tmp_path)

    assert files_in(tmp_path) == {
        "2-photo.png": PNG,
        "3-siaran.jpg": JPEG,
        "4-poster-51-02-05-2006.png": PNG,
    }


async def test_standard_input_is_read_line_by_line_until_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("halo\n:keluar\n"))
    read_line = stdin_lines()

    assert [await read_line(), await read_line(), await read_line()] == ["halo", ":keluar", None]


def test_the_chat_keeps_start_up_log_lines_off_the_screen(tmp_path: Path) -> None:
    """`python -m bot chat`: migrations and "is serving" go to data/chat.log, not the chat."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.db",
        "PTB_TIMEDELTA": "true",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input=":keluar\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not [line for line in result.stdout.splitlines() if LOG_RECORD.match(line)]
    log = (tmp_path / "data" / "chat.log").read_text(encoding="utf-8")
    assert "database migration(s)" in log and "is serving" in log


def test_an_error_during_the_chat_shows_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The screen gets the error's first line and where to read more; the file the traceback."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    log_file = tmp_path / "chat.log"
    try:
        setup_logging("INFO", [], log_file=log_file)
        logging.getLogger("bot.test").info("Bot is serving")
        try:
            raise RuntimeError("the database went away")
        except RuntimeError:
            logging.getLogger("bot.test").exception("Error while handling an update")
        for handler in root.handlers:
            handler.close()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

    screen = capsys.readouterr().err.splitlines()
    assert screen == [f"[error] Error while handling an update (details: {log_file})"]
    written = log_file.read_text(encoding="utf-8")
    assert "Bot is serving" in written and "RuntimeError: the database went away" in written
