"""What a channel adapter asks of the services; each call is one unit of work of its own.

An adapter (Telegram today) turns what arrives into `Incoming` and calls `answer`; every
read and write of the update happens there, in one transaction committed before the adapter
sends anything. What has to be remembered once a reply is out (its message id) goes through
the after-send recorders declared here, each in a short transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.messages import Incoming, Outcome
from bot.db.models import User, utcnow
from bot.services.broadcasts import record_progress_message
from bot.services.registration import purge_stale_drafts
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


async def answer(runtime: Runtime, chat_id: int, language: str, incoming: Incoming) -> Answer:
    """Handle one input of a person; `language` is the channel's guess for a first contact."""

    async def work(session: AsyncSession) -> Answer:
        user = await user_for_telegram(session, chat_id, language)
        outcome = await runtime.conversation.handle(session, user, incoming)
        return Answer(outcome, user.language or runtime.settings.default_language)

    return await run_unit_of_work(runtime.sessions, work)


async def set_blocked(runtime: Runtime, chat_id: int, *, blocked: bool) -> None:
    """The person blocked (or unblocked) the bot: leave them out of audiences (or back in)."""

    async def work(session: AsyncSession) -> None:
        user = await session.scalar(select(User).where(User.telegram_id == chat_id))
        if user is not None:
            user.blocked_at = utcnow() if blocked else None

    await run_unit_of_work(runtime.sessions, work)


@dataclass(frozen=True)
class MenuOwner:
    """What a channel needs to show a person their command menu."""

    grants: list[Grant]
    language: str


async def menu_owner(runtime: Runtime, chat_id: int) -> MenuOwner | None:
    """The person's roles and language; None for someone who never wrote to the bot."""

    async def work(session: AsyncSession) -> MenuOwner | None:
        user = await session.scalar(select(User).where(User.telegram_id == chat_id))
        if user is None:
            return None
        grants = await grants_of(session, user, runtime.settings.admin_telegram_ids)
        return MenuOwner(grants, user.language or runtime.settings.default_language)

    return await run_unit_of_work(runtime.sessions, work)


# A recorder keeps the id of a sent message: (session, key, chat id, message id).
Recorder = Callable[[AsyncSession, str, int, int], Awaitable[None]]


async def _broadcast_progress(
    session: AsyncSession, key: str, chat_id: int, message_id: int
) -> None:
    if key.isdigit():
        await record_progress_message(session, int(key), chat_id, message_id)


# `Reply.track` is "NAME:KEY"; NAME picks the recorder, KEY is handed to it.
AFTER_SEND: Mapping[str, Recorder] = {"broadcast": _broadcast_progress}


async def record_sent(runtime: Runtime, track: str, chat_id: int, message_id: int) -> None:
    """A tracked reply was sent as `message_id`: let its recorder keep that id."""
    name, _, key = track.partition(":")
    recorder = AFTER_SEND.get(name)
    if recorder is None:
        log.warning("No after-send recorder is declared for %r", name)
        return

    async def work(session: AsyncSession) -> None:
        await recorder(session, key, chat_id, message_id)

    await run_unit_of_work(runtime.sessions, work)


async def purge_drafts(runtime: Runtime) -> int:
    """Delete registrations left unfinished longer than the retention setting; return how many."""
    days = runtime.settings.draft_retention_days

    async def work(session: AsyncSession) -> int:
        return await purge_stale_drafts(session, timedelta(days=days))

    removed = await run_unit_of_work(runtime.sessions, work)
    if removed:
        log.info("Deleted %d unfinished registrations older than %d days", removed, days)
    return removed
