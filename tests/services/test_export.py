"""Exports for staff and leaders: filters, "new since my last export", masking, inert cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.config import ConfigError
from bot.core.nik import parse_nik
from bot.core.phone import normalise_phone
from bot.core.states import ApplicationStatus
from bot.db.models import Application, AuditEntry, DesaAdat, User
from bot.runtime import Runtime
from bot.services.demo import add_demo_data
from bot.services.export import (
    COLUMNS,
    ExportFilter,
    ExportRequest,
    export_cells,
    headers,
    last_export,
    record_export,
    run_export,
)
from tests.services.test_conversation_property import COMPLETE

DAJAN_PEKEN = "51.02.05.2006"  # Tabanan
SIDAKARYA = "51.71.01.2007"  # Denpasar Selatan
SANUR = "51.71.01.1006"  # kelurahan Sanur, Denpasar Selatan
INJECTIONS = ('=HYPERLINK("http://x")', "-SUM(A1)", "+1@x", "@cmd")
FREE_TEXT = ("full_name", "banjar", "occupation_other", "heir_name", "email")


async def add_application(
    runtime: Runtime,
    reference: str,
    *,
    village: str = DAJAN_PEKEN,
    status: ApplicationStatus = ApplicationStatus.SUBMITTED,
    sent: datetime = datetime(2026, 11, 10, 2, 0, tzinfo=UTC),
    desa_adat_id: int | None = None,
    **answers: Any,
) -> None:
    """One application sent by a worker of its own (answers as the form stores them)."""
    stored = dict(COMPLETE, village=village, district=village[:8], regency=village[:5])
    stored.update(answers)
    async with runtime.sessions() as session, session.begin():
        user = User(language="id")
        session.add(user)
        await session.flush()
        session.add(
            Application(
                user_id=user.id,
                status=status,
                reference=reference,
                answers_enc=runtime.cipher.encrypt(stored),
                village_code=village,
                desa_adat_id=desa_adat_id,
                submitted_at=sent,
                kpj_number="12345678901" if status is ApplicationStatus.REGISTERED else None,
            )
        )


async def add_typed_everywhere(
    runtime: Runtime,
    reference: str,
    value: str,
    status: ApplicationStatus = ApplicationStatus.SUBMITTED,
) -> None:
    """An application with `value` in every free-text answer and as its desa adat's name
    (imported under that name)."""
    async with runtime.sessions() as session, session.begin():
        adat = DesaAdat(name=value, village_code=DAJAN_PEKEN)
        session.add(adat)
        await session.flush()
        adat_id = adat.id
    await add_application(
        runtime,
        reference,
        status=status,
        desa_adat_id=adat_id,
        occupation="lainnya",
        full_name=value,
        banjar=value,
        occupation_other=value,
        heir_name=value,
        email=value,
        desa_adat={"id": adat_id, "name": value},
    )


async def exported(runtime: Runtime, **filters: Any) -> list[dict[str, Any]]:
    """The rows an export with these filters holds, by column name."""
    request = ExportRequest(ExportFilter(**filters))
    async with runtime.sessions() as session:
        return [
            dict(zip(COLUMNS, cells, strict=True))
            async for cells in export_cells(
                session, runtime.cipher, runtime.areas, runtime.settings, request
            )
        ]


def references(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [row["reference"] for row in rows]


async def test_every_filter_selects_only_its_applications(runtime: Runtime) -> None:
    """Region, kecamatan, village, desa adat, status and the days sent narrow the export."""
    async with runtime.sessions() as session, session.begin():
        adat = DesaAdat(name="Desa Adat Sidakarya", village_code=SIDAKARYA)
        session.add(adat)
        await session.flush()
        adat_id = adat.id
    day = timedelta(days=1)
    first = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    await add_application(runtime, "BC-TAB001", sent=first)
    await add_application(
        runtime, "BC-SID001", village=SIDAKARYA, sent=first + day, desa_adat_id=adat_id
    )
    await add_application(
        runtime,
        "BC-SAN001",
        village=SANUR,
        sent=first + 2 * day,
        status=ApplicationStatus.REGISTERED,
    )
    # A draft is never exported.
    async with runtime.sessions() as session, session.begin():
        user = User(language="id")
        session.add(user)
        await session.flush()
        session.add(Application(user_id=user.id, status="draft", village_code=DAJAN_PEKEN))

    assert references(await exported(runtime)) == ["BC-TAB001", "BC-SID001", "BC-SAN001"]
    assert references(await exported(runtime, regency="51.71")) == ["BC-SID001", "BC-SAN001"]
    assert references(await exported(runtime, district="51.02.05")) == ["BC-TAB001"]
    assert references(await exported(runtime, village=SANUR)) == ["BC-SAN001"]
    assert references(await exported(runtime, desa_adat_id=adat_id)) == ["BC-SID001"]
    registered = await exported(runtime, status=ApplicationStatus.REGISTERED)
    assert references(registered) == ["BC-SAN001"]
    assert registered[0]["status"] == "terdaftar"
    assert registered[0]["kpj_number"] == "12345678901"
    # Days are the branch's (WITA): 1 Nov 01:00 UTC is 1 Nov 09:00 WITA.
    since = await exported(runtime, since=date(2026, 11, 2))
    assert references(since) == ["BC-SID001", "BC-SAN001"]
    assert references(await exported(runtime, until=date(2026, 11, 2))) == [
        "BC-TAB001",
        "BC-SID001",
    ]
    assert references(
        await exported(runtime, since=date(2026, 11, 2), until=date(2026, 11, 2))
    ) == ["BC-SID001"]


async def test_new_since_my_last_export_is_remembered_per_operator(runtime: Runtime) -> None:
    """Wayan's second export holds only what came after his first; Komang's first holds all."""
    await add_application(runtime, "BC-OLD001", sent=datetime.now(UTC) - timedelta(days=2))
    wayan = "cli:wayan"
    async with runtime.sessions() as session:
        assert await last_export(session, actor_label=wayan) is None
    first = await export_as(runtime, wayan, new=True)
    assert first == ["BC-OLD001"]
    await add_application(runtime, "BC-NEW001", sent=datetime.now(UTC))
    assert await export_as(runtime, wayan, new=True) == ["BC-NEW001"]
    assert await export_as(runtime, wayan, new=True) == []
    assert await export_as(runtime, "cli:komang", new=True) == ["BC-OLD001", "BC-NEW001"]
    async with runtime.sessions() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
        )
    assert [e.actor_label for e in entries] == [wayan, wayan, wayan, "cli:komang"]
    assert '"rows": 1' in entries[0].details and "filter_village" not in entries[0].details


async def export_as(runtime: Runtime, actor_label: str, *, new: bool) -> list[str]:
    """An export as the command line runs it: read, write, record; the references written."""
    async with runtime.sessions() as session:
        since = await last_export(session, actor_label=actor_label) if new else None
    request = ExportRequest(ExportFilter(sent_after=since))
    handle = io.StringIO()
    async with runtime.sessions() as session:
        result = await run_export(
            session, runtime.cipher, runtime.areas, runtime.settings, request, "csv", handle
        )
    async with runtime.sessions() as session, session.begin():
        await record_export(session, result, request, "csv", actor_label=actor_label)
    return [row[0] for row in list(csv.reader(io.StringIO(handle.getvalue())))[1:]]


async def test_a_leaders_export_shows_the_nik_masked(runtime: Runtime) -> None:
    """Staff key the full NIK into the national system; a leader sees only its ends."""
    await add_application(runtime, "BC-TAB001")
    request = ExportRequest(ExportFilter(village=DAJAN_PEKEN), mask_nik=True)
    async with runtime.sessions() as session:
        rows = [
            dict(zip(COLUMNS, cells, strict=True))
            async for cells in export_cells(
                session, runtime.cipher, runtime.areas, runtime.settings, request
            )
        ]
    assert rows[0]["nik"] == "5102********0003"
    assert (await exported(runtime))[0]["nik"] == "5102051708850003"


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_formulas_in_every_free_text_and_desa_adat_name_come_out_inert(
    runtime: Runtime, tmp_path: Path, fmt: str
) -> None:
    """Whatever a worker typed or an import brought, no cell of the file is a formula."""
    for number, value in enumerate(INJECTIONS):
        await add_typed_everywhere(runtime, f"BC-INJ00{number}", value)
    output = tmp_path / f"export.{fmt}"
    async with runtime.sessions() as session:
        result = await run_export(
            session, runtime.cipher, runtime.areas, runtime.settings, ExportRequest(), fmt, output
        )
    assert result.rows == len(INJECTIONS)
    columns = [*FREE_TEXT, "desa_adat"]
    if fmt == "xlsx":
        sheet = load_workbook(output).active
        assert sheet is not None
        header = [c.value for c in sheet[1]]
        assert header == headers("id")
        for row, value in zip(sheet.iter_rows(min_row=2), INJECTIONS, strict=True):
            cells = dict(zip(COLUMNS, row, strict=True))
            for column in columns:
                # Names are shown in title case when typed all in capitals.
                assert cells[column].value.casefold() == value.casefold(), column
                assert cells[column].data_type == "s" and cells[column].quotePrefix, column
        return
    header, *rows = list(csv.reader(io.StringIO(output.read_text(encoding="utf-8-sig"))))
    assert header == headers("id")
    for row, value in zip(rows, INJECTIONS, strict=True):
        cells = dict(zip(COLUMNS, row, strict=True))
        for column in columns:
            assert cells[column].casefold() == "'" + value.casefold(), column
        for text in row:
            assert not text.startswith(("=", "+", "-", "@", "\t", "\r")), text


async def test_an_export_in_english_has_english_headers_and_statuses(
    runtime: Runtime, tmp_path: Path
) -> None:
    """An operator whose language is English reads the headers in English; data stay as typed."""
    await add_application(runtime, "BC-TAB001", status=ApplicationStatus.VERIFIED)
    output = tmp_path / "en.xlsx"
    async with runtime.sessions() as session:
        await run_export(
            session,
            runtime.cipher,
            runtime.areas,
            runtime.settings,
            ExportRequest(language="en"),
            "xlsx",
            output,
        )
    sheet = load_workbook(output).active
    assert sheet is not None
    header, row = list(sheet.iter_rows(values_only=True))
    record = dict(zip(header, row, strict=True))
    assert record["Status"] == "verified"
    assert record["Date of birth"] == datetime(1985, 8, 17)
    assert record["Monthly income (Rp)"] == 1_500_000
    assert record["Village (desa/kelurahan)"] == "Dajan Peken"


async def test_a_failing_export_leaves_no_file(runtime: Runtime, tmp_path: Path) -> None:
    """Data that cannot be decrypted stop the export, and no file looks complete."""
    await add_application(runtime, "BC-TAB001")
    async with runtime.sessions() as session, session.begin():
        user = User(language="id")
        session.add(user)
        await session.flush()
        session.add(
            Application(
                user_id=user.id,
                status="submitted",
                reference="BC-BAD001",
                answers_enc="not a token",
                submitted_at=datetime(2026, 11, 11, tzinfo=UTC),
            )
        )
    output = tmp_path / "out" / "export.xlsx"
    async with runtime.sessions() as session:
        with pytest.raises(ConfigError, match="DATA_KEY"):
            await run_export(
                session,
                runtime.cipher,
                runtime.areas,
                runtime.settings,
                ExportRequest(),
                "xlsx",
                output,
            )
    assert list(output.parent.iterdir()) == []


async def test_demo_data_invents_valid_people_spread_over_the_branch(runtime: Runtime) -> None:
    """Valid NIKs and phones, many villages, a mix of statuses, drafts never exported."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(
            session, runtime.cipher, runtime.areas, applications=300, drafts=20, seed=7
        )
    rows = await exported(runtime)
    assert len(rows) == 300
    provinces = runtime.areas.province_codes
    for row in rows:
        parse_nik(row["nik"], known_provinces=provinces, today=date.today())
        assert normalise_phone(row["phone"], mobile_only=True) == row["phone"]
        assert row["village_name"] and row["regency_name"]
        assert row["consent_version"]
    assert len({row["village_code"] for row in rows}) > 100
    assert len({row["nik"] for row in rows}) == 300
    assert {row["status"] for row in rows} >= {"menunggu verifikasi", "terdaftar", "ditolak"}
    async with runtime.sessions() as session:
        drafts = await session.scalars(select(Application).where(Application.status == "draft"))
        assert len(drafts.all()) == 20
