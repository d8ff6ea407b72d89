"""What the Telegram adapter and the Telegram sender share: keyboards and file URLs.

Both turn a core `Reply` into Bot API calls; keeping the shared pieces here lets each of
them import this module instead of the other.
"""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.core.messages import Reply

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def file_url_for(base_url: str) -> str:
    """The file download URL that goes with a Bot API `base_url` (".../bot" -> ".../file/bot")."""
    root, _, tail = base_url.rstrip("/").rpartition("/")
    return f"{root}/file/{tail}"


def markup_for(reply: Reply) -> Markup | None:
    """The keyboard a reply asks for: a contact button, inline buttons, or taking one away."""
    if reply.contact_button is not None:
        return ReplyKeyboardMarkup(
            [
                [KeyboardButton(reply.contact_button, request_contact=True)],
                *([KeyboardButton(label)] for label in reply.typed_buttons),
            ],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if reply.remove_keyboard:
        return ReplyKeyboardRemove()
    if reply.buttons:
        return InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                for row in reply.buttons
            ]
        )
    return None
