"""/laporan: the branch's coverage report in the chat, for staff."""

from __future__ import annotations

import asyncio

from bot.core.charts import render_report_chart
from bot.core.messages import Attachment, Reply
from bot.services import audit
from bot.services.reports import gather_report, report_chart, report_summary
from bot.services.turn import Turn


class StaffReports:
    """The coverage report as a short summary and a chart."""

    async def cmd_report(self, turn: Turn, _args: str) -> None:
        """Send the report's summary and its chart (the routing table checked the role)."""
        services = turn.services
        today = services.today()
        report = await gather_report(
            turn.session, services.areas, tz=services.settings.tz, today=today, t=turn.t
        )
        picture = report_chart(report, turn.t, today)
        # Drawing takes a CPU-heavy moment: off the event loop, so other people are not held up.
        png = await asyncio.to_thread(render_report_chart, picture)
        await audit.record(
            turn.session,
            "report",
            actor=turn.user,
            target="branch",
            output="chat",
            applications=report.total.applications,
        )
        turn.say(Reply(report_summary(report, turn.t, today)))
        turn.say(
            Reply(
                turn.t("report.caption"),
                attachment=Attachment(f"laporan-{today.isoformat()}.png", png, is_photo=True),
            )
        )
