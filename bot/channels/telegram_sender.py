"""Telegram as a `Sender` for the delivery engine, and starting the engine with the bot.

The sender has a `telegram.Bot` of its own, without the application's rate limiter, so a
RetryAfter reaches the engine (which pauses all sending) instead of being retried here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx
from telegram import Bot, BotCommand, BotCommandScopeChat, InlineKeyboardMarkup, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.channels.telegram_api import ApiError, BotApi, ptb_request
from bot.channels.telegram_markup import file_url_for, markup_for
from bot.core.messages import Reply
from bot.runtime import Runtime
from bot.services.delivery import DeliveryEngine, ProgressView, Render, ReportView, SendOutcome
from bot.services.outbox import Action, Outgoing

log = logging.getLogger(__name__)

# Failures that happen before a request leaves: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def seconds_of(value: float | timedelta) -> float:
    """Seconds in a RetryAfter value (an int, or a timedelta with PTB_TIMEDELTA=true)."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def outcome_of(error: TelegramError) -> SendOutcome:
    """What a Bot API error means for a delivery."""
    if isinstance(error, RetryAfter):
        return SendOutcome("retry_after", retry_after=seconds_of(error.retry_after))
    if isinstance(error, Forbidden):
        return SendOutcome("blocked", reason=error.message)
    if isinstance(error, BadRequest | ChatMigrated):
        return SendOutcome("failed", reason=error.message)
    if isinstance(error, NetworkError):
        cause = error.__cause__
        if cause is None or isinstance(cause, _NOT_SENT):
            # Telegram answered with a server error, or the request never left.
            return SendOutcome("transient", reason=error.message)
        # Timed out or cut off after the request went out: it may have been delivered.
        return SendOutcome("uncertain", reason=error.message)
    return SendOutcome("transient", reason=error.message)


def outcome_of_refusal(error: ApiError) -> SendOutcome:
    """What a refusal in a plain Bot API answer means for a delivery (as `outcome_of`)."""
    if error.code == 429:
        return SendOutcome("retry_after", retry_after=error.retry_after or 1.0)
    if error.code == 403:
        return SendOutcome("blocked", reason=error.description)
    if error.code == 400:
        return SendOutcome("failed", reason=error.description)
    # Telegram's own trouble (5xx), or a token problem that an operator will fix.
    return SendOutcome("transient", reason=error.description)


def outcome_of_network(error: httpx.HTTPError) -> SendOutcome:
    """A call that got no answer: safe to repeat only if the request never left."""
    reason = type(error).__name__
    if isinstance(error, _NOT_SENT):
        return SendOutcome("transient", reason=reason)
    return SendOutcome("uncertain", reason=reason)


