"""The CSV and XLSX writers: typed cells, neutralised formulas, sheets that never truncate."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from bot.core.spreadsheet import (
    XLSX_MAX_ROWS,
    Cell,
    CsvWriter,
    XlsxWriter,
    column_letter,
    neutralise_csv,
    replaced_when_complete,
    restore_csv,
)

DANGEROUS = ['=HYPERLINK("http://x")', "-SUM(A1)", "+1@x", "@cmd", "\tTAB", "\rCR"]


def xlsx_of(header: list[str], rows: list[list[object]], **options: int) -> bytes:
    buffer = io.BytesIO()
    writer = XlsxWriter(buffer, header, **options)  # type: ignore[arg-type]
    for row in rows:
        writer.write(row)  # type: ignore[arg-type]
    writer.close()
    return buffer.getvalue()


def test_xlsx_keeps_numbers_dates_and_text_apart() -> None:
    """A NIK and a phone stay text, an income a number, a birth date a real date."""
    data = xlsx_of(
        ["NIK", "HP", "Penghasilan", "Tanggal lahir", "Dikirim"],
        [
            [
                "5102051708850003",
                "+6281234567890",
                1_500_000,
                date(1985, 8, 17),
                datetime(2026, 12, 1, 9, 30),
            ]
        ],
    )
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    nik, phone, income, born, sent = sheet[2]
    assert (nik.value, nik.data_type) == ("5102051708850003", "s")
    assert (phone.value, phone.data_type) == ("+6281234567890", "s")
    assert (income.value, income.data_type) == (1_500_000, "n")
    assert born.value == datetime(1985, 8, 17) and born.is_date
    assert sent.value == datetime(2026, 12, 1, 9, 30) and sent.is_date
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:E2"
    assert [c.font.b for c in sheet[1]] == [True] * 5


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_formula_in_any_text_stays_an_inert_text_in_xlsx(value: str) -> None:
    """The cell is text marked with Excel's own quote prefix: shown as typed, never run."""
    data = xlsx_of(["Nama"], [[value]])
    assert b"<f>" not in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cell = sheet["A2"]
    assert cell.data_type == "s"
    assert cell.quotePrefix
    assert cell.value == value


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_formula_in_any_text_gets_a_leading_quote_in_csv(value: str) -> None:
    """CSV has no text type, so the text itself is made inert."""
    handle = io.StringIO()
    writer = CsvWriter(handle, ["Nama", "Catatan"], delimiter=";")
    writer.write([value, "biasa"])
    header, row = list(csv.reader(io.StringIO(handle.getvalue(), newline=""), delimiter=";"))
    assert header == ["Nama", "Catatan"]
    assert row == ["'" + value, "biasa"]
    assert neutralise_csv("I Made") == "I Made"
    # Read back (import-status), the quote goes again; a name that began with one keeps it.
    assert restore_csv(row[0]) == value
    assert restore_csv("'Ketut") == "'Ketut"


def test_csv_writes_iso_dates_and_plain_numbers() -> None:
    handle = io.StringIO()
    writer = CsvWriter(handle, ["a", "b", "c", "d"])
    writer.write([date(1985, 8, 17), datetime(2026, 12, 1, 9, 30), 16800, None])
    assert handle.getvalue().splitlines()[1] == "1985-08-17,2026-12-01 09:30:00,16800,"


def test_control_characters_cannot_break_the_workbook() -> None:
    """An imported name with a stray control character still gives a file that opens."""
    data = xlsx_of(["Desa Adat"], [["Desa\x01 Adat <Kuta> & \x0bco"]])
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert sheet["A2"].value == "Desa Adat <Kuta> & co"


def test_rows_continue_on_a_new_sheet_when_one_is_full() -> None:
    """Past the row limit the rows go on under the same header, none lost."""
    rows: list[list[object]] = [[n, f"orang {n}"] for n in range(1, 8)]
    book = load_workbook(io.BytesIO(xlsx_of(["No", "Nama"], rows, sheet_rows=3)))
    assert book.sheetnames == ["Data", "Data 2", "Data 3", "Data 4"]
    seen = []
    for sheet in book.worksheets:
        header, *body = list(sheet.iter_rows(values_only=True))
        assert header == ("No", "Nama")
        assert sheet.freeze_panes == "A2"
        seen += [row[0] for row in body]
    assert seen == list(range(1, 8))


MIXED: list[list[Cell]] = [
    [n, f"orang {n}", date(1985, 8, 17), datetime(2026, 12, 1, 9, 30, 5), None, "", *DANGEROUS]
    for n in range(1, 12)
]
MIXED.append([True, 2.5, "Desa\x01 <Kuta> & co", "'quoted", 0])


