"""When a scheduled broadcast goes out: the times people type, read in local time (WITA).

People write times the way they say them: "03-12-2026 09.00", "besok 09.00", "besok jam 9",
"09.00". Indonesian writes hours with a dot; a colon is accepted too.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from bot.core.errors import InvalidInput

MAX_DAYS_AHEAD = 90
_TIME = r"(?:(?:jam|pukul|at)\s+)?(?P<hour>\d{1,2})(?:[.:](?P<minute>\d{2}))?"
_DATE_FORMS = (
    re.compile(r"(?P<d>\d{1,2})[-/](?P<m>\d{1,2})[-/](?P<y>\d{4})"),
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
)
_RELATIVE_DAYS = {"hari ini": 0, "today": 0, "besok": 1, "tomorrow": 1, "lusa": 2}


def example_time(now: datetime) -> str:
    """The example shown in the prompt: tomorrow at 09.00, as a person would type it."""
    return (now + timedelta(days=1)).strftime("%d-%m-%Y 09.00")


def _day(text: str, today: date) -> tuple[date, str] | None:
    """The day a text begins with, and the rest; today when it names no day."""
    for word, offset in _RELATIVE_DAYS.items():
        if text.startswith(word + " "):
            return today + timedelta(days=offset), text[len(word) :].strip()
    for form in _DATE_FORMS:
        match = form.match(text)
        if match:
            try:
                day = date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
            return day, text[match.end() :].strip()
    return today, text


def parse_when(text: str, now: datetime) -> datetime:
    """The moment a typed time means, in `now`'s time zone; InvalidInput says what is wrong."""
    cleaned = " ".join(text.lower().replace(",", " ").split()).removesuffix(" wita")
    example = example_time(now)
    found = _day(cleaned, now.date())
    match = re.fullmatch(_TIME, found[1]) if found else None
    if found is None or match is None:
        raise InvalidInput("compose.error.when", example=example)
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if hour > 23 or minute > 59:
        raise InvalidInput("compose.error.when", example=example)
    moment = datetime.combine(found[0], time(hour, minute), tzinfo=now.tzinfo)
    if moment <= now:
        raise InvalidInput("compose.error.when_past", example=example)
    if moment > now + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput("compose.error.when_far", days=MAX_DAYS_AHEAD, example=example)
    return moment
