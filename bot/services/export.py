"""Exporting applications for branch staff (CSV or XLSX), streamed so any size fits."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.form import QUESTIONS
from bot.db.models import Application
from bot.security import Cipher
from bot.services.areas import AreaDirectory
from bot.services.conversation import answers_contribution

# Form answers go out as they are (full NIK: staff key it into the national system), plus
# the names behind the codes and the computed contribution.
COLUMNS: tuple[str, ...] = (
    "reference",
    "status",
    "submitted_at",
    *(q.key for q in QUESTIONS if q.key not in ("regency", "district", "village", "desa_adat")),
    "regency_code",
    "regency_name",
    "district_code",
    "district_name",
    "village_code",
    "village_name",
    "desa_adat",
    "jkk",
    "jkm",
    "jht",
    "monthly_contribution",
    "per_payment",
)


def _row(
    app: Application,
    answers: dict[str, Any],
    areas: AreaDirectory,
    settings: Settings,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "reference": app.reference or "",
        "status": app.status,
        "submitted_at": app.submitted_at.astimezone(settings.tz).isoformat(timespec="seconds")
        if app.submitted_at
        else "",
    }
    for question in QUESTIONS:
        value = answers.get(question.key)
        if isinstance(value, list):
            value = "+".join(str(v).upper() for v in value)
        row[question.key] = "" if value is None else value
    village = areas.village_by_code.get(str(answers.get("village")))
    district = areas.district_by_code.get(village.district_code) if village else None
    regency = areas.regency_by_code.get(district.regency_code) if district else None
    row.update(
        regency_code=regency.code if regency else "",
        regency_name=regency.name if regency else "",
        district_code=district.code if district else "",
        district_name=district.name if district else "",
        village_code=village.code if village else "",
        village_name=village.name if village else "",
    )
    adat = answers.get("desa_adat")
    row["desa_adat"] = adat.get("name", "") if isinstance(adat, dict) else ""
    contribution = answers_contribution(answers, int(answers.get("period") or 1), settings)
    row.update(
        jkk=contribution.jkk,
        jkm=contribution.jkm,
        jht=contribution.jht,
        monthly_contribution=contribution.monthly,
        per_payment=contribution.per_payment,
    )
    return {column: row.get(column, "") for column in COLUMNS}


async def export_rows(
    session: AsyncSession, cipher: Cipher, areas: AreaDirectory, settings: Settings
) -> AsyncIterator[dict[str, Any]]:
    """Every submitted application as an export row, read in a stream."""
    result = await session.stream_scalars(
        select(Application)
        .where(Application.status != "draft")
        .order_by(Application.submitted_at, Application.id)
        .execution_options(yield_per=500)
    )
    async for app in result:
        answers = cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        yield _row(app, answers, areas, settings)


async def write_csv(rows: AsyncIterator[dict[str, Any]], handle: TextIO) -> int:
    """Write rows as CSV to an open text handle; return how many were written."""
    count = 0
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    async for row in rows:
        writer.writerow(row)
        count += 1
    return count


async def write_export(rows: AsyncIterator[dict[str, Any]], fmt: str, output: Path) -> int:
    """Write rows to `output` as CSV or XLSX; return how many were written."""
    count = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        # The byte-order mark makes Excel read the file as UTF-8 (names with accents).
        with output.open("w", newline="", encoding="utf-8-sig") as handle:
            return await write_csv(rows, handle)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("applications")
    sheet.append(list(COLUMNS))
    async for row in rows:
        # Text cells keep NIK and phone numbers from turning into numbers in Excel.
        sheet.append([_cell(row[c]) for c in COLUMNS])
        count += 1
    workbook.save(output)
    return count


def _cell(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | date):
        return value
    return str(value)
