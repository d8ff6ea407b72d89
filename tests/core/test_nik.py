"""A worker types a NIK: it is read softly, decoded, and masked on screen."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import InvalidInput
from bot.core.nik import Gender, NikInfo, mask_nik, parse_nik

PROVINCES = frozenset({"11", "31", "32", "33", "34", "35", "36", "51", "52", "53", "71", "94"})
TODAY = date(2025, 6, 1)


def parse(text: str, today: date = TODAY) -> NikInfo:
    return parse_nik(text, known_provinces=PROVINCES, today=today)


def test_a_bali_nik_is_decoded_into_its_parts() -> None:
    info = parse("5102051708850003")

    assert info == NikInfo(
        nik="5102051708850003",
        province_code="51",
        regency_code="51.02",
        district_code="51.02.05",
        birth_date=date(1985, 8, 17),
        gender=Gender.MALE,
        serial="0003",
    )


@pytest.mark.parametrize(
    "typed",
    [
        "5102 0517 0885 0003",
        "5102.0517.0885.0003",
        "5102-0517-0885-0003",
        "  5102051708850003\n",
        "510205 170885 0003",
        "5102\u00a00517\u00a00885\u00a00003",
    ],
)
def test_spaces_dots_and_hyphens_copied_from_a_ktp_are_ignored(typed: str) -> None:
    assert parse(typed).nik == "5102051708850003"


def test_a_woman_s_nik_has_day_plus_forty() -> None:
    info = parse("5171035708850003")

    assert info.gender is Gender.FEMALE
    assert info.birth_date == date(1985, 8, 17)


@pytest.mark.parametrize(
    ("nik", "birth_date", "gender"),
    [
        ("5102057101900001", date(1990, 1, 31), Gender.FEMALE),  # day 71 is the 31st
        ("5102054101900001", date(1990, 1, 1), Gender.FEMALE),  # day 41 is the 1st
        ("5102050101900001", date(1990, 1, 1), Gender.MALE),
        ("5102053101900001", date(1990, 1, 31), Gender.MALE),
    ],
)
def test_day_limits_of_men_and_women(nik: str, birth_date: date, gender: Gender) -> None:
    info = parse(nik)

    assert (info.birth_date, info.gender) == (birth_date, gender)


def test_a_nik_first_issued_outside_bali_is_accepted() -> None:
    info = parse("3273015708900001")

    assert info.province_code == "32"
    assert info.regency_code == "32.73"


@pytest.mark.parametrize(
    ("nik", "birth_date"),
    [
        ("5102051708100003", date(2010, 8, 17)),
        ("5102051708300003", date(1930, 8, 17)),
        ("5102050106250003", date(2025, 6, 1)),  # born today
        ("5102050206250003", date(1925, 6, 2)),  # tomorrow in 2025 would be the future
        ("5102052902000003", date(2000, 2, 29)),
    ],
)
def test_the_century_is_chosen_so_the_birth_date_is_not_in_the_future(
    nik: str, birth_date: date
) -> None:
    assert parse(nik).birth_date == birth_date


@pytest.mark.parametrize(
    "nik",
    [
        "5102053102850003",  # 31 February
        "5102053104850003",  # 31 April
        "5102052902850003",  # 29 February of a common year
        "5102057102850003",  # a woman's 31 February
    ],
)
def test_a_date_part_that_is_not_a_real_date_is_accepted_without_a_birth_date(nik: str) -> None:
    info = parse(nik)

    assert info.birth_date is None


@pytest.mark.parametrize(
    ("typed", "key", "params"),
    [
        ("", "nik.error.empty", {}),
        (" - . ", "nik.error.empty", {}),
        ("5102O51708850003", "nik.error.not_digits", {}),
        ("NIK 5102051708850003", "nik.error.not_digits", {}),
        ("５１０２０５１７０８８５０００３", "nik.error.not_digits", {}),
        ("510205170885000", "nik.error.length", {"count": 15}),
        ("51020517088500031", "nik.error.length", {"count": 17}),
        ("5102 0517 0885 000", "nik.error.length", {"count": 15}),
        ("5", "nik.error.length", {"count": 1}),
        ("9902051708850003", "nik.error.province", {"province": "99"}),
        ("0002051708850003", "nik.error.province", {"province": "00"}),
        ("5102051700850003", "nik.error.date", {}),  # month 00
        ("5102051713850003", "nik.error.date", {}),  # month 13
        ("5102050008850003", "nik.error.date", {}),  # day 00
        ("5102053208850003", "nik.error.date", {}),  # day 32
        ("5102054008850003", "nik.error.date", {}),  # day 40
        ("5102057208850003", "nik.error.date", {}),  # day 72
        ("5102051708850000", "nik.error.serial", {}),
    ],
)
def test_a_mistyped_nik_is_refused_with_a_key_that_says_what_is_wrong(
    typed: str, key: str, params: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(typed)

    assert caught.value.key == key
    assert caught.value.params == params


@settings(max_examples=300)
@given(st.text())
def test_any_text_gives_a_nik_or_invalid_input(text: str) -> None:
    try:
        info = parse(text)
    except InvalidInput:
        return
    assert len(info.nik) == 16


@settings(max_examples=300)
@given(
    province=st.sampled_from(sorted(PROVINCES)),
    area=st.from_regex(r"[0-9]{4}", fullmatch=True),
    birth=st.dates(min_value=TODAY - timedelta(days=36524), max_value=TODAY),
    gender=st.sampled_from(Gender),
    serial=st.integers(min_value=1, max_value=9999),
)
def test_a_well_formed_nik_gives_back_the_birth_date_and_gender_it_was_built_from(
    province: str, area: str, birth: date, gender: Gender, serial: int
) -> None:
    day = birth.day + (40 if gender is Gender.FEMALE else 0)
    nik = f"{province}{area}{day:02d}{birth:%m%y}{serial:04d}"

    info = parse(nik)

    assert (info.birth_date, info.gender, info.serial) == (birth, gender, f"{serial:04d}")


def test_a_nik_on_screen_shows_only_its_first_and_last_four_digits() -> None:
    assert mask_nik("5102051708850003") == "5102********0003"


def test_a_too_short_value_is_masked_entirely() -> None:
    assert mask_nik("51020517") == "********"


@settings(max_examples=300)
@given(st.from_regex(r"[0-9]{16}", fullmatch=True))
def test_masking_hides_the_birth_date_and_district(nik: str) -> None:
    masked = mask_nik(nik)

    assert len(masked) == len(nik)
    assert masked[4:12] == "********"
    assert (masked[:4], masked[-4:]) == (nik[:4], nik[-4:])
