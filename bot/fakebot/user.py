"""A simulated Telegram user: what they send to the bot and how they wait for its answers."""

from __future__ import annotations

import asyncio
import enum
import time
from typing import Any, Protocol

from bot.fakebot.chat import ChatState
from bot.fakebot.records import ApiCall, BotMessage, button_label
from bot.fakebot.wire import utf16_length


class _Own(enum.Enum):
    """Marks "the user's own id" as the default of ``send_contact``."""

    ID = enum.auto()


OWN_ID = _Own.ID

# Small but recognisable file contents, so a bot that downloads them gets real bytes.
_PHOTO_BYTES = b"\xff\xd8\xff\xe0 fake photo \xff\xd9"
_VOICE_BYTES = b"OggS fake voice"
_STICKER_BYTES = b"RIFF fake sticker WEBP"
_PDF_BYTES = b"%PDF-1.4\n% fake document\n%%EOF\n"


class UserSide(Protocol):
    """What a simulated user needs of the fake Telegram (the server provides it)."""

    calls: list[ApiCall]
    tracks_handling: bool

    def enqueue_update(self, body: dict[str, Any]) -> int: ...

    def store_file(
        self, content: bytes, *, file_name: str | None = None, mime_type: str | None = None
    ) -> dict[str, Any]: ...

    def open_callback_query(self, user: FakeUser) -> str: ...

    def set_blocked(self, user: FakeUser, *, blocked: bool) -> None: ...

    def message_json(self, message: BotMessage) -> dict[str, Any]: ...


