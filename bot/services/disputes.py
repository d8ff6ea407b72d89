"""NIK disputes: someone tried a NIK that another person's application already holds.

Whoever types a NIK first must not lock its owner out, and the person trying must not learn
whether or by whom it is registered. So the chat hears only that the NIK cannot be
registered from there, and staff see the dispute in /tinjau: as a warning on the card of a
waiting application, and as a card of its own when the application holding the NIK has gone
past review. Staff close a dispute once they have dealt with it (at the office, with the KTP).
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.workflow import WAITING
from bot.db.models import Application, NikDispute, User, utcnow
from bot.services import audit

DISPUTE = "nik_dispute"
DISPUTE_CLOSED = "nik_dispute_closed"


async def record_dispute(session: AsyncSession, holder: Application, claimant: User) -> None:
    """Note that `claimant` tried the NIK `holder` holds (once while it is open)."""
    already = await session.scalar(
        select(NikDispute.id).where(
            NikDispute.application_id == holder.id,
            NikDispute.claimant_user_id == claimant.id,
            NikDispute.closed_at.is_(None),
        )
    )
    if already is not None:
        return
    session.add(NikDispute(application_id=holder.id, claimant_user_id=claimant.id))
    await audit.record(session, DISPUTE, actor=claimant, target=f"application:{holder.id}")


async def open_disputes_of(session: AsyncSession, application_id: int) -> int:
    """How many open disputes name this application."""
    count = await session.scalar(
        select(func.count())
        .select_from(NikDispute)
        .where(NikDispute.application_id == application_id, NikDispute.closed_at.is_(None))
    )
    return int(count or 0)


async def next_dispute(
    session: AsyncSession, *, village: str | None, skipped: list[int]
) -> NikDispute | None:
    """The oldest open dispute whose application is no longer waiting for review.

    (A waiting application shows its disputes on its own card.)
    """
    query = (
        select(NikDispute)
        .join(Application, Application.id == NikDispute.application_id)
        .where(NikDispute.closed_at.is_(None), Application.status.not_in(WAITING))
        .order_by(NikDispute.id)
        .limit(1)
    )
    if village is not None:
        query = query.where(Application.village_code == village)
    if skipped:
        query = query.where(NikDispute.id.not_in(skipped))
    return await session.scalar(query)


async def close_dispute(session: AsyncSession, dispute_id: int, staff: User) -> bool:
    """Close an open dispute; False when it was closed already (or does not exist)."""
    closed = await session.execute(
        update(NikDispute)
        .where(NikDispute.id == dispute_id, NikDispute.closed_at.is_(None))
        .values(closed_at=utcnow(), closed_by=staff.id)
        .returning(NikDispute.application_id)
    )
    application_id = closed.scalar()
    if application_id is None:
        return False
    await audit.record(
        session,
        DISPUTE_CLOSED,
        actor=staff,
        target=f"application:{application_id}",
        dispute=dispute_id,
    )
    return True
