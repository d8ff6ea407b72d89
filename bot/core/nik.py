"""The NIK (Nomor Induk Kependudukan): soft structural validation, decoding and masking.

A NIK is ``PP KK CC DDMMYY SSSS``: province, regency and district of first issue, the birth
date (women: day + 40) and a serial. The registry check itself is left to staff, so only the
structure is validated here, and softly (see DOMAIN.md): a NIK keeps its codes when its holder
moves and its date part may differ from the true birth date.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache

from bot.core.errors import InvalidInput

NIK_LENGTH = 16
FEMALE_DAY_OFFSET = 40

# Separators people type when copying a NIK from a KTP: "5102 0517 0885 0003", "5102.0517...".
_SEPARATOR = r"[\s.\-]"
_SEPARATORS = re.compile(_SEPARATOR + "+")
# Anything `parse_nik` would read as a NIK, found inside a longer text (to keep it out of logs):
# sixteen digits with any run of the same separators between them.
NIK_IN_TEXT = re.compile(rf"(?<![0-9])[0-9](?:{_SEPARATOR}*[0-9]){{{NIK_LENGTH - 1}}}(?![0-9])")


class Gender(StrEnum):
    """Gender as written on a KTP: Laki-laki / Perempuan."""

    MALE = "L"
    FEMALE = "P"


@dataclass(frozen=True)
class NikInfo:
    """What a structurally valid NIK tells about its holder."""

    nik: str
    province_code: str
    regency_code: str
    district_code: str
    birth_date: date | None
    gender: Gender
    serial: str


def parse_nik(text: str, *, known_provinces: Collection[str], today: date) -> NikInfo:
    """Read a typed NIK and decode it, or raise InvalidInput saying what is expected."""
    nik = _SEPARATORS.sub("", text)
    if not nik:
        raise InvalidInput("nik.error.empty")
    if not (nik.isascii() and nik.isdigit()):
        raise InvalidInput("nik.error.not_digits")
    if len(nik) != NIK_LENGTH:
        raise InvalidInput("nik.error.length", count=len(nik))

    province = nik[:2]
    if province not in known_provinces:
        raise InvalidInput("nik.error.province", province=province)

    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    gender = Gender.FEMALE if day > FEMALE_DAY_OFFSET else Gender.MALE
    if gender is Gender.FEMALE:
        day -= FEMALE_DAY_OFFSET
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise InvalidInput("nik.error.date")

    serial = nik[12:]
    if serial == "0000":
        raise InvalidInput("nik.error.serial")

    return NikInfo(
        nik=nik,
        province_code=province,
        regency_code=f"{province}.{nik[2:4]}",
        district_code=f"{province}.{nik[2:4]}.{nik[4:6]}",
        birth_date=_birth_date(day, month, year, today),
        gender=gender,
        serial=serial,
    )


def nik_reader(
    known_provinces: Collection[str], today: date
) -> Callable[[object], tuple[date | None, Gender] | None]:
    """`parse_nik`'s birth date and gender for many stored NIKs (exports): None if invalid.

    A stored NIK is already sixteen digits; for one, the checks of `parse_nik` are made here
    without building a `NikInfo`, and the dates are remembered (at most 37 200).
    Anything else goes through `parse_nik` itself.
    """
    provinces = frozenset(known_provinces)
    # At most 31 x 12 x 100 different dates: all may be remembered.
    birth_date = cache(lambda day, month, year: _birth_date(day, month, year, today))
    male, female = Gender.MALE, Gender.FEMALE

    def read(nik: object) -> tuple[date | None, Gender] | None:
        if type(nik) is not str or len(nik) != NIK_LENGTH or not (nik.isascii() and nik.isdigit()):
            try:
                info = parse_nik(str(nik), known_provinces=provinces, today=today)
            except InvalidInput:
                return None
            return info.birth_date, info.gender
        if nik[:2] not in provinces or nik[12:] == "0000":
            return None
        day, month = int(nik[6:8]), int(nik[8:10])
        gender = male
        if day > FEMALE_DAY_OFFSET:
            day -= FEMALE_DAY_OFFSET
            gender = female
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        return birth_date(day, month, int(nik[10:12])), gender

    return read


def _birth_date(day: int, month: int, two_digit_year: int, today: date) -> date | None:
    """Return the latest real date with these parts that is not after today, if any."""
    century = today.year - today.year % 100
    for year in (century + two_digit_year, century - 100 + two_digit_year):
        try:
            candidate = date(year, month, day)
        except ValueError:
            # 31-02 never exists; 29-02 may exist in one century only.
            continue
        if candidate <= today:
            return candidate
    return None


def mask_nik(nik: str) -> str:
    """Hide all but the first and last four digits of a NIK."""
    shown = 4
    if len(nik) <= 2 * shown:
        return "*" * len(nik)
    return nik[:shown] + "*" * (len(nik) - 2 * shown) + nik[-shown:]
