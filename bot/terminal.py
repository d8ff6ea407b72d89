"""The terminal chat: a tester talks to the real bot through the fake Telegram.

The tester types an answer (sent as text), a button number, or a colon command such as
``:kontak 081234567890``; the bot's messages are printed as they arrive, with their buttons
numbered. Several simulated users can take turns (``:pengguna N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bot.fakebot import BotMessage, ChatEvent, FakeTelegram, FakeUser
from bot.fakebot.records import button_label

# How common files begin, for a file whose name and MIME type say nothing.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"%PDF-", ".pdf"),
)

ReadLine = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]
Translate = Callable[[str], str]


async def run_terminal_chat(
    fake: FakeTelegram,
    *,
    users: Sequence[FakeUser],
    read_line: ReadLine,
    write: Write,
    text: Translate,
    files_dir: Path | None = None,
) -> None:
    """Chat with the bot until ``:keluar`` or the end of input.

    Files the bot sends are saved under ``files_dir`` (by default a temporary folder that is
    removed when the chat ends).
    """
    if not users:
        raise ValueError("the terminal chat needs at least one simulated user")
    with contextlib.ExitStack() as stack:
        if files_dir is None:
            temporary = tempfile.TemporaryDirectory(prefix="bebas-cemas-chat-")
            files_dir = Path(stack.enter_context(temporary))
        session = _Session(fake, list(users), write, text, files_dir)
        events = stack.enter_context(fake.subscribe())
        printer = asyncio.create_task(session.show_events(events))
        try:
            session.greet()
            while (line := await read_line()) is not None and await session.handle(line):
                pass
        finally:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer
            # Whatever the bot sent before the tester left is still worth seeing.
            while not events.empty():
                session.show(events.get_nowait())


def stdin_lines() -> ReadLine:
    """Return a ``read_line`` that reads standard input without blocking the event loop.

    A daemon thread does the blocking reads, so an unfinished read never delays the exit.
    """
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    reader: threading.Thread | None = None

    def pump(loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                line: str | None = input()
            except EOFError:
                line = None
            with contextlib.suppress(RuntimeError):  # the loop closed while we were reading
                loop.call_soon_threadsafe(lines.put_nowait, line)
            if line is None:
                return

    async def read_line() -> str | None:
        nonlocal reader
        if reader is None:
            loop = asyncio.get_running_loop()
            reader = threading.Thread(target=pump, args=(loop,), daemon=True, name="chat-input")
            reader.start()
        return await lines.get()

    return read_line


def saved_file_name(message: BotMessage) -> str:
    """The name to save a file the bot sent under, with the extension its content calls for."""
    name = Path(message.file_name or "").name
    if name and mimetypes.guess_type(name, strict=False)[0] is not None:
        return name
    # python-telegram-bot calls a nameless upload "application.octet-stream": no name at all.
    extension = None
    if message.mime_type and message.mime_type != "application/octet-stream":
        extension = mimetypes.guess_extension(message.mime_type, strict=False)
    if extension is None:
        head = message.file_bytes or b""
        extension = next((ext for magic, ext in _SIGNATURES if head.startswith(magic)), ".bin")
    return f"{message.kind}{extension}"


class _Session:
    """One terminal chat: who is typing now and how the bot's messages are shown."""

    def __init__(
        self,
        fake: FakeTelegram,
        users: list[FakeUser],
        write: Write,
        text: Translate,
        files_dir: Path,
    ) -> None:
        self.fake = fake
        self.users = users
        self.active = users[0]
        self.write = write
        self.text = text
        self.files_dir = files_dir
        self.phone_given: set[int] = set()
        self.printed: dict[tuple[int, int], str] = {}
        self.commands: dict[str, Callable[[str], Awaitable[bool]]] = {
            "kontak": self._own_contact,
            "kontak-lain": self._other_contact,
            "stiker": self._simple(FakeUser.send_sticker),
            "foto": self._simple(FakeUser.send_photo),
            "suara": self._simple(FakeUser.send_voice),
            "lokasi": self._simple(FakeUser.send_location),
            "berkas": self._document,
            "pengguna": self._switch_user,
            "buka": self._open_link,
            "bantuan": self._help,
            "keluar": self._quit,
        }

    def say(self, key: str, **params: Any) -> None:
        """Write one of the terminal's own texts."""
        self.write(self.text(key) % params if params else self.text(key))

    def greet(self) -> None:
        """Explain how to chat and who is typing."""
        self.say("terminal.welcome", name=self.active.first_name)
        if len(self.users) > 1:
            self._list_users()

    # Incoming.

    async def show_events(self, events: asyncio.Queue[ChatEvent]) -> None:
        """Print the bot's messages as they arrive."""
        while True:
            self.show(await events.get())

    def show(self, event: ChatEvent) -> None:
        """Print one thing the bot did in the chat of a simulated user."""
        user = next((user for user in self.users if user.chat_id == event.chat_id), None)
        if user is None:
            return
        if event.kind == "answered" and event.answer and event.answer.get("text"):
            self.say("terminal.alert", text=event.answer["text"])
        elif event.kind == "deleted" and event.message:
            preview = event.message.text or event.message.caption or event.message.file_name
            self.say("terminal.deleted", preview=(preview or "")[:40])
        elif event.kind in ("sent", "edited") and event.message:
            self._show_message(user, event.message, edited=event.kind == "edited")

    def _show_message(self, user: FakeUser, message: BotMessage, *, edited: bool) -> None:
        body = message.text if message.kind == "text" else message.caption
        before = self.printed.get((message.chat_id, message.message_id))
        self.printed[(message.chat_id, message.message_id)] = body or ""
        if edited and before is not None and body is not None and body.startswith(before):
            # Only what the edit added is new to the reader (e.g. the chosen answer).
            added = body[len(before) :].strip()
            if not added and not message.keyboard_rows():
                return
            body = added
        header = self.fake.bot_name
        if len(self.users) > 1:
            header += f" → {user.first_name}"
        if edited:
            header += " " + self.text("terminal.edited")
        self.write(header + ":")
        if message.kind != "text":
            self._show_file(message)
        if body:
            self.write(body)
        number = 0
        for row in message.keyboard_rows():
            labels = []
            for button in row:
                number += 1
                labels.append(f"[{number}] {button_label(button)}")
            self.write("  " + "  ".join(labels))

    def _show_file(self, message: BotMessage) -> None:
        if message.file_bytes is None:
            if message.kind == "photo":
                self.say("terminal.photo")
            else:
                self.say("terminal.document", name=message.file_name or "")
            return
        name = saved_file_name(message)
        path = self.files_dir / str(message.chat_id) / f"{message.message_id}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(message.file_bytes)
        key = "terminal.photo.saved" if message.kind == "photo" else "terminal.document.saved"
        self.say(key, path=path)

    # Outgoing.

    async def handle(self, line: str) -> bool:
        """Act on one typed line; return False when the tester wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            name, _, argument = line[1:].partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                self.say("terminal.command.unknown", command=line.split()[0])
                return True
            return await command(argument.strip())
        if line.isdigit() and await self._press_number(int(line)):
            return True
        await self.active.send_text(line)
        return True

    async def _press_number(self, number: int) -> bool:
        """Press button ``number`` of the newest keyboard; False when there is no such button."""
        keyboard = self.active.keyboard()
        flat = [button for row in keyboard.keyboard_rows() for button in row] if keyboard else []
        if keyboard is None or not 1 <= number <= len(flat):
            return False
        button = flat[number - 1]
        if isinstance(button, dict) and button.get("url"):
            self.say("terminal.button.url", url=button["url"])
        elif isinstance(button, dict) and button.get("request_contact") and not self._has_phone():
            self.say("terminal.contact.ask")
        else:
            await self.active.press(button_label(button), message=keyboard)
        return True

    def _has_phone(self) -> bool:
        return self.active.user_id in self.phone_given

    async def _own_contact(self, argument: str) -> bool:
        if argument:
            self.active.phone_number = argument
            self.phone_given.add(self.active.user_id)
        if not self._has_phone():
            self.say("terminal.contact.ask")
        else:
            await self.active.send_contact(self.active.phone_number)
        return True

    async def _other_contact(self, argument: str) -> bool:
        if not argument:
            self.say("terminal.contact.other.ask")
        else:
            await self.active.send_contact(argument, user_id=None)
        return True

    def _simple(
        self, action: Callable[[FakeUser], Awaitable[None]]
    ) -> Callable[[str], Awaitable[bool]]:
        async def run(argument: str) -> bool:
            await action(self.active)
            return True

        return run

    async def _document(self, argument: str) -> bool:
        if argument:
            await self.active.send_document(argument)
        else:
            await self.active.send_document()
        return True

    async def _switch_user(self, argument: str) -> bool:
        if not argument:
            self._list_users()
        elif argument.isdigit() and 1 <= int(argument) <= len(self.users):
            self.active = self.users[int(argument) - 1]
            self.say("terminal.users.switched", name=self.active.first_name)
        else:
            self.say("terminal.users.unknown", number=argument)
        return True

    def _list_users(self) -> None:
        self.say("terminal.users")
        for number, user in enumerate(self.users, start=1):
            line = f"  [{number}] {user.first_name} ({user.user_id})"
            if user is self.active:
                line += " " + self.text("terminal.users.active")
            self.write(line)

    async def _open_link(self, argument: str) -> bool:
        """Open a t.me link (or its bare start payload) as the active user: /start PAYLOAD."""
        payload = argument.rpartition("start=")[2].strip() if argument else ""
        if not payload:
            self.say("terminal.open.usage")
            return True
        await self.active.send_command("start", payload)
        return True

    async def _help(self, argument: str) -> bool:
        self.say("terminal.help")
        return True

    async def _quit(self, argument: str) -> bool:
        self.say("terminal.bye")
        return False
