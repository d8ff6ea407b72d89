"""Writing rows to CSV and XLSX, streamed, with every cell safe to open in a spreadsheet.

Pure Python, no database: a writer takes a header and rows of plain values (str, int, date,
datetime, None) and writes them as they come, so a million rows never sit in memory.

Formula injection: a spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` (and some
read a leading tab or carriage return the same way). Whatever a text's source — a worker's
answer, an imported desa adat name, a leader's note — such a cell is neutralised:

- XLSX: every text is written as a text cell (never a formula), and one that begins with a
  trigger character also carries the "quote prefix" style, the mark Excel itself sets when a
  person types `'=...`. The value stays exactly as it was (an E.164 phone reads `+628...`), and
  editing the cell in Excel keeps it text.
- CSV has no types, so the text itself changes: a single quote goes in front (`'+628...`,
  `'=HYPERLINK(...)`), the neutralisation OWASP recommends. README documents it.

The XLSX writer is hand-written over `zipfile` because openpyxl's write-only mode builds an
object per cell and is several times slower; the format needed here (inline strings, numbers,
dates, one style table) is small.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Protocol, cast

# A sheet holds 1 048 576 rows; the header takes one of them on every sheet.
XLSX_MAX_ROWS = 1_048_576
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# XML 1.0 forbids most control characters; a stray one would make the whole file unreadable.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EXCEL_EPOCH = date(1899, 12, 30).toordinal()

Cell = str | int | float | date | datetime | None


def neutralise_csv(text: str) -> str:
    """A text a spreadsheet would run as a formula, made inert with a leading quote."""
    return "'" + text if text.startswith(TRIGGERS) else text


def restore_csv(text: str) -> str:
    """The text `neutralise_csv` was given: a CSV export read back (import-status)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(TRIGGERS) else text


class RowWriter(Protocol):
    """Writes rows after a header; `rows_written` counts the data rows."""

    rows_written: int

    def write(self, row: Sequence[Cell]) -> None: ...


@dataclass(frozen=True)
class RowFormat:
    """How a writer turns rows into the text it appends: pure data, so another process
    (an export's workers) can format rows and the writer only appends the text, in order."""

    kind: str  # "csv" or "xlsx"
    letters: tuple[str, ...] = ()
    delimiter: str = ","

    def text(self, rows: Sequence[Sequence[Cell]], first_number: int) -> str:
        """Rows as CSV lines, or as sheet XML numbered from `first_number` (XLSX)."""
        if self.kind == "csv":
            return csv_lines(rows, self.delimiter)
        return sheet_rows_xml(rows, first_number, self.letters)


