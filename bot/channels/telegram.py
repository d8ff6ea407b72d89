"""The Telegram adapter: updates in through the inbox, Bot API calls out through the outbox.

Long polling (`poll`) or the webhook hands updates to the `Intake`, which commits them
before Telegram is told they arrived. `TelegramHandler` turns a stored update into
`Incoming`, lets the services answer it inside the inbox worker's transaction, and turns
the outcome into outbox rows (`outgoing_for`). `TelegramSender` performs those rows. The
adapter runs no queries of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

from bot.channels.telegram_api import ApiError, BotApi, ptb_request
from bot.channels.telegram_markup import file_url_for
from bot.channels.telegram_sender import TelegramSender
from bot.config import StartupError
from bot.core.flood import FloodGate
from bot.core.messages import Incoming, InputKind, Outcome, Reply, coalesce, text_length
from bot.db.models import InboxUpdate, utcnow
from bot.i18n import LANGUAGES, pick_language, translator
from bot.runtime import Runtime
from bot.services.broadcasts import render
from bot.services.delivery import DeliveryEngine
from bot.services.export_ahead import fill_all_export_cells
from bot.services.export_jobs import run_export_jobs
from bot.services.flood import flood_warning
from bot.services.inbox import Handled, InboxWorkers, Intake, Received
from bot.services.leader import Leadership, namespace_of
from bot.services.outbox import Action, OutboxSender, Outgoing, enqueue
from bot.services.pacing import Pacer, wait_at_most
from bot.services.retention import apply_retention
from bot.services.roles import Grant
from bot.services.routing import menu_for as routed_menu
from bot.services.updates import (
    answer_in,
    language_of,
    menu_owner,
    menu_owner_in,
    note_last_messages,
    record_tracked,
    send_payment_reminders,
    set_blocked_in,
)
from bot.services.wakeup import channel_name, listen

_T = TypeVar("_T")
log = logging.getLogger(__name__)
# Every kind of update, my_chat_member and chat_member included (not sent by default).
ALL_UPDATES = list(Update.ALL_TYPES)


# Half of a UTF-16 surrogate pair: JSON can carry one ("\\ud83d"), no text can hold it, and
# it would break every later step that encodes the text (encryption, the reply echoing it).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _readable(text: str | None) -> str:
    """Text from an update with any lone surrogate replaced by U+FFFD (the replacement mark)."""
    return _LONE_SURROGATE.sub("\ufffd", text or "")


def to_incoming(update: Update) -> Incoming | None:
    """What the person did, in the core's terms; None for updates the bot ignores."""
    if update.callback_query is not None:
        return Incoming(InputKind.BUTTON, text=_readable(update.callback_query.data))
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE:
        return None
    if message.contact is not None:
        sender = message.from_user.id if message.from_user else None
        return Incoming(
            InputKind.CONTACT,
            contact_phone=_readable(message.contact.phone_number),
            contact_is_own=message.contact.user_id is not None
            and message.contact.user_id == sender,
        )
    if message.text is None:
        if message.photo:
            largest = message.photo[-1]

            async def fetch() -> bytes:
                file = await largest.get_file()
                return bytes(await file.download_as_bytearray())

            return Incoming(InputKind.MEDIA, text=_readable(message.caption), photo=fetch)
        return Incoming(InputKind.MEDIA)
    text = _readable(message.text)
    if text.startswith("/"):
        head, _, args = text[1:].partition(" ")
        return Incoming(InputKind.COMMAND, text=head.split("@", 1)[0].lower(), args=args.strip())
    return Incoming(InputKind.TEXT, text=text)


def chat_of_payload(update: dict[str, Any]) -> int:
    """`chat_of` for an update as Telegram sent it (JSON), without building objects."""
    for key, content in update.items():
        if key == "update_id" or not isinstance(content, dict):
            continue
        message = content.get("message")
        chat = content.get("chat") or (message.get("chat") if isinstance(message, dict) else None)
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
        person = content.get("from") or content.get("user")
        if isinstance(person, dict) and isinstance(person.get("id"), int):
            return int(person["id"])
    return 0


def chat_of(update: Update) -> int:
    """The chat an update belongs to (its ordering key); 0 when it has none."""
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    person = update.effective_user
    return person.id if person is not None else 0


