"""What a channel hands the core (Incoming) and what the core asks it to show (Reply)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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


def button_rows(buttons: Sequence[Button], per_row: int) -> tuple[tuple[Button, ...], ...]:
    """Lay buttons out `per_row` to a row."""
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
