"""The Telegram adapter: turns updates into `Incoming`, and `Reply` objects into Bot API calls.

It holds no state and runs no queries of its own: every read and write of an update is done
by `bot.services.updates` in one transaction, committed before the replies are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.telegram_markup import file_url_for, markup_for
from bot.channels.telegram_sender import start_delivery
from bot.core.messages import Incoming, InputKind, Outcome
from bot.i18n import LANGUAGES, pick_language, translator
from bot.runtime import Runtime
from bot.services.broadcasts import render
from bot.services.roles import Grant
from bot.services.routing import menu_for as routed_menu
from bot.services.updates import answer, menu_owner, purge_drafts, record_sent, set_blocked

log = logging.getLogger(__name__)

BotApp = Application[Any, Any, Any, Any, Any, Any]


def to_incoming(update: Update) -> Incoming | None:
    """What the person did, in the core's terms; None for updates the bot ignores."""
    if update.callback_query is not None:
        return Incoming(InputKind.BUTTON, text=update.callback_query.data or "")
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE:
        return None
    if message.contact is not None:
        sender = message.from_user.id if message.from_user else None
        return Incoming(
            InputKind.CONTACT,
            contact_phone=message.contact.phone_number,
            contact_is_own=message.contact.user_id is not None
            and message.contact.user_id == sender,
        )
    text = message.text
    if text is None:
        if message.photo:
            largest = message.photo[-1]

            async def fetch() -> bytes:
                file = await largest.get_file()
                return bytes(await file.download_as_bytearray())

            return Incoming(InputKind.MEDIA, text=message.caption or "", photo=fetch)
        return Incoming(InputKind.MEDIA)
    if text.startswith("/"):
        head, _, args = text[1:].partition(" ")
        return Incoming(InputKind.COMMAND, text=head.split("@", 1)[0].lower(), args=args.strip())
    return Incoming(InputKind.TEXT, text=text)


async def handle_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer one update: one transaction, the conversation, then the replies."""
    incoming = to_incoming(update)
    person = update.effective_user
    if incoming is None or person is None or person.is_bot:
        return
    runtime: Runtime = context.bot_data["runtime"]
    language = pick_language(person.language_code, runtime.settings.default_language)
    answered = await answer(runtime, person.id, language, incoming)
    outcome = answered.outcome
    await deliver(update, context, outcome, answered.language)
    for telegram_id in ([person.id] if outcome.roles_changed else []) + outcome.roles_changed_for:
        await refresh_role_menu(context.bot, runtime, telegram_id)


def menu_for(grants: list[Grant], language: str = "id") -> tuple[tuple[str, str], ...]:
    """The commands a person sees, from the routing table: (name, description id)."""
    return routed_menu(grants, language)


async def refresh_role_menu(bot: Any, runtime: Runtime, telegram_id: int) -> None:
    """Show a person the command menu of their current roles."""
    person = await menu_owner(runtime, telegram_id)
    if person is None:
        return
    grants, language = person.grants, person.language
    await _set_commands(bot, language, chat_id=telegram_id, menu=menu_for(grants, language))


async def handle_member_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram tells us a person blocked (or unblocked) the bot: leave them out of audiences."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    runtime: Runtime = context.bot_data["runtime"]
    blocked = change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)
    await set_blocked(runtime, change.chat.id, blocked=blocked)


async def deliver(
    update: Update, context: ContextTypes.DEFAULT_TYPE, outcome: Outcome, language: str
) -> None:
    """Send the replies of one outcome, editing the pressed message where asked."""
    query = update.callback_query
    chat = update.effective_chat
    if chat is None:
        return
    runtime: Runtime = context.bot_data["runtime"]
    pressed = query.message if query is not None and isinstance(query.message, Message) else None
    if query is not None:
        await _quietly(query.answer())
        if pressed is not None and not any(r.edit for r in outcome.replies):
            # The question is answered: its buttons go (so they cannot be pressed again) and
            # the choice stays visible under the question.
            label = None if outcome.stale_button else _pressed_label(pressed, query.data)
            if label and pressed.text:
                await _quietly(pressed.edit_text(f"{pressed.text}\n\n✅ {label}"))
            else:
                await _quietly(pressed.edit_reply_markup(reply_markup=None))
    for reply in outcome.replies:
        markup = markup_for(reply)
        if reply.edit and pressed is not None and not isinstance(markup, ReplyKeyboardMarkup):
            await _quietly(pressed.edit_text(reply.text, reply_markup=cast(Any, markup)))
            message_id = pressed.message_id
        elif reply.attachment is not None:
            attachment = reply.attachment
            # The file name goes with a photo too: it gives the upload its MIME type.
            send = context.bot.send_photo if attachment.is_photo else context.bot.send_document
            sent = await send(
                chat.id,
                attachment.content,
                filename=attachment.file_name,
                caption=reply.text,
                reply_markup=markup,
            )
            message_id = sent.message_id
        else:
            sent = await context.bot.send_message(chat.id, reply.text, reply_markup=markup)
            message_id = sent.message_id
        if reply.track is not None:
            await record_sent(runtime, reply.track, chat.id, message_id)
    if outcome.language_changed and not outcome.roles_changed:
        await refresh_role_menu(context.bot, runtime, chat.id)


def _pressed_label(message: Message, data: str | None) -> str | None:
    markup = message.reply_markup
    if markup is None or data is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


async def _quietly(call: Any) -> None:
    """Run a cosmetic Bot API call; "message is not modified" and the like do not matter."""
    try:
        await call
    except BadRequest as exc:
        log.debug("Ignored Bot API refusal: %s", exc.message)


async def _set_commands(
    bot: Any,
    language: str,
    *,
    chat_id: int | None = None,
    menu: tuple[tuple[str, str], ...] | None = None,
) -> None:
    t = translator(language)
    entries = menu if menu is not None else menu_for([], language)
    commands = [BotCommand(name, t(description)) for name, description in entries]
    try:
        if chat_id is not None:
            await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
        else:
            await bot.set_my_commands(
                commands, scope=BotCommandScopeDefault(), language_code=language
            )
    except TelegramError as exc:
        log.warning("Telegram refused to set the command menu (%s); carrying on", exc.message)


async def announce(application: BotApp, runtime: Runtime) -> None:
    """After `initialize` (getMe): learn the bot's username and set the command menus."""
    runtime.conversation.s.bot_username = application.bot.username
    await set_command_menus(application, runtime.settings.default_language)


