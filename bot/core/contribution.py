"""Monthly contributions (iuran) of a BPU participant for the chosen programs and payment period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from bot.core.errors import InvalidInput
from bot.core.money import MAX_AMOUNT, format_rupiah

# Monthly, every 3 months, every 6 months or yearly (official BPU page).
PAYMENT_PERIODS = (1, 3, 6, 12)


class Program(StrEnum):
    """The BPJS Ketenagakerjaan programs open to BPU participants."""

    JKK = "jkk"  # Jaminan Kecelakaan Kerja: work accident
    JKM = "jkm"  # Jaminan Kematian: death
    JHT = "jht"  # Jaminan Hari Tua: old-age savings, optional


REQUIRED_PROGRAMS = frozenset({Program.JKK, Program.JKM})


@dataclass(frozen=True)
class Rates:
    """Contribution rates for BPU.

    Source: DOMAIN.md, from consistent press reports (JKK 1 %, JKM Rp6.800 flat, JHT 2 %).
    The minimum income of Rp1.000.000 is very likely; the official bracket steps are
    unconfirmed, so these are kept in one place that a branch can override.
    """

    jkk_percent: Decimal = Decimal("1")
    jkm_flat: int = 6800
    jht_percent: Decimal = Decimal("2")
    min_income: int = 1_000_000


DEFAULT_RATES = Rates()


@dataclass(frozen=True)
class Contribution:
    """What a participant pays: per program and month, and per payment for the period."""

    income: int
    programs: frozenset[Program]
    jkk: int
    jkm: int
    jht: int
    monthly: int
    period_months: int
    per_payment: int


def check_income(income: int, rates: Rates = DEFAULT_RATES) -> None:
    """Raise InvalidInput if the declared monthly income is below the minimum or implausible."""
    if income < rates.min_income:
        raise InvalidInput(
            "contribution.error.income_too_low", min_income=format_rupiah(rates.min_income)
        )
    if income > MAX_AMOUNT:
        raise InvalidInput("money.error.too_large", max=format_rupiah(MAX_AMOUNT))


def contribution_for(
    income: int,
    programs: Iterable[Program],
    period_months: int = 1,
    rates: Rates = DEFAULT_RATES,
) -> Contribution:
    """Compute the contribution in whole rupiah (rounded half up) for income and programs."""
    chosen = frozenset(programs)
    if not REQUIRED_PROGRAMS.issubset(chosen):
        raise ValueError(f"JKK and JKM are always included, got {sorted(chosen)}")
    if period_months not in PAYMENT_PERIODS:
        raise ValueError(f"payment period must be one of {PAYMENT_PERIODS}, got {period_months}")
    check_income(income, rates)

    jkk = _percent_of(income, rates.jkk_percent)
    jkm = rates.jkm_flat
    jht = _percent_of(income, rates.jht_percent) if Program.JHT in chosen else 0
    monthly = jkk + jkm + jht
    return Contribution(
        income=income,
        programs=chosen,
        jkk=jkk,
        jkm=jkm,
        jht=jht,
        monthly=monthly,
        period_months=period_months,
        per_payment=monthly * period_months,
    )


def _percent_of(amount: int, percent: Decimal) -> int:
    """Return percent of amount in whole rupiah, rounding half up."""
    return int((amount * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
