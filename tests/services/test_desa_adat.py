"""Staff load the desa adat list from a file: a file that cannot be read changes nothing, and
a row that cannot be stored as it is (too long a name, a village outside its district) is
named by its row, on SQLite (which would store anything) as on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.tables import TableError
from bot.db.models import DesaAdat
from bot.runtime import Runtime
from bot.services.desa_adat import NAME_LIMIT, import_desa_adat
from tests.core.test_tables import bad_files

SIDAKARYA = "51.71.01.2007"  # Sidakarya, in district 51.71.01 (Denpasar Selatan)
FILES = bad_files(["name", "village_code"], ["Desa Adat Sidakarya", SIDAKARYA])


async def stored(runtime: Runtime) -> list[tuple[str, str | None, str | None]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(DesaAdat.name, DesaAdat.village_code, DesaAdat.district_code).order_by(
                DesaAdat.name
            )
        )
        return [(name, village, district) for name, village, district in rows.all()]


@pytest.mark.parametrize(("name", "content", "key", "row"), FILES, ids=[n for n, *_ in FILES])
async def test_a_file_that_cannot_be_read_whole_changes_nothing(
    runtime: Runtime, tmp_path: Path, name: str, content: bytes, key: str, row: int | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError) as refused:
        async with runtime.sessions() as session, session.begin():
            await import_desa_adat(session, path)
    assert (refused.value.key, refused.value.params.get("line")) == (f"import.error.{key}", row)
    assert await stored(runtime) == []


async def test_rows_that_cannot_be_stored_are_named_and_the_rest_added(
    runtime: Runtime, tmp_path: Path
) -> None:
    too_long = "Desa Adat " + "Panjang" * 20
    assert len(too_long) > NAME_LIMIT
    path = tmp_path / "adat.csv"
    path.write_text(
        "name,village_code,district_code\n"
        f"Desa Adat Sidakarya,{SIDAKARYA},51.71.01\n"
        f"{too_long},{SIDAKARYA},\n"
        f"Desa Adat Salah,{SIDAKARYA},51.02.05\n"
        "Desa\u200bAdat Tersembunyi,,\n"
        '"Desa Adat\nDua Baris",,\n',
        encoding="utf-8",
    )
    async with runtime.sessions() as session, session.begin():
        result = await import_desa_adat(session, path)
    assert result.problems == [
        f"line 3: the name has {len(too_long)} characters, more than the {NAME_LIMIT} it may have",
        f"line 4: village {SIDAKARYA} is not in district 51.02.05",
        "line 5: the name holds an invisible or control character",
    ]
    # A line break inside quotes is whitespace in a name, like any other.
    assert await stored(runtime) == [
        ("Desa Adat Dua Baris", None, None),
        ("Desa Adat Sidakarya", SIDAKARYA, "51.71.01"),
    ]
    async with runtime.sessions() as session:
        longest = await session.scalar(select(func.max(func.length(DesaAdat.name))))
    assert longest is not None and longest <= NAME_LIMIT
