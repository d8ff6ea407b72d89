"""Scheduled times typed the way people write them, in WITA."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import InvalidInput
from bot.core.schedule import example_time, parse_when

WITA = ZoneInfo("Asia/Makassar")
NOW = datetime(2026, 12, 2, 15, 30, tzinfo=WITA)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("03-12-2026 09.00", datetime(2026, 12, 3, 9, 0)),
        ("03-12-2026 09:00", datetime(2026, 12, 3, 9, 0)),
        ("3/12/2026 9.30", datetime(2026, 12, 3, 9, 30)),
        ("2026-12-03 09:00", datetime(2026, 12, 3, 9, 0)),
        ("20.00", datetime(2026, 12, 2, 20, 0)),
        ("besok 09.00", datetime(2026, 12, 3, 9, 0)),
        ("Besok jam 9", datetime(2026, 12, 3, 9, 0)),
        ("besok pukul 14.15 WITA", datetime(2026, 12, 3, 14, 15)),
        ("lusa jam 8", datetime(2026, 12, 4, 8, 0)),
        ("tomorrow 09:00", datetime(2026, 12, 3, 9, 0)),
    ],
)
def test_accepted_times(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected.replace(tzinfo=WITA)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("kemarin sore", "compose.error.when"),
        ("besok jam 25", "compose.error.when"),
        ("31-02-2027 09.00", "compose.error.when"),
        ("09.00", "compose.error.when_past"),
        ("01-12-2026 09.00", "compose.error.when_past"),
        ("01-01-2099 09:00", "compose.error.when_far"),
    ],
)
def test_a_refused_time_says_why(text: str, key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_when(text, NOW)
    assert refused.value.key == key
    assert refused.value.params["example"] == "03-12-2026 09.00" == example_time(NOW)