class BlockWriter(RowWriter, Protocol):
    """A writer that also takes rows already formatted by its `RowFormat`."""

    format: RowFormat

    def number_rows(self, count: int) -> list[tuple[int, int]]:
        """Reserve the next `count` rows: (first row number, how many) per sheet they fill."""
        ...

    def append(self, text: str, count: int) -> None:
        """Append `count` rows formatted by `format` for numbers `number_rows` gave."""
        ...

    def write_block(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Write rows formatted here (the same bytes as `write` for each)."""
        ...


@contextmanager
def replaced_when_complete(output: Path) -> Iterator[Path]:
    """A temporary path beside `output` that becomes `output` only if the block succeeds.

    A failure (an exception, a kill) never leaves a file at `output` that looks complete:
    the temporary file is removed on an exception, and a kill leaves only a `.partial` name.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


# ---------------------------------------------------------------------- CSV


class CsvWriter:
    """CSV for machines: UTF-8 with a byte-order mark, ISO dates, neutralised texts."""

    def __init__(self, handle: IO[str], header: Sequence[str], delimiter: str = ",") -> None:
        self._handle = handle
        self._writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        self._writer.writerow([neutralise_csv(h) for h in header])
        self.format = RowFormat("csv", delimiter=delimiter)
        self.rows_written = 0

    def write(self, row: Sequence[Cell]) -> None:
        """Write one row."""
        self._writer.writerow([_csv_cell(v) for v in row])
        self.rows_written += 1

    def number_rows(self, count: int) -> list[tuple[int, int]]:
        """CSV rows carry no numbers: one piece."""
        return [(0, count)] if count else []

    def append(self, text: str, count: int) -> None:
        """Append rows `format` made."""
        self._handle.write(text)
        self.rows_written += count

    def write_block(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Write rows (the same bytes as `write` for each, in a fraction of the time)."""
        self.append(csv_lines(rows, self.format.delimiter), len(rows))


_TRIGGER_SET = frozenset(TRIGGERS)


# Cells the csv module itself writes as `_csv_cell` would: numbers, nothing (an empty
# field) and dates (their ISO form). A datetime needs its seconds cut, a text its check.
_AS_THEY_ARE = frozenset((int, float, type(None), date))
# Triggers that only a text can begin with (a number's text may begin with "-"; "\r" makes
# the csv module quote the cell).
_TEXT_TRIGGERS = ("=", "+", "@", "\t")
# A time with microseconds, as str() writes a datetime (`_csv_cell` cuts them).
_MICROSECONDS = re.compile(r":\d\d\.\d")


def csv_lines(rows: Sequence[Sequence[Cell]], delimiter: str = ",") -> str:
    """Rows as the lines `CsvWriter.write` writes for them (`csv_line_list`, joined)."""
    lines = csv_line_list(rows, delimiter)
    return "\r\n".join(lines) + "\r\n" if lines else ""


def csv_line_list(rows: Sequence[Sequence[Cell]], delimiter: str = ",") -> list[str]:
    """Each row as the line `CsvWriter.write` writes for it, without its line end.

    Most rows of an export need no quoting and have no cell to neutralise but texts that
    begin with "+" (phones): such a row is made as one text (`str` of every cell, joined) and
    checked as a whole; any other row goes through the csv module, cell by cell. A test holds
    the two to the same bytes for random rows.
    """
    lines: list[str] = []
    careful: list[Sequence[Cell]] = []
    join = delimiter.join
    cells = len(rows[0]) if rows else 0
    marks = [(delimiter + t, delimiter + "'" + t) for t in _TEXT_TRIGGERS]
    for row in rows:
        line = join(map(str, row))
        nothing = row.count(None) if "None" in line else 0
        if (
            len(row) != cells
            or cells < 2
            or (nothing and line.count("None") != nothing)
            or line.count(delimiter) != cells - 1
            or '"' in line
            or "\r" in line
            or "\n" in line
            or delimiter + "-" in line
            or line[:1] == "-"
            or _MICROSECONDS.search(line)
        ):
            # Quoting, a number or text that begins with "-", an odd row: the csv module.
            lines.append("")
            careful.append(row)
            continue
        if nothing:
            # Every "None" is an empty cell's: the counts agree and no text holds a delimiter.
            line = line.replace("None", "")
        for mark, neutral in marks:
            if mark in line:
                line = line.replace(mark, neutral)
        if line[:1] in _TEXT_TRIGGERS:
            line = "'" + line
        lines.append(line)
    if careful:
        made = iter(_csv_module_lines(careful, delimiter))
        lines = [line or next(made) for line in lines]
    return lines


def _csv_module_lines(rows: Sequence[Sequence[Cell]], delimiter: str) -> list[str]:
    """Each row as the csv module writes it after `_csv_cell`, without its line end."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    made = []
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
        made.append(out.getvalue()[:-2])
        out.seek(0)
        out.truncate()
    return made


def _csv_cell(value: Cell) -> str | int | float:
    # Exact type checks first: this runs for every cell of a million rows.
    kind = type(value)
    if kind is str:
        text = cast(str, value)
        return "'" + text if text[:1] in _TRIGGER_SET else text
    if value is None:
        return ""
    if kind is int or kind is float:
        return cast(int | float, value)
    if isinstance(value, datetime):
        return value.isoformat(" ", "seconds")
    if isinstance(value, date):
        return value.isoformat()
    return neutralise_csv(str(value))


# ---------------------------------------------------------------------- XLSX

# Style indexes of styles.xml below: 0 plain, 1 date, 2 date and time, 3 text with quote prefix,
# 4 bold header.
_DATE, _DATETIME, _QUOTED, _HEADER = 1, 2, 3, 4

_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="2"><numFmt numFmtId="164" formatCode="dd\\-mm\\-yyyy"/>\
<numFmt numFmtId="165" formatCode="dd\\-mm\\-yyyy\\ hh:mm"/></numFmts>
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>\
<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill>\
<fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="5">
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" \
quotePrefix="1"/>
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>
</cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>
"""

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/styles.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
{sheets}</Types>
"""

_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" \
Target="xl/workbook.xml"/>
</Relationships>
"""

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def column_letter(index: int) -> str:
    """The letters of a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if text.isprintable():
        return text
    return _ILLEGAL_XML.sub("", text).replace("\r", "&#13;")


class XlsxWriter:
    """XLSX for people: real numbers and dates, text cells, frozen header, filters, widths.

    Rows go straight into the compressed sheet as they come. Past the last row a sheet can
    hold, the rows continue on a new sheet with the same header (`sheet_rows` lowers the
    limit, so tests can cross it without writing a million rows).
    """

    def __init__(
        self,
        handle: IO[bytes],
        header: Sequence[str],
        *,
        sheet_name: str = "Data",
        widths: Sequence[float] | None = None,
        sheet_rows: int = XLSX_MAX_ROWS,
    ) -> None:
        self._zip = zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._header = list(header)
        self._letters = [column_letter(i) for i in range(len(header))]
        self._widths = list(widths) if widths is not None else [12.0] * len(header)
        self._sheet_name = sheet_name
        self._sheet_rows = sheet_rows
        self._sheets: list[str] = []
        self._filters: list[str] = []
        self._stream: IO[bytes] | None = None
        self._buffer: list[str] = []
        self._row = 0
        # Rows given numbers so far (`number_rows`), written or still being formatted.
        self._numbered = 0
        self.format = RowFormat("xlsx", tuple(self._letters))
        self.rows_written = 0

    def write(self, row: Sequence[Cell]) -> None:
        """Write one data row (a new sheet begins when the current one is full)."""
        if self._stream is None or self._row >= self._sheet_rows:
            self._next_sheet()
        self._row += 1
        self._buffer.append(sheet_rows_xml((row,), self._row, self._letters))
        if len(self._buffer) >= 512:
            self._flush()
        self.rows_written += 1
        self._numbered = self.rows_written

    def number_rows(self, count: int) -> list[tuple[int, int]]:
        """Reserve the next `count` rows: (first row number, how many) on each sheet."""
        per_sheet = self._sheet_rows - 1
        pieces = []
        while count:
            index = self._numbered % per_sheet
            piece = min(count, per_sheet - index)
            pieces.append((index + 2, piece))
            self._numbered += piece
            count -= piece
        return pieces

    def append(self, text: str, count: int) -> None:
        """Append rows `format` made for the numbers `number_rows` gave, in that order."""
        if self._stream is None or self._row >= self._sheet_rows:
            self._next_sheet()
        self._row += count
        assert self._row <= self._sheet_rows, "rows numbered for one sheet spill over"
        self._buffer.append(text)
        self._flush()
        self.rows_written += count

    def write_block(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Write rows (the same bytes as `write` for each, in a fraction of the time)."""
        done = 0
        for first, count in self.number_rows(len(rows)):
            piece = rows[done : done + count]
            self.append(sheet_rows_xml(piece, first, self._letters), count)
            done += count

    def close(self) -> None:
        """Finish the last sheet and write the workbook's parts."""
        if self._stream is None:
            self._next_sheet()
        self._end_sheet()
        count = len(self._sheets)
        sheet_types = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>\n'
            for i in range(1, count + 1)
        )
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES.format(sheets=sheet_types))
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr("xl/styles.xml", _STYLES)
        self._zip.writestr("xl/_rels/workbook.xml.rels", self._workbook_rels(count))
        self._zip.writestr("xl/workbook.xml", self._workbook())
        self._zip.close()

    def abort(self) -> None:
        """Stop after a failure: release the archive (the caller throws the file away)."""
        if self._stream is not None:
            self._stream.close()
        self._zip.close()

    def _workbook_rels(self, count: int) -> str:
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_NS_REL}/worksheet" '
            f'Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, count + 1)
        )
        styles = f'<Relationship Id="rId{count + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
            f'"http://schemas.openxmlformats.org/package/2006/relationships">{rels}{styles}'
            "</Relationships>"
        )

    def _workbook(self) -> str:
        sheets = "".join(
            f'<sheet name="{_escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(self._sheets, start=1)
        )
        # Excel keeps a sheet's filter range in this hidden name; without it some versions
        # show the filter buttons but forget the range.
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"'{_escape(name)}'!{ref}</definedName>"
            for i, (name, ref) in enumerate(zip(self._sheets, self._filters, strict=True))
        )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><sheets>{sheets}</sheets>'
            f"<definedNames>{names}</definedNames></workbook>"
        )

    def _next_sheet(self) -> None:
        if self._stream is not None:
            self._end_sheet()
        number = len(self._sheets) + 1
        self._sheets.append(self._sheet_name if number == 1 else f"{self._sheet_name} {number}")
        self._stream = self._zip.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True)
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w:.1f}" customWidth="1"/>'
            for i, w in enumerate(self._widths, start=1)
        )
        header = "".join(
            f'<c r="{letter}1" s="{_HEADER}" t="inlineStr"><is><t>{_escape(text)}</t></is></c>'
            for letter, text in zip(self._letters, self._header, strict=True)
        )
        self._stream.write(
            (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols>'
                f'<sheetData><row r="1">{header}</row>'
            ).encode()
        )
        self._row = 1

    def _flush(self) -> None:
        assert self._stream is not None
        self._stream.write("".join(self._buffer).encode())
        self._buffer.clear()

    def _end_sheet(self) -> None:
        assert self._stream is not None
        self._flush()
        last = self._letters[-1] if self._letters else "A"
        ref = f"A1:{last}{self._row}"
        self._filters.append(f"$A$1:${last}${self._row}")
        self._stream.write(f'</sheetData><autoFilter ref="{ref}"/></worksheet>'.encode())
        self._stream.close()


