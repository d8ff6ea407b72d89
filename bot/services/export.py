"""Exporting applications for branch staff and village leaders (CSV or XLSX), streamed.

The columns come from the form declaration (`Form.columns()`), framed by the application's
own fields (reference, status, when it was sent) and the status workflow's (KPJ number,
note, last change). Headers are texts of the operator's language (`export.column.<name>`).

The read path is built for a million rows: one Core select of only the columns needed,
streamed in partitions (never ORM objects), decrypted a batch at a time, turned into cells
by columns bound once per export (`bot.services.export_rows`), and formatted a block at a
time; optionally in worker processes (EXPORT_WORKERS). Rows go to the writer as they come, so
memory stays flat whatever the count; the file is written beside its final name and renamed
once complete (`replaced_when_complete`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import Row, Select, create_engine, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from bot.config import Settings
from bot.core.form import Form
from bot.core.questions import REGISTRATION
from bot.core.spreadsheet import (
    BlockWriter,
    Cell,
    CsvWriter,
    RowWriter,
    XlsxWriter,
    replaced_when_complete,
)
from bot.core.states import ApplicationStatus
from bot.db.models import Application, AuditEntry, DesaAdat, Role, User
from bot.i18n import translator
from bot.security import Cipher
from bot.services import audit
from bot.services.areas import AreaDirectory
from bot.services.export_rows import (
    RowSource,
    RowWorkers,
    StoredReader,
    StoredRow,
    cell_maker,
    cells_signature,
    csv_text_maker,
    read_only,
    stored_select,
)

FORMATS = ("xlsx", "csv")
EXPORT_ACTION = "export"

# Columns around the form's own: what the application row itself knows.
LEADING = ("reference", "status", "submitted_at")
TRAILING = (
    "assisted_by",
    "consent_version",
    "consent_at",
    "kpj_number",
    "status_note",
    "status_changed_at",
)
# Width in characters of the XLSX columns that need more (or less) than a header's length.
WIDTHS: dict[str, float] = {
    "reference": 13,
    "status": 20,
    "submitted_at": 17,
    "nik": 19,
    "full_name": 26,
    "birth_date": 12,
    "phone": 16,
    "heir_phone": 16,
    "heir_name": 26,
    "email": 28,
    "regency_name": 20,
    "district_name": 18,
    "village_name": 20,
    "banjar": 18,
    "desa_adat": 22,
    "occupation": 18,
    "occupation_other": 22,
    "assisted_by": 24,
    "consent_at": 17,
    "status_note": 30,
    "status_changed_at": 17,
}
# Statuses an export may ask for, by their value or the Indonesian word staff use.
STATUS_WORDS: dict[str, ApplicationStatus] = {
    "menunggu": ApplicationStatus.SUBMITTED,
    "diverifikasi": ApplicationStatus.VERIFIED,
    "terdaftar": ApplicationStatus.REGISTERED,
    "ditolak": ApplicationStatus.REJECTED,
    "dibatalkan": ApplicationStatus.CANCELLED,
    **{s.value: s for s in ApplicationStatus if s is not ApplicationStatus.DRAFT},
}
# Rows read from the database at a time: large enough to amortise the round trips, small
# enough to keep memory flat.
BATCH = 2000
# Rows written between two chances for other work in the process to run (a few milliseconds).
YIELD_EVERY = 200
# Rows made in this process before worker processes take over: starting them (an
# interpreter each, about half a CPU second) costs more than a small export takes. Measured
# on the 2-core VM (docs/BENCHMARKS.md): one process is faster at 20 000 and 50 000 rows,
# the two are even at about 100 000, workers are faster at 1 000 000.
PARALLEL_FROM = 100_000


def columns_of(form: Form) -> tuple[str, ...]:
    """The export's column names for a form."""
    return (*LEADING, *(c.name for c in form.columns()), *TRAILING)


COLUMNS = columns_of(REGISTRATION)
# A statement the export's filters and order are added to.
Selectable = TypeVar("Selectable", bound=Select[Any])


def parse_status(text: str) -> ApplicationStatus:
    """A status as typed on the command line (`submitted` or `menunggu`, ...)."""
    try:
        return STATUS_WORDS[text.strip().casefold()]
    except KeyError:
        raise ValueError(f"unknown status {text!r}; use one of {', '.join(STATUS_WORDS)}") from None


