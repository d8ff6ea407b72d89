"""Whole numbers from outside — button data, deep links, command arguments — read within range.

Such text may be forged. A number the database column cannot hold makes the query itself fail
(SQLite cannot bind it, PostgreSQL refuses it) and the person would see an internal error, so
it is refused here, before any query: the caller answers "no such thing" instead. Only ASCII
digits count (`str.isdigit` also accepts "²", which `int` cannot read).
"""

from __future__ import annotations

# Row ids: INTEGER primary keys (32-bit on PostgreSQL).
ROW_ID_MAX = 2**31 - 1
# Telegram user and chat ids: BIGINT columns.
TELEGRAM_ID_MAX = 2**63 - 1


def whole_number(text: str, *, low: int = 0, high: int = ROW_ID_MAX) -> int | None:
    """`text` as a whole number from `low` to `high`, written in ASCII digits; else None."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def row_id(text: str | None) -> int | None:
    """A database row id (1 and up, within the column); None for anything else."""
    return whole_number(text or "", low=1)


def telegram_id(text: str) -> int | None:
    """A Telegram user id (1 and up, within the column); None for anything else."""
    return whole_number(text.strip(), low=1, high=TELEGRAM_ID_MAX)
