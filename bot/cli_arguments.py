"""Argument types of the command line: ids and counts read within range.

A number the database column cannot hold would otherwise reach the query and end in a
traceback (SQLite cannot bind it, PostgreSQL refuses it); here it is one line from argparse.
"""

from __future__ import annotations

import argparse

from bot.core.numbers import ROW_ID_MAX, TELEGRAM_ID_MAX, row_id, telegram_id, whole_number

# demo-data: synthetic applications are made in memory batch by batch; ten million is plenty.
COUNT_MAX = 10_000_000


def _shown(text: str) -> str:
    return repr(text if len(text) <= 24 else f"{text[:24]}...")


def row_id_argument(text: str) -> int:
    """An id of a stored row (broadcast, desa adat): 1 to the column's maximum."""
    value = row_id(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not an id (a whole number from 1 to {ROW_ID_MAX})"
        )
    return value


def telegram_id_argument(text: str) -> int:
    """A Telegram user id: 1 to the largest id Telegram gives."""
    value = telegram_id(text)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a Telegram user id (a whole number from 1 to {TELEGRAM_ID_MAX})"
        )
    return value


def count_argument(text: str) -> int:
    """A number of things to make: 0 to COUNT_MAX."""
    value = whole_number(text.strip(), high=COUNT_MAX)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a count (a whole number from 0 to {COUNT_MAX})"
        )
    return value


def seed_argument(text: str) -> int:
    """A random seed: any whole number from 0 to 2**63 - 1."""
    value = whole_number(text.strip(), high=TELEGRAM_ID_MAX)
    if value is None:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a seed (a whole number)")
    return value