def sheets_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("sheet_rows", [3, 5, XLSX_MAX_ROWS])
def test_rows_formatted_in_blocks_are_the_bytes_written_one_by_one(sheet_rows: int) -> None:
    """Blocks (as an export's workers make them) give the same workbook as row by row,
    sheet breaks inside a block included."""
    header = [f"k{i}" for i in range(len(MIXED[0]))]
    one_by_one = sheets_of(xlsx_of(header, [list(row) for row in MIXED], sheet_rows=sheet_rows))
    buffer = io.BytesIO()
    writer = XlsxWriter(buffer, header, sheet_rows=sheet_rows)
    writer.write(MIXED[0])
    writer.write_block(MIXED[1:4])
    # Numbered first, formatted elsewhere, appended in order.
    rest, done, texts = MIXED[4:], 0, []
    for first, count in writer.number_rows(len(rest)):
        texts.append((writer.format.text(rest[done : done + count], first), count))
        done += count
    for text, count in texts:
        writer.append(text, count)
    writer.close()
    assert sheets_of(buffer.getvalue()) == one_by_one
    assert writer.rows_written == len(MIXED)


def test_csv_lines_in_blocks_are_the_bytes_written_one_by_one() -> None:
    header = [f"k{i}" for i in range(len(MIXED[0]))]
    one, block = io.StringIO(), io.StringIO()
    single = CsvWriter(one, header, delimiter=";")
    for row in MIXED:
        single.write(row)
    CsvWriter(block, header, delimiter=";").write_block(MIXED)
    assert block.getvalue() == one.getvalue()


# Cells as exports make them, and the odd ones a text or a stored value can hold: every
# character the csv module or the neutralising cares about, "None" as a text, negative and
# fractional numbers, times with and without microseconds or an offset.
ODD_TEXT = st.text(alphabet=st.sampled_from(list(",;\"\r\n\t=+-@' Noe:.5AbÇ")), max_size=8)
ANY_CELL = st.one_of(
    ODD_TEXT,
    st.sampled_from(["None", "+6281234567890", "-SUM(A1)", "=1+1", "Kota Denpasar", ""]),
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
)


@settings(max_examples=600)
@given(
    rows=st.integers(1, 6).flatmap(
        lambda width: st.lists(st.lists(ANY_CELL, min_size=width, max_size=width), max_size=6)
    ),
    delimiter=st.sampled_from([",", ";"]),
)
def test_csv_lines_of_random_rows_are_the_bytes_written_one_by_one(
    rows: list[list[Cell]], delimiter: str
) -> None:
    """Whatever the cells, the block path (fast or through the csv module) writes the bytes
    the row-by-row writer writes."""
    one = io.StringIO()
    single = CsvWriter(one, ["h"], delimiter=delimiter)
    for row in rows:
        single.write(row)
    block = io.StringIO()
    CsvWriter(block, ["h"], delimiter=delimiter).write_block(rows)
    assert block.getvalue() == one.getvalue()


def test_1_048_577_rows_continue_on_a_second_sheet(tmp_path: Path) -> None:
    """At Excel's real limit: 1 048 575 data rows fill the first sheet, two go to the second."""
    output = tmp_path / "big.xlsx"
    with output.open("wb") as handle:
        writer = XlsxWriter(handle, ["No"])
        for n in range(XLSX_MAX_ROWS + 1):
            writer.write([n])
        writer.close()
    archive = zipfile.ZipFile(output)
    first = archive.read("xl/worksheets/sheet1.xml")
    assert first.endswith(b'<autoFilter ref="A1:A1048576"/></worksheet>')
    # Reading the million rows back would take minutes; the second sheet is read directly.
    rows = _rows_of(archive.read("xl/worksheets/sheet2.xml"))
    assert rows == [("No",), (str(XLSX_MAX_ROWS - 1),), (str(XLSX_MAX_ROWS),)]
    book = load_workbook(output, read_only=True)
    assert book.sheetnames == ["Data", "Data 2"]
    book.close()
    assert writer.rows_written == XLSX_MAX_ROWS + 1


def _rows_of(sheet_xml: bytes) -> list[tuple[str, ...]]:
    """The cell values of a worksheet part, row by row (text or number as written)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    root = ElementTree.fromstring(sheet_xml)
    return [
        tuple("".join(cell.itertext()) for cell in row.findall("m:c", ns))
        for row in root.iterfind("m:sheetData/m:row", ns)
    ]


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA",
    ]  # fmt: skip


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    """Whatever fails mid-way, neither the final name nor a partial file is left behind."""
    output = tmp_path / "export.xlsx"
    with pytest.raises(RuntimeError), replaced_when_complete(output) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with replaced_when_complete(output) as partial:
        partial.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["export.xlsx"]