async def set_command_menus(application: BotApp, default_language: str) -> None:
    """Set the command menu per language; a refusal is logged, never fatal."""
    for language in LANGUAGES:
        await _set_commands(application.bot, language)
    t = translator(default_language)
    menu = menu_for([], default_language)
    commands = [BotCommand(name, t(description)) for name, description in menu]
    try:
        await application.bot.set_my_commands(commands)
    except TelegramError as exc:
        log.warning("Telegram refused to set the command menu (%s); carrying on", exc.message)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log an unexpected error (personal data is filtered from logs) and apologise."""
    log.error("Error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        person = update.effective_user
        runtime: Runtime = context.bot_data["runtime"]
        language = pick_language(
            person.language_code if person else None, runtime.settings.default_language
        )
        try:
            await context.bot.send_message(
                update.effective_chat.id, translator(language)("error.internal")
            )
        except TelegramError:
            log.warning("Could not tell the user about the error")


async def _purge_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await purge_drafts(context.bot_data["runtime"])


def build_application(runtime: Runtime, token: str, base_url: str | None = None) -> BotApp:
    """The python-telegram-bot application with every handler registered in one place."""
    builder = ApplicationBuilder().token(token).rate_limiter(AIORateLimiter(max_retries=2))
    if base_url:
        builder = builder.base_url(base_url).base_file_url(file_url_for(base_url))
    application = builder.build()
    application.bot_data["runtime"] = runtime
    private = filters.ChatType.PRIVATE
    application.add_handler(CallbackQueryHandler(handle_update))
    application.add_handler(
        ChatMemberHandler(handle_member_update, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, handle_update))
    application.add_error_handler(on_error)
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            _purge_job, interval=timedelta(hours=6), first=timedelta(seconds=5), name="purge"
        )
    return application


@asynccontextmanager
async def serving(
    runtime: Runtime, token: str, base_url: str | None, *, poll_timeout: int = 10
) -> AsyncIterator[BotApp]:
    """The bot answering updates (long polling) and delivering broadcasts, until the block ends."""
    application = build_application(runtime, token, base_url)
    await application.initialize()
    engine_stop = asyncio.Event()
    engine: asyncio.Task[None] | None = None
    try:
        await announce(application, runtime)
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0.0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES
        )
        settings = runtime.settings
        engine = await start_delivery(
            runtime, token, base_url, engine_stop, lambda b, u: render(b, u, settings)
        )
        log.info("Bot @%s is serving (long polling)", application.bot.username)
        yield application
    finally:
        engine_stop.set()
        if engine is not None:
            with contextlib.suppress(Exception):
                await engine
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


async def serve_polling(
    runtime: Runtime, token: str, base_url: str | None, stop: asyncio.Event
) -> None:
    """Run the bot until `stop` is set."""
    async with serving(runtime, token, base_url):
        await stop.wait()
