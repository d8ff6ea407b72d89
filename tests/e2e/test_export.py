"""/ekspor through the fake Telegram: staff pick filters with buttons and get the file."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.core.callbacks import ExportChoice, encode
from bot.core.states import ApplicationStatus
from bot.db.models import AuditEntry, ExportJob
from bot.fakebot import BotMessage
from bot.services import export, export_jobs
from bot.services.demo import add_demo_data
from bot.services.export import headers
from bot.services.roles import RoleName
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_leaders import leader
from tests.services.test_delivery import until
from tests.services.test_export import DAJAN_PEKEN, SIDAKARYA, add_application

NIK = "5102051708850003"


def sheet_rows(message: BotMessage) -> list[dict[str, Any]]:
    """The rows of an XLSX the bot sent, by Indonesian header."""
    assert message.file_bytes is not None and message.file_name is not None
    sheet = load_workbook(io.BytesIO(message.file_bytes)).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert list(header) == headers("id")
    return [dict(zip(header, row, strict=True)) for row in rows]


def documents(messages: list[BotMessage]) -> list[BotMessage]:
    return [m for m in messages if m.file_name]


async def test_staff_narrow_the_export_with_buttons_and_get_the_file(bot: RunningBot) -> None:
    """Wilayah → Tabanan → kecamatan → Dajan Peken, status menunggu: one file, full NIK."""
    runtime = bot.runtime
    await add_application(runtime, "BC-TAB001")
    await add_application(runtime, "BC-TAB002", status=ApplicationStatus.REGISTERED)
    await add_application(runtime, "BC-SID001", village=SIDAKARYA)
    staff = await leader(bot, 9301, RoleName.STAFF, None)
    t = staff.t

    replies = await staff.say("/ekspor")
    assert t("export.button.send") in str(replies[-1].reply_markup)
    await staff.tap("export.button.area")
    await staff.tap_label("Kabupaten Tabanan")
    await staff.tap_label("Tabanan")
    replies = await staff.tap_label("Dajan Peken")
    assert "Desa Dajan Peken" in texts(replies)
    await staff.tap("export.button.status")
    replies = await staff.tap("workflow.name.submitted")
    assert "menunggu verifikasi" in texts(replies)
    replies = await staff.tap("export.button.send")

    [document] = documents(replies)
    assert document.file_name is not None and document.file_name.endswith(".xlsx")
    assert "1 baris" in (document.caption or "")
    [row] = sheet_rows(document)
    assert row["Nomor pendaftaran"] == "BC-TAB001"
    assert row["NIK"] == NIK
    async with runtime.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert entry is not None and entry.actor_user_id is not None
    assert '"filter_village": "51.02.05.2006"' in entry.details and '"rows": 1' in entry.details


async def test_only_new_since_my_last_export_and_csv(bot: RunningBot) -> None:
    """After one export, "only new" finds nothing until a new application arrives."""
    runtime = bot.runtime
    await add_application(runtime, "BC-TAB001")
    staff = await leader(bot, 9302, RoleName.STAFF, None)
    await staff.say("/ekspor")
    await staff.tap("export.button.format", format="XLSX")
    replies = await staff.tap("export.button.send")
    [document] = documents(replies)
    assert document.file_name is not None and document.file_name.endswith(".csv")
    assert document.file_bytes is not None and document.file_bytes.startswith(b"\xef\xbb\xbf")

    await staff.say("/ekspor")
    await staff.tap("export.button.new_off")
    replies = await staff.tap("export.button.send")
    assert staff.t("export.empty") in texts(replies)
    await add_application(runtime, "BC-TAB002", sent=datetime.now(UTC))
    await staff.say("/ekspor")
    await staff.tap("export.button.new_off")
    [document] = documents(await staff.tap("export.button.send"))
    assert [r["Nomor pendaftaran"] for r in sheet_rows(document)] == ["BC-TAB002"]


async def test_a_leader_exports_only_their_village_with_the_nik_masked(bot: RunningBot) -> None:
    """The perbekel gets Dajan Peken alone, NIK masked, and no other village even when forged."""
    runtime = bot.runtime
    await add_application(runtime, "BC-TAB001")
    await add_application(runtime, "BC-SID001", village=SIDAKARYA)
    perbekel: Person = await leader(bot, 9303, RoleName.PERBEKEL, DAJAN_PEKEN)
    replies = await perbekel.say("/ekspor")
    assert perbekel.t("export.button.area") not in str(replies[-1].reply_markup)
    assert "Desa Dajan Peken" in texts(replies)
    [document] = documents(await perbekel.tap("export.button.send"))
    [row] = sheet_rows(document)
    assert row["Nomor pendaftaran"] == "BC-TAB001"
    assert row["NIK"] == "5102********0003"
    assert "NIK disamarkan" in (document.caption or "")

    forged = encode(ExportChoice("go", "", SIDAKARYA, "", 0, "xlsx"))
    await perbekel.user.press_data(forged, message_id=replies[-1].message_id)
    replies = await perbekel.user.replies()
    assert perbekel.t("role.denied") in texts(replies)
    assert not documents(replies)


async def test_a_resident_cannot_export(bot: RunningBot) -> None:
    worker = Person(bot.fake.user(9304, "Wayan"))
    replies = await worker.say("/ekspor")
    assert worker.t("role.denied") in texts(replies)


async def test_a_large_export_comes_later_with_a_progress_message(bot: RunningBot) -> None:
    """Over the background threshold: a "preparing" message at once, the file when written."""
    runtime = bot.runtime
    runtime.settings.export_background_rows = 2
    for number in range(3):
        await add_application(runtime, f"BC-BIG00{number}")
    staff = await leader(bot, 9305, RoleName.STAFF, None)
    await staff.say("/ekspor")
    replies = await staff.tap("export.button.send")
    assert staff.t("export.progress", count=3, percent=0) in texts(replies)
    assert not documents(replies)

    later = await staff.user.replies(timeout=30)
    [document] = documents(later)
    assert len(sheet_rows(document)) == 3
    async with runtime.sessions() as session:
        job = await session.scalar(select(ExportJob))
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert job is not None and (job.state, job.rows) == ("done", 3)
    assert job.progress_message_id is not None
    assert entry is not None and '"rows": 3' in entry.details


async def test_a_long_export_shows_its_progress_and_then_that_it_is_done(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "preparing" message is edited as rows are written, and says "ready" at the end."""
    runtime = bot.runtime
    runtime.settings.export_background_rows = 100
    # Look at the progress often enough to see it move on a few thousand rows.
    monkeypatch.setattr(export_jobs, "PROGRESS_SECONDS", 0.02)
    # ...and give the progress task a turn often, so that a busy machine cannot let the whole
    # export run between two of its turns.
    monkeypatch.setattr(export, "YIELD_EVERY", 20)
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=6000, seed=3)
    staff = await leader(bot, 9306, RoleName.STAFF, None)
    await staff.say("/ekspor")
    replies = await staff.tap("export.button.send")
    [preparing] = [m for m in replies if m.text and "%" not in m.text and "6000" in m.text]
    later: list[BotMessage] = []
    while not documents(later):
        # The progress edits keep the chat busy; the file comes after them.
        later += await staff.user.replies(timeout=60)
    [document] = documents(later)
    assert len(sheet_rows(document)) == 6000

    ready = staff.t("export.progress.done", count=6000)

    def edits() -> list[str]:
        return [
            str(call.params.get("text"))
            for call in bot.fake.calls
            if call.method == "editMessageText"
            and str(call.params.get("message_id")) == str(preparing.message_id)
        ]

    await until(lambda: ready in edits())
    shown = edits()
    percents = [
        p for p in range(1, 100) if staff.t("export.progress", count=6000, percent=p) in shown
    ]
    # At least one step between 0 and done, rising, and "ready" last.
    assert percents and percents == sorted(percents), shown
    assert shown[-1] == ready
