"""Branch staff read the coverage report: counts per regency and village, the weekly trend,
where unfinished registrations stop, and coverage where a target is known — on a real
database (SQLite and PostgreSQL), seeded with a small branch whose numbers are known."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.core.reports import Report, write_csv, write_xlsx
from bot.db.models import Application, User
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.reports import gather_report, report_chart, report_summary
from bot.services.targets import replace_targets

WITA = ZoneInfo("Asia/Makassar")
TODAY = date(2026, 12, 4)  # a Friday; its week starts on Monday 30 November
DAJAN_PEKEN = "51.02.05.2006"  # a desa in Tabanan
DELOD_PEKEN = "51.02.05.2004"  # its neighbour
SERANGAN = "51.71.01.1001"  # a kelurahan in Denpasar
KUTA = "51.03.01.1002"  # a kelurahan in Badung


def wita(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment in Bali time."""
    return datetime(year, month, day, hour, minute, tzinfo=WITA)


# (village, status, sent at, status changed at): nineteen applications sent, eight registered.
SENT: list[tuple[str, str, datetime, datetime | None]] = [
    *[(DAJAN_PEKEN, "submitted", wita(2026, 12, 1), None)] * 3,
    *[(DAJAN_PEKEN, "verified", wita(2026, 12, 1), wita(2026, 12, 2))] * 2,
    *[(DAJAN_PEKEN, "registered", wita(2026, 12, 1), wita(2026, 12, 2))] * 5,
    (DAJAN_PEKEN, "rejected", wita(2026, 12, 1), wita(2026, 12, 2)),
    *[(DELOD_PEKEN, "registered", wita(2026, 11, 24), wita(2026, 11, 25))] * 2,
    (DELOD_PEKEN, "cancelled", wita(2026, 11, 24), wita(2026, 11, 25)),
    # Sunday night and Monday just after midnight in Bali: different weeks, although both
    # are Sunday in UTC.
    (SERANGAN, "submitted", wita(2026, 11, 29, 23, 30), None),
    (SERANGAN, "submitted", wita(2026, 11, 30, 0, 30), None),
    # Long before the trend's twelve weeks.
    *[(SERANGAN, "submitted", wita(2026, 9, 1), None)] * 2,
    (SERANGAN, "registered", wita(2026, 9, 1), wita(2026, 9, 2)),
]
# Unfinished drafts by the step they stand at (None: started, consent not yet answered).
DRAFTS: list[tuple[str | None, str | None]] = [
    (None, None),
    ("consent", None),
    *[("nik", None)] * 3,
    ("village", None),
    *[("summary", DAJAN_PEKEN)] * 2,
    ("edit_pick", DAJAN_PEKEN),
]


async def seed_branch(runtime: Runtime) -> None:
    """Fill the database with the applications above, one worker each."""
    rows: list[tuple[str | None, str, datetime | None, datetime | None, str | None]] = [
        (village, status, sent, changed, None) for village, status, sent, changed in SENT
    ]
    rows += [(village, "draft", None, None, step) for step, village in DRAFTS]
    async with runtime.sessions() as session, session.begin():
        for number, (village, status, sent, changed, step) in enumerate(rows):
            user = User(telegram_id=900_000 + number, language="id")
            session.add(user)
            await session.flush()
            session.add(
                Application(
                    user_id=user.id,
                    status=status,
                    reference=f"BC-T{number:04d}" if status != "draft" else None,
                    village_code=village,
                    submitted_at=sent,
                    status_changed_at=changed,
                    step=step,
                )
            )


async def set_targets(runtime: Runtime, targets: dict[str, int]) -> None:
    """Targets as `targets import` would leave them."""
    async with runtime.sessions() as session, session.begin():
        await replace_targets(session, targets, source="test.csv", actor_label="cli")


async def report_of(runtime: Runtime, language: str = "id") -> Report:
    async with runtime.sessions() as session:
        return await gather_report(
            session, runtime.areas, tz=WITA, today=TODAY, t=translator(language)
        )


