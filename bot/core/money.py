"""Rupiah amounts as people type them ("1,5 juta", "Rp2.000.000", "750rb") and as we show them."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.core.errors import InvalidInput

# No declared monthly income comes near this; a bigger number is a typo.
MAX_AMOUNT = 1_000_000_000
# More digits than MAX_AMOUNT has can only be too large (and int() of huge strings is slow).
_MAX_DIGITS = len(str(MAX_AMOUNT))

UNITS: dict[str, int] = {
    "ribu": 1_000,
    "rb": 1_000,
    "k": 1_000,
    "juta": 1_000_000,
    "jt": 1_000_000,
    "miliar": 1_000_000_000,
    "milyar": 1_000_000_000,
}

_AMOUNT = re.compile(
    rf"""
    (?P<minus>[-−]?)\s*
    (?:rp\.?|idr)?\s*
    (?P<minus_after_currency>[-−]?)\s*
    (?P<number>[0-9](?:[0-9.,]*[0-9])?)
    (?:[.,]-)?                          # "Rp1.500.000,-" as on price tags
    \s*(?P<unit>{"|".join(sorted(UNITS, key=len, reverse=True))})?
    \s*(?:rupiah)?\.?
    """,
    re.ASCII | re.VERBOSE,
)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# 1.500.000 or 1.500.000,00 (Indonesian grouping, zero sen allowed).
_ID_GROUPED = re.compile(r"([0-9]{1,3}(?:\.[0-9]{3})+)(?:,0{1,2})?", re.ASCII)
# 1,500,000 or 1,500.00 (English grouping); a single group without sen is ambiguous.
_EN_GROUPED = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})+)(\.0{1,2})?", re.ASCII)
# 1500000,00 / 1500000.00
_ZERO_SEN = re.compile(r"([0-9]+)[.,]0{1,2}", re.ASCII)
# 1,5 / 1.25 — a decimal, meaningful only with a unit ("1,5 juta").
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]{1,2}", re.ASCII)
# 1.500 / 1,500 — with a unit this is either 1,5 or 1500 of it.
_ONE_GROUP = re.compile(r"[0-9]+[.,][0-9]{3}", re.ASCII)


def parse_rupiah(text: str) -> int:
    """Read a typed rupiah amount as whole rupiah, or raise InvalidInput."""
    cleaned = " ".join(text.split()).casefold()
    if not cleaned:
        raise InvalidInput("money.error.empty")
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        raise InvalidInput("money.error.format")
    if match["minus"] or match["minus_after_currency"]:
        raise InvalidInput("money.error.negative")
    number, unit = match["number"], match["unit"]
    if sum(len(run) for run in _DIGITS.findall(number)) > _MAX_DIGITS + 2:
        # The allowance of 2 lets "1.000.000.000,00" reach the range check below.
        raise InvalidInput("money.error.too_large", max=format_rupiah(MAX_AMOUNT))
    amount = _plain_amount(number) if unit is None else _amount_with_unit(number, UNITS[unit])
    if amount == 0:
        raise InvalidInput("money.error.zero")
    if amount > MAX_AMOUNT:
        raise InvalidInput("money.error.too_large", max=format_rupiah(MAX_AMOUNT))
    return amount


def _plain_amount(number: str) -> int:
    """Return the rupiah of a number written without a unit."""
    if number.isdigit():
        return int(number)
    for pattern in (_ID_GROUPED, _ZERO_SEN):
        if match := pattern.fullmatch(number):
            return int(match[1].replace(".", ""))
    if (match := _EN_GROUPED.fullmatch(number)) and (match[2] or match[1].count(",") > 1):
        return int(match[1].replace(",", ""))
    if _DECIMAL.fullmatch(number) or _EN_GROUPED.fullmatch(number):
        # "1,5" probably means 1,5 juta; "1,500" is 1,5 or 1500 depending on who wrote it.
        raise InvalidInput("money.error.ambiguous")
    raise InvalidInput("money.error.format")


def _amount_with_unit(number: str, multiplier: int) -> int:
    """Return the rupiah of "1,5" juta, "750" ribu and the like."""
    if number.isdigit():
        return int(number) * multiplier
    if _DECIMAL.fullmatch(number):
        # Two decimals of a thousand are still whole rupiah.
        return int(Decimal(number.replace(",", ".")) * multiplier)
    if _ONE_GROUP.fullmatch(number):
        raise InvalidInput("money.error.ambiguous")
    raise InvalidInput("money.error.format")


def format_rupiah(amount: int) -> str:
    """Write whole rupiah with dots for thousands: Rp1.500.000."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")
