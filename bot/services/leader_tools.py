"""A leader's tools for their place: numbers (/statistik), the chart, the QR link and poster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.callbacks import StatisticsChart, encode
from bot.core.charts import ChartLabels, VillageStats, render_statistics_chart
from bot.core.images import PosterText, group_thousands, render_poster
from bot.core.messages import Attachment, Button, Reply
from bot.core.policy import POLICY, Action, Scope, ScopeKind
from bot.core.reports import TREND_WEEKS, percent, trend, week_of
from bot.core.states import ApplicationStatus
from bot.db.models import Application, Follow, utcnow
from bot.services.common import allowed, deny, grants, known_place, scope_label
from bot.services.following import ADAT_LINK_PREFIX, VILLAGE_LINK_PREFIX
from bot.services.reports import village_target
from bot.services.roles import deep_link
from bot.services.turn import Turn

DRAFT = "draft"


@dataclass(frozen=True)
class PlaceNumbers:
    """Followers and applications of a village or desa adat."""

    followers: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_occupation: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    recent: int = 0
    # Applications sent per week over the report's weeks, oldest first.
    weekly: list[tuple[date, int]] = field(default_factory=list)


async def place_numbers(
    session: AsyncSession, scope: Scope, tz: ZoneInfo, today: date
) -> PlaceNumbers:
    """Count followers and applications of a place (by status, occupation, recent weeks)."""
    if scope.kind is ScopeKind.VILLAGE:
        follows = Follow.village_code == scope.code
        applications = Application.village_code == scope.code
    else:
        follows = Follow.desa_adat_id == int(scope.code or 0)
        applications = Application.desa_adat_id == int(scope.code or 0)
    followers = await session.scalar(
        select(func.count(func.distinct(Follow.user_id))).where(follows)
    )
    by_status = dict(
        (
            await session.execute(
                select(Application.status, func.count())
                .where(applications)
                .group_by(Application.status)
            )
        ).all()
    )
    by_occupation = dict(
        (
            await session.execute(
                select(Application.occupation, func.count())
                .where(applications, Application.status != DRAFT)
                .group_by(Application.occupation)
            )
        ).all()
    )
    first_week = week_of(today) - timedelta(weeks=TREND_WEEKS - 1)
    since = min(
        utcnow() - timedelta(days=30),
        datetime.combine(first_week, time(), tzinfo=tz).astimezone(UTC),
    )
    moments = (
        await session.scalars(
            select(Application.submitted_at).where(
                applications, Application.status != DRAFT, Application.submitted_at >= since
            )
        )
    ).all()
    month_ago = utcnow() - timedelta(days=30)
    sent = [moment for moment in moments if moment is not None]
    weeks = trend((moment.astimezone(tz).date() for moment in sent), (), today)
    statuses = {str(k): int(v) for k, v in by_status.items()}
    return PlaceNumbers(
        followers=int(followers or 0),
        by_status={k: v for k, v in statuses.items() if k != DRAFT},
        by_occupation={str(k or "-"): int(v) for k, v in by_occupation.items()},
        unfinished=statuses.get(DRAFT, 0),
        recent=sum(1 for moment in sent if moment >= month_ago),
        weekly=[(week.week, week.applications) for week in weeks],
    )


class LeaderTools:
    """/statistik with its chart, and /tautan with the printable poster."""

    async def _place(self, turn: Turn, action: Action) -> Scope | None:
        """The village or desa adat the person's role for `action` is about."""
        for scope in POLICY.scopes_for(await grants(turn), action):
            if scope.kind in (ScopeKind.VILLAGE, ScopeKind.DESA_ADAT):
                return scope
        await deny(turn, action, "-")
        return None

    async def cmd_statistics(self, turn: Turn, _args: str) -> None:
        """The place's numbers in headed sections, with a button for the chart."""
        scope = await self._place(turn, Action.STATISTICS)
        if scope is None:
            return
        numbers = await place_numbers(
            turn.session, scope, turn.services.settings.tz, turn.services.today()
        )
        t = turn.t
        lines = [
            t("stats.header", village=await scope_label(turn, scope)),
            t("stats.followers", count=numbers.followers),
            t("stats.recent", count=numbers.recent),
            "",
            t("stats.section.status"),
        ]
        for status, count in sorted(numbers.by_status.items()):
            lines.append(t("stats.status_line", status=t(f"status.{status}"), count=count))
        if not numbers.by_status:
            lines.append(t("stats.none"))
        lines += ["", t("stats.section.occupation")]
        for occupation, count in sorted(numbers.by_occupation.items()):
            label = t(f"occupation.{occupation}") if occupation != "-" else "-"
            lines.append(t("stats.occupation_line", occupation=label, count=count))
        if not numbers.by_occupation:
            lines.append(t("stats.none"))
        lines += [
            "",
            t("stats.section.unfinished"),
            t("stats.unfinished", count=numbers.unfinished),
        ]
        chart = encode(StatisticsChart(scope.kind.value, scope.code or ""))
        turn.say(Reply("\n".join(lines), buttons=((Button(t("stats.chart_button"), chart),),)))

    async def chart_button(self, turn: Turn, pick: StatisticsChart) -> None:
        """The PNG chart of a place's numbers."""
        scope = Scope.parse(pick.kind, pick.code)
        if scope is None or scope.kind not in (ScopeKind.VILLAGE, ScopeKind.DESA_ADAT):
            await deny(turn, Action.STATISTICS, f"{pick.kind}:{pick.code}")
            return
        if not await allowed(turn, Action.STATISTICS, scope):
            return
        if not await known_place(turn, scope):
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        numbers = await place_numbers(
            turn.session, scope, turn.services.settings.tz, turn.services.today()
        )
        t = turn.t
        village = await scope_label(turn, scope)
        # Targets are set per desa dinas; a desa adat has none to measure against.
        coverage = ""
        if scope.kind is ScopeKind.VILLAGE:
            target = await village_target(turn.session, scope.code or "")
            registered = numbers.by_status.get(ApplicationStatus.REGISTERED, 0)
            if target:
                coverage = t(
                    "chart.coverage",
                    share=percent(registered / target, t.language),
                    registered=group_thousands(registered),
                    target=group_thousands(target),
                )
        by_status = {t(f"status.{k}"): v for k, v in numbers.by_status.items()}
        if numbers.unfinished:
            by_status[t("status.draft")] = numbers.unfinished
        stats = VillageStats(
            village_name=village,
            followers=numbers.followers,
            by_status=by_status,
            by_occupation={
                (t(f"occupation.{k}") if k != "-" else "-"): v
                for k, v in numbers.by_occupation.items()
            },
            weekly=numbers.weekly,
        )
        labels = ChartLabels(
            title=t("chart.title"),
            status_title=t("chart.status"),
            occupation_title=t("chart.occupation"),
            trend_title=t("chart.weekly"),
            followers_label=t("chart.followers"),
            no_data=t("chart.no_data"),
            other=t("chart.other"),
            coverage=coverage,
        )
        # Drawing takes a CPU-heavy moment: off the event loop, so other people are not held up.
        png = await asyncio.to_thread(render_statistics_chart, stats, labels=labels)
        name = f"statistik-{pick.code.replace('.', '-')}.png"
        turn.say(
            Reply(
                t("chart.caption", village=village),
                attachment=Attachment(name, png, is_photo=True),
            )
        )

    async def cmd_link(self, turn: Turn, _args: str) -> None:
        """The place's t.me link that follows it and starts registration, and a QR poster."""
        scope = await self._place(turn, Action.LINK)
        if scope is None:
            return
        code = scope.code or ""
        prefix = VILLAGE_LINK_PREFIX if scope.kind is ScopeKind.VILLAGE else ADAT_LINK_PREFIX
        link = deep_link(turn.services.bot_username, prefix + code.replace(".", "_"))
        village = await scope_label(turn, scope)
        turn.text("link.text", village=village, link=link)
        t = turn.t
        poster = await asyncio.to_thread(
            render_poster,
            village_name=village,
            link=link,
            lines=PosterText(
                slogan=t("poster.slogan"),
                steps=(t("poster.step1"), t("poster.step2"), t("poster.step3")),
                footer=t("poster.footer"),
            ),
        )
        turn.say(
            Reply(
                t("poster.caption"),
                attachment=Attachment(f"poster-{code.replace('.', '-')}.png", poster),
            )
        )
