"""Fast exports: bound columns equal the form's plain definitions, and worker processes
write the very file one process writes, leave none when they die, and stop when cancelled."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.config import ConfigError
from bot.core.contribution import DEFAULT_RATES
from bot.core.demo import DemoWorkers
from bot.core.form import FormContext
from bot.core.questions import REGISTRATION
from bot.db.models import Application
from bot.i18n import translator
from bot.runtime import Runtime
from bot.security import Cipher, generate_key
from bot.services.demo import add_demo_data
from bot.services.export import ExportRequest, ExportResult, run_export
from bot.services.export_rows import RowSource, cell_maker

ODD_NAMES = ("i made sukadana", "NI LUH SARI", "Ni Ketut Ayu", "ni kadek ÇINTA", "42", "I Wayan")
ODD_NIKS = (
    "5102051708850000",  # serial 0000
    "9902051708850003",  # unknown province
    "5102053208850003",  # day 32
    "5102057108850003",  # a woman, day 31
    "5102050113850003",  # month 13
    "5102 0517 0885 0003",  # typed with spaces
    "510205170885",  # too short
    "5102052902010003",  # 29-02 in neither 2001 nor 1901: no birth date
    "5102056902000003",  # a woman born 29-02-2000
    "",
)


def odd(rng: random.Random, answers: dict[str, Any], villages: list[str]) -> dict[str, Any]:
    """Answers bent the ways stored data can be: missing, cased, mismatched, unexpected."""
    changed = dict(answers)
    for key in list(changed):
        if rng.random() < 0.08:
            del changed[key]
    if rng.random() < 0.3:
        changed["full_name"] = rng.choice(ODD_NAMES)
    if rng.random() < 0.2:
        changed["heir_name"] = rng.choice(ODD_NAMES)
        changed["heir_relationship"] = rng.choice(("anak", "pasangan", "lainnya", "tetangga"))
    if rng.random() < 0.3:
        changed["nik"] = rng.choice(ODD_NIKS)
    if rng.random() < 0.2:
        changed["birth_date"] = (
            date(1990, 1, 1) + timedelta(days=rng.randint(0, 9000))
        ).isoformat()
    if rng.random() < 0.1:
        changed["gender"] = rng.choice(("L", "P", None))
    if rng.random() < 0.1:
        changed["village"] = rng.choice((*villages, "51.99.99.9999", None))
    if rng.random() < 0.1:
        changed["desa_adat"] = rng.choice(({"id": 3, "name": "Desa Adat Kota"}, {"id": 4}, "x"))
    if rng.random() < 0.2:
        changed["income"] = rng.choice((None, 0, 1_234_567, 25_000_000, 2_000_000.0))
    if rng.random() < 0.2:
        changed["programs"] = rng.choice((None, [], ["jkk", "jkm", "jht"], ["jkk", "jkm"]))
    if rng.random() < 0.2:
        changed["period"] = rng.choice((None, 1, 3, 6, 12, "3"))
    if rng.random() < 0.1:
        changed["phone"] = rng.choice(("+6281234567890", "", None, 81234))
    return changed


@pytest.mark.parametrize("mask_nik", [False, True])
async def test_every_bound_column_makes_the_cell_its_definition_makes(
    runtime: Runtime, mask_nik: bool
) -> None:
    """For random applications, each column's fast path gives the plain definition's cell."""
    rng = random.Random(8)
    today = date.today()
    areas = runtime.areas
    villages = sorted(areas.village_by_code)
    people = DemoWorkers(rng, list(areas.village_by_code.values()), today)
    t = translator("id")

    def context() -> FormContext:
        return FormContext(
            answers={},
            t=t,
            areas=areas,
            rates=DEFAULT_RATES,
            today=today,
            own_screen=not mask_nik,
        )

    columns = REGISTRATION.columns()
    # One context for the whole export, as an export binds them: its caches fill up.
    bound = context()
    getters = [column.getter(bound) for column in columns]
    for _ in range(600):
        answers = odd(rng, people.answers(), villages)
        for column, get in zip(columns, getters, strict=True):
            # The plain definition, with a context of its own for every row.
            plain = context()
            plain.answers = answers
            expected = column.value(answers, plain)
            found = get(answers)
            assert (type(found), found) == (type(expected), expected), (column.name, answers)
    assert all(column.bind is not None for column in columns)


async def export_from_first_row(
    runtime: Runtime, output: Path, fmt: str, **options: Any
) -> ExportResult:
    """Every application exported, in worker processes (when given) from the first row."""
    async with runtime.sessions() as session:
        return await run_export(
            session,
            runtime.cipher,
            runtime.areas,
            runtime.settings,
            ExportRequest(),
            fmt,
            output,
            parallel_from=0,
            **options,
        )


async def exported_bytes(runtime: Runtime, output: Path, fmt: str, workers: int) -> bytes:
    """The file an export writes (for XLSX its sheet), with `workers` worker processes."""
    result = await export_from_first_row(runtime, output, fmt, workers=workers)
    assert result.rows == 2600
    if fmt == "csv":
        return await asyncio.to_thread(output.read_bytes)
    with zipfile.ZipFile(output) as archive:
        return archive.read("xl/worksheets/sheet1.xml")


async def test_worker_processes_write_the_same_file_as_one_process(
    runtime: Runtime, tmp_path: Path
) -> None:
    """More rows than one batch, in CSV and XLSX: the same bytes, rows in the same order."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=2600, seed=3)
    for fmt in ("csv", "xlsx"):
        alone = await exported_bytes(runtime, tmp_path / f"alone.{fmt}", fmt, workers=0)
        shared = await exported_bytes(runtime, tmp_path / f"shared.{fmt}", fmt, workers=2)
        assert shared == alone, fmt
    assert await no_workers_left()


