"""Export cells made ahead: an application's CSV answer cells, kept encrypted beside its answers.

A large CSV export spends most of its time turning answers into cells (names, the NIK's
date, area names, contributions). Those cells depend only on the answers and on what
`cells_signature` describes, so they are made once, when the application is sent (and again
by `fill_export_cells` when the signature changes: a new release, new area names, a new
year), and an export of the default kind (Indonesian, full NIK) only joins them with the
cells that change after sending (status, times, KPJ number).

They are personal data like the answers: encrypted with the same key, opened only in an
export, and forgotten by a database trigger whenever the answers change (an edit, erasure, a
new key), so they never outlive the answers they were made from. Cells that are missing,
stale or under another signature are simply made from the answers at export time: an export
is the same, byte for byte, with or without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.core.questions import REGISTRATION
from bot.core.states import ApplicationStatus
from bot.db.models import Application
from bot.security import Cipher
from bot.services.areas import AreaDirectory
from bot.services.export_rows import RowSource, ahead_maker, cells_signature

# Applications made per statement: small enough that the bot's other writers wait little.
FILL_BATCH = 500


def default_source(
    areas: AreaDirectory, settings: Settings, today: date | None = None
) -> RowSource:
    """What the cells kept ahead are made for: a staff export in Indonesian, full NIK."""
    return RowSource(
        language="id",
        own_screen=True,
        tz=settings.tz,
        rates=settings.rates,
        areas=areas,
        assistants={},
        today=today or date.today(),
    )


class _Filler:
    """Makes the export cells of sent applications, a batch at a time, by id."""

    def __init__(
        self, cipher: Cipher, areas: AreaDirectory, settings: Settings, today: date | None
    ) -> None:
        source = default_source(areas, settings, today)
        self.cipher = cipher
        self.signature = signature = cells_signature(source, REGISTRATION)
        self.made = ahead_maker(source, REGISTRATION)
        self.decrypt = cipher.bulk_decryptor()
        table = Application.metadata.tables["applications"]
        self.write = (
            update(table)
            .where(
                table.c.id == bindparam("row_id"),
                table.c.answers_enc == bindparam("row_answers"),
            )
            # updated_at set to itself: making cells is not a change of the application.
            .values(
                export_cells_enc=bindparam("row_cells"),
                export_cells_for=signature,
                updated_at=table.c.updated_at,
            )
        )

    async def batch(
        self, session: AsyncSession, after: int, ids: Sequence[int] | None = None
    ) -> tuple[int, int]:
        """Make the cells of up to `FILL_BATCH` applications past id `after` that lack them
        (or hold stale ones): how many were made, and the last id looked at (0: none)."""
        wanted = (
            select(Application.id, Application.answers_enc)
            .where(
                Application.status != ApplicationStatus.DRAFT.value,
                Application.answers_enc.is_not(None),
                or_(
                    Application.export_cells_for.is_(None),
                    Application.export_cells_for != self.signature,
                ),
                Application.id > after,
            )
            .order_by(Application.id)
            .limit(FILL_BATCH)
        )
        if ids is not None:
            wanted = wanted.where(Application.id.in_(ids))
        rows = (await session.execute(wanted)).all()
        if not rows:
            return 0, 0
        answers = self.decrypt([row.answers_enc for row in rows])
        encrypt, signature, made = self.cipher.encrypt_bytes, self.signature, self.made
        await session.execute(
            self.write,
            [
                {
                    "row_id": row.id,
                    "row_answers": row.answers_enc,
                    # None: made at export time (and not looked at again under this signature).
                    "row_cells": None
                    if cells is None
                    else encrypt((signature + cells).encode()).decode(),
                }
                for row, cells in zip(rows, map(made, answers), strict=True)
            ],
        )
        return len(rows), rows[-1].id


async def fill_export_cells(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    *,
    ids: Sequence[int] | None = None,
    today: date | None = None,
) -> int:
    """Make the missing or stale export cells of sent applications (only `ids`, if given),
    in the caller's transaction; how many were made.

    Safe to run at any time and more than once: a row whose answers changed since it was
    read is left for the next run (the trigger has already forgotten its cells).
    """
    filler = _Filler(cipher, areas, settings, today)
    filled, after = 0, 0
    while True:
        made, after = await filler.batch(session, after, ids)
        if not made:
            return filled
        filled += made


async def fill_all_export_cells(
    sessions: async_sessionmaker[AsyncSession],
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    stop: asyncio.Event | None = None,
) -> int:
    """`fill_export_cells` for every application, one short transaction per batch (the bot
    goes on serving meanwhile): after an upgrade, a new key, new area names."""
    filler = _Filler(cipher, areas, settings, None)
    filled, after = 0, 0
    while stop is None or not stop.is_set():
        async with sessions() as session, session.begin():
            made, after = await filler.batch(session, after)
        if not made:
            break
        filled += made
        await asyncio.sleep(0)
    return filled
