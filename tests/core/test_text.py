"""Typed text is NFKC-normalised once; what hides something is refused with one sentence."""

from __future__ import annotations

import pytest

from bot.core.errors import InvalidInput
from bot.core.questions import parse_person_name
from bot.core.text import read_typed

FULLWIDTH_DIGITS = {ord("0") + i: 0xFF10 + i for i in range(10)}


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("Ｍａｄｅ", "Made"),  # fullwidth
        ("𝐌𝐚𝐝𝐞 𝑺𝒖𝒌𝒂𝒅𝒂𝒏𝒂", "Made Sukadana"),  # mathematical bold and bold italic
        ("5171014711900002".translate(FULLWIDTH_DIGITS), "5171014711900002"),
        ("Made\u3000Sukadana", "Made Sukadana"),  # ideographic space
        ("Made\u00a0Sukadana", "Made Sukadana"),  # no-break space
        ("Made\u0301", "Madé"),  # a combining accent joins its letter
        ("\u202a+62 812-3456-7890\u202c", "+62 812-3456-7890"),  # copied with direction marks
        ("\u200fMade\u200e", "Made"),
        ("Ni Luh Ayu 😀", "Ni Luh Ayu 😀"),  # emoji are for the question's own rules
        ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),
        ("Иван Петров", "Иван Петров"),  # one alphabet is fine, whichever it is
        ("", ""),
        ("line\nbreak\ttab", "line\nbreak\ttab"),
    ],
)
def test_typed_text_is_read_in_its_plain_form(typed: str, read: str) -> None:
    assert read_typed(typed) == read


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("\u3164\u3164", "text.error.invisible"),  # Hangul fillers: a name that looks empty
        ("\uffa0\uffa0", "text.error.invisible"),
        ("\u115f\u115f", "text.error.invisible"),
        ("\u200b", "text.error.invisible"),
        ("Ma\u200bde", "text.error.invisible"),
        ("\u2800\u2800", "text.error.invisible"),
        ("Made\u00ad", "text.error.invisible"),  # soft hyphen
        ("\ufeffMade", "text.error.invisible"),
        ("Made\U000e0041", "text.error.invisible"),  # a tag character
        ("Made\x00", "text.error.control"),
        ("\x07Made", "text.error.control"),
        ("Made\x1b[31m", "text.error.control"),
        ("Made\ud800", "text.error.control"),  # a lone surrogate
        ("Mаde", "text.error.mixed_script"),  # Cyrillic а inside a Latin word
        ("I Made Sukаdana", "text.error.mixed_script"),
        ("Κadek", "text.error.mixed_script"),  # Greek Kappa
        ("\u0399 Made", "text.error.mixed_script"),  # a Greek Iota standing for the I
        ("Made Иван", "text.error.mixed_script"),
        ("pаypal@example.com", "text.error.mixed_script"),
    ],
)
def test_text_hiding_something_is_refused(typed: str, key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_typed(typed)
    assert caught.value.key == key


def test_a_name_of_fillers_is_refused_and_fullwidth_becomes_plain() -> None:
    with pytest.raises(InvalidInput):
        parse_person_name("\u3164\u3164")
    assert parse_person_name("Ｍａｄｅ  Ｓｕｋａｄａｎａ") == "Made Sukadana"


def test_a_full_length_message_of_oddities_is_read_without_error() -> None:
    for text in ("a" * 4096, "😀" * 2048, "e" + "\u0301" * 4095, "\u202e" * 4096):
        read_typed(text)
