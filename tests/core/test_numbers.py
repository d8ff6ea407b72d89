"""Numbers from outside are read only within their column's range."""

from __future__ import annotations

import pytest

from bot.core.numbers import ROW_ID_MAX, TELEGRAM_ID_MAX, row_id, telegram_id, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), ("007", 7), (str(ROW_ID_MAX), ROW_ID_MAX), ("0" * 30 + "1", 1)],
)
def test_whole_numbers_in_range_are_read(text: str, expected: int) -> None:
    assert whole_number(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "-1", "+1", " 1", "1 ", "1.0", "1e3", "²", "١", "１", str(ROW_ID_MAX + 1), "9" * 5000],
)
def test_anything_else_is_none(text: str) -> None:
    assert whole_number(text) is None


def test_row_ids_start_at_one_and_telegram_ids_are_wider() -> None:
    assert row_id("0") is None and row_id(None) is None and row_id("1") == 1
    assert telegram_id(str(ROW_ID_MAX + 1)) == ROW_ID_MAX + 1
    assert telegram_id(str(TELEGRAM_ID_MAX)) == TELEGRAM_ID_MAX
    assert telegram_id(str(TELEGRAM_ID_MAX + 1)) is None
    assert telegram_id(" 123 ") == 123