class FakeUser:
    """A person chatting privately with the bot (their chat id is their user id)."""

    def __init__(
        self,
        fake: UserSide,
        chat: ChatState,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
    ) -> None:
        self._fake = fake
        self._chat = chat
        self._mark = 0
        self.user_id = user_id
        self.chat_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        # Telegram shares numbers without a leading "+" when a contact button is pressed.
        self.phone_number = f"62812{user_id % 10**8:08d}"
        # The update id of this user's newest message or button press.
        self.last_update_id: int | None = None
        self.callback_answers: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"FakeUser({self.user_id}, {self.first_name!r})"

    def as_json(self) -> dict[str, Any]:
        """Return the Bot API ``User`` object of this person."""
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def chat_json(self) -> dict[str, Any]:
        """Return the Bot API ``Chat`` object of the private chat with the bot."""
        chat: dict[str, Any] = {"id": self.chat_id, "type": "private"}
        chat["first_name"] = self.first_name
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    # What the user sends.

    async def send_text(self, text: str) -> None:
        """Send a text message; a leading ``/command`` gets its bot_command entity."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_length(command)}
            ]
        self._send_message(content)

    async def send_command(self, command: str, args: str = "") -> None:
        """Send ``/command args`` as Telegram does when a command is typed or tapped."""
        text = "/" + command.removeprefix("/")
        await self.send_text(f"{text} {args}" if args else text)

    async def send_contact(
        self,
        phone_number: str,
        *,
        user_id: int | _Own | None = OWN_ID,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> None:
        """Share a contact: one's own by default, ``user_id=None`` for one not on Telegram."""
        own = user_id is OWN_ID
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or (self.first_name if own else "Ketut"),
        }
        surname = last_name or (self.last_name if own else None)
        if surname:
            contact["last_name"] = surname
        if own:
            contact["user_id"] = self.user_id
        elif isinstance(user_id, int):
            contact["user_id"] = user_id
        self._send_message({"contact": contact})

    async def send_sticker(self) -> None:
        """Send a sticker."""
        file = self._fake.store_file(_STICKER_BYTES, file_name="sticker.webp")
        sticker = {**file, "type": "regular", "width": 512, "height": 512}
        sticker.update({"is_animated": False, "is_video": False, "emoji": "🙏"})
        self._send_message({"sticker": sticker})

    async def send_photo(self, *, caption: str | None = None) -> None:
        """Send a photo (Telegram delivers several sizes; the last is the largest)."""
        file = self._fake.store_file(_PHOTO_BYTES, file_name="photo.jpg")
        sizes = [{**file, "width": 320, "height": 240}, {**file, "width": 1280, "height": 960}]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        self._send_message(content)

    async def send_voice(self) -> None:
        """Send a voice note."""
        file = self._fake.store_file(_VOICE_BYTES, file_name="voice.ogg")
        self._send_message({"voice": {**file, "duration": 3, "mime_type": "audio/ogg"}})

    async def send_location(self, latitude: float = -8.65, longitude: float = 115.2) -> None:
        """Share a location (Denpasar by default)."""
        self._send_message({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_document(self, file_name: str = "ktp.pdf", content: bytes | None = None) -> None:
        """Send a file as a document."""
        file = self._fake.store_file(content or _PDF_BYTES, file_name=file_name)
        mime_type = "application/pdf" if file_name.lower().endswith(".pdf") else None
        document = {**file, "file_name": file_name}
        if mime_type:
            document["mime_type"] = mime_type
        self._send_message({"document": document})

    async def press(self, label: str, *, message: BotMessage | None = None) -> None:
        """Press the button with this label (or callback data) on a message of the bot.

        Without ``message`` the newest message with buttons is used, then the reply keyboard
        that is still on screen.
        """
        candidates = [message] if message else [self.keyboard(), self._chat.shown_reply_keyboard()]
        for candidate in candidates:
            button = candidate.button(label) if candidate else None
            if candidate is None or button is None:
                continue
            if candidate.has_inline_keyboard and isinstance(button, dict):
                await self._press_inline(candidate, button)
            else:
                await self._press_reply(button)
            return
        offered = next((c for c in candidates if c is not None), None)
        if offered is None:
            raise LookupError(f"No button {label!r}: the bot sent no buttons to {self!r}")
        raise LookupError(
            f"No button {label!r} on message {offered.message_id} to {self!r}; "
            f"its buttons are {offered.buttons()}"
        )

    def offers(self, label: str) -> bool:
        """Whether ``press(label)`` would find the button now."""
        candidates = (self.keyboard(), self._chat.shown_reply_keyboard())
        return any(c is not None and c.button(label) is not None for c in candidates)

    async def press_data(self, callback_data: str, *, message_id: int) -> None:
        """Send a raw callback query for a message, even with data the bot never offered."""
        message = self._chat.find(message_id)
        if message is None:
            raise LookupError(f"The bot has no message {message_id} in the chat of {self!r}")
        self._send_callback(message, callback_data)

    async def block_bot(self) -> None:
        """Block the bot: its sends now fail with 403 and it gets a my_chat_member update."""
        self._mark = len(self._chat.changes)
        self._fake.set_blocked(self, blocked=True)

    async def unblock_bot(self) -> None:
        """Unblock the bot (Telegram tells it with a my_chat_member update)."""
        self._mark = len(self._chat.changes)
        self._fake.set_blocked(self, blocked=False)

    # What the user sees.

    @property
    def last(self) -> BotMessage | None:
        """The newest message of the bot in this chat."""
        current = self._chat.current()
        return current[-1] if current else None

    def keyboard(self) -> BotMessage | None:
        """Return the newest message of the bot in this chat that has buttons."""
        return self._chat.newest_keyboard()

    def reply_keyboard(self) -> BotMessage | None:
        """Return the message whose reply keyboard the client holds now, if any."""
        return self._chat.shown_reply_keyboard()

    async def replies(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - the bot's deadline, named as tests expect
        settle: float = 0.15,
        min_count: int = 1,
    ) -> list[BotMessage]:
        """Wait for the bot's answer and return the messages it sent or edited.

        Counts from the user's last action (or the previous ``replies``); once ``min_count``
        messages changed, waits until the bot has been quiet in this chat for ``settle`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._fake.tracks_handling:
            # The driver reports handled updates: once all are, every reply has been sent.
            while self._chat.updates_handled < self._chat.updates_sent:
                if not await self._chat.activity.wait(deadline - loop.time()):
                    raise TimeoutError(self._describe_wait(timeout, min_count))
            settle = 0.0
        while len(self._chat.changed_since(self._mark)) < min_count:
            if not await self._chat.activity.wait(deadline - loop.time()):
                raise TimeoutError(self._describe_wait(timeout, min_count))
        while loop.time() < deadline and await self._chat.activity.wait(
            min(settle, deadline - loop.time())
        ):
            pass
        changed = self._chat.changed_since(self._mark)
        self._mark = len(self._chat.changes)
        return changed

    async def reply(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - see replies
        settle: float = 0.15,
        min_count: int = 1,
    ) -> BotMessage:
        """Wait for the bot's answer and return its last new or edited message."""
        changed = await self.replies(timeout=timeout, settle=settle, min_count=min_count)
        return changed[-1]

    # Plumbing.

    def _send_message(self, content: dict[str, Any]) -> None:
        message = {
            "message_id": self._chat.next_message_id(),
            "from": self.as_json(),
            "chat": self.chat_json(),
            "date": int(time.time()),
            **content,
        }
        self._chat.user_message_ids.add(message["message_id"])
        self._mark = len(self._chat.changes)
        self.last_update_id = self._fake.enqueue_update({"message": message})

    def _send_callback(self, message: BotMessage, data: str) -> None:
        self._mark = len(self._chat.changes)
        self.last_update_id = self._fake.enqueue_update(
            {
                "callback_query": {
                    "id": self._fake.open_callback_query(self),
                    "from": self.as_json(),
                    "chat_instance": str(self.chat_id),
                    "message": self._fake.message_json(message),
                    "data": data,
                }
            }
        )

    async def _press_inline(self, message: BotMessage, button: dict[str, Any]) -> None:
        data = button.get("callback_data")
        if data is None:
            raise ValueError(
                f"Button {button_label(button)!r} sends nothing to the bot (it is not a callback "
                f"button: {button})"
            )
        self._send_callback(message, str(data))

    async def _press_reply(self, button: str | dict[str, Any]) -> None:
        if isinstance(button, dict) and button.get("request_contact"):
            await self.send_contact(self.phone_number)
        elif isinstance(button, dict) and button.get("request_location"):
            await self.send_location()
        else:
            await self.send_text(button_label(button))

    def _describe_wait(self, timeout: float, min_count: int) -> str:
        got = len(self._chat.changed_since(self._mark))
        recent = [
            f"{call.method}({call.params.get('chat_id', '')})"
            + (f" -> {call.error}" if call.error else "")
            for call in self._fake.calls[-8:]
            if call.method.lower() != "getupdates"
        ]
        return (
            f"{self!r} waited {timeout} s for {min_count} new or edited bot message(s) and got "
            f"{got}. Latest Bot API calls (getUpdates left out): {recent or 'none'}. "
            "Is the bot running against this fake, and did its handler raise?"
        )
