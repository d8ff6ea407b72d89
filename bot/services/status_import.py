"""`import-status FILE`: status changes for many applications from a spreadsheet (CSV or XLSX).

Columns: reference, status, kpj, reason (and, for "registered", the day cover starts), under
their English keys, a few Indonesian names ("Nomor referensi", "Mulai perlindungan") or the
export's own headers in either language ("Nomor pendaftaran", "Status", "Nomor KPJ",
"Catatan status"), so an export with those columns filled in can be imported back. Other
columns are ignored.

Two levels of checking. A file that cannot be read as a whole (see `bot.core.tables`: not
UTF-8, semicolons instead of commas, a broken quote, too large; or no reference or status
column) is refused and nothing changes. Then
each row stands alone: the valid rows are applied (with their history, audit rows and
notices) in one transaction, and every other row is reported with the reason. A row whose
application is already in that status changes nothing, so importing the same file twice
changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import tables
from bot.core.dates import parse_date
from bot.core.errors import InvalidInput
from bot.core.states import ApplicationStatus
from bot.core.tables import TableError
from bot.core.workflow import STATUS_NAMES, Refused, status_of
from bot.db.models import Application
from bot.i18n import LANGUAGES, Translator, translator
from bot.security import Cipher
from bot.services import audit
from bot.services.workflow import Actor, Notice, change_status, send_notices, status_name

S = ApplicationStatus

# The header names each field is known by (compared without case and extra spaces), besides
# the export's own headers in every language (`EXPORT_COLUMNS`): an export round-trips.
ALIASES: dict[str, tuple[str, ...]] = {
    "reference": ("reference", "nomor referensi", "no. referensi", "referensi"),
    "status": ("status",),
    "kpj": ("kpj", "kpj_number", "nomor kpj", "no. kpj"),
    "reason": ("reason", "status_note", "catatan status", "alasan", "note"),
    "cover": (
        "covered_from",
        "cover_start",
        "mulai perlindungan",
        "tanggal mulai perlindungan",
    ),
}
EXPORT_COLUMNS = {
    "reference": "reference",
    "status": "status",
    "kpj": "kpj_number",
    "reason": "status_note",
}


def _known_headers() -> dict[str, tuple[str, ...]]:
    known = {key: list(names) for key, names in ALIASES.items()}
    for key, column in EXPORT_COLUMNS.items():
        for language in LANGUAGES:
            known[key].append(_norm(translator(language)(f"export.column.{column}")))
    return {key: tuple(names) for key, names in known.items()}


@dataclass
class ImportReport:
    """What an import did: rows applied, rows already in that status, rows refused and why."""

    applied: list[tuple[int, str, str]] = field(default_factory=list)
    unchanged: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _norm(text: Any) -> str:
    return " ".join(str(text or "").split()).casefold()


HEADERS = _known_headers()


def _status_words() -> dict[str, S]:
    """Every way a status may be written: its code, its short name, its /status text."""
    words: dict[str, S] = {}
    for status in S:
        if status is S.DRAFT:
            continue
        words[_norm(status.value)] = status
        for language in LANGUAGES:
            t = translator(language)
            words[_norm(t(STATUS_NAMES[status]))] = status
            words[_norm(t(f"status.{status.value}"))] = status
    return words


def _columns(header: list[Any]) -> dict[str, int]:
    names = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for key, known in HEADERS.items():
        for index, name in enumerate(names):
            if name in known:
                found[key] = index
                break
    if "reference" not in found or "status" not in found:
        raise TableError("import.error.columns")
    return found


def read_rows(path: Path, *, max_bytes: int) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a file as (row number, field -> value); TableError when unreadable."""
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise TableError("import.error.format")
    header, *body = tables.read_rows(path, max_bytes=max_bytes)
    columns = _columns(header)
    return [
        (number, {k: values[i] if i < len(values) else None for k, i in columns.items()})
        for number, values in tables.data_rows(body, len(header))
    ]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_date(str(value))


async def import_status(
    session: AsyncSession,
    settings: Settings,
    cipher: Cipher,
    path: Path,
    *,
    today: date,
    actor: Actor | None = None,
) -> ImportReport:
    """Apply a status file in the current transaction; TableError leaves everything as it was."""
    rows = read_rows(path, max_bytes=settings.import_max_mb * tables.MEGABYTE)
    actor = actor or Actor(label="import")
    t = translator(settings.default_language)
    words = _status_words()
    report = ImportReport()
    notices: list[Notice] = []
    seen: set[str] = set()
    for line, row in rows:
        reference = _text(row.get("reference")).upper()
        why = await _apply_row(
            session, settings, cipher, t, words, row, reference, seen, today, actor, notices
        )
        if why is None:
            report.applied.append((line, reference, _text(row.get("status"))))
        elif why == "":
            report.unchanged.append((line, reference))
        else:
            report.rejected.append((line, reference or "-", why))
    await send_notices(session, cipher, notices)
    await audit.record(
        session,
        "status_import",
        actor=actor.user,
        actor_label=actor.label,
        target=path.name,
        applied=len(report.applied),
        unchanged=len(report.unchanged),
        rejected=len(report.rejected),
    )
    return report


async def _apply_row(
    session: AsyncSession,
    settings: Settings,
    cipher: Cipher,
    t: Translator,
    words: dict[str, S],
    row: dict[str, Any],
    reference: str,
    seen: set[str],
    today: date,
    actor: Actor,
    notices: list[Notice],
) -> str | None:
    """Apply one row: None when applied, "" when nothing was to change, else why not."""
    if not reference:
        return t("import.error.no_reference")
    if reference in seen:
        return t("import.error.twice")
    seen.add(reference)
    target = words.get(_norm(row.get("status")))
    if target is None:
        return t("import.error.status", status=_text(row.get("status")) or "-")
    app = await session.scalar(select(Application).where(Application.reference == reference))
    if app is None or status_of(app.status) in (None, S.DRAFT):
        return t("import.error.reference")
    kpj = _text(row.get("kpj")) or None
    if app.status == target:
        if target is S.REGISTERED and kpj and kpj.replace(" ", "") != app.kpj_number:
            return t("import.error.kpj_differs", kpj=app.kpj_number or "-")
        return ""
    try:
        cover = _day(row.get("cover"))
        if target is S.REGISTERED and cover is None:
            # A sheet without the column: cover starts on the day the registration is keyed.
            cover = today
        applied = await change_status(
            session,
            settings,
            cipher,
            app,
            target,
            actor=actor,
            today=today,
            kpj=kpj,
            covered_from=cover,
            note=_text(row.get("reason")) or None,
        )
    except Refused as exc:
        return t(exc.key, current=status_name(t, exc.current), target=status_name(t, exc.target))
    except InvalidInput as exc:
        return t(exc.key, **exc.params)
    if applied.notice is not None:
        notices.append(applied.notice)
    return None
