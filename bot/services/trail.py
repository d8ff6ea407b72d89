"""Who viewed, exported or changed one person's application, from the audit log.

The basis of /dataku's "who has seen my data" and of `audit --person` (a breach notice needs
it). Rows that name the application (a status change, a /tinjau card opened, a claim, an
erasure) are found by its reference or id. An export row names no application: it keeps the
filters it was run with and the moment it read up to, so whether this application was in it
is worked out from those, with the status it had at that moment (from its history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.states import ApplicationStatus
from bot.db.models import Application, AuditEntry, StatusChange

EXPORT = "export"
# Actions on the application itself, as the audit log names them.
NAMING = ("status_change", "review_view", "claim", "erased", "correction_request")


@dataclass(frozen=True)
class Trace:
    """One time someone did something with the application."""

    at: datetime
    action: str
    actor_user_id: int | None
    actor_label: str | None
    details: dict[str, Any]


def _status_at(app: Application, history: list[StatusChange], moment: datetime) -> str | None:
    """The status the application had at `moment` (None: not yet sent then)."""
    if app.submitted_at is None or app.submitted_at > moment:
        return None
    status: str = ApplicationStatus.SUBMITTED
    for change in history:
        if change.at <= moment:
            status = change.to_status
    return status


def was_exported(
    details: dict[str, Any],
    app: Application,
    history: list[StatusChange],
    settings: Settings,
) -> bool:
    """Whether an export with these audit details held this application."""
    as_of = datetime.fromisoformat(str(details.get("as_of")))
    status = _status_at(app, history, as_of)
    if status is None or status == ApplicationStatus.DRAFT:
        return False
    code = app.village_code or ""
    for key in ("filter_regency", "filter_district"):
        prefix = details.get(key)
        if prefix and not code.startswith(f"{prefix}."):
            return False
    if details.get("filter_village") and code != details["filter_village"]:
        return False
    adat = details.get("filter_desa_adat_id")
    if adat is not None and app.desa_adat_id != int(adat):
        return False
    if details.get("filter_status") and status != details["filter_status"]:
        return False
    sent = app.submitted_at
    assert sent is not None
    tz = settings.tz
    if details.get("filter_since"):
        start = datetime.combine(date.fromisoformat(details["filter_since"]), time(), tz)
        if sent < start:
            return False
    if details.get("filter_until"):
        day = date.fromisoformat(details["filter_until"]) + timedelta(days=1)
        if sent >= datetime.combine(day, time(), tz):
            return False
    after = details.get("filter_sent_after")
    return not (after and sent <= datetime.fromisoformat(str(after)))


async def trail_of(session: AsyncSession, app: Application, settings: Settings) -> list[Trace]:
    """Everything the audit log says was done with this application, oldest first."""
    history = list(
        await session.scalars(
            select(StatusChange)
            .where(StatusChange.application_id == app.id)
            .order_by(StatusChange.at, StatusChange.id)
        )
    )
    names = [f"application:{app.id}"] + ([app.reference] if app.reference else [])
    since = app.submitted_at or app.created_at
    rows = await session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.at >= since,
            or_(
                (AuditEntry.action == EXPORT),
                (AuditEntry.action.in_(NAMING) & AuditEntry.target.in_(names)),
            ),
        )
        .order_by(AuditEntry.id)
    )
    traces = []
    for entry in rows:
        details = json.loads(entry.details or "{}")
        if entry.action == EXPORT and not was_exported(details, app, history, settings):
            continue
        traces.append(
            Trace(entry.at, entry.action, entry.actor_user_id, entry.actor_label, details)
        )
    return traces