@dataclass(frozen=True)
class ExportFilter:
    """Which applications an export holds; every field left empty means "any"."""

    regency: str | None = None
    district: str | None = None
    village: str | None = None
    desa_adat_id: int | None = None
    status: ApplicationStatus | None = None
    # Sent on or after this day, and on or before that day (both in the branch's time zone).
    since: date | None = None
    until: date | None = None
    # Sent after this moment ("new since my last export").
    sent_after: datetime | None = None

    def describe(self) -> dict[str, Any]:
        """The filters that are set, for the audit log."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ExportRequest:
    """What to export, in which language, and whether the NIK is shown in full."""

    filter: ExportFilter = ExportFilter()
    language: str = "id"
    mask_nik: bool = False
    form: Form = REGISTRATION


@dataclass
class ExportResult:
    """What an export wrote."""

    rows: int
    seconds: float
    as_of: datetime
    path: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)


def headers(language: str, form: Form = REGISTRATION) -> list[str]:
    """The column headers in a language."""
    t = translator(language)
    return [t(f"export.column.{name}") for name in columns_of(form)]


def _statement(
    request: ExportRequest, settings: Settings, as_of: datetime, kept_for: str | None = None
) -> Select[*tuple[Any, ...]]:
    """The selected applications' stored rows (`StoredRow`), in the export's order (without
    the answers where export cells kept under `kept_for` stand for them)."""
    return _selection(stored_select(kept_for=kept_for), request, settings, as_of)


def _key_statement(request: ExportRequest, settings: Settings, as_of: datetime) -> Select[int]:
    """The selected applications' ids, in the export's order (worker processes read the rows)."""
    return _selection(select(Application.id), request, settings, as_of)


def _selection(
    statement: Selectable, request: ExportRequest, settings: Settings, as_of: datetime
) -> Selectable:
    a = Application
    statement = (
        statement
        # Only what was sent before the export began: "new since my last export" then
        # misses nothing sent while it ran. (An application without a time is kept.)
        .where(
            a.status != ApplicationStatus.DRAFT,
            or_(a.submitted_at.is_(None), a.submitted_at <= as_of),
        ).order_by(a.submitted_at, a.id)
    )
    wanted = request.filter
    for code in (wanted.regency, wanted.district):
        if code:
            # Area codes nest: a village 51.02.05.2006 lies in 51.02.05 and in 51.02.
            statement = statement.where(a.village_code.startswith(f"{code}.", autoescape=True))
    if wanted.village:
        statement = statement.where(a.village_code == wanted.village)
    if wanted.desa_adat_id is not None:
        statement = statement.where(a.desa_adat_id == wanted.desa_adat_id)
    if wanted.status is not None:
        statement = statement.where(a.status == wanted.status)
    tz = settings.tz
    if wanted.since is not None:
        start = datetime.combine(wanted.since, clock(), tz)
        statement = statement.where(a.submitted_at >= start)
    if wanted.until is not None:
        end = datetime.combine(wanted.until + timedelta(days=1), clock(), tz)
        statement = statement.where(a.submitted_at < end)
    if wanted.sent_after is not None:
        statement = statement.where(a.submitted_at > wanted.sent_after)
    return statement


async def _assistants(session: AsyncSession, areas: AreaDirectory, language: str) -> dict[int, str]:
    """Who may have filled forms for residents: each leader as "Perbekel Dajan Peken"."""
    t = translator(language)
    adat = dict((await session.execute(select(DesaAdat.id, DesaAdat.name))).all())
    labels: dict[int, str] = {}
    for user_id, role, village_code, desa_adat_id in (
        await session.execute(
            select(Role.user_id, Role.role, Role.village_code, Role.desa_adat_id).order_by(Role.id)
        )
    ).all():
        village = areas.village(village_code or "")
        place = village.name if village else adat.get(desa_adat_id or 0, "")
        labels.setdefault(user_id, f"{t(f'role.{role}')} {place}".strip())
    return labels


async def row_source(
    session: AsyncSession, areas: AreaDirectory, settings: Settings, request: ExportRequest
) -> RowSource:
    """The `RowSource` of one export."""
    return RowSource(
        language=request.language,
        own_screen=not request.mask_nik,
        tz=settings.tz,
        rates=settings.rates,
        areas=areas,
        assistants=await _assistants(session, areas, request.language),
        today=date.today(),
    )


async def stored_rows(
    session: AsyncSession,
    settings: Settings,
    request: ExportRequest,
    as_of: datetime,
    kept_for: str | None = None,
) -> AsyncIterator[list[StoredRow]]:
    """The selected rows as stored, a partition (`BATCH` rows) at a time."""
    async for batch in _partitions(session, _statement(request, settings, as_of, kept_for)):
        yield [tuple(row) for row in batch]


async def _partitions(
    session: AsyncSession, statement: Select[Any]
) -> AsyncIterator[Sequence[Row[Any]]]:
    """A statement's rows streamed, `BATCH` at a time."""
    result = await session.stream(statement.execution_options(yield_per=BATCH))
    async for batch in result.partitions(BATCH):
        yield batch


