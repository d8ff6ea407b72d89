"""/status: the person's sent applications and an unfinished registration, if any."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.callbacks import MenuAction, encode
from bot.core.dates import format_date
from bot.core.messages import Button, Reply
from bot.core.states import ApplicationStatus
from bot.db.models import Application
from bot.services.registration import Registration
from bot.services.turn import Turn


class Status:
    """Tells a person where their applications stand."""

    def __init__(self, registration: Registration) -> None:
        self.registration = registration

    async def cmd_status(self, turn: Turn, _args: str = "") -> None:
        """List the sent applications; offer to continue an unfinished one."""
        t = turn.t
        applications = (
            await turn.session.scalars(
                select(Application)
                .where(
                    Application.user_id == turn.user.id,
                    Application.status != ApplicationStatus.DRAFT,
                )
                .order_by(Application.id)
            )
        ).all()
        lines = []
        for app in applications:
            when = (app.submitted_at or app.created_at).astimezone(turn.services.settings.tz)
            lines.append(
                t(
                    "status.line",
                    reference=app.reference or "-",
                    status=t(f"status.{app.status}"),
                    date=format_date(when.date(), t.language),
                )
            )
        if lines:
            lines.insert(0, t("status.header"))
        if turn.draft is not None:
            step = self.registration.progress_step(turn)
            total = self.registration.form.total_steps
            lines.append(
                t("status.unfinished", step=step, total=total)
                if step is not None
                else t("status.unfinished_started")
            )
            button = Button(t("menu.continue"), encode(MenuAction("register")))
            turn.say(Reply("\n\n".join(lines), buttons=((button,),)))
        elif lines:
            turn.say(Reply("\n\n".join(lines)))
        else:
            button = Button(t("menu.register"), encode(MenuAction("register")))
            turn.say(Reply(t("status.none"), buttons=((button,),)))
