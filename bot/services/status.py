"""/status: the person's sent applications with their history, and an unfinished registration.

From here a worker also withdraws an application before it is registered (asked to confirm
first) and changes the payment period of a registered one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.core.callbacks import Correct, MenuAction, PeriodChange, Withdraw, encode
from bot.core.contribution import PAYMENT_PERIODS
from bot.core.dates import format_date
from bot.core.messages import Button, Reply
from bot.core.money import format_rupiah
from bot.core.questions import change_period, contribution_of
from bot.core.states import ApplicationStatus
from bot.core.workflow import WAITING, Refused
from bot.db.models import Application, StatusChange, owned_by
from bot.services import audit
from bot.services.export_ahead import fill_export_cells
from bot.services.registration import Registration
from bot.services.turn import Turn
from bot.services.workflow import Actor, change_status, history_of, status_name

MAX_ID = 2**31 - 1


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
                .where(owned_by(turn.user.id), Application.status != ApplicationStatus.DRAFT)
                .order_by(Application.id)
            )
        ).all()
        lines = []
        actions: list[tuple[Button, ...]] = []
        for app in applications:
            when = (app.submitted_at or app.created_at).astimezone(turn.services.settings.tz)
            entry = t(
                "status.line",
                reference=app.reference or "-",
                status=t(f"status.{app.status}"),
                date=format_date(when.date(), t.language),
            )
            history = [self._step(turn, step) for step in await history_of(turn.session, app.id)]
            lines.append("\n".join([entry, *history]))
            reference = app.reference or "-"
            if app.erased_at is not None:
                continue
            if app.status == ApplicationStatus.SUBMITTED:
                label = t("correction.button.edit", reference=reference)
                actions.append((Button(label, encode(Correct(app.id, "edit"))),))
            elif app.status in (ApplicationStatus.VERIFIED, ApplicationStatus.REGISTERED):
                label = t("correction.button.ask", reference=reference)
                actions.append((Button(label, encode(Correct(app.id, "ask"))),))
            if app.status in WAITING:
                label = t("withdraw.button", reference=reference)
                actions.append((Button(label, encode(Withdraw(app.id, "ask"))),))
            elif app.status == ApplicationStatus.REGISTERED:
                label = t("period.change.button", reference=reference)
                actions.append((Button(label, encode(PeriodChange(app.id, 0))),))
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
            turn.say(Reply("\n\n".join(lines), buttons=((button,), *actions)))
        elif lines:
            turn.say(Reply("\n\n".join(lines), buttons=tuple(actions)))
        else:
            button = Button(t("menu.register"), encode(MenuAction("register")))
            turn.say(Reply(t("status.none"), buttons=((button,),)))

    def _step(self, turn: Turn, step: StatusChange) -> str:
        """One line of an application's history, with what came with the change."""
        t = turn.t
        day = format_date(step.at.astimezone(turn.services.settings.tz).date(), t.language)
        line = t("status.history.line", date=day, status=status_name(t, step.to_status))
        if step.to_status == ApplicationStatus.REGISTERED and step.covered_from is not None:
            cover = format_date(step.covered_from, t.language)
            line += "\n  " + t("status.history.registered", kpj=step.kpj_number or "-", date=cover)
        elif step.to_status == ApplicationStatus.REJECTED and step.note:
            line += "\n  " + t("status.history.reason", reason=step.note)
        return line

    async def _own(self, turn: Turn, app_id: int) -> Application | None:
        return await own_application(turn, app_id)

    async def withdraw_button(self, turn: Turn, pick: Withdraw) -> None:
        """Withdraw an application before registration, after a confirmation."""
        app = await self._own(turn, pick.app)
        if app is None:
            return
        t = turn.t
        reference = app.reference or "-"
        if pick.answer == "ask" and app.status in WAITING:
            buttons = (
                (Button(t("withdraw.yes"), encode(Withdraw(app.id, "yes"))),),
                (Button(t("withdraw.no"), encode(Withdraw(app.id, "no"))),),
            )
            turn.say(Reply(t("withdraw.confirm", reference=reference), buttons=buttons))
        elif pick.answer == "yes":
            s = turn.services
            try:
                await change_status(
                    turn.session,
                    s.settings,
                    s.cipher,
                    app,
                    ApplicationStatus.CANCELLED,
                    actor=Actor(turn.user),
                    today=s.today(),
                    notify=False,
                )
            except Refused as exc:
                turn.text("withdraw.too_late", status=status_name(t, exc.current))
                return
            turn.text("withdraw.done", reference=reference)
        elif pick.answer == "no":
            turn.text("withdraw.kept", reference=reference)
        else:
            turn.text("withdraw.too_late", status=status_name(t, app.status))

    async def period_button(self, turn: Turn, pick: PeriodChange) -> None:
        """Show the payment periods with their amounts, or change to the one chosen."""
        app = await self._own(turn, pick.app)
        if app is None:
            return
        t, s = turn.t, turn.services
        if app.status not in (*WAITING, ApplicationStatus.REGISTERED):
            turn.text("withdraw.too_late", status=status_name(t, app.status))
            return
        answers: dict[str, Any] = s.cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        if pick.months not in PAYMENT_PERIODS:
            monthly = contribution_of(answers, s.settings.rates, 1).monthly
            buttons = tuple(
                (
                    Button(
                        t(f"period.option.{months}", amount=format_rupiah(monthly * months)),
                        encode(PeriodChange(app.id, months)),
                    ),
                )
                for months in PAYMENT_PERIODS
            )
            turn.say(Reply(t("period.change.prompt"), buttons=buttons))
            return
        before = contribution_of(answers, s.settings.rates).period_months
        change_period(answers, pick.months)
        app.answers_enc = s.cipher.encrypt(answers)
        await turn.session.flush()
        await fill_export_cells(
            turn.session, s.cipher, s.areas, s.settings, ids=[app.id], today=s.today()
        )
        await audit.record(
            turn.session,
            "period_change",
            actor=turn.user,
            target=app.reference,
            before=before,
            after=pick.months,
        )
        contribution = contribution_of(answers, s.settings.rates)
        turn.text(
            "period.change.done",
            period=t(f"period.label.{pick.months}"),
            amount=format_rupiah(contribution.per_payment),
        )


async def own_application(turn: Turn, app_id: int) -> Application | None:
    """One of the person's own applications (not erased); None (answered) for anything else."""
    app = await turn.session.get(Application, app_id) if 0 < app_id <= MAX_ID else None
    if (
        app is None
        or app.user_id != turn.user.id
        or app.claim_code_hash is not None
        or app.erased_at is not None
    ):
        turn.outcome.stale_button = True
        turn.text("button.stale")
        return None
    return app