async def export_cells(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    request: ExportRequest,
    *,
    as_of: datetime | None = None,
) -> AsyncIterator[list[Cell]]:
    """Every application the request selects, as a row of cells in `columns_of` order."""
    as_of = as_of or datetime.now(UTC)
    source = await row_source(session, areas, settings, request)
    cells = cell_maker(source, request.form, cipher.bulk_decryptor())
    async for batch in stored_rows(session, settings, request, as_of):
        for row in cells(batch):
            yield row


async def export_rows(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    form: Form = REGISTRATION,
    request: ExportRequest | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every selected application as a mapping of column name to cell (for code and tests)."""
    request = request or ExportRequest(language=settings.default_language, form=form)
    names = columns_of(request.form)
    async for cells in export_cells(session, cipher, areas, settings, request):
        yield dict(zip(names, cells, strict=True))


def open_writer(
    fmt: str, handle: Any, header: Sequence[str], *, delimiter: str = ",", names: Sequence[str]
) -> BlockWriter:
    """A CSV or XLSX writer on an open handle (text for CSV, binary for XLSX)."""
    if fmt == "csv":
        return CsvWriter(handle, header, delimiter=delimiter)
    widths = [
        WIDTHS.get(name, max(10.0, len(title) + 2.0))
        for name, title in zip(names, header, strict=True)
    ]
    return XlsxWriter(handle, header, sheet_name="Pendaftaran", widths=widths)


Progress = Callable[[int], None]


async def write_export(
    cells: AsyncIterator[Sequence[Cell]] | AsyncIterator[dict[str, Any]],
    fmt: str,
    output: Path,
    columns: Sequence[str] = COLUMNS,
    *,
    header: Sequence[str] | None = None,
    delimiter: str = ",",
    progress: Progress | None = None,
) -> int:
    """Write rows to `output` (CSV or XLSX), which appears only once complete; return the count.

    Rows may be cell lists in `columns` order or mappings by column name.
    """
    header = list(header if header is not None else columns)
    with _file_writer(fmt, output, header, columns, delimiter) as writer:
        return await _pump(cells, writer, columns, progress)


@contextmanager
def _file_writer(
    fmt: str, output: Path, header: Sequence[str], names: Sequence[str], delimiter: str
) -> Iterator[BlockWriter]:
    """A writer on a file that appears at `output` only if the block succeeds."""
    with replaced_when_complete(output) as partial:
        if fmt == "csv":
            # The byte-order mark makes Excel read the file as UTF-8 (names with accents).
            with partial.open("w", newline="", encoding="utf-8-sig") as handle:
                yield open_writer(fmt, handle, header, delimiter=delimiter, names=names)
            return
        with partial.open("wb") as binary:
            xlsx = open_writer(fmt, binary, header, names=names)
            assert isinstance(xlsx, XlsxWriter)
            try:
                yield xlsx
            except BaseException:
                xlsx.abort()
                raise
            xlsx.close()


async def write_csv(
    rows: AsyncIterator[dict[str, Any]], handle: TextIO, columns: Sequence[str] = COLUMNS
) -> int:
    """Write rows as CSV to an open text handle (standard output); return how many."""
    return await _pump(rows, CsvWriter(handle, columns), columns, None)


async def _pump(
    rows: AsyncIterator[Sequence[Cell]] | AsyncIterator[dict[str, Any]],
    writer: RowWriter,
    columns: Sequence[str],
    progress: Progress | None,
) -> int:
    write = writer.write
    async for row in rows:
        write([row.get(c) for c in columns] if isinstance(row, dict) else row)
        if writer.rows_written % YIELD_EVERY == 0:
            # Rows arrive a partition at a time without a pause: let the rest of the process
            # (the bot's other work, the progress message) run now and then.
            await asyncio.sleep(0)
            if progress is not None:
                progress(writer.rows_written)
    return writer.rows_written


async def count_selected(
    session: AsyncSession, settings: Settings, request: ExportRequest, as_of: datetime
) -> int:
    """How many applications the request selects (for a progress bar)."""
    inner = _statement(request, settings, as_of).order_by(None).subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


# ---------------------------------------------------------------------- who exported what


def cli_actor(operator: str) -> str:
    """The audit actor label of an operator on the command line."""
    return f"cli:{operator}"[:40]


async def last_export(
    session: AsyncSession, *, actor: User | None = None, actor_label: str | None = None
) -> datetime | None:
    """The moment the operator's last complete export read up to (None: never exported)."""
    who = (
        AuditEntry.actor_user_id == actor.id
        if actor is not None
        else AuditEntry.actor_label == actor_label
    )
    details = await session.scalar(
        select(AuditEntry.details)
        .where(AuditEntry.action == EXPORT_ACTION, who)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if details is None:
        return None
    return datetime.fromisoformat(json.loads(details)["as_of"])


async def record_export(
    session: AsyncSession,
    result: ExportResult,
    request: ExportRequest,
    fmt: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
) -> None:
    """One audit row for a finished export: who, which filters, how many rows, as of when."""
    await audit.record(
        session,
        EXPORT_ACTION,
        actor=actor,
        actor_label=actor_label,
        target=fmt,
        rows=result.rows,
        as_of=result.as_of.isoformat(),
        masked=request.mask_nik,
        **{f"filter_{k}": v for k, v in request.filter.describe().items()},
    )


async def run_export(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    settings: Settings,
    request: ExportRequest,
    fmt: str,
    output: Path | TextIO,
    *,
    delimiter: str = ",",
    progress: Progress | None = None,
    workers: int | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> ExportResult:
    """Write one export to a file (or CSV to an open text stream); the caller records it.

    `workers` processes (default: the EXPORT_WORKERS setting, else one per core) decrypt
    and format the rows of a large export, on SQLite reading them too (`_fill_by_ids`),
    elsewhere while this one reads them; `parallel_from` rows are made here first, so a
    small export starts none.
    """
    started = time.perf_counter()
    as_of = datetime.now(UTC)
    header = headers(request.language, request.form)
    source = await row_source(session, areas, settings, request)
    # CSV joins the answer cells kept under this signature (bot.services.export_ahead).
    kept_for = cells_signature(source, request.form) if fmt == "csv" else None
    if not isinstance(output, Path):
        writer = CsvWriter(output, header, delimiter=delimiter)
        batches = stored_rows(session, settings, request, as_of, kept_for)
        count = await _fill(batches, writer, cipher, source, request.form, progress, 0, 0)
        return ExportResult(count, time.perf_counter() - started, as_of)
    if workers is None:
        workers = settings.export_workers
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    with _file_writer(fmt, output, header, columns_of(request.form), delimiter) as sink:
        database = _sqlite_file(session)
        if workers > 0 and request.form is REGISTRATION and database is not None:
            count = await _fill_by_ids(
                _selected_ids(database, settings, request, as_of),
                sink,
                cipher,
                source,
                progress,
                workers,
                parallel_from,
                database,
                kept_for,
            )
        else:
            batches = stored_rows(session, settings, request, as_of, kept_for)
            count = await _fill(
                batches, sink, cipher, source, request.form, progress, workers, parallel_from
            )
    return ExportResult(count, time.perf_counter() - started, as_of, output)


def _sqlite_file(session: AsyncSession) -> Path | None:
    """The SQLite file the session reads (None: another database, or one in memory)."""
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


async def _selected_ids(
    database: Path, settings: Settings, request: ExportRequest, as_of: datetime
) -> AsyncIterator[Sequence[int]]:
    """The selected applications' ids in the export's order, `BATCH` at a time.

    Read in one statement (one consistent read) on a connection of its own, straight from
    the sqlite3 module: a driver running in a thread costs more than the ids themselves.
    """
    engine = create_engine("sqlite://", creator=lambda: read_only(database), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execution_options(yield_per=BATCH).execute(
                _key_statement(request, settings, as_of)
            )
            for batch in found.scalars().partitions(BATCH):
                yield batch
                # Let the rest of the process (the bot's other work) run now and then.
                await asyncio.sleep(0)
    finally:
        engine.dispose()


async def _fill_by_ids(
    keys: AsyncIterator[Sequence[int]],
    writer: BlockWriter,
    cipher: Cipher,
    source: RowSource,
    progress: Progress | None,
    workers: int,
    parallel_from: int,
    database: Path,
    kept_for: str | None,
) -> int:
    """Write an SQLite export whose worker processes read the rows themselves.

    This process reads only the ids (in one consistent read, which decides what the export
    holds); a small export, `parallel_from` rows or fewer, is read by id and made here.
    """
    waiting: list[int] = []
    pool: RowWorkers | None = None
    try:
        async for batch in keys:
            if pool is None:
                waiting += batch
                if len(waiting) <= parallel_from:
                    continue
                pool = RowWorkers(
                    workers, cipher, source, writer, database=database, progress=progress
                )
                batch, waiting = waiting, []
            for start in range(0, len(batch), BATCH):
                await pool.put_ids(batch[start : start + BATCH])
            if progress is not None:
                progress(writer.rows_written)
        if pool is None:
            # Too few for workers: read by id as a worker would, and made here.
            rows = _rows_of(database, waiting, kept_for)
            return await _fill(rows, writer, cipher, source, REGISTRATION, progress, 0, 0)
        await pool.finish()
    except BaseException:
        if pool is not None:
            pool.stop()
        raise
    return writer.rows_written


async def _rows_of(
    database: Path, ids: Sequence[int], kept_for: str | None
) -> AsyncIterator[list[StoredRow]]:
    """The stored rows of these applications, in their order, `BATCH` at a time."""
    reader = StoredReader(database, kept_for)
    try:
        for start in range(0, len(ids), BATCH):
            yield reader.rows(ids[start : start + BATCH])
    finally:
        reader.close()


async def _fill(
    batches: AsyncIterator[list[StoredRow]],
    writer: BlockWriter,
    cipher: Cipher,
    source: RowSource,
    form: Form,
    progress: Progress | None,
    workers: int,
    parallel_from: int,
) -> int:
    """Write every batch: here at first, in worker processes once the export is large."""
    # CSV lines are made as one text (answer cells made ahead are only joined); XLSX rows
    # as cells, which the writer numbers.
    csv_text, cells = None, None
    if writer.format.kind == "csv":
        csv_text = csv_text_maker(source, form, cipher, writer.format.delimiter)
    else:
        cells = cell_maker(source, form, cipher.bulk_decryptor())
    # Worker processes know only the registration form (see RowWorkers).
    parallel = workers > 0 and form is REGISTRATION
    pool: RowWorkers | None = None
    try:
        async for batch in batches:
            if pool is None and parallel and writer.rows_written + len(batch) > parallel_from:
                pool = RowWorkers(workers, cipher, source, writer, progress=progress)
            if pool is not None:
                await pool.put(batch)
            else:
                for start in range(0, len(batch), YIELD_EVERY):
                    part = batch[start : start + YIELD_EVERY]
                    if csv_text is not None:
                        writer.append(csv_text(part), len(part))
                    elif cells is not None:
                        writer.write_block(cells(part))
                    # Let the rest of the process (the bot's other work) run now and then.
                    await asyncio.sleep(0)
            if progress is not None:
                progress(writer.rows_written)
        if pool is not None:
            await pool.finish()
            if progress is not None:
                progress(writer.rows_written)
    except BaseException:
        if pool is not None:
            pool.stop()
        raise
    return writer.rows_written
