"""Dates as people type them (day first, Indonesian or English month names) and age checks."""

from __future__ import annotations

import re
from datetime import date

from bot.core.errors import InvalidInput

# Years before this are almost surely typos ("1085" for "1985"), not birth years.
MIN_YEAR = 1900

MONTH_NAMES: dict[str, tuple[str, ...]] = {
    "id": (
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
DEFAULT_LANGUAGE = "id"

# Abbreviations and older spellings still common in Indonesia ("Pebruari", "Nopember").
_EXTRA_MONTH_WORDS: dict[str, int] = {
    "jan": 1,
    "feb": 2,
    "peb": 2,
    "pebruari": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "agu": 8,
    "agt": 8,
    "ags": 8,
    "agus": 8,
    "agust": 8,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "okt": 10,
    "oct": 10,
    "nov": 11,
    "nop": 11,
    "nopember": 11,
    "des": 12,
    "dec": 12,
}
MONTH_WORDS: dict[str, int] = {
    **{
        name.casefold(): number
        for names in MONTH_NAMES.values()
        for number, name in enumerate(names, 1)
    },
    **_EXTRA_MONTH_WORDS,
}

_ALLOWED = re.compile(r"[0-9a-z\-/., ]*", re.ASCII)
_TOKEN = re.compile(r"[0-9]+|[a-z]+", re.ASCII)


def parse_date(text: str) -> date:
    """Read a day-first date ("17-08-1985", "17 Agustus 1985") or ISO, or raise InvalidInput."""
    cleaned = " ".join(text.split()).casefold()
    if not _ALLOWED.fullmatch(cleaned):
        raise InvalidInput("date.error.format")
    tokens = _TOKEN.findall(cleaned)
    day_text, month, year_text = _split(tokens)
    if len(year_text) != 4:
        raise InvalidInput("date.error.year_digits")
    year = int(year_text)
    if year < MIN_YEAR:
        raise InvalidInput("date.error.year_range", min_year=MIN_YEAR)
    try:
        return date(year, month, int(day_text))
    except ValueError:
        raise InvalidInput("date.error.no_such_date") from None


def _split(tokens: list[str]) -> tuple[str, int, str]:
    """Return (day digits, month number, year digits) from the tokens of a typed date."""
    if len(tokens) == 1 and tokens[0].isdigit():
        compact = tokens[0]
        if len(compact) == 8:  # DDMMYYYY
            return compact[:2], int(compact[2:4]), compact[4:]
        if len(compact) == 6:  # DDMMYY
            raise InvalidInput("date.error.year_digits")
        raise InvalidInput("date.error.format")
    if len(tokens) != 3:
        raise InvalidInput("date.error.format")

    first, second, third = tokens
    if first.isdigit() and second.isdigit() and third.isdigit():
        if len(first) == 4 and len(second) <= 2 and len(third) <= 2:  # ISO: year first
            return third, int(second), first
        if len(first) <= 2 and len(second) <= 2:
            return first, int(second), third
        raise InvalidInput("date.error.format")
    if first.isdigit() and second.isalpha() and third.isdigit() and len(first) <= 2:
        return first, _month(second), third
    if first.isalpha() and second.isdigit() and third.isdigit() and len(second) <= 2:
        return second, _month(first), third  # "August 17, 1985"
    raise InvalidInput("date.error.format")


def _month(word: str) -> int:
    """Return the month number a month name or abbreviation stands for."""
    try:
        return MONTH_WORDS[word]
    except KeyError:
        raise InvalidInput("date.error.unknown_month") from None


def format_date(d: date, language: str) -> str:
    """Write a date as "17 Agustus 1985" (id) or "17 August 1985" (en)."""
    primary = language.replace("_", "-").split("-")[0].casefold()
    # The first language of the project is the fallback for any language without month names.
    names = MONTH_NAMES.get(primary, MONTH_NAMES[DEFAULT_LANGUAGE])
    return f"{d.day} {names[d.month - 1]} {d.year}"


def age_on(birth: date, today: date) -> int:
    """Return the age in full years on ``today`` of someone born on ``birth``."""
    had_birthday = (today.month, today.day) >= (birth.month, birth.day)
    return today.year - birth.year - (0 if had_birthday else 1)


def check_age(birth: date, today: date, min_age: int, max_age_exclusive: int) -> None:
    """Raise InvalidInput unless the birth date is past and the age is within the range."""
    if birth > today:
        raise InvalidInput("birth_date.error.future")
    age = age_on(birth, today)
    if age < min_age:
        raise InvalidInput("birth_date.error.too_young", min_age=min_age)
    if age >= max_age_exclusive:
        raise InvalidInput("birth_date.error.too_old", max_age=max_age_exclusive - 1)
