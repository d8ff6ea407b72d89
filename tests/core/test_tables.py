"""The one strict reader of staff's files (import-status, desa-adat import, targets import):
every file it cannot read whole is refused with the reason and, where it applies, the row."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.core.tables import MEGABYTE, TableError, read_rows, read_table
from bot.i18n import translator

# A cell of 140 000 characters: more than the 128 KB Python's CSV reader takes.
HUGE = "A" * 140_000


def bad_files(header: list[str], good: list[str]) -> list[tuple[str, bytes, str, int | None]]:
    """Files of one import that cannot be read whole: (name, content, reason key, row).

    Row 2 is `good` each time; the trouble is on row 3 where it is on a row at all.
    """
    head, row = ",".join(header), ",".join(good)
    rest = ",".join(good[1:])

    def csv_with(third: str) -> bytes:
        return f"{head}\n{row}\n{third}\n{row}\n".encode()

    return [
        ("huge-cell.csv", csv_with(f"{HUGE},{rest}"), "cell_too_long", 3),
        ("nul.csv", csv_with(f"Sida\x00karya,{rest}"), "nul", 3),
        ("unclosed-quote.csv", csv_with(f'"{good[0]},{rest}'), "quote", 3),
        ("extra-cells.csv", csv_with(f"{row},extra"), "cells", 3),
        ("latin-1.csv", f"{head}\n{row}\nDésa,{rest}\n".encode("latin-1"), "encoding", 3),
        ("utf-16.csv", f"{head}\n{row}\n".encode("utf-16"), "utf16", None),
        ("semicolons.csv", f"{';'.join(header)}\n{';'.join(good)}\n".encode(), "semicolon", None),
        ("empty.csv", b"", "empty", None),
        ("fake.xlsx", b"this is not a workbook", "xlsx", None),
    ]


FILES = bad_files(["name", "village_code"], ["Desa Adat Sidakarya", "51.71.01.2007"])


@pytest.mark.parametrize(("name", "content", "key", "row"), FILES, ids=[name for name, *_ in FILES])
def test_a_file_that_cannot_be_read_whole_is_refused_with_its_row(
    tmp_path: Path, name: str, content: bytes, key: str, row: int | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError) as refused:
        read_table(path, ["name"])
    assert refused.value.key == f"import.error.{key}"
    assert refused.value.params.get("line") == row
    # One sentence in either language, naming the row where there is one.
    for language in ("id", "en"):
        sentence = translator(language)(refused.value.key, **refused.value.params)
        assert "\n" not in sentence and "%(" not in sentence
        if row is not None:
            assert str(row) in sentence
    assert HUGE not in str(refused.value)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("name\n" + "Desa Adat Sidakarya\n" * 60_000, encoding="utf-8")
    with pytest.raises(TableError) as refused:
        read_rows(path, max_bytes=MEGABYTE)
    assert refused.value.key == "import.error.too_large"
    assert "1 MB" in str(refused.value)
    assert len(read_rows(path, max_bytes=2 * MEGABYTE)) == 60_001


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "adat.csv"
    path.write_text("nama,desa\nSidakarya,51.71.01.2007\n", encoding="utf-8")
    with pytest.raises(TableError) as refused:
        read_table(path, ["name"])
    assert str(refused.value) == (
        "the first row must name the columns 'name' (missing name, found 'nama', 'desa')."
    )


def test_quoted_commas_line_breaks_and_an_xlsx_are_read(tmp_path: Path) -> None:
    """What a spreadsheet writes on purpose still reads: quoted commas, a BOM, an XLSX."""
    path = tmp_path / "adat.csv"
    path.write_bytes('\ufeffname,village_code\n"Desa Adat Kuta, Badung",\n\n'.encode())
    table = read_table(path, ["name"])
    assert table.rows == ((2, {"name": "Desa Adat Kuta, Badung", "village_code": ""}),)

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Village code"])
    sheet.append(["Desa Adat Sidakarya", "51.71.01.2007"])
    book.save(tmp_path / "adat.xlsx")
    table = read_table(tmp_path / "adat.xlsx", ["name", "village_code"])
    assert table.rows == ((2, {"name": "Desa Adat Sidakarya", "village_code": "51.71.01.2007"}),)
