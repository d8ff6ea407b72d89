"""Importing desa adat from a CSV or XLSX file (no public machine-readable list exists).

The file is read whole by the strict reader all imports share (`bot.core.tables`): a file it
cannot read changes nothing. Then each row stands alone: a row with a problem (no name, a
name longer than the column holds or with invisible characters in it, an unknown code, a
village outside the district given) is skipped and named by its row; the others are added,
or updated when only their district changed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.tables import DEFAULT_MAX_MB, MEGABYTE, Cell, read_table
from bot.db.models import DesaAdat, District, Village

_NAME_TYPE = DesaAdat.__table__.c.name.type
# What the name column holds (the same on SQLite, which would store more, and PostgreSQL).
NAME_LIMIT = _NAME_TYPE.length if isinstance(_NAME_TYPE, String) and _NAME_TYPE.length else 120


@dataclass
class ImportResult:
    """What an import did."""

    added: int = 0
    updated: int = 0
    problems: list[str] | None = None


def _code(cell: Cell) -> str | None:
    return str(cell or "").strip() or None


def _name_problem(name: str) -> str | None:
    """Why a (whitespace-collapsed) name cannot be stored, or None."""
    if not name:
        return "empty name"
    if len(name) > NAME_LIMIT:
        return f"the name has {len(name)} characters, more than the {NAME_LIMIT} it may have"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs") for char in name):
        return "the name holds an invisible or control character"
    return None


async def import_desa_adat(
    session: AsyncSession, path: Path, *, max_bytes: int = DEFAULT_MAX_MB * MEGABYTE
) -> ImportResult:
    """Add or update desa adat from a file with columns `name` and optionally `village_code`
    (the desa dinas it lies in) or `district_code`; rows that cannot be taken are reported.

    Raises `TableError` (nothing changed) for a file that cannot be read whole.
    """
    table = read_table(path, ("name",), max_bytes=max_bytes)
    result = ImportResult(problems=[])
    assert result.problems is not None
    villages = set((await session.scalars(select(Village.code))).all())
    districts = set((await session.scalars(select(District.code))).all())
    for line, row in table.rows:
        name = " ".join(str(row.get("name") or "").split())
        village = _code(row.get("village_code"))
        district = _code(row.get("district_code"))
        problem = _name_problem(name)
        if problem is None and village is not None and village not in villages:
            problem = f"unknown village code {village}"
        if problem is None and district is not None and district not in districts:
            problem = f"unknown district code {district}"
        outside = village is not None and district not in (None, village.rsplit(".", 1)[0])
        if problem is None and outside:
            problem = f"village {village} is not in district {district}"
        if problem is not None:
            result.problems.append(f"line {line}: {problem}")
            continue
        if village is not None and district is None:
            district = village.rsplit(".", 1)[0]
        existing = await session.scalar(
            select(DesaAdat).where(DesaAdat.name == name, DesaAdat.village_code == village)
        )
        if existing is None:
            session.add(DesaAdat(name=name, village_code=village, district_code=district))
            result.added += 1
        elif existing.district_code != district:
            existing.district_code = district
            result.updated += 1
    await session.flush()
    return result
