"""What the fake Telegram remembers: the bot's messages, every API call, traffic counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class UploadedFile:
    """A file part of a multipart Bot API request."""

    file_name: str
    content: bytes
    content_type: str | None = None


@dataclass
class ApiCall:
    """One Bot API request as the fake received it (``error`` is set when it was refused)."""

    method: str
    params: dict[str, Any]
    at: float
    error: str | None = None


def button_label(button: str | dict[str, Any]) -> str:
    """Return the label of an inline or reply keyboard button (reply buttons may be bare text)."""
    return button if isinstance(button, str) else str(button.get("text", ""))


@dataclass
class WebhookPost:
    """One POST of an update to the bot's webhook, and how the bot answered (0: no answer)."""

    update_id: int
    chat_id: int | None
    url: str
    status: int
    at: float
    wall_time: float
    error: str = ""

    @property
    def accepted(self) -> bool:
        """The bot answered 2xx: Telegram forgets the update."""
        return 200 <= self.status < 300


@dataclass
class BotMessage:
    """A message the bot sent to a chat, in its current state (edits applied)."""

    message_id: int
    chat_id: int
    text: str | None = None
    caption: str | None = None
    reply_markup: dict[str, Any] | None = None
    kind: str = "text"
    file_name: str | None = None
    file_bytes: bytes | None = None
    # The MIME type the bot declared for an uploaded file.
    mime_type: str | None = None
    edits: int = 0
    parse_mode: str | None = None
    entities: list[dict[str, Any]] | None = None
    file_id: str | None = None
    date: int = 0
    edit_date: int | None = None
    deleted: bool = False

    def keyboard_rows(self) -> list[list[str | dict[str, Any]]]:
        """Return the rows of the inline or reply keyboard (empty when there is none)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [list(row) for row in rows]

    @property
    def has_keyboard(self) -> bool:
        """Whether the message carries buttons a user can press."""
        return any(self.keyboard_rows())

    @property
    def has_inline_keyboard(self) -> bool:
        """Whether the buttons are inline buttons (kept on the message itself)."""
        return bool(self.reply_markup and self.reply_markup.get("inline_keyboard"))

    def buttons(self) -> list[list[str]]:
        """Return the labels of the keyboard, row by row."""
        return [[button_label(button) for button in row] for row in self.keyboard_rows()]

    def button(self, label: str) -> str | dict[str, Any] | None:
        """Return the button with this exact label, else the inline button with this data."""
        flat = [button for row in self.keyboard_rows() for button in row]
        for button in flat:
            if button_label(button) == label:
                return button
        for button in flat:
            if isinstance(button, dict) and button.get("callback_data") == label:
                return button
        return None

    def button_data(self, label: str) -> str | None:
        """Return the callback_data of the inline button with this label."""
        for row in self.keyboard_rows():
            for button in row:
                if isinstance(button, dict) and button.get("text") == label:
                    data = button.get("callback_data")
                    return str(data) if data is not None else None
        return None

    def summary(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the message (file bytes replaced by their size)."""
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "kind": self.kind,
            "text": self.text,
            "caption": self.caption,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
            "buttons": self.buttons(),
            "file_name": self.file_name,
            "file_size": None if self.file_bytes is None else len(self.file_bytes),
            "edits": self.edits,
        }


EventKind = Literal["sent", "edited", "deleted", "answered"]


@dataclass(frozen=True)
class ChatEvent:
    """Something the bot did in a chat, as seen by a subscriber of the fake."""

    chat_id: int
    kind: EventKind
    message: BotMessage | None = None
    answer: dict[str, Any] | None = None


@dataclass
class SendStats:
    """Counts of the bot's sends to one chat: delivered, refused with 429, refused with 403."""

    sent: int = 0
    rate_limited: int = 0
    forbidden: int = 0


@dataclass
class TrafficStats:
    """Send counts per chat and in total, for benchmarks."""

    per_chat: dict[int, SendStats] = field(default_factory=dict)

    @property
    def total(self) -> SendStats:
        """Sum the counts over all chats."""
        return SendStats(
            sent=sum(stats.sent for stats in self.per_chat.values()),
            rate_limited=sum(stats.rate_limited for stats in self.per_chat.values()),
            forbidden=sum(stats.forbidden for stats in self.per_chat.values()),
        )
