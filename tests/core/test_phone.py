"""A worker types or shares a phone number; the bot keeps it as +628… and shows it masked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import InvalidInput
from bot.core.phone import format_phone_local, mask_phone, normalise_phone

E164 = "+6281234567890"


@pytest.mark.parametrize(
    "typed",
    [
        "081234567890",
        "0812-3456-7890",
        "0812 3456 7890",
        "0812.3456.7890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "62812 3456 7890",
        "(0812) 3456-7890",
        "+62 (812) 3456 7890",
        "0062 812 3456 7890",
        "  0812 3456 7890 \n",
        "6281234567890",  # a shared Telegram contact, without "+"
        "+6281234567890",  # a shared Telegram contact, with "+"
    ],
)
def test_the_usual_ways_of_writing_a_mobile_number_give_e164(typed: str) -> None:
    assert normalise_phone(typed) == E164


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("0811-234-567", "+62811234567"),  # 10 digits, the shortest mobile
        ("0812-3456-789", "+628123456789"),  # 11 digits
        ("0812-3456-78901", "+62812345678901"),  # 13 digits, the longest
        ("0857 1234 5678", "+6285712345678"),
    ],
)
def test_mobile_numbers_of_ten_to_thirteen_digits_are_accepted(typed: str, e164: str) -> None:
    assert normalise_phone(typed) == e164


def test_a_landline_is_accepted_when_a_mobile_is_not_required() -> None:
    assert normalise_phone("(0361) 123456", mobile_only=False) == "+62361123456"


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", "phone.error.empty"),
        ("   ", "phone.error.empty"),
        ("tidak punya", "phone.error.format"),
        ("0812-FLOWERS", "phone.error.format"),
        ("0812 3456 7890 ext 12", "phone.error.format"),
        ("0812+3456", "phone.error.format"),
        ("０８１２３４５６７８９０", "phone.error.format"),
        ("+", "phone.error.format"),
        ("+1 650 253 0000", "phone.error.foreign"),
        ("+65 9123 4567", "phone.error.foreign"),
        ("+61 412 345 678", "phone.error.foreign"),
        ("081234567", "phone.error.invalid"),  # 9 digits
        ("08123456789012", "phone.error.invalid"),  # 14 digits
        ("0361 123456", "phone.error.not_mobile"),
        ("+62 21 1234 5678", "phone.error.not_mobile"),
    ],
)
def test_a_number_that_cannot_be_used_is_refused_with_a_key_that_says_why(
    typed: str, key: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_phone(typed)

    assert caught.value.key == key


@settings(max_examples=300)
@given(st.text(), st.booleans())
def test_any_text_gives_a_number_or_invalid_input(text: str, mobile_only: bool) -> None:
    try:
        e164 = normalise_phone(text, mobile_only=mobile_only)
    except InvalidInput:
        return
    assert e164.startswith("+62")


@settings(max_examples=300)
@given(st.from_regex(r"[0-9 ()+\-]{1,20}", fullmatch=True), st.booleans())
def test_any_digits_and_punctuation_give_a_number_or_invalid_input(
    text: str, mobile_only: bool
) -> None:
    try:
        e164 = normalise_phone(text, mobile_only=mobile_only)
    except InvalidInput:
        return
    assert e164.startswith("+62")


@settings(max_examples=300)
@given(st.from_regex(r"08[1-9][0-9]{7,10}", fullmatch=True))
def test_a_stored_number_reads_back_the_same_from_any_of_its_forms(typed: str) -> None:
    try:
        e164 = normalise_phone(typed)
    except InvalidInput:
        return  # not every 08… prefix is allocated to a mobile operator

    assert normalise_phone(e164) == e164
    assert normalise_phone(e164.removeprefix("+")) == e164
    assert normalise_phone(format_phone_local(e164)) == e164


def test_a_number_on_screen_hides_its_middle_digits() -> None:
    assert mask_phone(E164) == "+62812****7890"


def test_a_longer_number_hides_more_digits() -> None:
    assert mask_phone("+62812345678901") == "+62812*****8901"


@pytest.mark.parametrize(
    ("e164", "local"),
    [
        (E164, "0812-3456-7890"),
        ("+628123456789", "0812-3456-789"),
        ("+62811234567", "0811-234-567"),
    ],
)
def test_a_number_is_shown_the_indonesian_way(e164: str, local: str) -> None:
    assert format_phone_local(e164) == local


def test_formatting_something_that_is_not_e164_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        format_phone_local("bukan nomor")