class TelegramHandler:
    """Handles one stored Telegram update inside the inbox worker's transaction."""

    def __init__(self, runtime: Runtime, bot: Bot) -> None:
        self.runtime = runtime
        self.bot = bot

    async def __call__(
        self, session: AsyncSession, payload: dict[str, Any], flooded: bool
    ) -> Handled:
        update = Update.de_json(payload, self.bot)
        runtime = self.runtime
        change = update.my_chat_member
        if change is not None:
            if change.chat.type == ChatType.PRIVATE:
                blocked = change.new_chat_member.status in (
                    ChatMemberStatus.BANNED,
                    ChatMemberStatus.LEFT,
                )
                await set_blocked_in(session, change.chat.id, blocked=blocked)
            return Handled()
        incoming = to_incoming(update)
        person = update.effective_user
        chat = update.effective_chat
        if incoming is None or person is None or person.is_bot or chat is None:
            return Handled()
        guess = pick_language(person.language_code, runtime.settings.default_language)
        if flooded:
            language = await language_of(session, runtime, person.id) or guess
            items = [Outgoing(chat.id, Action.SEND, reply=flood_warning(translator(language)))]
            if update.callback_query is not None:
                answer = Outgoing(chat.id, Action.ANSWER, callback_id=update.callback_query.id)
                items.insert(0, replace(answer, quiet=True))
            return Handled(items)
        answered = await answer_in(session, runtime, person.id, guess, incoming)
        outcome = answered.outcome
        items = outgoing_for(update, outcome, chat.id, answered.last_message_id)
        if outcome.notices:
            # Notices to other people commit with the change that caused them, but are not
            # replies: the update counts as answered without waiting for them.
            notices = [
                Outgoing(other, reply=reply, priority=1, once=True)
                for other, reply in outcome.notices
            ]
            await enqueue(session, runtime.cipher, notices)
        menus = ([person.id] if outcome.roles_changed or outcome.language_changed else []) + [
            other for other in outcome.roles_changed_for if other != person.id
        ]
        for telegram_id in menus:
            owner = await menu_owner_in(session, runtime, telegram_id)
            if owner is not None:
                t = translator(owner.language)
                entries = menu_for(owner.grants, owner.language)
                menu = tuple((name, t(description)) for name, description in entries)
                items.append(Outgoing(telegram_id, Action.MENU, menu=menu, quiet=True, priority=1))
        return Handled(items)


def apology_for(payload: dict[str, Any]) -> list[Outgoing]:
    """What to send when an update could not be handled: an apology in the person's language."""
    update = Update.de_json(payload, None)
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return []
    person = update.effective_user
    language = pick_language(person.language_code if person else None, "id")
    return [Outgoing(chat.id, Action.SEND, reply=Reply(translator(language)("error.internal")))]


def menu_for(grants: list[Grant], language: str = "id") -> tuple[tuple[str, str], ...]:
    """The commands a person sees, from the routing table: (name, description id)."""
    return routed_menu(grants, language)


# The longest text a Telegram message may have (UTF-16 code units).
TEXT_LIMIT = 4096


def _fits_in_edit(reply: Reply) -> bool:
    """A reply that can replace a message's text (inline buttons only, no file)."""
    return (
        reply.attachment is None
        and reply.contact_button is None
        and not reply.typed_buttons
        and not reply.remove_keyboard
        and not reply.edit
    )


