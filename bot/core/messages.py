"""What a channel hands the core (Incoming) and what the core asks it to show (Reply)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum


class InputKind(StrEnum):
    """The kinds of input a person can give in a chat."""

    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    CONTACT = "contact"
    MEDIA = "media"


@dataclass(frozen=True)
class Incoming:
    """One thing a person sent: text, a command, a button press, a contact or some media."""

    kind: InputKind
    text: str = ""
    args: str = ""
    contact_phone: str | None = None
    contact_is_own: bool = False
    # For a photo: fetches its bytes from the channel, only when the core needs them.
    photo: Callable[[], Awaitable[bytes]] | None = None


@dataclass(frozen=True)
class Button:
    """A choice shown under a message; `data` comes back when it is pressed."""

    label: str
    data: str


@dataclass(frozen=True)
class Attachment:
    """A file to send with a reply."""

    file_name: str
    content: bytes
    is_photo: bool = False


@dataclass(frozen=True)
class Reply:
    """One message to show.

    `contact_button` asks the channel for a "share my number" button; `remove_keyboard`
    takes such a button away; `edit` replaces the message whose button was pressed.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    contact_button: str | None = None
    # Plain answer buttons shown under the contact button; pressing one sends its label.
    typed_buttons: tuple[str, ...] = ()
    remove_keyboard: bool = False
    edit: bool = False
    attachment: Attachment | None = None
    # "NAME:KEY": once the message is out, the channel hands its id to the after-send recorder
    # NAME (declared in bot.services.updates), so the core can edit it later; "broadcast:12"
    # keeps broadcast 12's live progress message.
    track: str | None = None


@dataclass
class Outcome:
    """Everything the core wants shown in answer to one input."""

    replies: list[Reply] = field(default_factory=list)
    # Set when a pressed button was not acted on (old, or its question has passed).
    stale_button: bool = False
    # Set when the person changed language, so the channel can refresh its menus.
    language_changed: bool = False
    # Set when the person's roles changed, so the channel can show their command menu.
    roles_changed: bool = False
    # Other people (channel ids) whose roles this input changed.
    roles_changed_for: list[int] = field(default_factory=list)
    # Messages to other people (channel id, reply), e.g. a worker told of their status;
    # written to the outbox in the same transaction as the change that caused them.
    notices: list[tuple[int, Reply]] = field(default_factory=list)


def _is_plain(reply: Reply) -> bool:
    """Text alone: no buttons, keyboard, file or later edits hang on it."""
    return not (
        reply.buttons
        or reply.contact_button is not None
        or reply.typed_buttons
        or reply.remove_keyboard
        or reply.edit
        or reply.attachment is not None
        or reply.track is not None
    )


def can_change_keyboard(reply: Reply) -> bool:
    """Whether a reply's message may also set or take away the reply keyboard.

    Telegram carries one markup per message: inline buttons leave no room for it, an edit or
    a file cannot change it, and a tracked message is edited later with inline buttons.
    """
    return not (
        reply.buttons
        or reply.typed_buttons
        or reply.edit
        or reply.attachment is not None
        or reply.track is not None
    )


def text_length(text: str) -> int:
    """A text's length as chat channels count it (UTF-16 code units, as Telegram does).

    Every check of a message's length uses this: an emoji or a mathematical letter is one
    character to Python but two units to Telegram. A lone surrogate (never valid, but a
    forged update may carry one) counts as one unit instead of failing.
    """
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def excerpt(text: str, limit: int = 40) -> str:
    """The start of a person's text to quote back to them, "…" marking a cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def coalesce(replies: Sequence[Reply], limit: int) -> list[Reply]:
    """Fewer messages for the same words: a plain text joins the message that follows it.

    "NIK dicatat." followed by the next question becomes one message headed by it. Texts
    stay in their order; nothing is joined past `limit` characters, into a file, into an
    edit of another message, or into a message that is edited later (tracked).
    """
    merged: list[Reply] = []
    for reply in replies:
        before = merged[-1] if merged else None
        if (
            before is not None
            and _is_plain(before)
            and not reply.edit
            and reply.attachment is None
            and reply.track is None
            and text_length(before.text) + 2 + text_length(reply.text) <= limit
        ):
            merged[-1] = replace(reply, text=f"{before.text}\n\n{reply.text}")
        else:
            merged.append(reply)
    return merged


def button_rows(buttons: Sequence[Button], per_row: int) -> tuple[tuple[Button, ...], ...]:
    """Lay buttons out `per_row` to a row."""
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
