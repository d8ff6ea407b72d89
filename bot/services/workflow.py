"""Changing an application's status: history, audit row and the worker's notice, in one go.

Every change, from /tinjau, from `import-status` or from the worker's own withdrawal, goes
through `change_status`, inside the caller's transaction: the status columns, one history row
per step, one audit row, and the notice to the worker (written to the outbox by the caller in
the same transaction, so a change is never without its notice, nor a notice without its
change). The outbox sends it paced and retried, a restart goes on where it stopped, and a
notice is never sent twice (`Outgoing.once`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.dates import format_date
from bot.core.messages import Reply
from bot.core.money import format_rupiah
from bot.core.questions import contribution_of
from bot.core.states import ApplicationStatus
from bot.core.workflow import REJECTION_REASONS, STATUS_NAMES, Change, plan_change
from bot.db.models import Application, StatusChange, User, utcnow
from bot.i18n import Translator, translator
from bot.security import Cipher
from bot.services import audit
from bot.services.outbox import Outgoing, enqueue

S = ApplicationStatus


@dataclass(frozen=True)
class Actor:
    """Who changes a status: a person in the chat, or the command line (`label`)."""

    user: User | None = None
    label: str | None = None


@dataclass(frozen=True)
class Notice:
    """A message to a worker about their application (`chat_id` on the channel)."""

    chat_id: int
    reply: Reply

    def outgoing(self) -> Outgoing:
        """As an outbox row: a notice to someone other than the person acting, never twice."""
        return Outgoing(self.chat_id, reply=self.reply, priority=1, once=True)


@dataclass(frozen=True)
class Applied:
    """A change made, and the notice it calls for (None when nobody is to be told)."""

    change: Change
    notice: Notice | None


async def change_status(
    session: AsyncSession,
    settings: Settings,
    cipher: Cipher,
    app: Application,
    target: ApplicationStatus,
    *,
    actor: Actor,
    today: date,
    kpj: str | None = None,
    covered_from: date | None = None,
    note: str | None = None,
    reason: str | None = None,
    notify: bool = True,
) -> Applied:
    """Move `app` to `target`, or raise Refused / InvalidInput and change nothing.

    `reason` is a code of REJECTION_REASONS (a button); its text in the branch's language is
    the stored note, and the worker reads it in theirs. `notify=False` when the worker acted
    and is answered in the chat instead.
    """
    if reason is not None and reason in REJECTION_REASONS:
        note = translator(settings.default_language)(REJECTION_REASONS[reason])
    change = plan_change(
        app.status,
        target,
        today=today,
        kpj=kpj,
        covered_from=covered_from,
        note=note,
        kpj_digits=settings.kpj_digits,
    )
    now = utcnow()
    before = app.status
    for step in change.steps:
        last = step is change.target
        session.add(
            StatusChange(
                application_id=app.id,
                at=now,
                actor_user_id=actor.user.id if actor.user is not None else None,
                actor_label=actor.label,
                from_status=app.status,
                to_status=step.value,
                kpj_number=change.kpj if last else None,
                covered_from=change.covered_from if last else None,
                note=change.note if last else None,
            )
        )
        app.status = step.value
    app.status_changed_at = now
    app.status_note = change.note
    if change.target is S.REGISTERED:
        app.kpj_number = change.kpj
        app.covered_from = change.covered_from
    app.review_claimed_by = None
    app.review_claimed_until = None
    await audit.record(
        session,
        "status_change",
        actor=actor.user,
        actor_label=actor.label,
        target=app.reference,
        before=before,
        after=change.target.value,
    )
    notice = await notice_for(session, settings, cipher, app, reason) if notify else None
    return Applied(change, notice)


async def notice_for(
    session: AsyncSession,
    settings: Settings,
    cipher: Cipher,
    app: Application,
    reason: str | None = None,
) -> Notice | None:
    """What the worker is told of the application's new status, in their language."""
    # An assisted application not yet claimed belongs to the leader's account: the resident
    # has no chat of their own to tell, and the leader tells them in person.
    if app.assisted_by is not None and app.assisted_by == app.user_id:
        return None
    worker = await session.get(User, app.user_id)
    if worker is None or worker.telegram_id is None or worker.erased_at is not None:
        # (Nobody to tell, or they withdrew consent: nothing more is sent to them.)
        return None
    t = translator(worker.language or app.language or settings.default_language)
    text = notice_text(t, settings, cipher, app, reason)
    return None if text is None else Notice(worker.telegram_id, Reply(text))


def notice_text(
    t: Translator, settings: Settings, cipher: Cipher, app: Application, reason: str | None
) -> str | None:
    """The words of a status notice (None for statuses nobody is told of)."""
    reference = app.reference or "-"
    contact = {"address": settings.branch_address, "call_centre": settings.call_centre}
    if app.status == S.VERIFIED:
        return t("workflow.notice.verified", reference=reference)
    if app.status == S.REJECTED:
        why = t(REJECTION_REASONS[reason]) if reason in REJECTION_REASONS else app.status_note
        return t("workflow.notice.rejected", reference=reference, reason=why or "-", **contact)
    if app.status == S.REGISTERED:
        return registered_text(t, settings, cipher, app)
    return None


def registered_text(t: Translator, settings: Settings, cipher: Cipher, app: Application) -> str:
    """The "terdaftar" notice: KPJ number, cover start, what to pay and where."""
    answers: dict[str, Any] = cipher.decrypt(app.answers_enc) if app.answers_enc else {}
    contribution = contribution_of(answers, settings.rates)
    return t(
        "workflow.notice.registered",
        reference=app.reference or "-",
        kpj=app.kpj_number or "-",
        date=format_date(app.covered_from, t.language) if app.covered_from else "-",
        amount=format_rupiah(contribution.per_payment),
        period=t(f"period.label.{contribution.period_months}"),
        address=settings.branch_address,
        call_centre=settings.call_centre,
    )


async def send_notices(session: AsyncSession, cipher: Cipher, notices: Sequence[Notice]) -> None:
    """Write notices to the outbox in the current transaction (outside a chat turn)."""
    await enqueue(session, cipher, [n.outgoing() for n in notices])


async def history_of(session: AsyncSession, application_id: int) -> list[StatusChange]:
    """An application's status changes, oldest first."""
    return list(
        (
            await session.scalars(
                select(StatusChange)
                .where(StatusChange.application_id == application_id)
                .order_by(StatusChange.id)
            )
        ).all()
    )


def status_name(t: Translator, status: str) -> str:
    """A status's short name ("diverifikasi"), the value itself when unknown."""
    key = STATUS_NAMES.get(status)
    return t(key) if key is not None else status