def sheet_rows_xml(
    rows: Iterable[Sequence[Cell]], first_number: int, letters: Sequence[str]
) -> str:
    """Sheet XML of rows numbered from `first_number` (what `XlsxWriter` writes for them)."""
    parts: list[str] = []
    add = parts.append
    triggers, escape = _TRIGGER_SET, _escape
    number = first_number
    for row in rows:
        n = str(number)
        add(f'<row r="{n}">')
        for letter, value in zip(letters, row, strict=False):
            kind = type(value)
            # Exact types first: this runs for every cell of a million rows.
            if kind is str:
                if value:
                    style = ' s="3"' if value[:1] in triggers else ""  # type: ignore[index]
                    add(
                        f'<c r="{letter}{n}"{style} t="inlineStr"><is><t>'
                        f"{escape(value)}</t></is></c>"  # type: ignore[arg-type]
                    )
            elif kind is int:
                add(f'<c r="{letter}{n}"><v>{value}</v></c>')
            elif value is not None and value != "":
                add(_xlsx_cell(letter + n, value))
        add("</row>")
        number += 1
    return "".join(parts)


def _xlsx_cell(ref: str, value: Cell) -> str:
    if isinstance(value, str):
        style = ' s="3"' if value.startswith(TRIGGERS) else ""
        return f'<c r="{ref}"{style} t="inlineStr"><is><t>{_escape(value)}</t></is></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if isinstance(value, datetime):
        serial = (
            value.toordinal()
            - _EXCEL_EPOCH
            + (value.hour * 3600 + value.minute * 60 + value.second) / 86400
        )
        return f'<c r="{ref}" s="{_DATETIME}"><v>{serial!r}</v></c>'
    assert isinstance(value, date)
    return f'<c r="{ref}" s="{_DATE}"><v>{value.toordinal() - _EXCEL_EPOCH}</v></c>'


def write_rows(writer: RowWriter, rows: Iterable[Sequence[Cell]]) -> int:
    """Write every row; return how many were written."""
    for row in rows:
        writer.write(row)
    return writer.rows_written
