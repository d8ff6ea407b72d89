"""Reading a spreadsheet staff made (CSV or XLSX) into rows, or saying plainly why not.

Staff prepare these files in Excel or Sheets, so the usual accidents are expected and named:
a CSV saved with semicolons (Excel in an Indonesian locale), a CSV in a Windows code page
instead of UTF-8, an XLSX that is not one, a header without the needed columns. Each gives a
`TableError` whose message says what to do; nothing is read half-way.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

# Files of the areas staff deal with are small; a bigger one is a mistake (a wrong file).
MAX_BYTES = 20 * 1024 * 1024


class TableError(ValueError):
    """A file that cannot be read as a table; the message says why and what to do."""


Cell = str | int | float | date | None


@dataclass(frozen=True)
class Table:
    """A header row (names lowered and trimmed) and the rows under it, with their line numbers."""

    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, Cell]], ...]


def read_table(path: Path, required: Sequence[str], aliases: dict[str, str] | None = None) -> Table:
    """Read a CSV or XLSX file whose header names every column in `required`.

    `aliases` maps other accepted header names (e.g. Indonesian ones) to the required names.
    Empty rows are left out; line numbers count the header as line 1.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TableError(f"cannot open {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise TableError(f"{path.name} is empty")
    if size > MAX_BYTES:
        raise TableError(f"{path.name} is larger than {MAX_BYTES // (1024 * 1024)} MB")
    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        header, lines = _xlsx(raw, path.name)
    elif path.suffix.lower() in (".xlsx", ".xlsm"):
        raise TableError(f"{path.name} is not an XLSX workbook (save it again from Excel)")
    else:
        header, lines = _csv(raw, path.name)
    names = tuple(_column_name(cell, aliases or {}) for cell in header)
    missing = [name for name in required if name not in names]
    if missing:
        found = ", ".join(repr(n) for n in names if n) or "nothing"
        raise TableError(
            f"{path.name}: the first row must name the columns {', '.join(required)}; "
            f"missing {', '.join(missing)} (found {found})"
        )
    rows = []
    for number, cells in lines:
        if all(_blank(cell) for cell in cells):
            continue
        if len(cells) > len(names) and not all(_blank(c) for c in cells[len(names) :]):
            raise TableError(
                f"{path.name} line {number}: more cells than the header has columns "
                "(a comma inside a value needs quotes)"
            )
        row = {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(names)}
        rows.append((number, row))
    return Table(names, tuple(rows))


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _column_name(cell: Cell, aliases: dict[str, str]) -> str:
    name = "_".join(str(cell or "").strip().lower().split())
    return aliases.get(name, name)


def _csv(raw: bytes, name: str) -> tuple[list[Cell], list[tuple[int, list[Cell]]]]:
    if b"\x00" in raw:
        raise TableError(f"{name} is not a text file (save it as CSV UTF-8 or as XLSX)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(
            f"{name} is not UTF-8 text (byte {exc.start + 1}); in Excel choose "
            "'CSV UTF-8 (Comma delimited)', or save as XLSX"
        ) from exc
    first_line = text.split("\n", 1)[0]
    if ";" in first_line and "," not in first_line:
        raise TableError(
            f"{name} separates columns with ';' (Excel in Indonesian settings does this); "
            "save it as XLSX, or as CSV with commas"
        )
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise TableError(f"{name} is not a well-formed CSV file: {exc}") from exc
    if not records:
        raise TableError(f"{name} has no header row")
    header, *body = records
    return list(header), [(number, list(cells)) for number, cells in enumerate(body, start=2)]


def _xlsx(raw: bytes, name: str) -> tuple[list[Cell], list[tuple[int, list[Cell]]]]:
    # Loaded here, not with the module: openpyxl pulls in numpy, a slow start for the bot.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TableError(f"{name} is not an XLSX workbook (save it again from Excel)") from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise TableError(f"{name} has no sheet")
        lines = [
            (number, [_xlsx_cell(cell) for cell in row])
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        workbook.close()
    if not lines:
        raise TableError(f"{name} has no header row")
    (_, header), *body = lines
    return header, body


def _xlsx_cell(value: object) -> Cell:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, str | int | float | date):
        return value
    return str(value)
