"""The status workflow of a sent application: which changes are allowed and what each needs.

Pure Python: no database, no Telegram. Staff move an application along
`APPLICATION_TRANSITIONS` (bot/core/states.py): verified, then registered with a KPJ number and
the day cover starts, or rejected with a reason; the worker may withdraw before registration.
Here also the payment calendar that the reminders follow.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.core.errors import InvalidInput
from bot.core.messages import text_length
from bot.core.states import APPLICATION_TRANSITIONS, ApplicationStatus
from bot.core.text import read_typed

S = ApplicationStatus

# Digits of a KPJ number (the participant number on the Kartu Peserta). Eleven is what cards
# and the JMO app show; it is not confirmed by an official source, hence the KPJ_DIGITS setting.
KPJ_DIGITS = 11
# A rejection's reason, as stored and shown (the status_note column holds 500 characters).
MAX_NOTE = 500
# How far from today a cover start may lie: a registration keyed late, or a month ahead.
COVER_DAYS_BACK = 366
COVER_DAYS_AHEAD = 92

# Common reasons for a rejection, offered as buttons: code -> message id of its text.
REJECTION_REASONS: dict[str, str] = {
    "nik": "workflow.reason.nik",
    "member": "workflow.reason.member",
    "area": "workflow.reason.area",
    "age": "workflow.reason.age",
    "contact": "workflow.reason.contact",
}

# Message id of each status's short name, for staff screens, exports, reports and the history.
STATUS_NAMES: dict[str, str] = {
    S.DRAFT: "workflow.name.draft",
    S.SUBMITTED: "workflow.name.submitted",
    S.VERIFIED: "workflow.name.verified",
    S.REGISTERED: "workflow.name.registered",
    S.REJECTED: "workflow.name.rejected",
    S.CANCELLED: "workflow.name.cancelled",
}

# Statuses staff still have work on (/tinjau shows them).
WAITING = (S.SUBMITTED, S.VERIFIED)


class Refused(InvalidInput):
    """A change the workflow does not allow from the application's current status."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__("workflow.error.transition")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Change:
    """A checked change: the statuses passed through, in order, and what goes with the last."""

    steps: tuple[ApplicationStatus, ...]
    kpj: str | None = None
    covered_from: date | None = None
    note: str | None = None

    @property
    def target(self) -> ApplicationStatus:
        """Where the application ends."""
        return self.steps[-1]


def status_of(value: str) -> ApplicationStatus | None:
    """The status a stored value names, None for anything else."""
    try:
        return ApplicationStatus(value)
    except ValueError:
        return None


def steps_to(current: str, target: ApplicationStatus) -> tuple[ApplicationStatus, ...]:
    """The transitions from `current` to `target`, or Refused.

    One shortcut: registering a submitted application passes through "verified" (staff who
    key it into the national system have checked it), and both steps are recorded.
    """
    now = status_of(current)
    if now is not None and target in APPLICATION_TRANSITIONS.get(now, frozenset()):
        return (target,)
    if now is S.SUBMITTED and target is S.REGISTERED:
        return (S.VERIFIED, S.REGISTERED)
    raise Refused(current, target)


def normalise_kpj(text: str, digits: int = KPJ_DIGITS) -> str:
    """A KPJ number as digits only ("123 4567 8901" is fine), or InvalidInput."""
    cleaned = re.sub(r"[\s.\-]", "", text.strip())
    if not cleaned.isdigit() or len(cleaned) != digits:
        raise InvalidInput("workflow.error.kpj", digits=digits)
    return cleaned


def check_cover_start(day: date, today: date) -> date:
    """A plausible first day of cover, or InvalidInput."""
    if (
        not today - timedelta(days=COVER_DAYS_BACK)
        <= day
        <= today + timedelta(days=COVER_DAYS_AHEAD)
    ):
        raise InvalidInput("workflow.error.cover_date")
    return day


def check_note(text: str) -> str:
    """A rejection reason: some words, not a book, nothing hidden (the worker reads it)."""
    cleaned = " ".join(read_typed(text).split())
    if len(cleaned) < 3:
        raise InvalidInput("workflow.error.reason")
    if text_length(cleaned) > MAX_NOTE:
        raise InvalidInput("workflow.error.reason_long", limit=MAX_NOTE)
    return cleaned


def plan_change(
    current: str,
    target: ApplicationStatus,
    *,
    today: date,
    kpj: str | None = None,
    covered_from: date | None = None,
    note: str | None = None,
    kpj_digits: int = KPJ_DIGITS,
) -> Change:
    """Check a change and what it needs; raise Refused or InvalidInput when it cannot be made."""
    steps = steps_to(current, target)
    if target is S.REGISTERED:
        if not kpj:
            raise InvalidInput("workflow.error.kpj", digits=kpj_digits)
        if covered_from is None:
            raise InvalidInput("workflow.error.cover_date")
        return Change(
            steps,
            kpj=normalise_kpj(kpj, kpj_digits),
            covered_from=check_cover_start(covered_from, today),
        )
    if target is S.REJECTED:
        return Change(steps, note=check_note(note or ""))
    return Change(steps, note=" ".join(note.split())[:MAX_NOTE] if note else None)


# ---------------------------------------------------------------- the payment calendar


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_due(covered_from: date, period_months: int, today: date) -> date:
    """The next day a payment falls due on or after `today`.

    The first period is paid on registration (the "terdaftar" notice says so); each later
    payment falls due when the period paid for ends: cover start + k periods, k >= 1.
    """
    k = 1
    while (due := add_months(covered_from, k * period_months)) < today:
        k += 1
    return due


def reminder_due(
    covered_from: date, period_months: int, today: date, days_before: int
) -> date | None:
    """The due date to remind of today, if one is `days_before` days away or less."""
    due = next_due(covered_from, period_months, today)
    return due if (due - today).days <= days_before else None