class TelegramSender:
    """Sends and edits messages through the Bot API, one call per message, never retrying."""

    def __init__(
        self,
        token: str,
        base_url: str | None = None,
        *,
        read_timeout: float = 15.0,
        connections: int = 64,
    ) -> None:
        request = ptb_request(
            connection_pool_size=connections,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            connect_timeout=5.0,
            pool_timeout=5.0,
        )
        urls: dict[str, Any] = {}
        if base_url:
            urls = {"base_url": base_url, "base_file_url": file_url_for(base_url)}
        self.bot = Bot(token, request=request, get_updates_request=ptb_request(), **urls)
        # Texts, edits and button answers: plain JSON (see `bot.channels.telegram_api`).
        self.api = BotApi(self.bot.base_url, connections=connections, read_timeout=read_timeout)
        # A photo sent to many people is uploaded once, then sent by its file id.
        self._photo_ids: dict[str, str] = {}

    async def initialize(self) -> None:
        """Open the HTTP connection pool (and check the token)."""
        await self.bot.initialize()

    async def shutdown(self) -> None:
        """Close the HTTP connection pools."""
        await self.api.close()
        await self.bot.shutdown()

    async def __aenter__(self) -> TelegramSender:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def send(
        self, chat_id: int, reply: Reply, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        """Send a reply as a new message (a photo with caption when it carries one).

        `left` is called once the request is written out (for a file: as it starts).
        """
        try:
            if reply.attachment is None:
                params: dict[str, Any] = {"chat_id": chat_id, "text": reply.text}
                markup = markup_for(reply)
                if markup is not None:
                    params["reply_markup"] = markup.to_dict()
                message = await self.api.call("sendMessage", params, written=left)
                return SendOutcome("sent", message_id=int(message["message_id"]))
            if left is not None:
                left()
            sent = await self._send(chat_id, reply)
        except TelegramError as error:
            return outcome_of(error)
        except ApiError as error:
            return outcome_of_refusal(error)
        except httpx.HTTPError as error:
            return outcome_of_network(error)
        return SendOutcome("sent", message_id=sent.message_id)

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> SendOutcome:
        """Replace a message's text (or caption) and inline buttons."""
        markup = markup_for(reply)
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        try:
            if reply.attachment is not None:
                await self.bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=reply.text, reply_markup=inline
                )
            else:
                params: dict[str, Any] = {
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "text": reply.text,
                }
                if inline is not None:
                    params["reply_markup"] = inline.to_dict()
                await self.api.call("editMessageText", params)
        except (BadRequest, ApiError) as error:
            if "not modified" in str(error):
                return SendOutcome("sent", message_id=message_id)
            if isinstance(error, ApiError):
                return outcome_of_refusal(error)
            return outcome_of(error)
        except TelegramError as error:
            return outcome_of(error)
        except httpx.HTTPError as error:
            return outcome_of_network(error)
        return SendOutcome("sent", message_id=message_id)

    async def perform(
        self, item: Outgoing, *, left: Callable[[], None] | None = None
    ) -> SendOutcome:
        """Do what an outbox row asks: send, edit, answer a button press, set a menu.

        `left` is called once a new message's request is written out (see `send`).
        """
        chat_id = item.chat_id
        try:
            if item.action is Action.ANSWER:
                await self.api.call("answerCallbackQuery", {"callback_query_id": item.callback_id})
                return SendOutcome("sent")
            if item.action is Action.MENU:
                commands = [BotCommand(name, text) for name, text in item.menu]
                await self.bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
                return SendOutcome("sent")
            if item.action is Action.EDIT and item.message_id is not None:
                if item.reply is None:
                    await self.api.call(
                        "editMessageReplyMarkup",
                        {"chat_id": chat_id, "message_id": item.message_id},
                    )
                    return SendOutcome("sent", message_id=item.message_id)
                edited = await self.edit(chat_id, item.message_id, item.reply)
                if edited.kind != "failed" or item.quiet:
                    return edited
                # The message can no longer be edited: what it was to show comes anew.
                log.info("An edit was refused (%s); sending it as a new message", edited.reason)
            assert item.reply is not None, "a message to send needs a reply"
            return await self.send(chat_id, item.reply, left=left)
        except TelegramError as error:
            return outcome_of(error)
        except ApiError as error:
            return outcome_of_refusal(error)
        except httpx.HTTPError as error:
            return outcome_of_network(error)

    async def _send(self, chat_id: int, reply: Reply) -> Message:
        markup = markup_for(reply)
        attachment = reply.attachment
        if attachment is None:
            return await self.bot.send_message(chat_id, reply.text, reply_markup=markup)
        if not attachment.is_photo:
            return await self.bot.send_document(
                chat_id,
                attachment.content,
                filename=attachment.file_name,
                caption=reply.text,
                reply_markup=markup,
            )
        digest = hashlib.sha256(attachment.content).hexdigest()
        photo: str | bytes = self._photo_ids.get(digest, attachment.content)
        message = await self.bot.send_photo(
            chat_id, photo, filename=attachment.file_name, caption=reply.text, reply_markup=markup
        )
        if message.photo:
            self._photo_ids[digest] = message.photo[-1].file_id
        return message


async def start_delivery(
    runtime: Runtime,
    token: str,
    base_url: str | None,
    stop: asyncio.Event,
    render: Render,
    *,
    progress: ProgressView | None = None,
    report: ReportView | None = None,
) -> asyncio.Task[None]:
    """Start the delivery engine over Telegram; the task ends once `stop` is set."""
    sender = TelegramSender(token, base_url)
    await sender.initialize()
    settings = runtime.settings
    engine = DeliveryEngine(
        runtime.sessions,
        sender,
        render,
        rate=settings.broadcast_rate,
        max_attempts=settings.broadcast_max_attempts,
        progress=progress,
        report=report,
        default_language=settings.default_language,
    )

    async def serve() -> None:
        try:
            await engine.run(stop)
        except Exception:
            log.exception("The delivery engine stopped")
            raise
        finally:
            await sender.shutdown()

    log.info(
        "Delivery engine %s started at %.1f messages/s", engine.worker_id, settings.broadcast_rate
    )
    return asyncio.create_task(serve(), name="delivery")