async def test_applications_and_registrations_are_counted_per_regency_and_village(
    runtime: Runtime,
) -> None:
    await seed_branch(runtime)

    report = await report_of(runtime)

    assert (report.total.applications, report.total.registered) == (19, 8)
    villages = {v.code: (v.name, v.applications, v.registered) for v in report.villages}
    assert villages == {
        DAJAN_PEKEN: ("Dajan Peken", 11, 5),
        DELOD_PEKEN: ("Delod Peken", 3, 2),
        SERANGAN: ("Serangan", 5, 1),
    }
    regencies = {r.name: (r.applications, r.registered) for r in report.regencies}
    assert regencies["Kabupaten Tabanan"] == (14, 7)
    assert regencies["Kota Denpasar"] == (5, 1)
    assert regencies["Kabupaten Badung"] == (0, 0)
    # The branch's five regencies, each listed even with nothing in it yet.
    assert [r.code for r in report.regencies] == runtime.settings.branch_regencies


async def test_the_weekly_trend_counts_in_bali_time_over_twelve_weeks(runtime: Runtime) -> None:
    await seed_branch(runtime)

    report = await report_of(runtime)

    assert len(report.weeks) == 12
    assert report.weeks[-1].week == date(2026, 11, 30)
    assert report.weeks[0].week == date(2026, 9, 14)
    by_week = {w.week: (w.applications, w.registered) for w in report.weeks}
    assert by_week[date(2026, 11, 30)] == (12, 5)
    assert by_week[date(2026, 11, 23)] == (4, 2)
    assert sum(a for a, _ in by_week.values()) == 16
    assert sum(r for _, r in by_week.values()) == 7


async def test_drop_off_lists_every_step_in_the_forms_order(runtime: Runtime) -> None:
    await seed_branch(runtime)

    report = await report_of(runtime)

    steps = [(s.step, s.drafts) for s in report.steps]
    assert steps[0] == ("consent", 2)
    assert steps[1] == ("nik", 3)
    assert steps[-1] == ("summary", 3)
    assert dict(steps)["village"] == 1
    assert dict(steps)["full_name"] == 0
    assert sum(count for _, count in steps) == len(DRAFTS)
    labels = {s.step: s.label for s in report.steps}
    t = translator("id")
    assert labels["nik"] == t("q.nik.label")
    assert labels["consent"] == t("report.step.consent")


async def test_without_targets_there_is_no_coverage_and_the_summary_says_how_to_add_them(
    runtime: Runtime,
) -> None:
    await seed_branch(runtime)

    report = await report_of(runtime)

    assert not report.has_targets
    assert all(v.coverage is None for v in report.villages)
    t = translator("id")
    assert t("report.summary.no_targets") in report_summary(report, t, TODAY)
    chart = report_chart(report, t, TODAY)
    assert chart.bars_title == t("report.chart.registered")
    # Ranked by registrations when coverage is unknown.
    assert [bar.name for bar in chart.bars] == ["Dajan Peken", "Delod Peken", "Serangan"]


async def test_coverage_is_registrations_over_the_target_where_one_is_known(
    runtime: Runtime,
) -> None:
    await seed_branch(runtime)
    await set_targets(runtime, {DAJAN_PEKEN: 50, DELOD_PEKEN: 8, KUTA: 40})

    report = await report_of(runtime)

    coverage = {v.code: v.coverage for v in report.villages}
    assert coverage[DAJAN_PEKEN] == pytest.approx(5 / 50)
    assert coverage[DELOD_PEKEN] == pytest.approx(2 / 8)
    assert coverage[SERANGAN] is None
    # A village with a target and nobody registered yet is listed at 0 persen.
    assert coverage[KUTA] == 0
    regencies = {r.name: r for r in report.regencies}
    assert regencies["Kabupaten Tabanan"].coverage == pytest.approx(7 / 58)
    assert regencies["Kota Denpasar"].coverage is None
    # The branch: only villages with a target count, so Serangan's registration is left out.
    assert (report.total.covered, report.total.target) == (7, 98)
    ranked = [v.code for v in report.ranked_villages()]
    assert ranked == [DELOD_PEKEN, DAJAN_PEKEN, KUTA, SERANGAN]
    t = translator("id")
    summary = report_summary(report, t, TODAY)
    assert "7,1 %" in summary  # 7 of 98
    assert "25,0 %" in report_chart(report, t, TODAY).bars[0].text


