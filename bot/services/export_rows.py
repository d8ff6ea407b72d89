"""An export's stored rows turned into cells and into a writer's text, here or in workers.

`cell_maker` binds everything that does not change between rows once per export (the form's
columns, translations, the area names) and makes a row's cells from the row as stored.
`RowWorkers` runs that, and the formatting of CSV lines or sheet XML, in worker processes.
On SQLite the exporting process sends blocks of application ids and each worker reads its
rows itself (`StoredReader`); elsewhere it sends the stored rows it read. The workers
decrypt and format them, and the texts come back to be written in the order of the ids or
rows sent. At most two blocks per worker are in flight, so memory stays flat whatever the
count.

The key reaches a worker only through the pipe that starts it (the pool's initializer),
never on a command line or in a log. A worker that dies makes the export fail (the caller's
`replaced_when_complete` then leaves no file); a cancelled export stops its workers.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import String, bindparam, func, select, type_coerce
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.sql import Select

from bot.core.contribution import Rates
from bot.core.form import Form, FormContext, row_maker
from bot.core.questions import REGISTRATION
from bot.core.spreadsheet import BlockWriter, Cell, RowFormat
from bot.core.workflow import STATUS_NAMES
from bot.db.models import Application, Consent
from bot.i18n import translator
from bot.security import Cipher
from bot.services.areas import AreaDirectory

# A row as `stored_select` selects it: reference, status, submitted_at, answers_enc,
# assisted_by, consent version and time, kpj_number, status_note, status_changed_at (times
# as the driver gives them: text on SQLite), and last the application's id.
StoredRow = tuple[Any, ...]


def _as_stored(moment: Any) -> Any:
    # Times as the driver gives them (SQLite: text, PostgreSQL: datetime): the reading
    # process then spends nothing on parsing them, and `cell_maker` reads either.
    return type_coerce(moment, String)


def stored_select(ids: Select[Any] | None = None) -> Select[*tuple[Any, ...]]:
    """Applications as `StoredRow`s, each with the consent it was sent with.

    Without `ids`, every application (the caller filters); with them, those applications
    only, and only their consents are grouped (not every consent again for each block).
    """
    a = Application
    consents = [Consent.given.is_(True), Consent.application_id.is_not(None)]
    if ids is not None:
        consents.append(Consent.application_id.in_(ids))
    given = (
        select(Consent.application_id, func.max(Consent.id).label("consent_id"))
        .where(*consents)
        .group_by(Consent.application_id)
        .subquery()
    )
    statement = (
        select(
            a.reference,
            a.status,
            _as_stored(a.submitted_at),
            a.answers_enc,
            a.assisted_by,
            Consent.text_version,
            _as_stored(Consent.created_at),
            a.kpj_number,
            a.status_note,
            _as_stored(a.status_changed_at),
            a.id,
        )
        .outerjoin(given, given.c.application_id == a.id)
        .outerjoin(Consent, Consent.id == given.c.consent_id)
    )
    return statement if ids is None else statement.where(a.id.in_(ids))


@dataclass(frozen=True)
class RowSource:
    """What turns stored rows into cells, the key apart. Plain data: an export's worker
    processes each get it once (`RowWorkers`)."""

    language: str
    own_screen: bool
    tz: tzinfo
    rates: Rates
    areas: AreaDirectory
    assistants: dict[int, str]
    today: date


def cell_maker(
    source: RowSource,
    form: Form,
    decrypt: Callable[[Sequence[str]], list[dict[str, Any]]],
    *,
    times_as_text: bool = False,
) -> Callable[[Sequence[StoredRow]], list[list[Cell]]]:
    """Stored rows' cells in `columns_of` order; everything row-independent bound once.

    With `times_as_text` (CSV) a time is its text, "2026-06-08 10:31:19", as the CSV writer
    would write the datetime.
    """
    t = translator(source.language)
    ctx = FormContext(
        answers={},
        t=t,
        areas=source.areas,
        rates=source.rates,
        today=source.today,
        own_screen=source.own_screen,
    )
    status_label = {status: t(key) for status, key in STATUS_NAMES.items()}
    answered = row_maker(form.columns(), ctx)
    assistants, tz = source.assistants, source.tz
    # The branch's UTC offset by the UTC hour a moment falls in (None: the offset changes
    # within that hour), a few thousand hours for a whole export.
    offsets: dict[tuple[int, int, int, int], timedelta | None] = {}

    def offset_in(hour: tuple[int, int, int, int]) -> timedelta | None:
        start = datetime(*hour, tzinfo=UTC)
        offset = start.astimezone(tz).utcoffset()
        if offset != (start + timedelta(hours=1)).astimezone(tz).utcoffset():
            offset = None
        if len(offsets) < 100_000:
            offsets[hour] = offset
        return offset

    parse = datetime.fromisoformat
    # The same by the hour as SQLite's text gives it ("2026-06-08 02"), where whole.
    by_text: dict[str, timedelta] = {}
    # For text: the local hour's text by the UTC hour's, where the offset is whole hours.
    local_hours: dict[str, str] = {}
    whole_hour = timedelta(hours=1)

    def local(moment: datetime | str | None) -> datetime | str | None:
        if not moment:
            return None
        if times_as_text and type(moment) is str and len(moment) >= 19:
            hour = local_hours.get(moment[:13])
            if hour is not None:
                return hour + moment[13:19]
        found = local_time(moment)
        return str(found) if times_as_text else found

    def local_time(moment: datetime | str) -> datetime:
        # Spreadsheets know no time zones: times are written as the branch's wall clock, to
        # the second (what a person reads; CSV then writes them as they are).
        if type(moment) is str:
            # As SQLite stores a UtcDateTime: the UTC wall clock, without an offset.
            known = by_text.get(moment[:13])
            if known is not None:
                return parse(moment[:19]) + known
            text, moment = moment[:13], parse(moment[:19]).replace(tzinfo=UTC)
            offset = offset_in((moment.year, moment.month, moment.day, moment.hour))
            if offset is not None and len(by_text) < 100_000:
                by_text[text] = offset
                if offset % whole_hour == timedelta(0):
                    start = moment.replace(minute=0, second=0, tzinfo=None) + offset
                    local_hours[text] = str(start)[:13]
        assert isinstance(moment, datetime)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment.microsecond:
            moment = moment.replace(microsecond=0)
        if moment.tzinfo is UTC:
            hour = (moment.year, moment.month, moment.day, moment.hour)
            offset = offsets[hour] if hour in offsets else offset_in(hour)
            if offset is not None:
                return (moment + offset).replace(tzinfo=None)
        return moment.astimezone(tz).replace(tzinfo=None)

    def cells(stored: StoredRow, answers: dict[str, Any]) -> list[Cell]:
        (
            reference,
            status,
            submitted_at,
            _answers_enc,
            assisted_by,
            consent_version,
            consent_at,
            kpj_number,
            status_note,
            status_changed_at,
            _id,
        ) = stored
        row: list[Cell] = [
            reference or "",
            status_label.get(status, status),
            local(submitted_at),
        ]
        row += answered(answers)
        row += [
            assistants.get(assisted_by, f"#{assisted_by}") if assisted_by else "",
            consent_version or "",
            local(consent_at),
            kpj_number or "",
            status_note or "",
            local(status_changed_at),
        ]
        return row

    def rows(batch: Sequence[StoredRow]) -> list[list[Cell]]:
        # Decrypted a batch at a time (see Cipher.bulk_decryptor); erased answers are empty.
        found = iter(decrypt([stored[3] for stored in batch if stored[3]]))
        return [cells(stored, next(found) if stored[3] else {}) for stored in batch]

    return rows


class StoredReader:
    """Stored rows by application id, read from an SQLite file (in an export's worker).

    The reading process selects only the ids, in the export's order and with its filters,
    in one consistent read; each worker then reads its own rows by id, so reading is shared
    out too and no row crosses a pipe. A submitted application is never deleted (only
    drafts are), so every id is found; its fields are as they are when its block is read.
    The statement is SQLAlchemy's, compiled once; rows come straight from the driver.
    """

    def __init__(self, database: Path) -> None:
        ids = select(func.json_each(bindparam("ids")).table_valued("value").c.value)
        compiled = stored_select(ids).compile(dialect=sqlite_dialect())
        self._sql = compiled.string
        self._uses = len(compiled.positiontup or ())
        self._connection = sqlite3.connect(database, timeout=30)
        self._connection.execute("PRAGMA query_only=ON")

    def rows(self, ids: Sequence[int]) -> list[StoredRow]:
        """The rows of these applications, in the order of `ids`."""
        found = self._connection.execute(self._sql, [json.dumps(list(ids))] * self._uses)
        rows = found.fetchall()
        if len(rows) != len(ids):
            raise RuntimeError(f"{len(ids) - len(rows)} selected applications are gone")
        position = {key: index for index, key in enumerate(ids)}
        rows.sort(key=lambda row: position[row[-1]])
        return rows


# What a worker process holds: the row maker, the format of its writer, and the rows'
# reader when it reads them itself.
_worker: (
    tuple[Callable[[Sequence[StoredRow]], list[list[Cell]]], RowFormat, StoredReader | None] | None
) = None


def _start_worker(
    cipher: Cipher, source: RowSource, row_format: RowFormat, database: Path | None
) -> None:
    global _worker
    reader = StoredReader(database) if database is not None else None
    made = cell_maker(
        source, REGISTRATION, cipher.bulk_decryptor(), times_as_text=row_format.kind == "csv"
    )
    _worker = (made, row_format, reader)


def _format_rows(rows: Sequence[StoredRow], first_number: int) -> str:
    assert _worker is not None, "worker process not started by RowWorkers"
    cells, row_format, _reader = _worker
    return row_format.text(cells(rows), first_number)


def _read_and_format(ids: Sequence[int], first_number: int) -> str:
    assert _worker is not None and _worker[2] is not None, "worker not started to read"
    return _format_rows(_worker[2].rows(ids), first_number)


class RowWorkers:
    """Worker processes that turn stored rows into a writer's text, written in order.

    Only for the registration form: a worker builds its columns from the declaration it
    imports (a form's functions cannot be sent to another process).
    """

    def __init__(
        self,
        count: int,
        cipher: Cipher,
        source: RowSource,
        writer: BlockWriter,
        *,
        database: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        # "spawn": a fresh interpreter, not a copy of this one with its event loop, threads
        # and open database connections.
        self._pool = ProcessPoolExecutor(
            count,
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(cipher, source, writer.format, database),
        )
        self._writer = writer
        self._progress = progress
        self._pending: deque[tuple[asyncio.Future[str], int]] = deque()
        self._limit = 2 * count

    async def put(self, rows: Sequence[StoredRow]) -> None:
        """Send rows to the workers; write what is ready when too much is in flight."""
        await self._send(_format_rows, rows)

    async def put_ids(self, ids: Sequence[int]) -> None:
        """Have the workers read these applications (`database` given) and format them."""
        await self._send(_read_and_format, ids)

    async def _send(self, work: Callable[[Sequence[Any], int], str], items: Sequence[Any]) -> None:
        loop = asyncio.get_running_loop()
        done = 0
        for first, count in self._writer.number_rows(len(items)):
            piece = items[done : done + count]
            done += count
            future = loop.run_in_executor(self._pool, work, piece, first)
            self._pending.append((future, count))
            while len(self._pending) >= self._limit:
                await self._write_oldest()

    async def finish(self) -> None:
        """Write everything still in flight, then let the workers go."""
        while self._pending:
            await self._write_oldest()
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def stop(self) -> None:
        """Stop after a failure or a cancellation: drop queued batches, end the workers."""
        for future, _count in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _write_oldest(self) -> None:
        future, count = self._pending.popleft()
        self._writer.append(await future, count)
        if self._progress is not None:
            self._progress(self._writer.rows_written)
