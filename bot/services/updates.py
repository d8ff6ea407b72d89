"""What a channel adapter asks of the services.

An adapter (Telegram today) turns a stored update into `Incoming` and calls `answer_in`
inside the inbox worker's transaction: every read and write of the update, and the replies
it writes to the outbox, commit together. What has to be remembered once a reply is out
(its message id) goes through the after-send recorders declared here (`record_tracked`),
in the outbox sender's transaction that settles the message.

The functions taking a `Runtime` run one unit of work of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.messages import Incoming, Outcome
from bot.db.models import User, utcnow
from bot.services.broadcasts import record_progress_message
from bot.services.exporting import TRACK, record_export_progress_message
from bot.services.roles import Grant, grants_of
from bot.services.users import user_for_telegram

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")


async def run_unit_of_work(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run `work` in one transaction: committed when it returns, rolled back when it raises."""
    async with sessions() as session, session.begin():
        return await work(session)


@dataclass(frozen=True)
class Answer:
    """What the core wants shown, and the language to show it in (it may just have changed)."""

    outcome: Outcome
    language: str
    # The newest message the bot sent this person, if known (see `User.last_message_id`).
    last_message_id: int | None = None


async def answer_in(
    session: AsyncSession, runtime: Runtime, chat_id: int, language: str, incoming: Incoming
) -> Answer:
    """Handle one input of a person in the caller's transaction.

    `language` is the channel's guess for a first contact.
    """
    user = await user_for_telegram(session, chat_id, language)
    last_message_id = user.last_message_id
    outcome = await runtime.conversation.handle(session, user, incoming)
    return Answer(outcome, user.language or runtime.settings.default_language, last_message_id)


async def answer(runtime: Runtime, chat_id: int, language: str, incoming: Incoming) -> Answer:
    """Handle one input of a person in a transaction of its own."""

    async def work(session: AsyncSession) -> Answer:
        return await answer_in(session, runtime, chat_id, language, incoming)

    return await run_unit_of_work(runtime.sessions, work)


async def language_of(session: AsyncSession, runtime: Runtime, chat_id: int) -> str | None:
    """The language a known person chose; None for someone who never wrote to the bot."""
    found = (
        await session.execute(select(User.language).where(User.telegram_id == chat_id))
    ).first()
    if found is None:
        return None
    return found[0] or runtime.settings.default_language


async def set_blocked_in(session: AsyncSession, chat_id: int, *, blocked: bool) -> None:
    """The person blocked (or unblocked) the bot: leave them out of audiences (or back in)."""
    user = await session.scalar(select(User).where(User.telegram_id == chat_id))
    if user is not None:
        user.blocked_at = utcnow() if blocked else None


async def set_blocked(runtime: Runtime, chat_id: int, *, blocked: bool) -> None:
    """`set_blocked_in`, in a transaction of its own."""

    async def work(session: AsyncSession) -> None:
        await set_blocked_in(session, chat_id, blocked=blocked)

    await run_unit_of_work(runtime.sessions, work)


@dataclass(frozen=True)
class MenuOwner:
    """What a channel needs to show a person their command menu."""

    grants: list[Grant]
    language: str


async def menu_owner_in(session: AsyncSession, runtime: Runtime, chat_id: int) -> MenuOwner | None:
    """The person's roles and language; None for someone who never wrote to the bot."""
    user = await session.scalar(select(User).where(User.telegram_id == chat_id))
    if user is None:
        return None
    grants = await grants_of(session, user, runtime.settings.admin_telegram_ids)
    return MenuOwner(grants, user.language or runtime.settings.default_language)


async def menu_owner(runtime: Runtime, chat_id: int) -> MenuOwner | None:
    """`menu_owner_in`, in a transaction of its own."""

    async def work(session: AsyncSession) -> MenuOwner | None:
        return await menu_owner_in(session, runtime, chat_id)

    return await run_unit_of_work(runtime.sessions, work)


# A recorder keeps the id of a sent message: (session, key, chat id, message id).
Recorder = Callable[[AsyncSession, str, int, int], Awaitable[None]]


async def _broadcast_progress(
    session: AsyncSession, key: str, chat_id: int, message_id: int
) -> None:
    if key.isdigit():
        await record_progress_message(session, int(key), chat_id, message_id)


# `Reply.track` is "NAME:KEY"; NAME picks the recorder, KEY is handed to it.
AFTER_SEND: Mapping[str, Recorder] = {
    "broadcast": _broadcast_progress,
    TRACK: record_export_progress_message,
}


async def record_tracked(session: AsyncSession, track: str, chat_id: int, message_id: int) -> None:
    """A tracked reply was sent as `message_id`: let its recorder keep that id."""
    name, _, key = track.partition(":")
    recorder = AFTER_SEND.get(name)
    if recorder is None:
        log.warning("No after-send recorder is declared for %r", name)
        return
    await recorder(session, key, chat_id, message_id)


async def record_sent(runtime: Runtime, track: str, chat_id: int, message_id: int) -> None:
    """`record_tracked`, in a transaction of its own."""

    async def work(session: AsyncSession) -> None:
        await record_tracked(session, track, chat_id, message_id)

    await run_unit_of_work(runtime.sessions, work)


async def note_last_messages(session: AsyncSession, newest: Mapping[int, int]) -> None:
    """Remember the newest message sent to each person (chat id: message id), at once."""
    if not newest:
        return
    users = cast(Table, User.__table__)
    await session.execute(
        update(users)
        .where(users.c.telegram_id == bindparam("chat"))
        .values(last_message_id=bindparam("message")),
        [{"chat": chat, "message": message} for chat, message in newest.items()],
    )


async def send_payment_reminders(runtime: Runtime) -> int:
    """Write the payment reminders due today to the outbox; return how many."""
    from bot.services.reminders import remind_payments

    async def work(session: AsyncSession) -> int:
        return await remind_payments(session, runtime.settings, runtime.cipher, runtime.today())

    written = await run_unit_of_work(runtime.sessions, work)
    if written:
        log.info("Wrote %d payment reminders", written)
    return written
