"""Coverage targets: how many informal workers each village could register.

`targets import FILE` replaces the whole list at once. The file is checked row by row first,
and a single bad row stops the import with every problem listed: half a list would quietly
drop villages' targets and make coverage look better or worse than it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.tables import DEFAULT_MAX_MB, MEGABYTE, Cell, read_table
from bot.db.models import CoverageTarget, User
from bot.services import audit

REQUIRED = ("village_code", "potential_workers")
# Header names staff may use instead, as a branch would write them.
ALIASES = {
    "kode_desa": "village_code",
    "kode_wilayah": "village_code",
    "potensi": "potential_workers",
    "potensi_pekerja": "potential_workers",
    "jumlah_pekerja_informal": "potential_workers",
}
# More than this in one village is a typing slip (Bali has about 2,9 juta workers in all).
MAX_PER_VILLAGE = 500_000
_THOUSANDS = re.compile(r"^\d{1,3}([.,\s]\d{3})+$")


@dataclass
class TargetsCheck:
    """A file's targets by village code, and every row that could not be taken."""

    targets: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _count(cell: Cell) -> int | None:
    """A whole number of workers from a cell: 1200, 1200.0, "1200", "1.200", "1 200"."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float):
        return int(cell) if cell.is_integer() else None
    text = str(cell or "").strip()
    if text.isdigit():
        return int(text)
    if _THOUSANDS.match(text):
        return int(re.sub(r"\D", "", text))
    return None


def check_targets(
    path: Path, villages: Mapping[str, str], *, max_bytes: int = DEFAULT_MAX_MB * MEGABYTE
) -> TargetsCheck:
    """Read a targets file and check each row against the branch's villages (code -> name).

    Raises `TableError` for a file that cannot be read at all.
    """
    table = read_table(path, REQUIRED, ALIASES, max_bytes=max_bytes)
    result = TargetsCheck()
    seen: dict[str, int] = {}
    for line, row in table.rows:
        code = str(row["village_code"] or "").strip()
        count = _count(row["potential_workers"])
        if code not in villages:
            result.problems.append(f"line {line}: {code!r} is not a village code of the branch")
        elif code in seen:
            result.problems.append(f"line {line}: {code} is already on line {seen[code]}")
        elif count is None or count < 1:
            result.problems.append(
                f"line {line}: potential_workers must be a whole number above 0, "
                f"not {row['potential_workers']!r}"
            )
        elif count > MAX_PER_VILLAGE:
            result.problems.append(
                f"line {line}: {count} workers in one village is more than {MAX_PER_VILLAGE}"
            )
        else:
            seen[code] = line
            result.targets[code] = count
    if not table.rows:
        result.problems.append("the file has a header but no rows")
    return result


async def replace_targets(
    session: AsyncSession,
    targets: Mapping[str, int],
    *,
    source: str,
    actor: User | None = None,
    actor_label: str | None = None,
) -> int:
    """Make `targets` the whole list of coverage targets; return how many there were before."""
    before = len((await session.scalars(select(CoverageTarget.village_code))).all())
    await session.execute(delete(CoverageTarget))
    session.add_all(
        CoverageTarget(village_code=code, potential_workers=count)
        for code, count in sorted(targets.items())
    )
    await audit.record(
        session,
        "targets_import",
        actor=actor,
        actor_label=actor_label,
        target=source,
        villages=len(targets),
        potential_workers=sum(targets.values()),
        replaced=before,
    )
    await session.flush()
    return before


async def coverage_targets(session: AsyncSession) -> dict[str, int]:
    """Every village's target (village code -> potential informal workers)."""
    rows = await session.execute(
        select(CoverageTarget.village_code, CoverageTarget.potential_workers)
    )
    return {code: int(count) for code, count in rows.all()}
