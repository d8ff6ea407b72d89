"""Importing desa adat from a CSV file (no public machine-readable list exists)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import DesaAdat, District, Village


@dataclass
class ImportResult:
    """What an import did."""

    added: int = 0
    updated: int = 0
    problems: list[str] | None = None


async def import_desa_adat(session: AsyncSession, path: Path) -> ImportResult:
    """Add or update desa adat from a CSV with columns `name` and optionally `village_code`
    (the desa dinas it lies in) or `district_code`; rows with unknown codes are reported."""
    result = ImportResult(problems=[])
    assert result.problems is not None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise ValueError("the CSV needs a header row with at least a 'name' column")
        rows = list(reader)
    villages = set((await session.scalars(select(Village.code))).all())
    districts = set((await session.scalars(select(District.code))).all())
    for line, row in enumerate(rows, start=2):
        name = " ".join((row.get("name") or "").split())
        village = (row.get("village_code") or "").strip() or None
        district = (row.get("district_code") or "").strip() or None
        if not name:
            result.problems.append(f"line {line}: empty name")
            continue
        if village is not None and village not in villages:
            result.problems.append(f"line {line}: unknown village code {village}")
            continue
        if district is not None and district not in districts:
            result.problems.append(f"line {line}: unknown district code {district}")
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
