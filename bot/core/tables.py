"""Reading a spreadsheet staff made (CSV or XLSX) into rows, or saying plainly why not.

The one strict reader behind every import (`import-status`, `desa-adat import`, `targets
import`). Staff prepare these files in Excel or Sheets, so the usual accidents are expected
and named: a CSV saved with semicolons (Excel in an Indonesian locale), in a Windows code
page or as UTF-16 ("Unicode text") instead of UTF-8, a quote never closed (which would run
the rows after it together), a NUL byte or a cell of 128 KB (not a text file at all), a
file far larger than any such list, an XLSX that is not one, a header without the needed
columns. Each gives a `TableError` carrying a message id of `locales/` (`import.error.*`)
with the row where it applies; nothing is read half-way, so nothing is imported half-way.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.core.errors import InvalidInput
from bot.core.spreadsheet import restore_csv

# The largest file an import reads unless IMPORT_MAX_MB says otherwise: ten times an export
# of the branch's applications as CSV, far beyond any list of villages or desa adat.
DEFAULT_MAX_MB = 50
MEGABYTE = 1024 * 1024

Cell = str | int | float | date | None


class TableError(InvalidInput):
    """A file that cannot be read as a table; `key` (with `params`) says why and what to do.

    `str()` gives the English sentence, for the command-line tools that speak English.
    """

    def __str__(self) -> str:
        from bot.i18n import translator

        return translator("en")(self.key, **self.params)


@dataclass(frozen=True)
class Table:
    """A header row (names lowered and trimmed) and the rows under it, with their row numbers."""

    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, Cell]], ...]


def read_rows(path: Path, *, max_bytes: int = DEFAULT_MAX_MB * MEGABYTE) -> list[list[Cell]]:
    """Every row of a CSV or XLSX file, the first (the header) included: row n is item n - 1.

    Raises TableError for a file that cannot be read whole.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TableError("import.error.too_large", limit=max(max_bytes // MEGABYTE, 1))
        raw = path.read_bytes()
    except OSError as exc:
        raise TableError("import.error.open", problem=exc.strerror or str(exc)) from None
    if not raw:
        raise TableError("import.error.empty")
    if zipfile.is_zipfile(io.BytesIO(raw)):
        return _xlsx(raw)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise TableError("import.error.xlsx")
    return _csv(raw)


def read_table(
    path: Path,
    required: Sequence[str],
    aliases: dict[str, str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_MB * MEGABYTE,
) -> Table:
    """Read a CSV or XLSX file whose header names every column in `required`.

    `aliases` maps other accepted header names (e.g. Indonesian ones) to the required names.
    Empty rows are left out; row numbers count the header as row 1, as a spreadsheet does.
    """
    header, *body = read_rows(path, max_bytes=max_bytes)
    names = tuple(_column_name(cell, aliases or {}) for cell in header)
    missing = [name for name in required if name not in names]
    if missing:
        raise TableError(
            "import.error.header",
            required=", ".join(repr(name) for name in required),
            missing=", ".join(missing),
            found=", ".join(repr(n) for n in names if n) or "-",
        )
    rows = (
        (number, {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(names)})
        for number, cells in data_rows(body, len(names))
    )
    return Table(names, tuple(rows))


def data_rows(body: list[list[Cell]], width: int) -> list[tuple[int, list[Cell]]]:
    """The rows under a header of `width` columns with their numbers (the header is row 1),
    blank rows left out; a row with more filled cells than the header is a TableError."""
    rows = []
    for number, cells in enumerate(body, start=2):
        if all(_blank(cell) for cell in cells):
            continue
        if len(cells) > width and not all(_blank(c) for c in cells[width:]):
            raise TableError("import.error.cells", line=number)
        rows.append((number, cells))
    return rows


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _column_name(cell: Cell, aliases: dict[str, str]) -> str:
    name = "_".join(str(cell or "").strip().lower().split())
    return aliases.get(name, name)


def _line_of(raw: bytes | str, index: int) -> int:
    """The line (from 1) a position of the file is on."""
    newline: Any = b"\n" if isinstance(raw, bytes) else "\n"
    return raw.count(newline, 0, index) + 1


def _csv(raw: bytes) -> list[list[Cell]]:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TableError("import.error.utf16")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError("import.error.encoding", line=_line_of(raw, exc.start)) from None
    if "\x00" in text:
        raise TableError("import.error.nul", line=_line_of(text, text.index("\x00")))
    first_line = text.split("\n", 1)[0]
    if first_line.count(";") > first_line.count(","):
        raise TableError("import.error.semicolon")
    records: list[list[Cell]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            # A CSV export neutralised formula-like texts with a leading quote: undo it.
            records.append([restore_csv(cell) for cell in record])
    except csv.Error as exc:
        row = len(records) + 1
        if "field larger than field limit" in str(exc):
            raise TableError("import.error.cell_too_long", line=row) from None
        if "unexpected end of data" in str(exc):
            raise TableError("import.error.quote", line=row) from None
        raise TableError("import.error.malformed", line=row) from None
    if not records:
        raise TableError("import.error.empty")
    return records


def _xlsx(raw: bytes) -> list[list[Cell]]:
    # Loaded here, not with the module: openpyxl pulls in numpy, a slow start for the bot.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise TableError("import.error.xlsx") from None
    try:
        if not workbook.worksheets:
            raise TableError("import.error.empty")
        rows = [
            [_xlsx_cell(cell) for cell in row]
            for row in workbook.worksheets[0].iter_rows(values_only=True)
        ]
    finally:
        workbook.close()
    if not rows:
        raise TableError("import.error.empty")
    return rows


def _xlsx_cell(value: object) -> Cell:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, str | int | float | date):
        return value
    return str(value)
