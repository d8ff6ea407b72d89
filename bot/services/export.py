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
from bot.core.form import Form, FormContext
from bot.core.questions import REGISTRATION
from bot.core.states import ApplicationStatus
from bot.db.models import Application
from bot.i18n import translator
from bot.security import Cipher
from bot.services.areas import AreaDirectory


# Form answers go out as the form declares them (full NIK: staff key it into the national
# system), with the names behind the codes and the computed contribution.
def columns_of(form: Form) -> tuple[str, ...]:
    """The export's column names for a form."""
    return (*form.leading_columns, *(c.name for c in form.columns()))


COLUMNS = columns_of(REGISTRATION)


def _row(
    app: Application, answers: dict[str, Any], ctx: FormContext, settings: Settings, form: Form
) -> dict[str, Any]:
    ctx.answers = answers
    row: dict[str, Any] = {
        "reference": app.reference or "",
        "status": app.status,
        "submitted_at": app.submitted_at.astimezone(settings.tz).isoformat(timespec="seconds")
        if app.submitted_at
        else "",
    }
    for column in form.columns():
        row[column.name] = column.value(answers, ctx)
    return row


async def export_rows(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    form: Form = REGISTRATION,
) -> AsyncIterator[dict[str, Any]]:
    """Every submitted application as an export row, read in a stream."""
    ctx = FormContext(
        answers={},
        t=translator(settings.default_language),
        areas=areas,
        rates=settings.rates,
        today=date.today(),
        own_screen=True,
    )
    result = await session.stream_scalars(
        select(Application)
        .where(Application.status != ApplicationStatus.DRAFT)
        .order_by(Application.submitted_at, Application.id)
        .execution_options(yield_per=500)
    )
    async for app in result:
        answers = cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        yield _row(app, answers, ctx, settings, form)


async def write_csv(
    rows: AsyncIterator[dict[str, Any]], handle: TextIO, columns: tuple[str, ...] = COLUMNS
) -> int:
    """Write rows as CSV to an open text handle; return how many were written."""
    count = 0
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    async for row in rows:
        writer.writerow(row)
        count += 1
    return count


async def write_export(
    rows: AsyncIterator[dict[str, Any]],
    fmt: str,
    output: Path,
    columns: tuple[str, ...] = COLUMNS,
) -> int:
    """Write rows to `output` as CSV or XLSX; return how many were written."""
    count = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        # The byte-order mark makes Excel read the file as UTF-8 (names with accents).
        with output.open("w", newline="", encoding="utf-8-sig") as handle:
            return await write_csv(rows, handle, columns)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("applications")
    sheet.append(list(columns))
    async for row in rows:
        # Text cells keep NIK and phone numbers from turning into numbers in Excel.
        sheet.append([_cell(row[c]) for c in columns])
        count += 1
    workbook.save(output)
    return count


def _cell(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | date):
        return value
    return str(value)
