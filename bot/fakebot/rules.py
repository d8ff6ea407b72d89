"""Telegram's rules for Bot API requests: what counts as a send, what a request may contain,
and the error descriptions Telegram answers with.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from bot.fakebot.wire import utf16_length

# Lower-case method names: Telegram matches methods case-insensitively.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
    }
)
BLOCKABLE_METHODS = SEND_METHODS | {"sendchataction"}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Telegram's default when a bot never chose allowed_updates.
NOT_SENT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

FAULT_DESCRIPTIONS = {
    400: "Bad Request: request rejected",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
    """A Bot API call Telegram would refuse."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def visible_length(text: str, parse_mode: str | None) -> int:
    """Approximate the length Telegram counts: HTML tags and escapes do not count."""
    if parse_mode and parse_mode.upper() == "HTML":
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    return utf16_length(text)


def inline_part(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the markup if it is an inline keyboard (the only kind a message keeps)."""
    return markup if markup and "inline_keyboard" in markup else None


def int_param(params: dict[str, Any], name: str, default: int) -> int:
    """Read an integer parameter, refusing one that is not a number as Telegram does."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: wrong parameter {name}") from None


def validate_markup(markup: Any) -> dict[str, Any] | None:
    """Check a reply_markup the way Telegram does and return it as a dict."""
    if markup is None:
        return None
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            markup = None
    kinds = ("inline_keyboard", "keyboard", "remove_keyboard", "force_reply")
    if not isinstance(markup, dict) or not any(kind in markup for kind in kinds):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if len(button) == 1:
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard",
                )
    return markup
