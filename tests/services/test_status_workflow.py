"""Status changes on a real database: history, audit, the worker's notice, imports, reminders."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select, update

from bot.core.states import ApplicationStatus
from bot.core.tables import TableError
from bot.core.workflow import Refused
from bot.db.models import (
    Application,
    AuditEntry,
    OutboxMessage,
    PaymentReminder,
    StatusChange,
    User,
    utcnow,
)
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.export import ExportRequest, run_export
from bot.services.reminders import remind_payments
from bot.services.review import claim_next
from bot.services.status_import import import_status
from bot.services.workflow import Actor, change_status, send_notices
from tests.core.test_tables import bad_files

S = ApplicationStatus
TODAY = date(2026, 12, 4)
DAJAN_PEKEN = "51.02.05.2006"
# Rp1.500.000 a month, JKK + JKM: Rp21.800 a month, Rp65.400 every 3 months.
ANSWERS = {"income": 1_500_000, "programs": ["jkk", "jkm"], "period": 3}


async def sent_application(
    runtime: Runtime,
    telegram_id: int,
    reference: str,
    *,
    status: str = "submitted",
    language: str = "id",
    minutes_ago: int = 60,
) -> int:
    """A worker with one sent application, as the form leaves it."""
    async with runtime.sessions() as session, session.begin():
        user = User(telegram_id=telegram_id, language=language)
        session.add(user)
        await session.flush()
        app = Application(
            user_id=user.id,
            status=status,
            reference=reference,
            answers_enc=runtime.cipher.encrypt(dict(ANSWERS)),
            village_code=DAJAN_PEKEN,
            language=language,
            submitted_at=utcnow() - timedelta(minutes=minutes_ago),
        )
        session.add(app)
        await session.flush()
        return app.id


async def move(runtime: Runtime, app_id: int, target: S, **values: Any) -> None:
    """A staff change made from the command line, its notice written with it."""
    async with runtime.sessions() as session, session.begin():
        app = await session.get(Application, app_id)
        assert app is not None
        applied = await change_status(
            session,
            runtime.settings,
            runtime.cipher,
            app,
            target,
            actor=Actor(label="cli"),
            today=TODAY,
            **values,
        )
        if applied.notice is not None:
            await send_notices(session, runtime.cipher, [applied.notice])


async def notices_to(runtime: Runtime, chat_id: int) -> list[str]:
    """The texts waiting in the outbox for one chat, in order."""
    async with runtime.sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id)
                .order_by(OutboxMessage.id)
            )
        ).all()
    return [str(runtime.cipher.decrypt(row.payload)["reply"]["text"]) for row in rows]


async def stored(runtime: Runtime, app_id: int) -> tuple[Application, list[StatusChange]]:
    async with runtime.sessions() as session:
        app = await session.get(Application, app_id)
        history = (
            await session.scalars(
                select(StatusChange)
                .where(StatusChange.application_id == app_id)
                .order_by(StatusChange.id)
            )
        ).all()
    assert app is not None
    return app, list(history)


async def count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_verified_then_registered_is_kept_with_who_when_why_and_the_worker_is_told(
    runtime: Runtime,
) -> None:
    """Each step is a history row and an audit row; the worker gets one notice per step."""
    app_id = await sent_application(runtime, 9001, "BC-AAAAA1")
    await move(runtime, app_id, S.VERIFIED)
    await move(runtime, app_id, S.REGISTERED, kpj="1234 5678 901", covered_from=date(2026, 12, 1))
    app, history = await stored(runtime, app_id)
    assert app.status == "registered" and app.kpj_number == "12345678901"
    assert app.covered_from == date(2026, 12, 1) and app.status_changed_at is not None
    assert [(h.from_status, h.to_status, h.actor_label) for h in history] == [
        ("submitted", "verified", "cli"),
        ("verified", "registered", "cli"),
    ]
    assert history[1].kpj_number == "12345678901"
    verified, registered = await notices_to(runtime, 9001)
    assert "BC-AAAAA1" in verified and "diverifikasi" in verified
    for expected in ("12345678901", "1 Desember 2026", "Rp65.400", "Tiap 3 bulan", "JMO"):
        assert expected in registered
    assert await count(runtime, AuditEntry, AuditEntry.action == "status_change") == 2


async def test_a_refused_change_changes_nothing_and_tells_nobody(runtime: Runtime) -> None:
    app_id = await sent_application(runtime, 9002, "BC-AAAAA2", status="registered")
    with pytest.raises(Refused):
        await move(runtime, app_id, S.VERIFIED)
    with pytest.raises(Refused):
        await move(runtime, app_id, S.CANCELLED)
    app, history = await stored(runtime, app_id)
    assert app.status == "registered" and history == []
    assert await notices_to(runtime, 9002) == []
    assert await count(runtime, AuditEntry) == 0


async def test_a_rejection_reaches_the_worker_in_their_language_with_what_to_do(
    runtime: Runtime,
) -> None:
    app_id = await sent_application(runtime, 9003, "BC-AAAAA3", language="en")
    await move(runtime, app_id, S.REJECTED, reason="nik")
    app, history = await stored(runtime, app_id)
    # Staff read the reason in the branch's language; the worker in theirs.
    assert app.status_note == history[0].note and "Dukcapil" in (app.status_note or "")
    (notice,) = await notices_to(runtime, 9003)
    assert "does not match the population register" in notice
    assert "/register" in notice and "175" in notice


# ---------------------------------------------------------------- import-status


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows(rows)
    return path


async def test_an_import_applies_valid_rows_reports_the_rest_and_twice_changes_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    ids = [await sent_application(runtime, 9100 + n, f"BC-IMP00{n}") for n in range(5)]
    await move(runtime, ids[4], S.CANCELLED)
    sheet = write_csv(
        tmp_path / "status.csv",
        [
            ["Nomor referensi", "Nama", "Status", "Nomor KPJ", "Catatan status"],
            ["BC-IMP000", "I Made", "diverifikasi", "", ""],
            ["bc-imp001", "Ni Luh", "terdaftar", "12345678901", ""],
            ["BC-IMP002", "Wayan", "ditolak", "", "Alamat di luar wilayah"],
            ["BC-IMP003", "Ketut", "terdaftar", "123", ""],
            ["BC-IMP004", "Komang", "verified", "", ""],
            ["BC-NOPE00", "Putu", "diverifikasi", "", ""],
            ["BC-IMP000", "I Made", "ditolak", "", "lagi"],
            ["", "", "", "", ""],
            ["BC-NOPE01", "Gede", "selesai", "", ""],
        ],
    )
    async with runtime.sessions() as session, session.begin():
        report = await import_status(session, runtime.settings, runtime.cipher, sheet, today=TODAY)
    assert [(line, ref) for line, ref, _ in report.applied] == [
        (2, "BC-IMP000"),
        (3, "BC-IMP001"),
        (4, "BC-IMP002"),
    ]
    why = {line: reason for line, _ref, reason in report.rejected}
    assert set(why) == {5, 6, 7, 8, 10}
    assert "11 angka" in why[5]
    assert "dibatalkan" in why[6] and "diverifikasi" in why[6]
    assert "tidak ada pendaftaran" in why[7]
    assert "baris sebelumnya" in why[8]
    assert "selesai" in why[10]
    app, history = await stored(runtime, ids[1])
    # Registered straight from "submitted": both steps kept, cover from the import day.
    assert [h.to_status for h in history] == ["verified", "registered"]
    assert app.kpj_number == "12345678901" and app.covered_from == TODAY
    assert len(await notices_to(runtime, 9101)) == 1

    async with runtime.sessions() as session, session.begin():
        again = await import_status(session, runtime.settings, runtime.cipher, sheet, today=TODAY)
    assert again.applied == [] and len(again.unchanged) == 3
    assert await count(runtime, StatusChange) == 1 + 1 + 2 + 1
    for chat in (9100, 9101, 9102):
        assert len(await notices_to(runtime, chat)) == 1
    imports = await count(runtime, AuditEntry, AuditEntry.action == "status_import")
    assert imports == 2


@pytest.mark.parametrize(
    ("name", "content", "key"),
    [
        (
            "ansi.csv",
            "reference,status,desa adat\nBC-BAD001,ditolak,Pecatu Désa\n".encode("cp1252"),
            "encoding",
        ),
        ("semi.csv", b"reference;status;kpj\nBC-BAD001;diverifikasi;\n", "semicolon"),
        ("broken.csv", b'reference,status\nBC-BAD001,"diverifikasi\n', "quote"),
        ("ragged.csv", b"reference,status\nBC-BAD001,diverifikasi,extra\n", "cells"),
        ("nocols.csv", b"nama,desa\nWayan,Dajan Peken\n", "columns"),
        ("fake.xlsx", b"this is not a workbook", "xlsx"),
        ("notes.txt", b"reference,status\n", "format"),
    ],
)
async def test_a_file_that_cannot_be_read_whole_changes_nothing(
    runtime: Runtime, tmp_path: Path, name: str, content: bytes, key: str
) -> None:
    app_id = await sent_application(runtime, 9200, "BC-BAD001")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError) as refused:
        async with runtime.sessions() as session, session.begin():
            await import_status(session, runtime.settings, runtime.cipher, path, today=TODAY)
    assert refused.value.key == f"import.error.{key}"
    app, history = await stored(runtime, app_id)
    assert app.status == "submitted" and history == []
    assert await count(runtime, AuditEntry) == 0


BAD_FILES = bad_files(["reference", "status"], ["BC-BAD001", "diverifikasi"])


@pytest.mark.parametrize(
    ("name", "content", "key", "row"), BAD_FILES, ids=[n for n, *_ in BAD_FILES]
)
async def test_every_unreadable_file_is_refused_with_its_row_and_changes_nothing(
    runtime: Runtime, tmp_path: Path, name: str, content: bytes, key: str, row: int | None
) -> None:
    """The reader all imports share: a NUL, a 128 KB cell, an unclosed quote (which would
    merge rows), UTF-16 or Latin-1, semicolons: one reason, the row, nothing applied."""
    app_id = await sent_application(runtime, 9210, "BC-BAD001")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError) as refused:
        async with runtime.sessions() as session, session.begin():
            await import_status(session, runtime.settings, runtime.cipher, path, today=TODAY)
    assert (refused.value.key, refused.value.params.get("line")) == (f"import.error.{key}", row)
    app, history = await stored(runtime, app_id)
    assert app.status == "submitted" and history == []


async def test_a_file_over_import_max_mb_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "status.csv"
    path.write_text("reference,status\n" + "BC-NONE01,diverifikasi\n" * 50_000, encoding="utf-8")
    settings = runtime.settings.model_copy(update={"import_max_mb": 1})
    with pytest.raises(TableError) as refused:
        async with runtime.sessions() as session, session.begin():
            await import_status(session, settings, runtime.cipher, path, today=TODAY)
    assert refused.value.key == "import.error.too_large"


async def test_an_export_filled_in_by_staff_imports_back(runtime: Runtime, tmp_path: Path) -> None:
    """Round trip: the staff's XLSX export, its Status, Nomor KPJ and Catatan status columns
    filled in (a cover start column added), comes back through import-status as it is."""
    first = await sent_application(runtime, 9300, "BC-RND001", minutes_ago=90)
    second = await sent_application(runtime, 9301, "BC-RND002")
    exported = tmp_path / "export.xlsx"
    async with runtime.sessions() as session:
        result = await run_export(
            session,
            runtime.cipher,
            runtime.areas,
            runtime.settings,
            ExportRequest(language="id"),
            "xlsx",
            exported,
        )
    assert result.rows == 2
    source = load_workbook(exported).worksheets[0]
    header = [c.value for c in source[1]]
    t = translator("id")
    at = {name: header.index(t(f"export.column.{name}")) for name in _FILLED}
    filled = Workbook()
    sheet = filled.active
    assert sheet is not None
    sheet.append([*header, "Mulai perlindungan"])
    for row in source.iter_rows(min_row=2, values_only=True):
        values = list(row)
        if values[at["reference"]] == "BC-RND001":
            values[at["status"]] = "terdaftar"
            values[at["kpj_number"]] = "12345678901"
            sheet.append([*values, datetime(2027, 1, 1)])
        else:
            values[at["status"]] = "Ditolak"
            values[at["status_note"]] = "Sudah terdaftar di kantor lain"
            sheet.append([*values, None])
    back = tmp_path / "back.xlsx"
    filled.save(back)
    for round_number in (1, 2):
        async with runtime.sessions() as session, session.begin():
            report = await import_status(
                session, runtime.settings, runtime.cipher, back, today=TODAY
            )
        assert report.rejected == []
        assert len(report.applied) == (2 if round_number == 1 else 0)
    registered, _ = await stored(runtime, first)
    rejected, _ = await stored(runtime, second)
    assert registered.kpj_number == "12345678901" and registered.covered_from == date(2027, 1, 1)
    assert rejected.status == "rejected"
    assert rejected.status_note == "Sudah terdaftar di kantor lain"


# The export's columns staff fill in for import-status (besides the reference).
_FILLED = ("reference", "status", "kpj_number", "status_note")


# ---------------------------------------------------------------- payment reminders


async def test_reminders_come_a_few_days_before_each_payment_once(runtime: Runtime) -> None:
    app_id = await sent_application(runtime, 9400, "BC-REM001")
    await move(runtime, app_id, S.VERIFIED)
    await move(runtime, app_id, S.REGISTERED, kpj="12345678901", covered_from=date(2026, 12, 1))
    before = len(await notices_to(runtime, 9400))

    async def run_on(day: date) -> int:
        async with runtime.sessions() as session, session.begin():
            return await remind_payments(session, runtime.settings, runtime.cipher, day)

    # Every 3 months: the first payment after registration falls due on 1 March 2027.
    assert await run_on(date(2027, 2, 25)) == 0
    assert await run_on(date(2027, 2, 26)) == 1
    # The job again, the next day, after a restart: nothing new.
    assert await run_on(date(2027, 2, 26)) == 0
    assert await run_on(date(2027, 2, 27)) == 0
    assert await run_on(date(2027, 3, 1)) == 0
    assert await run_on(date(2027, 5, 29)) == 1
    reminders = (await notices_to(runtime, 9400))[before:]
    assert len(reminders) == 2
    assert "Jangan lupa" in reminders[0] and "1 Maret 2027" in reminders[0]
    assert "Rp65.400" in reminders[0] and "belum" not in reminders[0].lower()
    assert "1 Juni 2027" in reminders[1]
    assert await count(runtime, PaymentReminder) == 2

    # /berhenti stops reminders too.
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.telegram_id == 9400).values(opted_out_at=utcnow())
        )
    assert await run_on(date(2027, 8, 29)) == 0


# ---------------------------------------------------------------- /tinjau claims


async def test_review_claims_keep_cards_apart_until_they_run_out(runtime: Runtime) -> None:
    """Oldest first; a card held by one reviewer is not offered to another until its claim
    runs out; the village filter and skipped cards are respected."""
    older = await sent_application(runtime, 9501, "BC-CLM001", minutes_ago=120)
    newer = await sent_application(runtime, 9502, "BC-CLM002", minutes_ago=60)
    async with runtime.sessions() as session, session.begin():
        reviewers = [User(telegram_id=9600 + n) for n in range(2)]
        session.add_all(reviewers)
        await session.flush()
        one, two = (r.id for r in reviewers)
    now = utcnow()

    async def next_for(user_id: int, at: datetime, **options: Any) -> int | None:
        async with runtime.sessions() as session, session.begin():
            app = await claim_next(session, user_id, now=at, minutes=15, **options)
            return app.id if app is not None else None

    assert await next_for(one, now) == older
    assert await next_for(two, now) == newer
    assert await next_for(two, now + timedelta(minutes=1), skipped=[newer]) is None
    # The first reviewer's card again for them; for the other only once the claim ran out.
    assert await next_for(one, now + timedelta(minutes=5)) == older
    assert await next_for(two, now + timedelta(minutes=21), skipped=[newer]) == older
    assert await next_for(one, now, village="51.71.01.1001") is None
