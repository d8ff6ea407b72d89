"""Payment reminders: a registered worker is reminded a few days before each payment is due.

The bot does not know whether anyone paid, so a reminder only says "jangan lupa". A scheduled
job of the leader process (`remind_payments`) looks at every registered application; for a
due date REMINDER_DAYS_BEFORE days away or less it writes a `PaymentReminder` row and the
message to the outbox in one transaction. The row is unique per application and due date, so
a job run twice, after a restart or on another replica writes nothing the second time.
People who sent /berhenti, or who blocked the bot, are not reminded.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.dates import format_date
from bot.core.messages import Reply
from bot.core.money import format_rupiah
from bot.core.questions import contribution_of
from bot.core.states import ApplicationStatus
from bot.core.workflow import reminder_due
from bot.db.models import Application, PaymentReminder, User, utcnow
from bot.i18n import translator
from bot.security import Cipher
from bot.services.workflow import Notice, send_notices


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


async def _mark(session: AsyncSession, application_id: int, due: date) -> bool:
    """Record the reminder for one due date; False when it was written before."""
    statement: Insert = (
        _insert(session)(PaymentReminder)
        .values(application_id=application_id, due_on=due, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["application_id", "due_on"])
        .returning(PaymentReminder.id)
    )
    return (await session.execute(statement)).first() is not None


async def remind_payments(
    session: AsyncSession, settings: Settings, cipher: Cipher, today: date
) -> int:
    """Write the reminders due `today` (and those missed while the bot was down); how many."""
    rows = (
        await session.execute(
            select(Application, User)
            .join(User, User.id == Application.user_id)
            .where(
                Application.status == ApplicationStatus.REGISTERED,
                Application.covered_from.is_not(None),
                User.telegram_id.is_not(None),
                User.opted_out_at.is_(None),
                User.blocked_at.is_(None),
                User.erased_at.is_(None),
                Application.erased_at.is_(None),
            )
            .order_by(Application.id)
        )
    ).all()
    notices: list[Notice] = []
    for app, user in rows:
        if app.assisted_by is not None and app.assisted_by == app.user_id:
            continue  # not claimed yet: the resident has no chat of their own
        answers: dict[str, Any] = cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        contribution = contribution_of(answers, settings.rates)
        assert app.covered_from is not None and user.telegram_id is not None
        due = reminder_due(
            app.covered_from, contribution.period_months, today, settings.reminder_days_before
        )
        if due is None or not await _mark(session, app.id, due):
            continue
        t = translator(user.language or app.language or settings.default_language)
        text = t(
            "reminder.payment",
            date=format_date(due, t.language),
            amount=format_rupiah(contribution.per_payment),
            period=t(f"period.label.{contribution.period_months}"),
            kpj=app.kpj_number or "-",
        )
        notices.append(Notice(user.telegram_id, Reply(text)))
    await send_notices(session, cipher, notices)
    return len(notices)