def outgoing_for(
    update: Update, outcome: Outcome, chat_id: int, newest_message_id: int | None = None
) -> list[Outgoing]:
    """The Bot API calls for one outcome, as outbox rows: as few messages as it takes.

    A plain text joins the message after it (`coalesce`): "Nomor dicatat." and the next
    question are one message. A pressed button is answered (the spinner stops). When it was
    pressed on the newest
    message, that message becomes the next question, headed by the choice ("✅ Petani"):
    one message per step instead of two; when the next question cannot be an edit (it needs
    a keyboard), it is sent as a new message headed by the choice. Otherwise the pressed
    message keeps its text with the choice under it and loses its buttons, and the replies
    come as new messages.
    """
    items: list[Outgoing] = []
    query = update.callback_query
    pressed = query.message if query is not None and isinstance(query.message, Message) else None
    replies = coalesce(outcome.replies, TEXT_LIMIT)
    if query is not None:
        items.append(Outgoing(chat_id, Action.ANSWER, callback_id=query.id, quiet=True))
    if query is not None and pressed is not None and not any(r.edit for r in replies):
        label = None if outcome.stale_button else _pressed_label(pressed, query.data)
        first = replies[0] if replies else None
        newest = newest_message_id is None or pressed.message_id == newest_message_id
        merged = replace(first, text=f"✅ {label}\n\n{first.text}") if label and first else None
        if (
            merged is not None
            and pressed.text
            and newest
            and _fits_in_edit(merged)
            and text_length(merged.text) <= TEXT_LIMIT
        ):
            items.append(
                Outgoing(chat_id, Action.EDIT, reply=merged, message_id=pressed.message_id)
            )
            replies = replies[1:]
        elif merged is not None and pressed.text and newest and not merged.edit:
            # The next question needs a keyboard an edit cannot carry (a "send my number"
            # button): it comes as one new message headed by the choice. The pressed
            # question keeps its buttons; pressing one again is answered as an old button.
            items.append(Outgoing(chat_id, Action.SEND, reply=merged))
            replies = replies[1:]
        elif label and pressed.text:
            # The question is answered: its buttons go (so they cannot be pressed again) and
            # the choice stays visible under the question.
            shown = Reply(f"{pressed.text}\n\n✅ {label}")
            items.append(
                Outgoing(
                    chat_id, Action.EDIT, reply=shown, message_id=pressed.message_id, quiet=True
                )
            )
        else:
            items.append(Outgoing(chat_id, Action.EDIT, message_id=pressed.message_id, quiet=True))
    for reply in replies:
        if reply.edit and pressed is not None and _fits_in_edit(replace(reply, edit=False)):
            items.append(
                Outgoing(
                    chat_id,
                    Action.EDIT,
                    reply=replace(reply, edit=False),
                    message_id=pressed.message_id,
                )
            )
        else:
            items.append(Outgoing(chat_id, Action.SEND, reply=replace(reply, edit=False)))
    return items


def _pressed_label(message: Message, data: str | None) -> str | None:
    markup = message.reply_markup
    if markup is None or data is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