async def no_workers_left() -> bool:
    """Whether the worker processes end within a while (the event loop running meanwhile)."""
    for _ in range(300):
        if not multiprocessing.active_children():
            return True
        await asyncio.sleep(0.1)
    return False


async def run_in_workers(runtime: Runtime, output: Path, **options: Any) -> None:
    """An XLSX export made in two worker processes from the first row."""
    await export_from_first_row(runtime, output, "xlsx", workers=2, **options)


async def test_a_worker_that_dies_fails_the_export_and_leaves_no_file(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A worker killed while the rows are in flight: an error, no file, no process left."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=50, seed=4)

    def kill_workers(_count: int) -> None:
        # Called once the rows are sent, long before a new interpreter has even started.
        for child in multiprocessing.active_children():
            os.kill(child.pid or 0, signal.SIGKILL)

    output = tmp_path / "out" / "export.xlsx"
    with pytest.raises(Exception, match="terminated abruptly"):
        await run_in_workers(runtime, output, progress=kill_workers)
    assert list(output.parent.iterdir()) == []
    assert await no_workers_left()


async def test_workers_with_the_wrong_key_fail_the_export(runtime: Runtime, tmp_path: Path) -> None:
    """Data a worker cannot decrypt stop the export as they do in one process."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=50, seed=5)
    output = tmp_path / "out" / "export.csv"
    async with runtime.sessions() as session:
        with pytest.raises(ConfigError, match="DATA_KEY"):
            await run_export(
                session,
                Cipher(generate_key().encode()),
                runtime.areas,
                runtime.settings,
                ExportRequest(),
                "csv",
                output,
                workers=1,
                parallel_from=0,
            )
    assert list(output.parent.iterdir()) == []


async def test_a_cancelled_export_stops_its_workers_and_leaves_no_file(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The bot stopping in the middle of a background export: no file, no worker left."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=50, seed=6)
        assert await session.scalar(select(Application.id).limit(1)) is not None
    started = asyncio.Event()
    output = tmp_path / "out" / "export.xlsx"
    task = asyncio.create_task(
        run_in_workers(runtime, output, progress=lambda _count: started.set())
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(output.parent.iterdir()) == []
    assert await no_workers_left()


@pytest.mark.parametrize("zone", ["Asia/Makassar", "America/St_Johns", "Australia/Lord_Howe"])
async def test_times_are_the_branch_wall_clock_across_changes_of_offset(
    runtime: Runtime, zone: str
) -> None:
    """Every minute around a change of offset (half-hour ones included) reads as astimezone,
    to the second, whether the driver gives a datetime (PostgreSQL) or SQLite's text."""
    tz = ZoneInfo(zone)
    source = RowSource("id", True, tz, DEFAULT_RATES, runtime.areas, {}, date.today())
    rows = cell_maker(source, REGISTRATION, runtime.cipher.bulk_decryptor())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [
        start + timedelta(minutes=7 * n, seconds=n % 60, microseconds=n * 7919 % 1_000_000)
        for n in range(80_000)
    ]
    # As SQLite keeps a UtcDateTime: the UTC wall clock, microseconds always written.
    texts = [m.replace(tzinfo=None).isoformat(" ", "microseconds") for m in moments]
    stored = [
        ("BC-1", "submitted", m, None, None, None, t, None, None, m if n % 2 else t, n)
        for n, (m, t) in enumerate(zip(moments, texts, strict=True))
    ]
    # And as CSV's text, read the same way.
    as_text = cell_maker(source, REGISTRATION, runtime.cipher.bulk_decryptor(), times_as_text=True)
    for moment, cells, text in zip(moments, rows(stored), as_text(stored), strict=True):
        expected = moment.astimezone(tz).replace(tzinfo=None, microsecond=0)
        assert cells[2] == cells[-4] == cells[-1] == expected, moment
        assert text[2] == text[-4] == text[-1] == str(expected), moment
