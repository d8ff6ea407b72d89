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
import hashlib
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import String, and_, bindparam, case, func, select, type_coerce
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.sql import Select

from bot.core.contribution import Rates
from bot.core.form import Form, FormContext, row_maker
from bot.core.questions import REGISTRATION
from bot.core.spreadsheet import TRIGGERS, BlockWriter, Cell, RowFormat, csv_line_list
from bot.core.workflow import STATUS_NAMES
from bot.db.models import Application, Consent
from bot.i18n import LOCALES_DIR, translator
from bot.security import Cipher
from bot.services.areas import AreaDirectory

# A row as `stored_select` selects it: reference, status, submitted_at, answers_enc,
# assisted_by, consent version and time, kpj_number, status_note, status_changed_at (times
# as the driver gives them: text on SQLite), the export cells made ahead and their
# signature (bot.services.export_ahead), and last the application's id.
StoredRow = tuple[Any, ...]


def _as_stored(moment: Any) -> Any:
    # Times as the driver gives them (SQLite: text, PostgreSQL: datetime): the reading
    # process then spends nothing on parsing them, and `cell_maker` reads either.
    return type_coerce(moment, String)


def stored_select(ids: Select[Any] | None = None, kept_for: Any = None) -> Select[*tuple[Any, ...]]:
    """Applications as `StoredRow`s, each with the consent it was sent with.

    Without `ids`, every application (the caller filters); with them, those applications
    only, and only their consents are grouped (not every consent again for each block).
    With `kept_for` (a signature, or a bind parameter for one) the answers are left out
    where export cells made under it are kept: the largest column is then not read.
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
            a.answers_enc
            if kept_for is None
            else case(
                (and_(a.export_cells_for == kept_for, a.export_cells_enc.is_not(None)), None),
                else_=a.answers_enc,
            ),
            a.assisted_by,
            Consent.text_version,
            _as_stored(Consent.created_at),
            a.kpj_number,
            a.status_note,
            _as_stored(a.status_changed_at),
            a.export_cells_enc,
            a.export_cells_for,
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


@dataclass(frozen=True)
class RowParts:
    """An export row's cells in three parts: before the answers' (from the stored row),
    the answers' own (`answered`), and after them (from the stored row again)."""

    before: Callable[[StoredRow], list[Cell]]
    answered: Callable[[dict[str, Any]], list[Any]]
    after: Callable[[StoredRow], list[Cell]]
    # A stored time as the branch's wall clock, and each status as a person reads it.
    local: Callable[[datetime | str | None], datetime | str | None]
    status_label: dict[str, str]
    # With times as text: the local hour's text by the UTC hour's as SQLite stores it
    # ("2026-06-08 02"), for the hours `local` has met whose offset is whole hours.
    local_hours: dict[str, str]


def row_parts(source: RowSource, form: Form, *, times_as_text: bool = False) -> RowParts:
    """`cell_maker`'s parts, everything row-independent bound once.

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
    assistants = source.assistants
    local, local_hours = _local_times(source.tz, times_as_text)

    def before(stored: StoredRow) -> list[Cell]:
        return [stored[0] or "", status_label.get(stored[1], stored[1]), local(stored[2])]

    def after(stored: StoredRow) -> list[Cell]:
        assisted_by = stored[4]
        return [
            assistants.get(assisted_by, f"#{assisted_by}") if assisted_by else "",
            stored[5] or "",
            local(stored[6]),
            stored[7] or "",
            stored[8] or "",
            local(stored[9]),
        ]

    return RowParts(before, row_maker(form.columns(), ctx), after, local, status_label, local_hours)


def _local_times(
    tz: tzinfo, times_as_text: bool
) -> tuple[Callable[[datetime | str | None], datetime | str | None], dict[str, str]]:
    """A stored time as the branch's wall clock, to the second (None when there is none),
    and the hours it has met as text (see `RowParts.local_hours`)."""
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

    return local, local_hours


def cell_maker(
    source: RowSource,
    form: Form,
    decrypt: Callable[[Sequence[str]], list[dict[str, Any]]],
    *,
    times_as_text: bool = False,
) -> Callable[[Sequence[StoredRow]], list[list[Cell]]]:
    """Stored rows' cells in `columns_of` order (see `row_parts`)."""
    return _cells_of(row_parts(source, form, times_as_text=times_as_text), decrypt)


def _cells_of(
    parts: RowParts, decrypt: Callable[[Sequence[str]], list[dict[str, Any]]]
) -> Callable[[Sequence[StoredRow]], list[list[Cell]]]:
    before, answered, after = parts.before, parts.answered, parts.after

    def rows(batch: Sequence[StoredRow]) -> list[list[Cell]]:
        # Decrypted a batch at a time (see Cipher.bulk_decryptor); erased answers are empty.
        found = iter(decrypt([stored[3] for stored in batch if stored[3]]))
        return [
            before(stored) + answered(next(found) if stored[3] else {}) + after(stored)
            for stored in batch
        ]

    return rows


