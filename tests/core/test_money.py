"""A worker types a monthly income the way they say it; the bot reads whole rupiah."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import InvalidInput
from bot.core.money import MAX_AMOUNT, format_rupiah, parse_rupiah


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("1,5 juta", 1_500_000),
        ("1.5 juta", 1_500_000),
        ("1,5jt", 1_500_000),
        ("1,25 juta", 1_250_000),
        ("Rp 2 jt", 2_000_000),
        ("2jt", 2_000_000),
        ("2 juta", 2_000_000),
        ("2 JUTA", 2_000_000),
        ("2 juta rupiah", 2_000_000),
        ("750 ribu", 750_000),
        ("750rb", 750_000),
        ("750k", 750_000),
        ("1,5 rb", 1_500),
        ("Rp2.000.000", 2_000_000),
        ("Rp. 2.000.000", 2_000_000),
        ("IDR 2.000.000", 2_000_000),
        ("1.500.000", 1_500_000),
        ("1.250.000", 1_250_000),
        ("1500000", 1_500_000),
        ("Rp 1.500.000,00", 1_500_000),
        ("Rp1.500.000,-", 1_500_000),
        ("1500000,00", 1_500_000),
        ("1,500,000", 1_500_000),
        ("1,500.00", 1_500),
        ("1.500", 1_500),
        ("  Rp   1.500.000  ", 1_500_000),
        ("Rp 1.000.000.000", MAX_AMOUNT),
        ("1 miliar", MAX_AMOUNT),
    ],
)
def test_the_usual_ways_of_writing_an_amount_are_understood(typed: str, amount: int) -> None:
    assert parse_rupiah(typed) == amount


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", "money.error.empty"),
        ("   ", "money.error.empty"),
        ("-1.000.000", "money.error.negative"),
        ("Rp -500.000", "money.error.negative"),
        ("-2 juta", "money.error.negative"),
        ("0", "money.error.zero"),
        ("Rp 0", "money.error.zero"),
        ("0 juta", "money.error.zero"),
        ("0,00", "money.error.zero"),
        ("2 miliar", "money.error.too_large"),
        ("1.000.000.001", "money.error.too_large"),
        ("1001 juta", "money.error.too_large"),
        ("99999999999999999999999999999", "money.error.too_large"),
        ("1,5", "money.error.ambiguous"),
        ("1.5", "money.error.ambiguous"),
        ("1,500", "money.error.ambiguous"),
        ("1.500 juta", "money.error.ambiguous"),
        ("1,500 ribu", "money.error.ambiguous"),
        ("dua juta", "money.error.format"),
        ("Rp", "money.error.format"),
        ("juta", "money.error.format"),
        ("1.50.000", "money.error.format"),
        ("1.500.000,50", "money.error.format"),
        ("1,2345 juta", "money.error.format"),
        ("1,5 dolar", "money.error.format"),
        ("$1500", "money.error.format"),
        ("1 500 000", "money.error.format"),
        ("１５００００", "money.error.format"),
    ],
)
def test_an_amount_that_cannot_be_read_is_refused_with_a_key_that_says_why(
    typed: str, key: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rupiah(typed)

    assert caught.value.key == key


def test_a_too_large_amount_names_the_largest_one_accepted() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rupiah("5 miliar")

    assert caught.value.params == {"max": "Rp1.000.000.000"}


@settings(max_examples=300)
@given(st.text())
def test_any_text_gives_an_amount_or_invalid_input(text: str) -> None:
    try:
        amount = parse_rupiah(text)
    except InvalidInput:
        return
    assert 0 < amount <= MAX_AMOUNT


@settings(max_examples=300)
@given(st.from_regex(r"(rp)?[0-9.,\- ]{1,16}(juta|jt|ribu|rb|k)?", fullmatch=True))
def test_any_amount_like_text_gives_an_amount_or_invalid_input(text: str) -> None:
    try:
        amount = parse_rupiah(text)
    except InvalidInput:
        return
    assert 0 < amount <= MAX_AMOUNT


@pytest.mark.parametrize(
    ("amount", "written"),
    [
        (16_800, "Rp16.800"),
        (1_500_000, "Rp1.500.000"),
        (999, "Rp999"),
        (1_000, "Rp1.000"),
        (0, "Rp0"),
        (-6_800, "-Rp6.800"),
    ],
)
def test_amounts_are_written_with_dots_for_thousands(amount: int, written: str) -> None:
    assert format_rupiah(amount) == written


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_an_amount_the_bot_wrote_is_read_back_unchanged(amount: int) -> None:
    assert parse_rupiah(format_rupiah(amount)) == amount
    assert parse_rupiah(str(amount)) == amount


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=1000), st.sampled_from(["juta", "jt", " juta"]))
def test_whole_millions_are_read_with_any_unit_spelling(millions: int, unit: str) -> None:
    assert parse_rupiah(f"{millions}{unit}") == millions * 1_000_000
