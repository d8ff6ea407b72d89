"""Loading the official areas into the database, and the in-memory directory of the branch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import areas as data
from bot.db import models


async def load_areas(session: AsyncSession, regency_codes: Sequence[str]) -> int:
    """Insert the shipped areas missing from the database; return how many villages were added.

    Provinces and regencies of all Indonesia are loaded (the NIK check needs the provinces);
    districts and villages only for the regencies the branch serves, added when that list grows.
    """
    have_provinces = set((await session.scalars(select(models.Province.code))).all())
    session.add_all(
        models.Province(code=p.code, name=p.name)
        for p in data.read_provinces()
        if p.code not in have_provinces
    )
    have_regencies = set((await session.scalars(select(models.Regency.code))).all())
    session.add_all(
        models.Regency(code=r.code, province_code=r.province_code, name=r.name)
        for r in data.read_regencies()
        if r.code not in have_regencies
    )
    await session.flush()
    loaded = set((await session.scalars(select(models.District.regency_code).distinct())).all())
    missing = [code for code in regency_codes if code not in loaded]
    if not missing:
        return 0
    session.add_all(
        models.District(code=d.code, regency_code=d.regency_code, name=d.name)
        for d in data.read_districts(missing)
    )
    await session.flush()
    villages = data.read_villages(missing)
    session.add_all(
        models.Village(code=v.code, district_code=v.district_code, name=v.name, kind=v.kind)
        for v in villages
    )
    await session.flush()
    return len(villages)


@dataclass
class AreaDirectory:
    """The branch's regencies, districts and villages, held in memory for quick lookups."""

    province_codes: frozenset[str]
    regencies: list[models.Regency]
    districts: dict[str, list[models.District]] = field(default_factory=dict)
    villages: dict[str, list[models.Village]] = field(default_factory=dict)
    regency_by_code: dict[str, models.Regency] = field(default_factory=dict)
    district_by_code: dict[str, models.District] = field(default_factory=dict)
    village_by_code: dict[str, models.Village] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, regency_codes: Sequence[str]) -> AreaDirectory:
        """Read the branch's areas from the database."""
        provinces = frozenset((await session.scalars(select(models.Province.code))).all())
        regencies = {
            r.code: r
            for r in await session.scalars(
                select(models.Regency).where(models.Regency.code.in_(regency_codes))
            )
        }
        directory = cls(
            province_codes=provinces,
            regencies=[regencies[code] for code in regency_codes if code in regencies],
            regency_by_code=regencies,
        )
        districts = await session.scalars(
            select(models.District)
            .where(models.District.regency_code.in_(regency_codes))
            .order_by(models.District.name)
        )
        for district in districts:
            directory.districts.setdefault(district.regency_code, []).append(district)
            directory.district_by_code[district.code] = district
        villages = await session.scalars(
            select(models.Village)
            .where(models.Village.district_code.in_(list(directory.district_by_code)))
            .order_by(models.Village.name)
        )
        for village in villages:
            directory.villages.setdefault(village.district_code, []).append(village)
            directory.village_by_code[village.code] = village
        return directory

    def regency(self, code: str) -> models.Regency | None:
        """A regency of the branch by code."""
        return self.regency_by_code.get(code)

    def district(self, code: str) -> models.District | None:
        """A district of the branch by code."""
        return self.district_by_code.get(code)

    def village(self, code: str) -> models.Village | None:
        """A village of the branch by code."""
        return self.village_by_code.get(code)

    def districts_of(self, regency_code: str) -> list[models.District]:
        """The districts of a regency, by name."""
        return self.districts.get(regency_code, [])

    def villages_of(self, district_code: str) -> list[models.Village]:
        """The villages of a district, by name."""
        return self.villages.get(district_code, [])

    def villages_of_regency(self, regency_code: str) -> list[models.Village]:
        """Every village of a regency, by name."""
        found = [
            v for d in self.districts.get(regency_code, []) for v in self.villages.get(d.code, [])
        ]
        return sorted(found, key=lambda v: v.name)

    def search(
        self,
        query: str,
        *,
        district_code: str | None = None,
        regency_code: str | None = None,
        limit: int = 5,
    ) -> list[models.Village]:
        """Villages whose name matches `query` (tolerant of case, spacing and small typos)."""
        if district_code is not None:
            pool = self.villages.get(district_code, [])
        elif regency_code is not None:
            pool = self.villages_of_regency(regency_code)
        else:
            pool = list(self.village_by_code.values())
        matches = data.match_names(query, [(v.code, v.name) for v in pool], limit=limit)
        return [self.village_by_code[code] for code, _score in matches]

    def find_village(self, text: str, *, limit: int = 10) -> list[models.Village]:
        """The village a code or a name means; several candidates when the name is unclear."""
        village = self.village_by_code.get(text.strip())
        if village is not None:
            return [village]
        found = self.search(text, limit=limit)
        wanted = " ".join(text.split()).casefold()
        # "Sanur" is the kelurahan Sanur, even though Sanur Kaja and Sanur Kauh match too.
        exact = [v for v in found if " ".join(v.name.split()).casefold() == wanted]
        return exact if len(exact) == 1 else found

    def label(self, village: models.Village) -> str:
        """Code, name, kind, district and regency on one line, as operators read it."""
        district = self.district_by_code[village.district_code]
        regency = self.regency_by_code[district.regency_code]
        return f"{village.code}  {village.name} ({village.kind}), {district.name}, {regency.name}"
