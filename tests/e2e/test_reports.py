"""Branch staff ask for /laporan in the chat and get the summary and the coverage chart;
workers and village leaders are refused politely."""

from __future__ import annotations

import io
import json

from PIL import Image
from sqlalchemy import select

from bot.core.charts import CHART_SIZE
from bot.db.models import AuditEntry
from bot.services.roles import RoleName
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_leaders import DAJAN_PEKEN, leader
from tests.services.test_reports import seed_branch, set_targets


async def test_staff_get_the_report_summary_and_the_chart_as_a_photo(bot: RunningBot) -> None:
    await seed_branch(bot.runtime)
    await set_targets(bot.runtime, {DAJAN_PEKEN: 50})
    staff = await leader(bot, 6100, RoleName.STAFF, None)

    replies = await staff.say("/laporan")

    summary, photo = replies[-2], replies[-1]
    t = staff.t
    assert t("report.summary.total", applications="19", registered="8") in (summary.text or "")
    assert "10,0 %" in (summary.text or "")
    assert photo.kind == "photo" and photo.file_bytes is not None
    assert photo.caption == t("report.caption")
    assert Image.open(io.BytesIO(photo.file_bytes)).size == CHART_SIZE
    async with bot.runtime.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "report"))
    assert entry is not None and entry.target == "branch"
    assert json.loads(entry.details)["applications"] == 19


async def test_staff_who_write_in_english_get_the_english_report(bot: RunningBot) -> None:
    staff = await leader(bot, 6110, RoleName.STAFF, None)
    await staff.say("/bahasa")
    await staff.tap_label("English")
    staff.use_language("en")

    replies = await staff.say("/report")

    assert staff.t("report.summary.no_targets") in texts(replies)
    assert replies[-1].kind == "photo"


async def test_workers_and_village_leaders_are_refused_politely(bot: RunningBot) -> None:
    worker = Person(bot.fake.user(6200, "Ketut"))
    perbekel = await leader(bot, 6201, RoleName.PERBEKEL, DAJAN_PEKEN)

    for person in (worker, perbekel):
        replies = await person.say("/laporan")
        assert texts(replies) == person.t("role.denied")
        assert all(reply.kind != "photo" for reply in replies)
    async with bot.runtime.sessions() as session:
        refused = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))
        ).all()
        reports = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "report"))
        ).all()
    assert len(refused) == 2 and reports == []


async def test_a_leaders_chart_shows_coverage_once_the_village_has_a_target(
    bot: RunningBot,
) -> None:
    await seed_branch(bot.runtime)
    perbekel = await leader(bot, 6300, RoleName.PERBEKEL, DAJAN_PEKEN)

    async def chart() -> bytes:
        await perbekel.say("/statistik")
        photo = (await perbekel.tap("stats.chart_button"))[-1]
        assert photo.kind == "photo" and photo.file_bytes is not None
        return photo.file_bytes

    before = await chart()
    assert await chart() == before
    await set_targets(bot.runtime, {DAJAN_PEKEN: 50})
    with_target = await chart()

    assert with_target != before
    assert Image.open(io.BytesIO(with_target)).size == CHART_SIZE