# ---------------------------------------------------------------------- cells made ahead

# An application's CSV cells from its answers are made when it is sent and kept encrypted
# (`export_cells_enc`, see bot.services.export_ahead), so that a large CSV export only joins
# texts. They are made with this separator between cells, which no kept text holds, and with
# the signature (`cells_signature`) of everything else they depend on.
UNIT = "\x1f"
SIGNATURE_LENGTH = 32


@cache
def _code_fingerprint(language: str) -> bytes:
    """The code and texts that make cells: a new release makes every kept cell stale."""
    package = Path(__file__).resolve().parent.parent
    files = [
        *sorted(package.joinpath("core").glob("*.py")),
        package / "services" / "export_rows.py",
        package / "i18n.py",
        *sorted(LOCALES_DIR.joinpath(language).rglob("*.po")),
    ]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def cells_signature(source: RowSource, form: Form) -> str:
    """What an application's answer cells depend on besides the answers, as one short text.

    The code and translations that make them, the export's language and masking, the rates,
    every area name, the year (a NIK's two-digit year, see `ahead_maker`) and the form's
    columns. Cells kept under another signature are made again at export time.
    """
    areas = source.areas
    described = repr(
        (
            source.language,
            source.own_screen,
            source.rates,
            source.today.year,
            [column.name for column in form.columns()],
            sorted(areas.province_codes),
            sorted((code, area.name) for code, area in areas.regency_by_code.items()),
            sorted((code, area.name) for code, area in areas.district_by_code.items()),
            sorted((code, area.name) for code, area in areas.village_by_code.items()),
        )
    )
    digest = hashlib.sha256(_code_fingerprint(source.language) + described.encode())
    return digest.hexdigest()[:SIGNATURE_LENGTH]


def ahead_maker(source: RowSource, form: Form) -> Callable[[dict[str, Any]], str | None]:
    """The text kept for an application's answer cells: its CSV cells joined by `UNIT`.

    None when they must be made at export time: a cell holding a delimiter, a quote or a
    line break (CSV quotes it, differently per delimiter), or cells that would read
    differently on the last day of this year (a NIK's date is read in this century unless
    that date is still to come, see `nik._birth_date`). Such a reading changes once at
    most as days pass, so cells the same today and on 31 December hold all year; the
    signature holds the year.
    """
    answered = row_parts(source, form, times_as_text=True).answered
    year_end = replace(source, today=date(source.today.year, 12, 31))
    answered_at_year_end = row_parts(year_end, form, times_as_text=True).answered
    unsafe = frozenset(',;"\r\n')

    def made(answers: dict[str, Any]) -> str | None:
        line = csv_line_list([answered(answers)], UNIT)[0]
        if not unsafe.isdisjoint(line):
            return None
        later = csv_line_list([answered_at_year_end(answers)], UNIT)[0]
        return line if later == line else None

    return made


def csv_text_maker(
    source: RowSource, form: Form, cipher: Cipher, delimiter: str
) -> Callable[[Sequence[StoredRow]], str]:
    """Stored rows as CSV lines: the bytes `cell_maker` and `csv_lines` make for them.

    Where a row's answer cells were made ahead under this export's signature they are only
    joined with the row's other cells (made here: the status and times change after sending);
    the rest are made from the answers.
    """
    parts = row_parts(source, form, times_as_text=True)
    before, after, local, hours = parts.before, parts.after, parts.local, parts.local_hours
    made_here = _cells_of(parts, cipher.bulk_decryptor())
    open_texts = cipher.bulk_text_decryptor()
    signature = cells_signature(source, form)
    size = SIGNATURE_LENGTH
    d = delimiter
    unquoted = frozenset((d, '"', "\r", "\n"))

    def plain(text: str) -> bool:
        # Written as it is: nothing to quote, nothing to neutralise.
        return unquoted.isdisjoint(text) and text[:1] not in TRIGGERS

    statuses = {status: label for status, label in parts.status_label.items() if plain(label)}
    versions: dict[str, bool] = {}

    def as_text(moment: Any) -> str:
        # `local`, with the common case (an hour already met, as SQLite's text) first.
        if type(moment) is str and len(moment) >= 19:
            hour = hours.get(moment[:13])
            if hour is not None:
                return hour + moment[13:19]
        return str(local(moment) or "")

    def line(stored: StoredRow, cells: str) -> str | None:
        """The common row (no assistant, no note) joined with its kept cells, else None."""
        reference, status, sent, _answers, assisted, version, consented, kpj, note, changed = (
            stored[:10]
        )
        label = statuses.get(status)
        if assisted or note or label is None:
            return None
        if type(reference) is not str or not (reference[:3] == "BC-" and reference[3:].isalnum()):
            return None
        if version:
            known = versions.get(version)
            if known is None:
                known = versions[version] = type(version) is str and plain(version)
            if not known:
                return None
        if kpj and not (type(kpj) is str and kpj.isascii() and kpj.isdigit()):
            return None
        return (
            f"{reference}{d}{label}{d}{as_text(sent)}{d}{cells}{d}{d}{version or ''}{d}"
            f"{as_text(consented)}{d}{kpj or ''}{d}{d}{as_text(changed)}"
        )

    def text(batch: Sequence[StoredRow]) -> str:
        lines: list[str | None] = [None] * len(batch)
        ahead = [i for i, stored in enumerate(batch) if stored[10] and stored[11] == signature]
        if ahead:
            for i, payload in zip(ahead, open_texts([batch[i][10] for i in ahead]), strict=True):
                # The signature is inside the encrypted text too: the plain column (which
                # spares reading the answers) must not be trusted alone.
                if payload[:size] != signature:
                    raise RuntimeError("kept export cells do not match their signature")
                cells = payload[size:].replace(UNIT, d)
                made = line(batch[i], cells)
                if made is None:
                    head, tail = csv_line_list([before(batch[i]), after(batch[i])], d)
                    made = f"{head}{d}{cells}{d}{tail}"
                lines[i] = made
        here = [stored for stored, made in zip(batch, lines, strict=True) if made is None]
        made_now = iter(csv_line_list(made_here(here), d) if here else [])
        out = [next(made_now) if made is None else made for made in lines]
        return "\r\n".join(out) + "\r\n" if out else ""

    return text


