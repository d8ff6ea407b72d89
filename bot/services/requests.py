"""Requests staff see in /tinjau and close: NIK disputes, and corrections after verification.

A NIK dispute: someone tried a NIK that another person's application already holds. Whoever
types a NIK first must not lock its owner out, and the person trying must not learn whether
or by whom it is registered; so their chat hears only that the NIK cannot be registered from
there, and staff see the dispute: as a warning on the card of a waiting application, and as
a card of its own once the application holding the NIK has gone past review.

A correction: a worker whose application was already verified cannot edit it any more (staff
may have copied it into the national system), so what they write goes to staff as a card.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.workflow import WAITING
from bot.db.models import Application, StaffRequest, User, utcnow
from bot.services import audit

DISPUTE = "nik_dispute"
CORRECTION = "correction"
KINDS = (DISPUTE, CORRECTION)
# Audit actions: the one who asks or tries ("nik_dispute", "correction_request"), and staff.
ASKED = {DISPUTE: "nik_dispute", CORRECTION: "correction_request"}
CLOSED = "request_closed"


async def record_request(
    session: AsyncSession,
    kind: str,
    application: Application,
    user: User,
    *,
    text_enc: str | None = None,
) -> None:
    """Note a request about `application` (a dispute: once while one is open)."""
    if kind == DISPUTE:
        already = await session.scalar(
            select(StaffRequest.id).where(
                StaffRequest.kind == kind,
                StaffRequest.application_id == application.id,
                StaffRequest.user_id == user.id,
                StaffRequest.closed_at.is_(None),
            )
        )
        if already is not None:
            return
    session.add(
        StaffRequest(kind=kind, application_id=application.id, user_id=user.id, text_enc=text_enc)
    )
    # A dispute is audited by the application's id: the reference would tell the person
    # trying nothing, but the log entry is theirs (it lists what they did).
    target = application.reference if kind == CORRECTION else f"application:{application.id}"
    await audit.record(session, ASKED[kind], actor=user, target=target)


async def open_requests_of(session: AsyncSession, application_id: int, kind: str) -> int:
    """How many open requests of a kind name this application."""
    count = await session.scalar(
        select(func.count())
        .select_from(StaffRequest)
        .where(
            StaffRequest.application_id == application_id,
            StaffRequest.kind == kind,
            StaffRequest.closed_at.is_(None),
        )
    )
    return int(count or 0)


async def next_request(
    session: AsyncSession, *, village: str | None, skipped: list[int]
) -> StaffRequest | None:
    """The oldest open request with a card of its own.

    (A dispute on an application still waiting for review shows on that application's card.)
    """
    query = (
        select(StaffRequest)
        .join(Application, Application.id == StaffRequest.application_id)
        .where(
            StaffRequest.closed_at.is_(None),
            or_(StaffRequest.kind != DISPUTE, Application.status.not_in(WAITING)),
        )
        .order_by(StaffRequest.id)
        .limit(1)
    )
    if village is not None:
        query = query.where(Application.village_code == village)
    if skipped:
        query = query.where(StaffRequest.id.not_in(skipped))
    return await session.scalar(query)


async def close_request(session: AsyncSession, request_id: int, staff: User) -> StaffRequest | None:
    """Close an open request; None when it was closed already (or does not exist)."""
    closed = await session.execute(
        update(StaffRequest)
        .where(StaffRequest.id == request_id, StaffRequest.closed_at.is_(None))
        .values(closed_at=utcnow(), closed_by=staff.id)
        .returning(StaffRequest.id)
    )
    if closed.scalar() is None:
        return None
    request = await session.get(StaffRequest, request_id, populate_existing=True)
    assert request is not None
    await audit.record(
        session,
        CLOSED,
        actor=staff,
        target=f"application:{request.application_id}",
        request=request_id,
        kind=request.kind,
    )
    return request
