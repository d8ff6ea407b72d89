"""`keys rotate`: everything re-encrypted under the new DATA_KEY while the bot runs.

The bot is first restarted with DATA_KEY set to the new key and DATA_KEY_OLD to the old one:
it then reads under both and writes under the new one, and looks NIKs up by both hashes.
This pass rewrites every row still under the old key, table by table in batches of a few
hundred: answers, their NIK hash, the claim code hash of an assisted application (its code
is kept encrypted for this), stored updates, outgoing messages, staff requests, broadcast
texts and photos, and the value start-up checks the key with.

Each row is rewritten with a compare-and-set on the value it read: a row the running bot
changed meanwhile is left to the next pass (the bot wrote it under the new key anyway). A row
already under the new key is skipped, so an interrupted rotation is simply run again: it loses
nothing and doubles nothing. When a pass changes nothing, every row is under the new key and
DATA_KEY_OLD can go.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import ConfigError
from bot.core.form import Form
from bot.core.questions import REGISTRATION
from bot.db.models import (
    Application,
    Broadcast,
    InboxUpdate,
    KeyCheck,
    OutboxMessage,
    StaffRequest,
)
from bot.security import Cipher

BATCH = 200
PHOTO_BATCH = 5
# Between two written batches: room for the running bot's own writes.
PAUSE = 0.02
# A Fernet token, as it starts once base64-encoded (version byte 0x80).
_TOKEN_START = "gAAAAA"
CLAIM = "claim"

Progress = Callable[[str, int], None]


@dataclass
class Rotation:
    """What a rotation did, per table: rows rewritten, and rows found already current."""

    rewritten: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    # The last pass found nothing left under an old key.
    finished: bool = False


def _reencrypt_tokens(value: Any, cipher: Cipher) -> tuple[Any, bool]:
    """Every Fernet token inside a JSON value, re-encrypted under the current key."""
    if isinstance(value, str) and value.startswith(_TOKEN_START) and not cipher.is_current(value):
        return cipher.encrypt(cipher.decrypt(value)), True
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            out[key], moved = _reencrypt_tokens(item, cipher)
            changed = changed or moved
        return out, changed
    if isinstance(value, list):
        pairs = [_reencrypt_tokens(item, cipher) for item in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


def _application_values(row: Any, cipher: Cipher, form: Form) -> dict[str, Any] | None:
    """The new values of one application row, or None when it is under the new key already."""
    values: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    if row.answers_enc:
        answers = cipher.decrypt(row.answers_enc)
        if not cipher.is_current(row.answers_enc):
            values["answers_enc"] = cipher.encrypt(answers)
    if row.export_cells_enc and not cipher.is_current(row.export_cells_enc):
        # (New answers make the trigger forget them; `fill_export_cells` makes them again.)
        values["export_cells_enc"] = cipher.renewed(row.export_cells_enc)
    for question in form.questions:
        indexed = question.indexed
        if indexed is not None and indexed.hashed:
            value = answers.get(question.key)
            wanted = cipher.nik_hash(str(value)) if value is not None else None
            # (An erased application has neither answers nor hash: nothing to do.)
            if row.answers_enc and getattr(row, indexed.column) != wanted:
                values[indexed.column] = wanted
    state = json.loads(row.flow_state or "{}")
    moved_state, changed = _reencrypt_tokens(state, cipher)
    if changed:
        values["flow_state"] = json.dumps(moved_state, sort_keys=True)
    if row.claim_code_hash and CLAIM in state:
        code = cipher.decrypt(state[CLAIM])["code"]
        if row.claim_code_hash != cipher.keyed_hash(code):
            values["claim_code_hash"] = cipher.keyed_hash(code)
    return values or None


Batch = tuple[int, list[tuple[Any, dict[str, Any]]], int]


async def _read_applications(
    session: AsyncSession, cipher: Cipher, form: Form, after: int
) -> Batch:
    """One batch of applications: (last id read, [(row, new values)], rows already current)."""
    hashed = [q.indexed.column for q in form.questions if q.indexed and q.indexed.hashed]
    columns = [
        Application.id,
        Application.answers_enc,
        Application.export_cells_enc,
        Application.flow_state,
        Application.claim_code_hash,
        *(getattr(Application, c) for c in hashed),
    ]
    rows = (
        await session.execute(
            select(*columns).where(Application.id > after).order_by(Application.id).limit(BATCH)
        )
    ).all()
    changes = []
    for row in rows:
        values = _application_values(row, cipher, form)
        if values is not None:
            changes.append((row, values))
    return (rows[-1].id if rows else after), changes, len(rows) - len(changes)


async def _write_applications(
    session: AsyncSession, changes: list[tuple[Any, dict[str, Any]]]
) -> int:
    rewritten = 0
    for row, values in changes:
        # Compare-and-set: only if the bot has not changed the row since it was read.
        done = await session.execute(
            update(Application)
            .where(
                Application.id == row.id,
                _same(Application.answers_enc, row.answers_enc),
                Application.flow_state == row.flow_state,
            )
            .values(**values)
            .returning(Application.id)
            .execution_options(synchronize_session=False)
        )
        rewritten += done.first() is not None
    return rewritten


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


async def _read_column(
    session: AsyncSession, cipher: Cipher, table: Table, column: str, after: int
) -> Batch:
    """One batch of a table with one encrypted column (text, or bytes for photos)."""
    ident, token = table.c.id, table.c[column]
    # Photos may be megabytes each: a few at a time.
    limit = PHOTO_BATCH if isinstance(token.type, LargeBinary) else BATCH
    rows = (
        await session.execute(
            select(ident, token).where(ident > after).order_by(ident).limit(limit)
        )
    ).all()
    changes = [
        (row, {column: cipher.renewed(row[1])})
        for row in rows
        if row[1] and not cipher.is_current(row[1])
    ]
    return (rows[-1][0] if rows else after), changes, len(rows) - len(changes)


async def _write_column(
    session: AsyncSession, table: Table, column: str, changes: list[tuple[Any, dict[str, Any]]]
) -> int:
    ident, token = table.c.id, table.c[column]
    rewritten = 0
    for (row_id, value), values in changes:
        done = await session.execute(
            update(table).where(ident == row_id, token == value).values(values).returning(ident)
        )
        rewritten += done.first() is not None
    return rewritten


async def rotate_keys(
    sessions: async_sessionmaker[AsyncSession],
    cipher: Cipher,
    *,
    form: Form = REGISTRATION,
    progress: Progress | None = None,
    max_passes: int = 5,
) -> Rotation:
    """Re-encrypt every stored row under the current key; passes until nothing is left."""
    if not cipher.rotating:
        raise ConfigError(
            "keys rotate: set DATA_KEY to the new key and DATA_KEY_OLD to the old one, "
            "restart the bot with both, then run this again"
        )
    tables: list[tuple[str, Table | None, str]] = [
        ("applications", None, ""),
        ("inbox", InboxUpdate.__table__, "payload"),  # type: ignore[list-item]
        ("outbox", OutboxMessage.__table__, "payload"),  # type: ignore[list-item]
        ("staff_requests", StaffRequest.__table__, "text_enc"),  # type: ignore[list-item]
        ("broadcasts", Broadcast.__table__, "text_enc"),  # type: ignore[list-item]
        ("broadcast photos", Broadcast.__table__, "photo_enc"),  # type: ignore[list-item]
        # Start-up's proof of the key (bot/services/key_check.py) follows the data.
        ("key_check", KeyCheck.__table__, "token"),  # type: ignore[list-item]
    ]
    report = Rotation()
    for _ in range(max_passes):
        report.passes += 1
        changed = 0
        for name, table, column in tables:
            after = 0
            while True:
                # Read and work out the new values first; the write that follows is short, so
                # the running bot (on SQLite: one writer at a time) is held up only briefly.
                async with sessions() as session:
                    if table is None:
                        last, changes, current = await _read_applications(
                            session, cipher, form, after
                        )
                    else:
                        last, changes, current = await _read_column(
                            session, cipher, table, column, after
                        )
                rewritten = 0
                if changes:
                    async with sessions() as session, session.begin():
                        if table is None:
                            rewritten = await _write_applications(session, changes)
                        else:
                            rewritten = await _write_column(session, table, column, changes)
                    await asyncio.sleep(PAUSE)
                report.rewritten[name] = report.rewritten.get(name, 0) + rewritten
                if report.passes == 1:
                    report.current[name] = report.current.get(name, 0) + current
                changed += rewritten
                if progress is not None:
                    progress(name, last)
                if last == after:
                    break
                after = last
        if not changed:
            report.finished = True
            break
    return report
