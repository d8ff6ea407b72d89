"""Staff load coverage targets from the spreadsheet they keep: every row is checked, a bad
file changes nothing, and a new import replaces the old list."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.core.tables import TableError
from bot.db.models import AuditEntry
from bot.runtime import Runtime
from bot.services.targets import check_targets, coverage_targets, replace_targets
from tests.core.test_tables import bad_files

DAJAN_PEKEN = "51.02.05.2006"
DELOD_PEKEN = "51.02.05.2004"
VILLAGES = {DAJAN_PEKEN: "Dajan Peken", DELOD_PEKEN: "Delod Peken"}


def written(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def workbook(tmp_path: Path, rows: list[tuple[object, ...]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / "target.xlsx"
    book.save(path)
    return path


def test_a_clean_csv_gives_every_villages_target(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "target.csv",
        f'village_code,potential_workers\n{DAJAN_PEKEN},1200\n\n{DELOD_PEKEN},"1.350"\n',
    )

    checked = check_targets(path, VILLAGES)

    assert checked.problems == []
    assert checked.targets == {DAJAN_PEKEN: 1200, DELOD_PEKEN: 1350}


def test_an_xlsx_with_indonesian_headers_is_read_too(tmp_path: Path) -> None:
    path = workbook(
        tmp_path, [("Kode Desa", "Potensi Pekerja"), (DAJAN_PEKEN, 1200), (DELOD_PEKEN, 80.0)]
    )

    checked = check_targets(path, VILLAGES)

    assert checked.problems == []
    assert checked.targets == {DAJAN_PEKEN: 1200, DELOD_PEKEN: 80}


def test_every_bad_row_is_named_with_its_line(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "target.csv",
        "village_code,potential_workers\n"
        f"{DAJAN_PEKEN},1200\n"
        "99.99.99.9999,10\n"
        f"{DAJAN_PEKEN},5\n"
        f"{DELOD_PEKEN},banyak\n"
        f"{DELOD_PEKEN},0\n"
        f"{DELOD_PEKEN},12.5\n",
    )

    checked = check_targets(path, VILLAGES)

    assert [problem.split(":")[0] for problem in checked.problems] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "'99.99.99.9999' is not a village code of the branch" in checked.problems[0]
    assert "already on line 2" in checked.problems[1]
    assert "'banyak'" in checked.problems[2]


@pytest.mark.parametrize(
    ("name", "content", "encoding", "reason"),
    [
        (
            "target.csv",
            f"village_code;potential_workers\n{DAJAN_PEKEN};1200\n",
            "utf-8",
            "separates columns with ';'",
        ),
        (
            "target.csv",
            f"village_code,potential_workers\n{DAJAN_PEKEN},1200 pekerja Désa\n",
            "cp1252",
            "is not UTF-8 text",
        ),
        ("target.csv", "kode,jumlah\n1,2\n", "utf-8", "missing village_code, potential_workers"),
        ("target.csv", "", "utf-8", "is empty"),
        ("target.xlsx", "this is not a workbook", "utf-8", "is not an XLSX workbook"),
        (
            "target.csv",
            f'village_code,potential_workers\n{DAJAN_PEKEN},"12\n',
            "utf-8",
            "not a well-formed CSV",
        ),
        (
            "target.csv",
            f"village_code,potential_workers\n{DAJAN_PEKEN},1,200\n",
            "utf-8",
            "more cells than the header",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_the_reason(
    tmp_path: Path, name: str, content: str, encoding: str, reason: str
) -> None:
    path = written(tmp_path, name, content, encoding)

    with pytest.raises(TableError) as refused:
        check_targets(path, VILLAGES)

    assert reason in str(refused.value)


async def test_an_import_replaces_the_whole_list_and_is_audited(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await replace_targets(
            session, {DAJAN_PEKEN: 1200, DELOD_PEKEN: 80}, source="a.csv", actor_label="cli"
        )
    async with runtime.sessions() as session, session.begin():
        before = await replace_targets(
            session, {DELOD_PEKEN: 90}, source="b.csv", actor_label="cli"
        )

    async with runtime.sessions() as session:
        assert await coverage_targets(session) == {DELOD_PEKEN: 90}
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "targets_import"))
        ).all()
    assert before == 2
    assert [(e.target, e.actor_label) for e in entries] == [("a.csv", "cli"), ("b.csv", "cli")]


BAD_FILES = bad_files(["village_code", "potential_workers"], [DAJAN_PEKEN, "1200"])


@pytest.mark.parametrize(
    ("name", "content", "key", "row"), BAD_FILES, ids=[n for n, *_ in BAD_FILES]
)
def test_every_unreadable_file_is_refused_with_its_row(
    tmp_path: Path, name: str, content: bytes, key: str, row: int | None
) -> None:
    """The same strict reader as every import: one reason, the row where it applies."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError) as refused:
        check_targets(path, VILLAGES)
    assert (refused.value.key, refused.value.params.get("line")) == (f"import.error.{key}", row)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path, "target.csv", f"village_code,potential_workers\n{DAJAN_PEKEN},12\n")
    with pytest.raises(TableError, match="larger than 1 MB"):
        check_targets(path, VILLAGES, max_bytes=10)
