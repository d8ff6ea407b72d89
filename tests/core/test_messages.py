"""Message lengths are counted as Telegram counts them: in UTF-16 code units."""

from __future__ import annotations

import pytest

from bot.core.errors import InvalidInput
from bot.core.messages import text_length
from bot.core.workflow import MAX_NOTE, check_note


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Made", 4),
        ("Madé", 4),
        ("e\u0301", 2),  # a combining accent is a unit of its own
        ("😀", 2),
        ("👨‍👩‍👧", 8),  # three emoji joined by two zero-width joiners
        ("𝐌𝐚𝐝𝐞", 8),  # mathematical letters lie outside the basic plane
        ("\U00020000", 2),  # a CJK ideograph of plane 2
        ("\ud800", 1),  # a lone surrogate, as a forged update may carry
        ("", 0),
    ],
)
def test_astral_characters_count_twice(text: str, units: int) -> None:
    assert text_length(text) == units


def test_a_rejection_reason_is_measured_in_units() -> None:
    assert check_note("x" * MAX_NOTE) == "x" * MAX_NOTE
    with pytest.raises(InvalidInput):
        check_note("😀" * (MAX_NOTE // 2 + 1))


def test_a_rejection_reason_hides_nothing_from_the_worker() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_note("NIK tidak\u200b cocok")
    assert caught.value.key == "text.error.invisible"
    assert check_note("ＮＩＫ tidak cocok") == "NIK tidak cocok"
