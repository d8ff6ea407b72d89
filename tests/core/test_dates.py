"""A worker types a birth date the way they are used to; the bot reads it and checks the age."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.dates import MIN_YEAR, age_on, check_age, format_date, parse_date
from bot.core.errors import InvalidInput

INDEPENDENCE_DAY_1985 = date(1985, 8, 17)


@pytest.mark.parametrize(
    "typed",
    [
        "17-08-1985",
        "17/08/1985",
        "17.08.1985",
        "17 8 1985",
        "17-8-1985",
        "17 Agustus 1985",
        "17 agustus 1985",
        "17 AGUSTUS 1985",
        "17 agt 1985",
        "17 agu 1985",
        "17 Ags 1985",
        "17 agust 1985",
        "17 August 1985",
        "17 aug 1985",
        "17081985",
        "1985-08-17",
        "1985/08/17",
        "  17   Agustus   1985  ",
        "17 Agustus 1985.",
        "17 agt. 1985",
        "17-Agu-1985",
        "17agustus1985",
        "August 17, 1985",
        "17\u00a0Agustus\u00a01985",
    ],
)
def test_the_usual_ways_of_writing_a_date_are_understood(typed: str) -> None:
    assert parse_date(typed) == INDEPENDENCE_DAY_1985


@pytest.mark.parametrize(
    ("word", "month"),
    [
        ("jan", 1),
        ("Januari", 1),
        ("feb", 2),
        ("Pebruari", 2),
        ("mar", 3),
        ("Maret", 3),
        ("apr", 4),
        ("mei", 5),
        ("May", 5),
        ("jun", 6),
        ("Juni", 6),
        ("jul", 7),
        ("Juli", 7),
        ("sep", 9),
        ("sept", 9),
        ("okt", 10),
        ("Oktober", 10),
        ("oct", 10),
        ("nov", 11),
        ("Nopember", 11),
        ("des", 12),
        ("Desember", 12),
        ("dec", 12),
    ],
)
def test_indonesian_and_english_month_names_and_abbreviations(word: str, month: int) -> None:
    assert parse_date(f"1 {word} 1990") == date(1990, month, 1)


def test_the_29th_of_february_of_a_leap_year_exists() -> None:
    assert parse_date("29-02-2000") == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", "date.error.format"),
        ("kemarin", "date.error.format"),
        ("17", "date.error.format"),
        ("17 Agustus", "date.error.format"),
        ("1708 1985", "date.error.format"),
        ("17-08-1985 10:00", "date.error.format"),
        ("tanggal 17 agustus 1985", "date.error.format"),
        ("117-08-1985", "date.error.format"),
        ("1985-108-17", "date.error.format"),
        ("１７-08-1985", "date.error.format"),
        ("17 08 85", "date.error.year_digits"),
        ("17-08-85", "date.error.year_digits"),
        ("17 Agustus 85", "date.error.year_digits"),
        ("170885", "date.error.year_digits"),
        ("17-08-198", "date.error.year_digits"),
        ("17 Agustos 1985", "date.error.unknown_month"),
        ("31-02-1990", "date.error.no_such_date"),
        ("29-02-1990", "date.error.no_such_date"),
        ("31 April 1990", "date.error.no_such_date"),
        ("00-01-1990", "date.error.no_such_date"),
        ("08-17-1985", "date.error.no_such_date"),  # month first is not how Indonesians write
        ("17-08-1085", "date.error.year_range"),
    ],
)
def test_a_date_that_cannot_be_read_is_refused_with_a_key_that_says_why(
    typed: str, key: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date(typed)

    assert caught.value.key == key


def test_a_year_before_1900_names_the_first_year_accepted() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date("01-01-1899")

    assert caught.value.params == {"min_year": MIN_YEAR}


@settings(max_examples=300)
@given(st.text())
def test_any_text_gives_a_date_or_invalid_input(text: str) -> None:
    try:
        day = parse_date(text)
    except InvalidInput:
        return
    assert day.year >= MIN_YEAR


@pytest.mark.parametrize(
    ("day", "language", "written"),
    [
        (INDEPENDENCE_DAY_1985, "id", "17 Agustus 1985"),
        (INDEPENDENCE_DAY_1985, "en", "17 August 1985"),
        (INDEPENDENCE_DAY_1985, "id_ID", "17 Agustus 1985"),
        (INDEPENDENCE_DAY_1985, "en-GB", "17 August 1985"),
        (date(2000, 1, 1), "id", "1 Januari 2000"),
        (date(1999, 12, 31), "id", "31 Desember 1999"),
        (date(1990, 5, 2), "en", "2 May 1990"),
    ],
)
def test_dates_are_written_with_the_month_name_of_the_user_s_language(
    day: date, language: str, written: str
) -> None:
    assert format_date(day, language) == written


def test_a_language_without_month_names_falls_back_to_indonesian() -> None:
    assert format_date(INDEPENDENCE_DAY_1985, "ban") == "17 Agustus 1985"


@settings(max_examples=300)
@given(st.dates(min_value=date(MIN_YEAR, 1, 1)), st.sampled_from(["id", "en"]))
def test_a_date_the_bot_wrote_is_read_back_unchanged(day: date, language: str) -> None:
    assert parse_date(format_date(day, language)) == day


@settings(max_examples=300)
@given(st.dates(min_value=date(MIN_YEAR, 1, 1)), st.sampled_from(["-", "/", ".", " ", ""]))
def test_a_numeric_day_month_year_is_read_back_unchanged(day: date, separator: str) -> None:
    typed = f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year:04d}"

    assert parse_date(typed) == day


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (INDEPENDENCE_DAY_1985, date(2025, 8, 16), 39),
        (INDEPENDENCE_DAY_1985, date(2025, 8, 17), 40),
        (INDEPENDENCE_DAY_1985, date(2025, 12, 31), 40),
        (INDEPENDENCE_DAY_1985, INDEPENDENCE_DAY_1985, 0),
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (date(2000, 2, 29), date(2025, 3, 1), 25),
        (date(2000, 2, 29), date(2024, 2, 29), 24),
    ],
)
def test_age_counts_full_years(birth: date, today: date, age: int) -> None:
    assert age_on(birth, today) == age


TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    "birth",
    [
        date(2007, 6, 1),  # 18 today
        date(1960, 6, 2),  # 64, turns 65 tomorrow
        INDEPENDENCE_DAY_1985,
    ],
)
def test_a_worker_from_18_to_64_may_register(birth: date) -> None:
    check_age(birth, TODAY, min_age=18, max_age_exclusive=65)


@pytest.mark.parametrize(
    ("birth", "key", "params"),
    [
        (date(2007, 6, 2), "birth_date.error.too_young", {"min_age": 18}),
        (date(2015, 1, 1), "birth_date.error.too_young", {"min_age": 18}),
        (date(1960, 6, 1), "birth_date.error.too_old", {"max_age": 64}),
        (date(1940, 1, 1), "birth_date.error.too_old", {"max_age": 64}),
        (date(2025, 6, 2), "birth_date.error.future", {}),
    ],
)
def test_an_age_outside_the_range_is_refused_kindly(
    birth: date, key: str, params: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_age(birth, TODAY, min_age=18, max_age_exclusive=65)

    assert (caught.value.key, caught.value.params) == (key, params)


@settings(max_examples=300)
@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
def test_check_age_passes_exactly_for_ages_in_range(birth: date) -> None:
    allowed = 18 <= age_on(birth, TODAY) < 65
    try:
        check_age(birth, TODAY, min_age=18, max_age_exclusive=65)
    except InvalidInput:
        assert not allowed
    else:
        assert allowed
