"""Argument types of the command line: ids and counts read within range.

A number the database column cannot hold would otherwise reach the query and end in a
traceback (SQLite cannot bind it, PostgreSQL refuses it); here it is one line from argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bot.core.numbers import ROW_ID_MAX, TELEGRAM_ID_MAX, whole_number

# demo-data: synthetic applications are made in memory batch by batch; ten million is plenty.
COUNT_MAX = 10_000_000


def _whole_number(what: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: `what`, a whole number from `low` to `high` in ASCII digits."""

    def read(text: str) -> int:
        value = whole_number(text.strip(), low=low, high=high)
        if value is None:
            shown = text if len(text) <= 24 else f"{text[:24]}..."
            raise argparse.ArgumentTypeError(
                f"{shown!r} is not {what} (a whole number from {low} to {high})"
            )
        return value

    return read


# A stored row (broadcast, desa adat), a Telegram user, a number of things to make, a seed.
row_id_argument = _whole_number("an id", 1, ROW_ID_MAX)
telegram_id_argument = _whole_number("a Telegram user id", 1, TELEGRAM_ID_MAX)
count_argument = _whole_number("a count", 0, COUNT_MAX)
seed_argument = _whole_number("a seed", 0, TELEGRAM_ID_MAX)