def read_only(database: Path) -> sqlite3.Connection:
    """A connection of its own to an SQLite file, for reading only (an export's reads)."""
    connection = sqlite3.connect(database, timeout=30)
    connection.execute("PRAGMA query_only=ON")
    return connection


class StoredReader:
    """Stored rows by application id, read from an SQLite file (in an export's worker).

    The reading process selects only the ids, in the export's order and with its filters,
    in one consistent read; each worker then reads its own rows by id, so reading is shared
    out too and no row crosses a pipe. A submitted application is never deleted (only
    drafts are), so every id is found; its fields are as they are when its block is read.
    The statement is SQLAlchemy's, compiled once; rows come straight from the driver.
    """

    def __init__(self, database: Path, kept_for: str | None = None) -> None:
        ids = select(func.json_each(bindparam("ids")).table_valued("value").c.value)
        signature: Any = bindparam("kept_for") if kept_for is not None else None
        compiled = stored_select(ids, signature).compile(dialect=sqlite_dialect())
        self._sql = compiled.string
        self._order = list(compiled.positiontup or ())
        self._kept_for = kept_for
        self._connection = read_only(database)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def rows(self, ids: Sequence[int]) -> list[StoredRow]:
        """The rows of these applications, in the order of `ids`."""
        values = {"ids": json.dumps(list(ids)), "kept_for": self._kept_for}
        found = self._connection.execute(self._sql, [values[name] for name in self._order])
        rows = found.fetchall()
        if len(rows) != len(ids):
            raise RuntimeError(f"{len(ids) - len(rows)} selected applications are gone")
        by_id = {row[-1]: row for row in rows}
        return [by_id[key] for key in ids]


# What a worker process holds: the row maker, the format of its writer, and the rows'
# reader when it reads them itself.
_worker: tuple[Callable[[Sequence[StoredRow], int], str], StoredReader | None] | None = None


def block_text_maker(
    source: RowSource, form: Form, cipher: Cipher, row_format: RowFormat
) -> Callable[[Sequence[StoredRow], int], str]:
    """Stored rows as a writer's text (CSV lines, or sheet rows numbered from the given)."""
    if row_format.kind == "csv":
        csv_text = csv_text_maker(source, form, cipher, row_format.delimiter)
        return lambda rows, _first_number: csv_text(rows)
    cells = cell_maker(source, form, cipher.bulk_decryptor())
    return lambda rows, first_number: row_format.text(cells(rows), first_number)


def _start_worker(
    cipher: Cipher, source: RowSource, row_format: RowFormat, database: Path | None
) -> None:
    global _worker
    kept_for = cells_signature(source, REGISTRATION) if row_format.kind == "csv" else None
    reader = StoredReader(database, kept_for) if database is not None else None
    _worker = (block_text_maker(source, REGISTRATION, cipher, row_format), reader)


def _format_rows(rows: Sequence[StoredRow], first_number: int) -> str:
    assert _worker is not None, "worker process not started by RowWorkers"
    return _worker[0](rows, first_number)


def _read_and_format(ids: Sequence[int], first_number: int) -> str:
    assert _worker is not None and _worker[1] is not None, "worker not started to read"
    return _format_rows(_worker[1].rows(ids), first_number)


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
