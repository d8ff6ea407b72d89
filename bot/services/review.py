"""/tinjau: staff take the next waiting application as a card and move it along the workflow.

The oldest waiting application comes first (in one village when staff name it). Opening a
card claims it for REVIEW_CLAIM_MINUTES with a conditional UPDATE that works the same on
SQLite and PostgreSQL: it succeeds only while nobody else holds an unexpired claim, so two
staff reviewing at once never get the same card. A button checks the claim again before it
acts; a card whose claim ran out and was taken by someone else is answered politely.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.callbacks import ReviewAction, ReviewCover, ReviewReason, ReviewRequest, encode
from bot.core.dates import format_date, parse_date
from bot.core.errors import InvalidInput
from bot.core.messages import Button, Reply, excerpt
from bot.core.questions import REGISTRATION, contribution_of
from bot.core.states import ApplicationStatus, UserMode
from bot.core.workflow import (
    REJECTION_REASONS,
    WAITING,
    Refused,
    add_months,
    normalise_kpj,
)
from bot.db.models import Application, StaffRequest, User, utcnow
from bot.i18n import translator
from bot.services import audit
from bot.services.common import mode_state, set_mode, village_label
from bot.services.registration import contribution_text
from bot.services.requests import DISPUTE, close_request, next_request, open_requests_of
from bot.services.turn import Turn
from bot.services.workflow import Actor, change_status, status_name

S = ApplicationStatus
# Ids are database integers: anything outside is forged data, answered without a query.
MAX_ID = 2**31 - 1
# Cards skipped in one /tinjau session are remembered up to this many.
MAX_SKIPPED = 200


def _claimable(user_id: int, now: datetime) -> ColumnElement[bool]:
    return or_(
        Application.review_claimed_until.is_(None),
        Application.review_claimed_until < now,
        Application.review_claimed_by == user_id,
    )


async def claim_next(
    session: AsyncSession,
    user_id: int,
    *,
    now: datetime,
    minutes: int,
    village: str | None = None,
    skipped: list[int] | None = None,
) -> Application | None:
    """Claim the oldest waiting application nobody else holds; None when none is left."""
    query = (
        select(Application.id)
        .where(Application.status.in_(WAITING), _claimable(user_id, now))
        .order_by(Application.submitted_at, Application.id)
        .limit(20)
    )
    if village is not None:
        query = query.where(Application.village_code == village)
    if skipped:
        query = query.where(Application.id.not_in(skipped))
    for app_id in (await session.scalars(query)).all():
        if await claim(session, app_id, user_id, now=now, minutes=minutes):
            return await session.get(Application, app_id, populate_existing=True)
    return None


async def claim(
    session: AsyncSession, app_id: int, user_id: int, *, now: datetime, minutes: int
) -> bool:
    """Hold one waiting application for `user_id`; False when someone else holds it."""
    # The condition is checked again by the UPDATE itself: on PostgreSQL a second reviewer's
    # UPDATE waits for the first one's transaction and then finds the claim taken.
    result = await session.execute(
        update(Application)
        .where(
            Application.id == app_id,
            Application.status.in_(WAITING),
            _claimable(user_id, now),
        )
        .values(review_claimed_by=user_id, review_claimed_until=now + timedelta(minutes=minutes))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def release(session: AsyncSession, app_id: int, user_id: int) -> None:
    """Give a card back (skipped, or the reviewer moved on)."""
    await session.execute(
        update(Application)
        .where(Application.id == app_id, Application.review_claimed_by == user_id)
        .values(review_claimed_by=None, review_claimed_until=None)
        .execution_options(synchronize_session=False)
    )


class Review:
    """The staff side of the status workflow in the chat."""

    async def cmd_review(self, turn: Turn, args: str) -> None:
        """Show the next waiting application, in one village when one is named."""
        village: str | None = None
        if args.strip():
            found = turn.services.areas.find_village(args)
            if len(found) != 1:
                # Quoted back in part: the whole could be longer than a message may be.
                turn.text("review.error.village", text=excerpt(args))
                return
            village = found[0].code
        set_mode(turn, UserMode.REVIEW, {"place": village, "skipped": []})
        await self._next(turn)

    # ------------------------------------------------------------------ buttons

    async def action_button(self, turn: Turn, pick: ReviewAction) -> None:
        """Verifikasi, Terdaftar, Tolak or Lewati on a card."""
        app = await self._held(turn, pick.app)
        if app is None:
            return
        state = self._state(turn)
        if pick.action == "verify":
            if await self._change(turn, app, S.VERIFIED):
                turn.text("review.done.verified", reference=app.reference or "-")
                turn.say(await self._card(turn, app))
        elif pick.action == "register":
            state.update(app=app.id, step="kpj")
            set_mode(turn, UserMode.REVIEW, state)
            turn.text("review.ask.kpj", reference=app.reference or "-")
        elif pick.action == "reject":
            state.update(app=app.id, step="reason")
            set_mode(turn, UserMode.REVIEW, state)
            buttons = [
                (Button(turn.t(key), encode(ReviewReason(app.id, code))),)
                for code, key in REJECTION_REASONS.items()
            ]
            turn.say(Reply(turn.t("review.ask.reason"), buttons=tuple(buttons)))
        elif pick.action == "skip":
            state["skipped"] = [*state.get("skipped", []), app.id][-MAX_SKIPPED:]
            state.update(app=None, step=None)
            set_mode(turn, UserMode.REVIEW, state)
            await release(turn.session, app.id, turn.user.id)
            await self._next(turn)
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")

    async def reason_button(self, turn: Turn, pick: ReviewReason) -> None:
        """A common reason for a rejection."""
        if pick.reason not in REJECTION_REASONS:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        app = await self._held(turn, pick.app)
        if app is not None:
            await self._finish(turn, app, S.REJECTED, reason=pick.reason)

    async def cover_button(self, turn: Turn, pick: ReviewCover) -> None:
        """The day cover starts, from a button."""
        state = self._state(turn)
        try:
            day = date.fromisoformat(pick.day)
        except ValueError:
            day = None
        if day is None or state.get("step") != "cover" or state.get("app") != pick.app:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        app = await self._held(turn, pick.app)
        if app is not None:
            await self._finish(turn, app, S.REGISTERED, kpj=state.get("kpj"), covered_from=day)

    async def request_button(self, turn: Turn, pick: ReviewRequest) -> None:
        """Close a request (dealt with), or skip it for now."""
        if not 0 < pick.request <= MAX_ID or pick.action not in ("close", "skip"):
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        state = self._state(turn)
        if pick.action == "close":
            closed = await close_request(turn.session, pick.request, turn.user)
            if closed is None:
                turn.text("review.gone")
            else:
                turn.text(f"review.request.closed.{closed.kind}")
                await self._tell_corrected(turn, closed)
        else:
            skipped = [*state.get("skipped_requests", []), pick.request][-MAX_SKIPPED:]
            state["skipped_requests"] = skipped
        state.update(app=None, step=None)
        set_mode(turn, UserMode.REVIEW, state)
        await self._next(turn)

    async def _tell_corrected(self, turn: Turn, request: StaffRequest) -> None:
        """A worker whose correction was dealt with is told so."""
        if request.kind == DISPUTE:
            return
        app = await turn.session.get(Application, request.application_id)
        worker = await turn.session.get(User, request.user_id)
        if app is None or worker is None or worker.telegram_id is None or worker.erased_at:
            return
        t = translator(worker.language or turn.services.settings.default_language)
        text = t("correction.done", reference=app.reference or "-")
        turn.outcome.notices.append((worker.telegram_id, Reply(text)))

    # ------------------------------------------------------------------ typed answers

    async def typed(self, turn: Turn, text: str) -> None:
        """The KPJ number, the cover start, or a rejection reason in the staff's own words."""
        state = self._state(turn)
        step = state.get("step")
        app = await self._held(turn, int(state.get("app") or 0)) if step else None
        if app is None:
            if not step:
                turn.text("review.use_buttons")
            return
        try:
            if step == "kpj":
                state.update(kpj=normalise_kpj(text, turn.services.settings.kpj_digits))
                state.update(step="cover")
                set_mode(turn, UserMode.REVIEW, state)
                turn.say(self._cover_question(turn, app.id))
            elif step == "cover":
                day = parse_date(text)
                await self._finish(turn, app, S.REGISTERED, kpj=state.get("kpj"), covered_from=day)
            elif step == "reason":
                await self._finish(turn, app, S.REJECTED, note=text)
        except InvalidInput as exc:
            turn.error(exc)

    # ------------------------------------------------------------------ the parts

    def _state(self, turn: Turn) -> dict[str, Any]:
        return mode_state(turn) if turn.user.mode == UserMode.REVIEW else {"skipped": []}

    async def _held(self, turn: Turn, app_id: int) -> Application | None:
        """The application a button or answer is about, claimed again; None (answered) if not."""
        settings = turn.services.settings
        held = 0 < app_id <= MAX_ID and await claim(
            turn.session,
            app_id,
            turn.user.id,
            now=utcnow(),
            minutes=settings.review_claim_minutes,
        )
        if not held:
            # Gone, finished by someone else, held by another reviewer, or forged.
            turn.text("review.gone")
            state = self._state(turn)
            state.update(app=None, step=None)
            set_mode(turn, UserMode.REVIEW, state)
            return None
        return await turn.session.get(Application, app_id, populate_existing=True)

    async def _change(self, turn: Turn, app: Application, target: S, **values: Any) -> bool:
        s = turn.services
        try:
            applied = await change_status(
                turn.session,
                s.settings,
                s.cipher,
                app,
                target,
                actor=Actor(turn.user),
                today=s.today(),
                **values,
            )
        except Refused as exc:
            turn.text(
                exc.key,
                current=status_name(turn.t, exc.current),
                target=status_name(turn.t, exc.target),
            )
            return False
        if applied.notice is not None:
            turn.outcome.notices.append((applied.notice.chat_id, applied.notice.reply))
        return True

    async def _finish(self, turn: Turn, app: Application, target: S, **values: Any) -> None:
        """Make the change, say so, and show the next card (a bad answer is asked again)."""
        try:
            changed = await self._change(turn, app, target, **values)
        except InvalidInput as exc:
            turn.error(exc)
            return
        if changed:
            if target is S.REGISTERED:
                turn.text(
                    "review.done.registered",
                    reference=app.reference or "-",
                    kpj=app.kpj_number or "-",
                )
            else:
                turn.text("review.done.rejected", reference=app.reference or "-")
        state = self._state(turn)
        state.update(app=None, step=None, kpj=None)
        set_mode(turn, UserMode.REVIEW, state)
        await self._next(turn)

    async def _next(self, turn: Turn) -> None:
        state = self._state(turn)
        village = state.get("place")
        request = await next_request(
            turn.session,
            village=village,
            skipped=[int(i) for i in state.get("skipped_requests", [])],
        )
        if request is not None:
            turn.say(await self._request_card(turn, request))
            return
        app = await claim_next(
            turn.session,
            turn.user.id,
            now=utcnow(),
            minutes=turn.services.settings.review_claim_minutes,
            village=village,
            skipped=[int(i) for i in state.get("skipped", [])],
        )
        if app is None:
            where = village_label(turn, village) if village else turn.t("scope.branch")
            turn.text("review.empty", place=where)
            set_mode(turn, None)
            return
        turn.say(await self._card(turn, app))

    async def _card(self, turn: Turn, app: Application) -> Reply:
        """The application as staff check it against the KTP: every answer, the full NIK.

        Each showing is audited: the worker's /dataku and `audit --person` list who saw it.
        """
        t, s = turn.t, turn.services
        await audit.record(turn.session, "review_view", actor=turn.user, target=app.reference)
        answers, ctx = turn.answers_of(app)
        submitted = (app.submitted_at or app.created_at).astimezone(s.settings.tz)
        lines = [
            t(
                "review.card.header",
                reference=app.reference or "-",
                status=status_name(t, app.status),
                date=format_date(submitted.date(), t.language),
            ),
            "",
        ]
        lines += REGISTRATION.summary_lines(answers, ctx)
        lines += ["", contribution_text(turn, contribution_of(answers, ctx.rates))]
        if app.assisted_by is not None:
            lines += ["", t("review.card.assisted")]
        disputes = await open_requests_of(turn.session, app.id, DISPUTE)
        if disputes:
            lines += ["", t("review.card.disputed", count=disputes)]
        actions = ["verify"] if app.status == S.SUBMITTED else []
        actions += ["register", "reject", "skip"]
        labels = {
            "verify": "review.button.verify",
            "register": "review.button.register",
            "reject": "review.button.reject",
            "skip": "review.button.skip",
        }
        buttons = tuple((Button(t(labels[a]), encode(ReviewAction(app.id, a))),) for a in actions)
        return Reply("\n".join(lines), buttons=buttons)

    async def _request_card(self, turn: Turn, request: StaffRequest) -> Reply:
        """A request as a card: a NIK dispute, or a correction with the data as it stands."""
        t, s = turn.t, turn.services
        app = await turn.session.get(Application, request.application_id)
        assert app is not None
        when = request.created_at.astimezone(s.settings.tz)
        params = {
            "reference": app.reference or "-",
            "status": status_name(t, app.status),
            "place": village_label(turn, app.village_code),
            "date": format_date(when.date(), t.language),
            "chat": request.user_id,
        }
        if request.kind == DISPUTE:
            text = t("review.dispute.card", **params)
        else:
            asked = s.cipher.decrypt(request.text_enc)["text"] if request.text_enc else "-"
            answers, ctx = turn.answers_of(app)
            lines = [t("review.correction.card", text=asked, **params), ""]
            lines += REGISTRATION.summary_lines(answers, ctx)
            await audit.record(turn.session, "review_view", actor=turn.user, target=app.reference)
            text = "\n".join(lines)
        buttons = (
            (Button(t("review.request.button.close"), encode(ReviewRequest(request.id, "close"))),),
            (Button(t("review.button.skip"), encode(ReviewRequest(request.id, "skip"))),),
        )
        return Reply(text, buttons=buttons)

    def _cover_question(self, turn: Turn, app_id: int) -> Reply:
        t = turn.t
        today = turn.services.today()
        first_next = add_months(today.replace(day=1), 1)
        buttons = tuple(
            (
                Button(
                    t(key, date=format_date(day, t.language)),
                    encode(ReviewCover(app_id, day.isoformat())),
                ),
            )
            for key, day in (("review.cover.today", today), ("review.cover.next_month", first_next))
        )
        return Reply(t("review.ask.cover"), buttons=buttons)
