"""The rights of UU PDP in the chat: /dataku (see and download my data) and /hapus (erase it).

/dataku shows everything the bot holds about the person, readable in the chat, with a JSON
file of the same (portability), and for each application who has seen, exported or changed
it (`bot.services.trail`). /hapus erases after two confirmations: drafts go at once; a sent
application keeps a tombstone without personal data (reference, dates, status, the fact of
erasure) so staff know why it has no answers; a waiting one is withdrawn first. The person's
consent is withdrawn with it: no broadcast, reminder or notice reaches them until they
consent again (a new registration).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import questions
from bot.core.callbacks import Correct, Erase, encode
from bot.core.dates import format_date
from bot.core.errors import InvalidInput
from bot.core.messages import Attachment, Button, Reply, text_length
from bot.core.questions import REGISTRATION
from bot.core.states import ApplicationStatus, UserMode
from bot.core.text import read_typed
from bot.core.workflow import WAITING
from bot.db.models import (
    Application,
    Consent,
    Follow,
    OutboxMessage,
    Role,
    StatusChange,
    User,
    owned_by,
    utcnow,
)
from bot.i18n import Translator
from bot.security import Cipher
from bot.services import audit
from bot.services.common import mode_state, set_mode, village_label
from bot.services.registration import Registration
from bot.services.requests import CORRECTION, record_request
from bot.services.status import own_application
from bot.services.trail import Trace, trail_of
from bot.services.turn import Turn
from bot.services.workflow import Actor, change_status, history_of, status_name

ERASED = "erased"
# Length of a correction request, in characters.
MIN_CORRECTION, MAX_CORRECTION = 5, 1000
# What /dataku says someone did with an application (`mydata.seen.<action>`).
SEEN_ACTIONS = (
    "status_change",
    "review_view",
    "claim",
    "export",
    "erased",
    "correction_request",
    "other",
)


def _day(moment: datetime | None, turn: Turn) -> str:
    if moment is None:
        return "-"
    local = moment.astimezone(turn.services.settings.tz)
    return format_date(local.date(), turn.t.language)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class Rights:
    """/dataku and /hapus."""

    def __init__(self, registration: Registration) -> None:
        self.registration = registration

    # ------------------------------------------------------------------ /dataku

    async def cmd_my_data(self, turn: Turn, _args: str = "") -> None:
        """Everything held about the person: in the chat, and as a JSON file."""
        t, s = turn.t, turn.services
        user = turn.user
        session = turn.session
        roles = list(await session.scalars(select(Role).where(Role.user_id == user.id)))
        follows = list(await session.scalars(select(Follow).where(Follow.user_id == user.id)))
        consents = list(
            await session.scalars(
                select(Consent).where(Consent.user_id == user.id).order_by(Consent.id)
            )
        )
        applications = list(
            await session.scalars(
                select(Application)
                .where(owned_by(user.id), Application.status != ApplicationStatus.DRAFT)
                .order_by(Application.id)
            )
        )
        places = [
            village_label(turn, f.village_code) if f.village_code else f"#{f.desa_adat_id}"
            for f in follows
        ]
        account = [
            t("mydata.header"),
            "",
            t("mydata.account", chat=user.telegram_id or "-", since=_day(user.created_at, turn)),
            t("mydata.follows", places=", ".join(places) if places else "-"),
            t(
                "mydata.news",
                state=t("mydata.news.off") if user.opted_out_at else t("mydata.news.on"),
            ),
        ]
        if roles:
            held = ", ".join(
                f"{t(f'role.{r.role}')} {village_label(turn, r.village_code)}".strip()
                for r in roles
            )
            account.append(t("mydata.roles", roles=held))
        for consent in consents:
            key = "mydata.consent.given" if consent.given else "mydata.consent.refused"
            account.append(
                t(key, version=consent.text_version, date=_day(consent.created_at, turn))
            )
        turn.say(Reply("\n".join(account)))

        document: dict[str, Any] = {
            "account": {
                "telegram_chat": user.telegram_id,
                "language": user.language,
                "created_at": _iso(user.created_at),
                "news_stopped_at": _iso(user.opted_out_at),
            },
            "follows": [{"village": f.village_code, "desa_adat": f.desa_adat_id} for f in follows],
            "roles": [
                {"role": r.role, "village": r.village_code, "desa_adat": r.desa_adat_id}
                for r in roles
            ],
            "consents": [
                {
                    "given": c.given,
                    "text_version": c.text_version,
                    "method": c.method,
                    "language": c.language,
                    "at": _iso(c.created_at),
                }
                for c in consents
            ],
            "applications": [],
        }
        for app in applications:
            text, data = await self._application(turn, app)
            turn.say(Reply(text))
            document["applications"].append(data)
        if turn.draft is not None:
            ctx = await self.registration.context(turn)
            lines = [t("mydata.draft"), *REGISTRATION.summary_lines(turn.answers, ctx)]
            turn.say(Reply("\n".join(lines)))
            document["draft"] = {"answers": turn.answers, "started_at": _iso(turn.draft.created_at)}
        await audit.record(session, "mydata", actor=user, target=f"user:{user.id}")
        name = f"dataku-{s.today().isoformat()}.json"
        content = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode()
        turn.say(Reply(t("mydata.file"), attachment=Attachment(name, content)))

    async def _application(self, turn: Turn, app: Application) -> tuple[str, dict[str, Any]]:
        """One application for /dataku: its answers, history and who saw it; and as data."""
        t, s = turn.t, turn.services
        answers, ctx = turn.answers_of(app)
        lines = [
            t(
                "mydata.application",
                reference=app.reference or "-",
                status=status_name(t, app.status),
                date=_day(app.submitted_at, turn),
            )
        ]
        if app.erased_at is not None:
            lines.append(t("mydata.application.erased", date=_day(app.erased_at, turn)))
        lines += REGISTRATION.summary_lines(answers, ctx) if answers else []
        history = await history_of(turn.session, app.id)
        for step in history:
            lines.append(
                t(
                    "status.history.line",
                    date=_day(step.at, turn),
                    status=status_name(t, step.to_status),
                )
            )
        traces = await trail_of(turn.session, app, s.settings)
        lines.append("")
        lines.append(t("mydata.seen.header"))
        lines += [self._trace_line(t, turn, trace) for trace in traces] or [t("mydata.seen.none")]
        data = {
            "reference": app.reference,
            "status": app.status,
            "submitted_at": _iso(app.submitted_at),
            "erased_at": _iso(app.erased_at),
            "answers": answers,
            "kpj_number": app.kpj_number,
            "covered_from": app.covered_from.isoformat() if app.covered_from else None,
            "status_note": app.status_note,
            "history": [
                {"at": _iso(h.at), "from": h.from_status, "to": h.to_status, "note": h.note}
                for h in history
            ],
            "seen_by": [
                {
                    "at": _iso(trace.at),
                    "action": trace.action,
                    "by": trace.actor_label or f"#{trace.actor_user_id}",
                }
                for trace in traces
            ],
        }
        return "\n".join(lines), data

    def _trace_line(self, t: Translator, turn: Turn, trace: Trace) -> str:
        who = (
            t("mydata.seen.by_office")
            if trace.actor_label
            else t("mydata.seen.by_user", number=trace.actor_user_id or "-")
        )
        action = trace.action if trace.action in SEEN_ACTIONS else "other"
        return t(f"mydata.seen.{action}", date=_day(trace.at, turn), who=who)

    # ------------------------------------------------------------------ corrections

    async def correct_button(self, turn: Turn, pick: Correct) -> None:
        """From /status: edit an application not yet verified, or ask staff for a correction."""
        app = await own_application(turn, pick.app)
        if app is None:
            return
        if pick.action == "edit" and app.status == ApplicationStatus.SUBMITTED:
            if turn.draft is not None:
                turn.text("correction.finish_draft")
                return
            claimed = app.review_claimed_until is not None and app.review_claimed_until > utcnow()
            if claimed:
                # A member of staff has the card open right now.
                turn.text("correction.in_review", reference=app.reference or "-")
                return
            await self.registration.open_correction(turn, app)
        elif pick.action in ("ask", "edit") and app.status in (
            ApplicationStatus.VERIFIED,
            ApplicationStatus.REGISTERED,
        ):
            set_mode(turn, UserMode.CORRECTION, {"app": app.id})
            turn.text("correction.ask", reference=app.reference or "-")
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")

    async def correction_typed(self, turn: Turn, text: str) -> None:
        """What the worker wants corrected, in their own words: a request for staff."""
        app_id = int(mode_state(turn).get("app") or 0)
        try:
            # Staff read it: nothing hidden in it, as in every answer of the form.
            cleaned = " ".join(read_typed(text).split())
        except InvalidInput as exc:
            turn.error(exc)
            return
        if not MIN_CORRECTION <= text_length(cleaned) <= MAX_CORRECTION:
            turn.text("correction.error.length", low=MIN_CORRECTION, high=MAX_CORRECTION)
            return
        set_mode(turn, None)
        app = await own_application(turn, app_id)
        if app is None:
            return
        s = turn.services
        encrypted = s.cipher.encrypt({"text": cleaned})
        await record_request(turn.session, CORRECTION, app, turn.user, text_enc=encrypted)
        turn.text("correction.sent", reference=app.reference or "-")

    # ------------------------------------------------------------------ /hapus

    async def cmd_erase(self, turn: Turn, _args: str = "") -> None:
        """First of two confirmations: what goes and what stays."""
        t = turn.t
        set_mode(turn, UserMode.ERASE, {"step": 1})
        buttons = (
            (Button(t("erase.button.yes"), encode(Erase("first"))),),
            (Button(t("erase.button.no"), encode(Erase("no"))),),
        )
        turn.say(Reply(t("erase.ask"), buttons=buttons))

    async def erase_button(self, turn: Turn, pick: Erase) -> None:
        """The answers to the two confirmations."""
        t = turn.t
        step = mode_state(turn).get("step") if turn.user.mode == UserMode.ERASE else None
        if pick.step == "no" and step is not None:
            set_mode(turn, None)
            turn.text("erase.kept")
        elif pick.step == "first" and step == 1:
            set_mode(turn, UserMode.ERASE, {"step": 2})
            buttons = (
                (Button(t("erase.button.final"), encode(Erase("final"))),),
                (Button(t("erase.button.no"), encode(Erase("no"))),),
            )
            turn.say(Reply(t("erase.ask_again"), buttons=buttons))
        elif pick.step == "final" and step == 2:
            set_mode(turn, None)
            await self.registration.discard(turn)
            s = turn.services
            count = await erase_person(
                turn.session, s.settings, s.cipher, turn.user, today=s.today()
            )
            turn.text("erase.done", count=count)
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")


async def erase_person(
    session: AsyncSession, settings: Settings, cipher: Cipher, user: User, *, today: date
) -> int:
    """Erase a person's personal data and withdraw their consent; return applications erased.

    Their drafts must be gone already (the caller's turn holds the draft). Sent applications
    keep a tombstone; waiting ones are withdrawn first, so staff do not review an empty card.
    """
    now = utcnow()
    applications = list(
        await session.scalars(
            select(Application).where(
                owned_by(user.id),
                Application.status != ApplicationStatus.DRAFT,
                Application.erased_at.is_(None),
            )
        )
    )
    for app in applications:
        if app.status in WAITING:
            await change_status(
                session,
                settings,
                cipher,
                app,
                ApplicationStatus.CANCELLED,
                actor=Actor(user),
                today=today,
                note=ERASED,
                notify=False,
            )
        erase_application(app, now)
        await session.execute(
            update(StatusChange)
            .where(StatusChange.application_id == app.id)
            .values(kpj_number=None, note=None)
        )
    session.add(
        Consent(
            user_id=user.id,
            given=False,
            method="chat",
            text_version=questions.CONSENT_VERSION,
            language=user.language or settings.default_language,
        )
    )
    await session.execute(delete(Follow).where(Follow.user_id == user.id))
    if user.telegram_id is not None:
        # Notices already written to them are not sent any more.
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.chat_id == user.telegram_id,
                OutboxMessage.state == "pending",
                OutboxMessage.priority == 1,
            )
        )
    user.erased_at = now
    user.opted_out_at = user.opted_out_at or now
    user.mode, user.mode_state = None, None
    await audit.record(
        session,
        ERASED,
        actor=user,
        target=f"user:{user.id}",
        applications=[a.reference for a in applications],
    )
    for app in applications:
        await audit.record(session, ERASED, actor=user, target=app.reference)
    return len(applications)


def erase_application(app: Application, now: datetime) -> None:
    """Leave a tombstone: the reference, the dates and the status stay; personal data goes."""
    app.answers_enc = None
    app.nik_hash = None
    app.claim_code_hash = None
    app.village_code = None
    app.desa_adat_id = None
    app.occupation = None
    app.kpj_number = None
    app.status_note = ERASED
    app.flow_state = "{}"
    app.review_claimed_by = None
    app.review_claimed_until = None
    app.erased_at = now
