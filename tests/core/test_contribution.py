"""A worker sees what BPU membership costs for the programs and payment period chosen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.contribution import (
    PAYMENT_PERIODS,
    Contribution,
    Program,
    Rates,
    check_income,
    contribution_for,
)
from bot.core.errors import InvalidInput

BASIC = (Program.JKK, Program.JKM)
WITH_JHT = (Program.JKK, Program.JKM, Program.JHT)


def test_the_cheapest_package_costs_rp16_800_a_month() -> None:
    assert contribution_for(1_000_000, BASIC) == Contribution(
        income=1_000_000,
        programs=frozenset(BASIC),
        jkk=10_000,
        jkm=6_800,
        jht=0,
        monthly=16_800,
        period_months=1,
        per_payment=16_800,
    )


@pytest.mark.parametrize(
    ("income", "programs", "period", "monthly", "per_payment"),
    [
        (1_000_000, BASIC, 1, 16_800, 16_800),
        (1_000_000, WITH_JHT, 1, 36_800, 36_800),
        (1_500_000, BASIC, 1, 21_800, 21_800),
        (1_000_000, BASIC, 3, 16_800, 50_400),
        (1_000_000, BASIC, 6, 16_800, 100_800),
        (1_000_000, BASIC, 12, 16_800, 201_600),
        (2_000_000, WITH_JHT, 3, 66_800, 200_400),
    ],
)
def test_monthly_and_per_payment_amounts(
    income: int, programs: tuple[Program, ...], period: int, monthly: int, per_payment: int
) -> None:
    contribution = contribution_for(income, programs, period_months=period)

    assert (contribution.monthly, contribution.per_payment) == (monthly, per_payment)


def test_jkm_is_flat_and_jkk_follows_income() -> None:
    contribution = contribution_for(1_500_000, BASIC)

    assert (contribution.jkk, contribution.jkm) == (15_000, 6_800)


@pytest.mark.parametrize(
    ("income", "jkk", "jht"),
    [
        (1_234_550, 12_346, 24_691),  # JKK 12.345,5 rounds up
        (1_234_525, 12_345, 24_691),  # JKK 12.345,25 rounds down; JHT 24.690,5 rounds up
        (1_000_050, 10_001, 20_001),  # half up, not to even (10.000,5 -> 10.001)
        (1_000_049, 10_000, 20_001),  # JHT 20.000,98
    ],
)
def test_odd_incomes_round_half_up_to_whole_rupiah(income: int, jkk: int, jht: int) -> None:
    contribution = contribution_for(income, WITH_JHT)

    assert (contribution.jkk, contribution.jht) == (jkk, jht)
    assert contribution.monthly == jkk + 6_800 + jht


def test_programs_may_come_in_any_iterable_and_order() -> None:
    from_list = contribution_for(1_000_000, [Program.JHT, Program.JKM, Program.JKK])
    from_generator = contribution_for(1_000_000, (p for p in WITH_JHT))

    assert from_list == from_generator
    assert from_list.programs == frozenset(WITH_JHT)


@pytest.mark.parametrize(
    "programs",
    [(), (Program.JKK,), (Program.JKM,), (Program.JHT,), (Program.JKK, Program.JHT)],
)
def test_leaving_out_jkk_or_jkm_is_a_programming_error(programs: tuple[Program, ...]) -> None:
    with pytest.raises(ValueError, match="JKK and JKM"):
        contribution_for(1_000_000, programs)


@pytest.mark.parametrize("period", [0, 2, 4, 24, -1])
def test_a_payment_period_other_than_1_3_6_or_12_months_is_a_programming_error(
    period: int,
) -> None:
    with pytest.raises(ValueError, match="payment period"):
        contribution_for(1_000_000, BASIC, period_months=period)


@pytest.mark.parametrize("income", [999_999, 500_000, 0, -1])
def test_an_income_below_the_minimum_is_refused_with_the_minimum_named(income: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        contribution_for(income, BASIC)

    assert caught.value.key == "contribution.error.income_too_low"
    assert caught.value.params == {"min_income": "Rp1.000.000"}


def test_check_income_accepts_the_minimum_and_refuses_one_rupiah_less() -> None:
    check_income(1_000_000, Rates())

    with pytest.raises(InvalidInput) as caught:
        check_income(999_999, Rates())
    assert caught.value.key == "contribution.error.income_too_low"


def test_a_branch_can_correct_the_rates_without_a_code_change() -> None:
    rates = Rates(
        jkk_percent=Decimal("0.5"), jkm_flat=7_000, jht_percent=Decimal("3"), min_income=500_000
    )

    contribution = contribution_for(500_000, WITH_JHT, rates=rates)

    assert (contribution.jkk, contribution.jkm, contribution.jht) == (2_500, 7_000, 15_000)
    with pytest.raises(InvalidInput) as caught:
        check_income(499_999, rates)
    assert caught.value.params == {"min_income": "Rp500.000"}


@settings(max_examples=300)
@given(
    income=st.integers(min_value=1_000_000, max_value=1_000_000_000),
    with_jht=st.booleans(),
    period=st.sampled_from(PAYMENT_PERIODS),
)
def test_the_parts_always_add_up(income: int, with_jht: bool, period: int) -> None:
    contribution = contribution_for(income, WITH_JHT if with_jht else BASIC, period)

    assert contribution.monthly == contribution.jkk + contribution.jkm + contribution.jht
    assert contribution.per_payment == contribution.monthly * period
    assert abs(contribution.jkk * 100 - income) <= 50
    if with_jht:
        assert abs(contribution.jht * 50 - income) <= 25
    else:
        assert contribution.jht == 0
