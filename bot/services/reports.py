"""Counting the branch's coverage report from the database (the shapes live in bot.core.reports).

Every count is a grouped query or a stream of dates: no application is loaded as an object
and nothing personal is read, so the report costs the same with any number of applications.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.charts import RankedBar, ReportChart
from bot.core.dates import format_date
from bot.core.form import Form
from bot.core.images import group_thousands
from bot.core.questions import REGISTRATION
from bot.core.reports import (
    TREND_WEEKS,
    AreaLine,
    Report,
    Translate,
    drop_off,
    percent,
    trend,
    week_of,
)
from bot.core.states import ApplicationStatus
from bot.db.models import Application, CoverageTarget, utcnow
from bot.i18n import Translator
from bot.services.areas import AreaDirectory
from bot.services.targets import coverage_targets

DRAFT = ApplicationStatus.DRAFT.value
REGISTERED = ApplicationStatus.REGISTERED.value


def _sum(code: str, name: str, lines: list[AreaLine]) -> AreaLine:
    targets = [line.target for line in lines if line.target is not None]
    return AreaLine(
        code=code,
        name=name,
        applications=sum(line.applications for line in lines),
        registered=sum(line.registered for line in lines),
        target=sum(targets) if targets else None,
        covered=sum(line.covered for line in lines),
    )


async def _days(
    session: AsyncSession, query: Select[datetime | None], tz: ZoneInfo
) -> AsyncIterator[date]:
    """The local days of a column of moments, streamed."""
    result = await session.stream_scalars(query.execution_options(yield_per=5000))
    async for moment in result:
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            yield moment.astimezone(tz).date()


async def gather_report(
    session: AsyncSession,
    areas: AreaDirectory,
    *,
    tz: ZoneInfo,
    today: date,
    t: Translate,
    form: Form = REGISTRATION,
    weeks: int = TREND_WEEKS,
) -> Report:
    """Count the branch's report as of now."""
    targets = await coverage_targets(session)
    counts: dict[str, list[int]] = {}
    total_applications = total_registered = 0
    grouped = await session.execute(
        select(Application.village_code, Application.status, func.count())
        .where(Application.status != DRAFT)
        .group_by(Application.village_code, Application.status)
    )
    for code, status, count in grouped.all():
        total_applications += count
        total_registered += count if status == REGISTERED else 0
        if code is None:
            continue
        line = counts.setdefault(code, [0, 0])
        line[0] += count
        line[1] += count if status == REGISTERED else 0

    villages: list[AreaLine] = []
    for code in sorted(set(counts) | set(targets)):
        village = areas.village_by_code.get(code)
        applications, registered = counts.get(code, [0, 0])
        target = targets.get(code)
        villages.append(
            AreaLine(
                code=code,
                name=village.name if village is not None else code,
                applications=applications,
                registered=registered,
                target=target,
                covered=registered if target else 0,
            )
        )
    regencies = []
    for regency in areas.regencies:
        inside = [v for v in villages if v.code.startswith(f"{regency.code}.")]
        regencies.append(_sum(regency.code, regency.name, inside))
    total = _sum("", t("report.total"), villages)
    # Applications without a village (or of villages outside the branch) count in the total.
    total = AreaLine(
        total.code,
        total.name,
        total_applications,
        total_registered,
        total.target,
        total.covered,
    )

    first_day = week_of(today) - timedelta(weeks=weeks - 1)
    since = datetime.combine(first_day, time(), tzinfo=tz).astimezone(UTC)
    sent = [
        day
        async for day in _days(
            session,
            select(Application.submitted_at).where(
                Application.status != DRAFT, Application.submitted_at >= since
            ),
            tz,
        )
    ]
    registered_days = [
        day
        async for day in _days(
            session,
            select(Application.status_changed_at).where(
                Application.status == REGISTERED, Application.status_changed_at >= since
            ),
            tz,
        )
    ]
    by_step: dict[str | None, int] = {
        step: count
        for step, count in await session.execute(
            select(Application.step, func.count())
            .where(Application.status == DRAFT)
            .group_by(Application.step)
        )
    }
    return Report(
        made_at=utcnow(),
        total=total,
        regencies=tuple(regencies),
        villages=tuple(villages),
        weeks=trend(sent, registered_days, today, weeks),
        steps=tuple(drop_off(by_step, form, t)),
    )


async def village_target(session: AsyncSession, village_code: str) -> int | None:
    """The potential informal workers of one village, None when no target was imported."""
    target = await session.get(CoverageTarget, village_code)
    return target.potential_workers if target is not None else None


def report_chart(report: Report, t: Translator, today: date) -> ReportChart:
    """The report picture's content in the reader's language."""
    if report.has_targets:
        bars_title = t("report.chart.coverage")
        bars = [
            RankedBar(
                v.name,
                (v.coverage or 0.0) * 100,
                t(
                    "report.chart.bar_coverage",
                    share=percent(v.coverage, t.language),
                    registered=group_thousands(v.covered),
                    target=group_thousands(v.target or 0),
                ),
            )
            for v in report.ranked_villages()
            if v.coverage is not None
        ]
    else:
        # Without targets there is no coverage; rank by registrations and say so.
        bars_title = t("report.chart.registered")
        bars = [
            RankedBar(v.name, v.registered, group_thousands(v.registered))
            for v in report.ranked_villages()
            if v.registered
        ]
    return ReportChart(
        title=t("report.chart.title"),
        subtitle=t(
            "report.chart.subtitle",
            date=format_date(today, t.language),
            applications=group_thousands(report.total.applications),
            registered=group_thousands(report.total.registered),
        ),
        bars_title=bars_title,
        bars=bars,
        trend_title=t("report.chart.trend"),
        weeks=[w.week for w in report.weeks],
        series=[
            (t("report.col.applications"), [w.applications for w in report.weeks]),
            (t("report.col.registered"), [w.registered for w in report.weeks]),
        ],
        no_data=t("chart.no_data"),
    )


def report_summary(report: Report, t: Translator, today: date) -> str:
    """A few lines that say what the report shows, for the chat and the terminal."""
    total = report.total
    lines = [
        t("report.summary.header", date=format_date(today, t.language)),
        t(
            "report.summary.total",
            applications=group_thousands(total.applications),
            registered=group_thousands(total.registered),
        ),
    ]
    if report.has_targets:
        lines.append(
            t(
                "report.summary.coverage",
                share=percent(total.coverage, t.language),
                registered=group_thousands(total.covered),
                target=group_thousands(total.target or 0),
            )
        )
    else:
        lines.append(t("report.summary.no_targets"))
    lines.append("")
    for regency in report.regencies:
        counts = {
            "regency": regency.name,
            "applications": group_thousands(regency.applications),
            "registered": group_thousands(regency.registered),
        }
        if regency.coverage is None:
            lines.append(t("report.summary.regency", **counts))
        else:
            lines.append(
                t(
                    "report.summary.regency_coverage",
                    share=percent(regency.coverage, t.language),
                    **counts,
                )
            )
    stuck = max(report.steps, key=lambda s: s.drafts, default=None)
    if stuck is not None and stuck.drafts:
        lines += ["", t("report.summary.drop_off", step=stuck.label, count=stuck.drafts)]
    return "\n".join(lines)
