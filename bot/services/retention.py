"""Retention: personal data kept no longer than it is needed, by a daily job.

- Unfinished drafts: deleted after DRAFT_RETENTION_DAYS (30).
- Rejected and withdrawn applications: their personal data erased after
  CLOSED_RETENTION_DAYS (365) since the last change, leaving the same tombstone as /hapus.
- Stored updates: their text is blanked the moment they are handled (`bot.services.inbox`);
  the rows (ids only, for telling a repeat from a new update) go after a day.
- Messages that could not be delivered (failed, blocked, uncertain): deleted after
  UNDELIVERED_RETENTION_DAYS (7); sent ones are deleted as soon as they are sent.
- The texts of closed staff requests (corrections): blanked after CLOSED_RETENTION_DAYS.
- Leaders' own broadcast texts and photos: blanked CLOSED_RETENTION_DAYS after the broadcast
  finished or was cancelled (its counts and audit rows stay).

Every step selects only what is still due, so the job is safe to run twice, after a restart
or from another replica; only the leader runs it. It logs counts, never data.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.states import ApplicationStatus, BroadcastState
from bot.db.models import (
    Application,
    Broadcast,
    OutboxMessage,
    StaffRequest,
    StatusChange,
    utcnow,
)
from bot.runtime import Runtime
from bot.services.inbox import purge_inbox
from bot.services.registration import purge_stale_drafts
from bot.services.rights import erase_application
from bot.services.updates import run_unit_of_work

log = logging.getLogger(__name__)

CLOSED = (ApplicationStatus.REJECTED, ApplicationStatus.CANCELLED)
UNDELIVERED = ("failed", "blocked", "uncertain")


async def erase_closed_applications(session: AsyncSession, older_than: timedelta) -> int:
    """Erase the personal data of applications rejected or withdrawn before the cut-off."""
    now = utcnow()
    cutoff = now - older_than
    apps = list(
        await session.scalars(
            select(Application).where(
                Application.status.in_(CLOSED),
                Application.erased_at.is_(None),
                Application.status_changed_at < cutoff,
            )
        )
    )
    for app in apps:
        erase_application(app, now)
    if apps:
        ids = [app.id for app in apps]
        await session.execute(
            update(StatusChange)
            .where(StatusChange.application_id.in_(ids))
            .values(kpj_number=None, note=None)
        )
    return len(apps)


async def forget_undelivered(session: AsyncSession, older_than: timedelta) -> int:
    """Delete messages that could not be delivered, once they are old enough."""
    result = await session.execute(
        delete(OutboxMessage)
        .where(
            OutboxMessage.state.in_(UNDELIVERED), OutboxMessage.created_at < utcnow() - older_than
        )
        .returning(OutboxMessage.id)
    )
    return len(result.all())


async def blank_closed_requests(session: AsyncSession, older_than: timedelta) -> int:
    """Blank what workers wrote in correction requests closed before the cut-off."""
    result = await session.execute(
        update(StaffRequest)
        .where(
            StaffRequest.closed_at < utcnow() - older_than,
            StaffRequest.text_enc.is_not(None),
        )
        .values(text_enc=None)
        .returning(StaffRequest.id)
    )
    return len(result.all())


async def blank_old_broadcasts(session: AsyncSession, older_than: timedelta) -> int:
    """Blank the own texts and photos of broadcasts ended before the cut-off."""
    ended = (BroadcastState.DONE, BroadcastState.CANCELLED)
    result = await session.execute(
        update(Broadcast)
        .where(
            Broadcast.state.in_([state.value for state in ended]),
            func.coalesce(Broadcast.finished_at, Broadcast.created_at) < utcnow() - older_than,
            or_(Broadcast.text_enc.is_not(None), Broadcast.photo_enc.is_not(None)),
        )
        .values(text_enc=None, photo_enc=None)
        .returning(Broadcast.id)
    )
    return len(result.all())


async def apply_retention(runtime: Runtime) -> dict[str, int]:
    """One run of the daily retention job; returns how many of each kind went."""
    settings = runtime.settings
    closed = timedelta(days=settings.closed_retention_days)
    undelivered = timedelta(days=settings.undelivered_retention_days)
    drafts = timedelta(days=settings.draft_retention_days)

    async def work(session: AsyncSession) -> dict[str, int]:
        return {
            "drafts": await purge_stale_drafts(session, drafts),
            "closed_applications": await erase_closed_applications(session, closed),
            "undelivered_messages": await forget_undelivered(session, undelivered),
            "request_texts": await blank_closed_requests(session, closed),
            "broadcast_texts": await blank_old_broadcasts(session, closed),
        }

    counts = await run_unit_of_work(runtime.sessions, work)
    counts["handled_updates"] = await purge_inbox(runtime.sessions)
    if any(counts.values()):
        log.info(
            "Retention: %s",
            ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items()),
        )
    return counts