async def test_an_empty_branch_gives_a_report_of_zeros(runtime: Runtime) -> None:
    report = await report_of(runtime)

    assert (report.total.applications, report.total.registered) == (0, 0)
    assert report.villages == ()
    assert all(w.applications == 0 for w in report.weeks)
    assert all(s.drafts == 0 for s in report.steps)


async def test_the_workbook_and_the_csv_hold_the_same_numbers(
    runtime: Runtime, tmp_path: Path
) -> None:
    await seed_branch(runtime)
    await set_targets(runtime, {DAJAN_PEKEN: 50})
    report = await report_of(runtime, "en")
    t = translator("en")

    write_xlsx(report, tmp_path / "report.xlsx", t)
    write_csv(report, tmp_path / "report.csv")

    workbook = load_workbook(tmp_path / "report.xlsx", read_only=True)
    assert workbook.sheetnames == ["By regency", "By village", "Weekly trend", "Stopped at step"]
    villages = list(workbook["By village"].iter_rows(values_only=True))
    assert villages[0] == (
        "Code",
        "Area",
        "Applications",
        "Registered",
        "Potential workers",
        "Coverage (percent)",
    )
    assert villages[1] == (DAJAN_PEKEN, "Dajan Peken", 11, 5, 50, 10.0)
    weeks = list(workbook["Weekly trend"].iter_rows(values_only=True))
    assert weeks[-1] == (datetime(2026, 11, 30), 12, 5)
    workbook.close()

    with (tmp_path / "report.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    values = {(r["section"], r["code"], r["measure"]): r["value"] for r in rows}
    assert values[("village", DAJAN_PEKEN, "registered")] == "5"
    assert values[("village", DAJAN_PEKEN, "coverage_percent")] == "10.0"
    assert ("village", SERANGAN, "coverage_percent") not in values
    assert values[("total", "", "applications")] == "19"
    assert values[("week", "2026-11-23", "applications")] == "4"
    assert values[("step", "nik", "drafts")] == "3"


def test_a_week_starts_on_monday() -> None:
    from bot.core.reports import week_of

    assert week_of(date(2026, 12, 4)) == date(2026, 11, 30)
    assert week_of(date(2026, 11, 30)) == date(2026, 11, 30)
    assert week_of(date(2026, 11, 29)) == date(2026, 11, 23)
    assert datetime(2026, 11, 29, 16, 30, tzinfo=UTC).astimezone(WITA).date() == date(2026, 11, 30)


async def test_a_leader_sees_the_same_weekly_trend_for_their_own_village(
    runtime: Runtime,
) -> None:
    from bot.core.policy import Scope, ScopeKind
    from bot.services.leader_tools import place_numbers

    await seed_branch(runtime)

    async with runtime.sessions() as session:
        numbers = await place_numbers(session, Scope(ScopeKind.VILLAGE, DAJAN_PEKEN), WITA, TODAY)

    assert len(numbers.weekly) == 12
    assert numbers.weekly[-1] == (date(2026, 11, 30), 11)
    assert sum(count for _, count in numbers.weekly) == 11
    assert numbers.by_status["registered"] == 5
    assert numbers.unfinished == 3


def test_shares_are_written_the_way_each_language_writes_decimals() -> None:
    from bot.core.reports import percent

    assert percent(0.125) == "12,5 %"
    assert percent(0.125, "en") == "12.5 %"
    assert percent(None) == "-"