async def _set_commands(
    bot: Bot,
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


async def refresh_role_menu(bot: Bot, runtime: Runtime, telegram_id: int) -> None:
    """Show a person the command menu of their current roles, at once (the command line)."""
    owner = await menu_owner(runtime, telegram_id)
    if owner is not None:
        menu = menu_for(owner.grants, owner.language)
        await _set_commands(bot, owner.language, chat_id=telegram_id, menu=menu)


async def set_command_menus(bot: Bot, default_language: str) -> None:
    """Set the command menu per language; a refusal is logged, never fatal."""
    for language in LANGUAGES:
        await _set_commands(bot, language)
    t = translator(default_language)
    menu = menu_for([], default_language)
    commands = [BotCommand(name, t(description)) for name, description in menu]
    try:
        await bot.set_my_commands(commands)
    except TelegramError as exc:
        log.warning("Telegram refused to set the command menu (%s); carrying on", exc.message)


async def after_sent(session: AsyncSession, sent: list[tuple[Outgoing, int]]) -> None:
    """Keep what sent messages need remembered: tracked ids, each person's newest message."""
    newest: dict[int, int] = {}
    for item, message_id in sent:
        reply = item.reply
        if reply is not None and reply.track is not None:
            await record_tracked(session, reply.track, item.chat_id, message_id)
        if item.action is Action.SEND:
            newest[item.chat_id] = max(message_id, newest.get(item.chat_id, 0))
    await note_last_messages(session, newest)


async def poll(
    api: BotApi,
    intake: Intake,
    stop: asyncio.Event,
    *,
    wait_seconds: int,
    offset: int | None = None,
) -> None:
    """Long polling that loses nothing: the offset moves on only once updates are committed.

    Telegram forgets an update when a later getUpdates asks from beyond it, so a batch is
    stored first and only then is the next batch asked for. Updates are stored as Telegram
    sent them.
    """
    failures = 0
    while not stop.is_set():
        try:
            params: dict[str, Any] = {"timeout": wait_seconds, "allowed_updates": ALL_UPDATES}
            if offset is not None:
                params["offset"] = offset
            # Stopping cancels a waiting request: what it would have brought is not yet
            # acknowledged, so Telegram gives it again to the next getUpdates.
            updates = await _unless_stopped(
                stop, api.call("getUpdates", params, read_timeout=wait_seconds + 10)
            )
            if updates is None:
                break
            if updates:
                received = [Received(int(u["update_id"]), chat_of_payload(u), u) for u in updates]
                await intake.accept(received)
                offset = int(updates[-1]["update_id"]) + 1
            failures = 0
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            if exc.code == 429:
                await wait_at_most(stop, exc.retry_after or 1.0)
                continue
            failures += 1
            delay = min(2.0**failures, 30.0)
            log.warning("Polling was refused (%d); trying again in %.0f s", exc.code, delay)
            await wait_at_most(stop, delay)
        except Exception as exc:
            failures += 1
            delay = min(2.0**failures, 30.0)
            log.warning("Polling failed (%s); trying again in %.0f s", type(exc).__name__, delay)
            await wait_at_most(stop, delay)
    if offset is not None:
        # Tell Telegram what is stored, so a restart does not fetch it again.
        with contextlib.suppress(Exception):
            await api.call("getUpdates", {"offset": offset, "timeout": 0, "limit": 1})


async def _unless_stopped(stop: asyncio.Event, call: Awaitable[_T]) -> _T | None:
    """The result of `call`, or None (the call cancelled) once `stop` is set first."""
    task = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


class HandledWatch:
    """Tells listeners when an update is fully answered: handled and its replies all sent."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[int], None]] = []
        self._waiting: dict[int, list[int]] = {}

    def committed(self, chat_id: int, update_id: int, outbox_ids: list[int]) -> None:
        if outbox_ids:
            self._waiting[update_id] = [chat_id, len(outbox_ids)]
        else:
            self._tell(chat_id)

    def sent(self, chat_id: int, update_id: int | None) -> None:
        if update_id is None or update_id not in self._waiting:
            return
        entry = self._waiting[update_id]
        entry[1] -= 1
        if entry[1] <= 0:
            del self._waiting[update_id]
            self._tell(chat_id)

    def dropped(self, chat_id: int) -> None:
        self._tell(chat_id)

    def _tell(self, chat_id: int) -> None:
        for listener in self.listeners:
            listener(chat_id)


@dataclass
class Serving:
    """The running bot: its Bot API client and the parts of its pipeline."""

    bot: Bot
    intake: Intake
    workers: InboxWorkers
    outbox: OutboxSender
    watch: HandledWatch
    leadership: Leadership
    delivery: DeliveryEngine

    @property
    def on_handled(self) -> list[Callable[[int], None]]:
        """Called with a chat id once an update of it is handled and its replies are sent."""
        return self.watch.listeners


async def resume_offset(runtime: Runtime) -> int | None:
    """Where polling goes on after a restart: past the newest update stored, if recent."""
    async with runtime.sessions() as session:
        newest = (
            await session.execute(
                select(InboxUpdate.update_id, InboxUpdate.received_at)
                .where(InboxUpdate.channel == "telegram")
                .order_by(InboxUpdate.update_id.desc())
                .limit(1)
            )
        ).first()
    if newest is None:
        return None
    update_id, received_at = newest
    # After a week without updates Telegram may start its ids anew elsewhere.
    if utcnow() - received_at > timedelta(days=6):
        return None
    return int(update_id) + 1


async def scheduled_jobs(runtime: Runtime, stop: asyncio.Event) -> None:
    """The leader's periodic work: personal data past its retention is deleted or erased
    (see retention.py), the payment reminders that have come due are written (at most
    once each, see reminders.py), and missing export cells are made (export_ahead.py)."""
    await wait_at_most(stop, 5.0)
    while not stop.is_set():
        try:
            await apply_retention(runtime)
            await send_payment_reminders(runtime)
            # After an upgrade, a new key or new area names: exports stay fast.
            await fill_all_export_cells(
                runtime.sessions, runtime.cipher, runtime.areas, runtime.settings, stop
            )
        except Exception:
            log.exception("A scheduled job failed; it runs again later")
        await wait_at_most(stop, 6 * 3600.0)


async def _connect(bot: Bot, sender: TelegramSender, base_url: str | None) -> None:
    """Ask Telegram who we are; a refused token or an unreachable API is a StartupError.

    python-telegram-bot's own errors would print the token (InvalidToken quotes it).
    """
    where = urlsplit(base_url or "https://api.telegram.org").netloc
    try:
        await bot.initialize()
        await sender.initialize()
    except InvalidToken:
        raise StartupError(
            "TELEGRAM_BOT_TOKEN: Telegram refused the token; copy it again from @BotFather"
        ) from None
    except NetworkError as exc:
        if isinstance(exc, BadRequest):
            raise
        setting = "TELEGRAM_API_BASE_URL" if base_url else "network"
        raise StartupError(
            f"{setting}: cannot reach the Telegram Bot API at {where} ({exc.message})"
        ) from None


@asynccontextmanager
async def serving(
    runtime: Runtime,
    token: str,
    base_url: str | None,
    *,
    poll_timeout: int = 10,
    polling: bool = True,
    on_handled: Callable[[int, float], None] | None = None,
) -> AsyncIterator[Serving]:
    """The bot taking in updates (long polling unless told otherwise), handling and sending.

    Every process handles updates; the leader among them (see `bot.services.leader`) also
    sends every message and broadcast within one budget, and runs the scheduled jobs.
    `on_handled` is told (chat id, seconds) after each handled update (for metrics).
    """
    settings = runtime.settings
    urls: dict[str, Any] = {}
    if base_url:
        urls = {"base_url": base_url, "base_file_url": file_url_for(base_url)}
    request = ptb_request(connection_pool_size=16, read_timeout=poll_timeout + 15.0)
    bot = Bot(token, request=request, get_updates_request=ptb_request(), **urls)
    sender = TelegramSender(token, base_url)
    await _connect(bot, sender, base_url)
    polling_api = BotApi(bot.base_url, connections=2, read_timeout=poll_timeout + 15.0)
    namespace = await namespace_of(runtime.engine)
    pacer = Pacer(settings.broadcast_rate, chat_burst=3)
    watch = HandledWatch()

    def committed(chat_id: int, update_id: int, outbox_ids: list[int], chats: set[int]) -> None:
        watch.committed(chat_id, update_id, outbox_ids)
        outbox.nudge(chats)

    outbox = OutboxSender(
        runtime.sessions,
        runtime.cipher,
        sender,
        pacer,
        record=after_sent,
        on_sent=watch.sent,
    )
    outbox_channel = channel_name(namespace, "outbox")
    workers = InboxWorkers(
        runtime.sessions,
        runtime.cipher,
        TelegramHandler(runtime, bot),
        apology=apology_for,
        concurrency=settings.inbox_workers,
        namespace=namespace,
        on_committed=committed,
        outbox_channel=outbox_channel,
        on_handled=on_handled,
    )
    gate = FloodGate(
        burst=settings.flood_burst,
        per_minute=settings.flood_per_minute,
        pause_seconds=settings.flood_pause_seconds,
    )
    intake = Intake(
        runtime.sessions,
        runtime.cipher,
        flood=gate.check,
        on_stored=workers.nudge,
        on_dropped=watch.dropped,
    )
    engine = DeliveryEngine(
        runtime.sessions,
        sender,
        lambda b, u: render(b, u, settings, runtime.cipher),
        rate=settings.broadcast_rate,
        max_attempts=settings.broadcast_max_attempts,
        default_language=settings.default_language,
        pacer=pacer,
    )
    leadership = Leadership(runtime.engine, namespace)

    async def lead(stop: asyncio.Event) -> None:
        # The end of an earlier term (the lead lost with its database connection) closed
        # the shared pacer; this term sends again.
        pacer.reopen()
        await asyncio.gather(
            outbox.run(stop),
            engine.run(stop),
            scheduled_jobs(runtime, stop),
            run_export_jobs(runtime, stop, nudge=outbox.nudge),
            # Replies written by other replicas are sent at once, not at the next poll.
            listen(runtime.engine, outbox_channel, outbox.nudge, stop),
        )

    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        runtime.conversation.s.bot_username = bot.username
        await set_command_menus(bot, settings.default_language)
        tasks.append(asyncio.create_task(workers.run(stop), name="inbox"))
        tasks.append(asyncio.create_task(leadership.run(stop, lead), name="leader"))
        if polling:
            offset = await resume_offset(runtime)
            await bot.delete_webhook()
            tasks.append(
                asyncio.create_task(
                    poll(polling_api, intake, stop, wait_seconds=poll_timeout, offset=offset),
                    name="poll",
                )
            )
        log.info("Bot @%s is serving (%s)", bot.username, "long polling" if polling else "webhook")
        yield Serving(bot, intake, workers, outbox, watch, leadership, engine)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sender.shutdown()
        await polling_api.close()
        await bot.shutdown()


async def serve_polling(
    runtime: Runtime, token: str, base_url: str | None, stop: asyncio.Event
) -> None:
    """Run the bot until `stop` is set."""
    async with serving(runtime, token, base_url):
        await stop.wait()
