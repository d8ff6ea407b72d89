"""The conversation with a worker: menu, consent, the registration form, status, calculator.

Channel-free: it takes an `Incoming` and returns an `Outcome` of `Reply` objects. All state
is in the database (the user row and the draft application), so a restart, or another
process, continues exactly where the person stopped.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core import areas as area_data
from bot.core.contribution import (
    PAYMENT_PERIODS,
    Contribution,
    Program,
    check_income,
    contribution_for,
)
from bot.core.dates import check_age, format_date, parse_date
from bot.core.errors import InvalidInput
from bot.core.form import (
    BY_KEY,
    OCCUPATIONS,
    QUESTIONS,
    RELATIONSHIPS,
    TOTAL_STEPS,
    FormState,
    Kind,
    Question,
    applicable,
    next_question,
    parse_email,
    parse_occupation_text,
    parse_person_name,
    parse_place,
    previous_question,
    store_answer,
)
from bot.core.messages import Button, Incoming, InputKind, Outcome, Reply, button_rows
from bot.core.money import format_rupiah, parse_rupiah
from bot.core.nik import Gender, NikInfo, mask_nik, parse_nik
from bot.core.phone import format_phone_local, normalise_phone
from bot.db.models import (
    ACTIVE_STATUSES,
    Application,
    Broadcast,
    Consent,
    DesaAdat,
    User,
    utcnow,
)
from bot.i18n import Translator, translator
from bot.services.areas import AreaDirectory
from bot.services.routing import Router
from bot.services.turn import Services, Turn

CONSENT_VERSION = "2026-11-v1"
VILLAGES_PER_PAGE = 8
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# Steps of a draft that are not form questions.
CONSENT = "consent"
SUMMARY = "summary"
EDIT_PICK = "edit_pick"


def new_claim_code() -> str:
    """A code a resident types (/klaim CODE) to take over an application a leader filled."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def new_reference() -> str:
    """A short, unguessable application reference such as BC-7KQ2M9."""
    return "BC-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


class Conversation:
    """Handles every input of a person, whatever the channel."""

    def __init__(self, services: Services) -> None:
        self.s = services
        # Commands, buttons and typed steps are declared once, in the routing table.
        self.router = Router(self)
        # Submitting follows the domicile's village through the residents' feature.
        self.community = self.router.features.following

    # ------------------------------------------------------------------ entry point

    async def handle(self, session: AsyncSession, user: User, incoming: Incoming) -> Outcome:
        """Answer one input; the caller commits the session afterwards."""
        turn = Turn(session, user, self.s)
        # Writing to the bot again means they have not (or no longer) blocked it.
        user.blocked_at = None
        await self._load_draft(turn)
        if not await self.router.handle(turn, incoming):
            await self._registration_input(turn, incoming)
        self._save_draft(turn)
        return turn.outcome

    async def _registration_input(self, turn: Turn, incoming: Incoming) -> None:
        """What the routing table left: unknown commands, form buttons, the form itself."""
        if incoming.kind is InputKind.COMMAND:
            turn.text("command.unknown")
            await self._repeat_or_menu(turn)
        elif incoming.kind is InputKind.BUTTON:
            await self._button(turn, incoming.text)
        elif turn.draft is not None and turn.draft.step is not None:
            await self._draft_input(turn, incoming)
        elif incoming.kind is InputKind.MEDIA:
            turn.text("media.hint.idle")
            self._menu(turn)
        else:
            turn.text("idle.not_understood")
            self._menu(turn)

    async def remember_message(
        self, session: AsyncSession, track: str, chat_id: int, message_id: int
    ) -> None:
        """The channel sent a tracked reply: keep its message id where the core needs it."""
        kind, _, number = track.partition(":")
        if kind == "broadcast" and number.isdigit():
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == int(number), Broadcast.progress_chat_id == chat_id)
                .values(progress_message_id=message_id)
            )

    # ------------------------------------------------------------------ draft storage

    async def _load_draft(self, turn: Turn) -> None:
        turn.draft = await turn.session.scalar(
            select(Application)
            .where(Application.user_id == turn.user.id, Application.status == "draft")
            .order_by(Application.id.desc())
            .limit(1)
        )
        if turn.draft is not None:
            if turn.draft.answers_enc:
                turn.answers = self.s.cipher.decrypt(turn.draft.answers_enc)
            raw = json.loads(turn.draft.flow_state or "{}")
            turn.state = FormState(**{k: v for k, v in raw.items() if k in FormState().__dict__})

    def _save_draft(self, turn: Turn) -> None:
        draft = turn.draft
        if draft is None or draft.status != "draft":
            return
        draft.answers_enc = self.s.cipher.encrypt(turn.answers) if turn.answers else None
        draft.flow_state = json.dumps(asdict(turn.state), sort_keys=True)
        draft.language = turn.t.language
        nik = turn.answers.get("nik")
        draft.nik_hash = self.s.cipher.nik_hash(nik) if nik else None
        village = turn.answers.get("village")
        draft.village_code = village if isinstance(village, str) else None
        adat = turn.answers.get("desa_adat")
        draft.desa_adat_id = adat.get("id") if isinstance(adat, dict) else None
        occupation = turn.answers.get("occupation")
        draft.occupation = occupation if isinstance(occupation, str) else None
        draft.updated_at = utcnow()

    async def _discard_draft(self, turn: Turn) -> None:
        """Delete the draft and its answers; the consent record stays, unlinked."""
        if turn.draft is None:
            return
        await turn.session.execute(
            update(Consent)
            .where(Consent.application_id == turn.draft.id)
            .values(application_id=None)
        )
        await turn.session.delete(turn.draft)
        await turn.session.flush()
        turn.draft = None
        turn.answers = {}
        turn.state = FormState()

    # ------------------------------------------------------------------ commands and menu

    def _menu(self, turn: Turn) -> None:
        t = turn.t
        register = "menu.continue" if turn.draft is not None else "menu.register"
        turn.say(
            Reply(
                t("menu.prompt"),
                buttons=(
                    (Button(t(register), "menu:register"),),
                    (
                        Button(t("menu.info"), "menu:info"),
                        Button(t("menu.calculator"), "menu:iuran"),
                    ),
                    (Button(t("menu.language"), "menu:language"),),
                ),
            )
        )

    async def _cmd_start(self, turn: Turn, _args: str) -> None:
        turn.user.mode = None
        turn.text("start.greeting", minimum=format_rupiah(self._minimum_monthly()))
        if turn.draft is not None and turn.draft.step is not None:
            turn.text("start.draft_waiting")
        self._menu(turn)

    async def _cmd_register(
        self, turn: Turn, _args: str = "", village_hint: str = "", assisted: bool = False
    ) -> None:
        turn.user.mode = None
        if turn.draft is None:
            turn.draft = Application(
                user_id=turn.user.id,
                status="draft",
                step=CONSENT,
                language=turn.t.language,
                assisted_by=turn.user.id if assisted else None,
            )
            turn.session.add(turn.draft)
            await turn.session.flush()
        if village_hint:
            turn.state.extra["village_hint"] = village_hint
        elif turn.draft.step not in (CONSENT, SUMMARY, EDIT_PICK):
            turn.text("register.resumed")
        turn.state.confirm_cancel = False
        await self._show_step(turn)

    async def _cmd_language(self, turn: Turn, _args: str) -> None:
        turn.say(
            Reply(
                turn.t("language.prompt"),
                buttons=((Button("Bahasa Indonesia", "lang:id"), Button("English", "lang:en")),),
            )
        )

    async def _cmd_cancel(self, turn: Turn, _args: str) -> None:
        turn.user.mode = None
        if turn.draft is None:
            turn.text("cancel.nothing")
            self._menu(turn)
            return
        turn.state.confirm_cancel = True
        self._ask_cancel(turn)

    def _ask_cancel(self, turn: Turn) -> None:
        t = turn.t
        turn.say(
            Reply(
                t("cancel.confirm"),
                buttons=(
                    (Button(t("cancel.yes"), "cancel:yes"), Button(t("cancel.no"), "cancel:no")),
                ),
            )
        )

    async def _cmd_help(self, turn: Turn, _args: str) -> None:
        draft = turn.draft
        if draft is not None and draft.step in BY_KEY:
            turn.text(BY_KEY[draft.step].help_key)
            await self._show_step(turn)
        elif draft is not None and draft.step == CONSENT:
            turn.text("consent.help")
            await self._show_step(turn)
        else:
            turn.say(Reply(await self.router.help_text(turn)))

    async def _cmd_info(self, turn: Turn, _args: str) -> None:
        t = turn.t
        turn.say(
            Reply(
                t("info.text", minimum=format_rupiah(self._minimum_monthly())),
                buttons=(
                    (
                        Button(t("menu.register"), "menu:register"),
                        Button(t("menu.calculator"), "menu:iuran"),
                    ),
                ),
            )
        )

    async def _cmd_status(self, turn: Turn, _args: str) -> None:
        t = turn.t
        applications = (
            await turn.session.scalars(
                select(Application)
                .where(Application.user_id == turn.user.id, Application.status != "draft")
                .order_by(Application.id)
            )
        ).all()
        lines = [t("status.header")]
        for app in applications:
            when = app.submitted_at or app.created_at
            local = when.astimezone(self.s.settings.tz)
            lines.append(
                t(
                    "status.line",
                    reference=app.reference or "-",
                    status=t(f"status.{app.status}"),
                    date=format_date(local.date(), t.language),
                )
            )
        if turn.draft is not None and turn.draft.step in BY_KEY:
            lines.append(
                t("status.unfinished", step=BY_KEY[turn.draft.step].step, total=TOTAL_STEPS)
            )
        if len(lines) == 1:
            turn.say(
                Reply(
                    t("status.none"),
                    buttons=((Button(t("menu.register"), "menu:register"),),),
                )
            )
            return
        turn.say(Reply("\n\n".join(lines)))

    async def _cmd_calculator(self, turn: Turn, _args: str) -> None:
        turn.user.mode = "iuran"
        turn.say(
            Reply(
                turn.t("calculator.prompt"),
                buttons=self._income_buttons(turn, "iuran"),
            )
        )

    async def _calculator_answer(self, turn: Turn, text: str) -> None:
        try:
            income = parse_rupiah(text)
            check_income(income, self.s.settings.rates)
        except InvalidInput as exc:
            turn.error(exc)
            await self._cmd_calculator(turn, "")
            return
        self._calculator_result(turn, income)

    def _calculator_result(self, turn: Turn, income: int) -> None:
        t = turn.t
        turn.user.mode = None
        basic = self._contribution(income, with_jht=False)
        full = self._contribution(income, with_jht=True)
        periods = "\n".join(
            t(
                "calculator.period_line",
                months=months,
                basic=format_rupiah(basic.monthly * months),
                full=format_rupiah(full.monthly * months),
            )
            for months in PAYMENT_PERIODS
        )
        turn.text(
            "calculator.result",
            income=format_rupiah(income),
            jkk=format_rupiah(basic.jkk),
            jkm=format_rupiah(basic.jkm),
            jht=format_rupiah(full.jht),
            basic=format_rupiah(basic.monthly),
            full=format_rupiah(full.monthly),
            periods=periods,
        )
        register = "menu.continue" if turn.draft is not None else "menu.register"
        turn.say(
            Reply(
                t("calculator.next"),
                buttons=(
                    (
                        Button(t(register), "menu:register"),
                        Button(t("menu.calculator_again"), "menu:iuran"),
                    ),
                ),
            )
        )

    async def _repeat_or_menu(self, turn: Turn) -> None:
        if turn.draft is not None and turn.draft.step is not None:
            await self._show_step(turn)
        else:
            self._menu(turn)

    # ------------------------------------------------------------------ buttons

    async def _button(self, turn: Turn, data: str) -> None:
        scope, _, rest = data.partition(":")
        # Menu, language and calculator buttons are routed by the table (bot.services.routing).
        if turn.draft is None:
            await self._stale(turn)
        elif scope == "cancel" and turn.state.confirm_cancel and rest in ("yes", "no"):
            await self._cancel_answer(turn, rest == "yes")
        elif scope == "consent" and turn.draft.step == CONSENT and rest in ("yes", "no"):
            await self._consent_answer(turn, rest == "yes")
        elif scope == "sum" and turn.draft.step == SUMMARY:
            await self._summary_button(turn, rest)
        elif scope == "edit" and turn.draft.step == EDIT_PICK:
            await self._edit_button(turn, rest)
        elif scope in ("f", "back", "skip"):
            step, _, value = rest.partition(":")
            if step != turn.draft.step:
                await self._stale(turn)
            elif scope == "back":
                await self._go_back(turn)
            elif scope == "skip":
                await self._skip(turn)
            else:
                await self._answer_button(turn, BY_KEY[step], value)
        else:
            await self._stale(turn)

    async def _stale(self, turn: Turn) -> None:
        """An old button, or one whose question has passed: say so and show where we are."""
        turn.outcome.stale_button = True
        turn.text("button.stale")
        await self._repeat_or_menu(turn)

    async def _menu_button(self, turn: Turn, action: str) -> None:
        """A main-menu button (routed here by the table)."""
        if action == "register":
            await self._cmd_register(turn, "")
        elif action == "info":
            await self._cmd_info(turn, "")
        elif action == "iuran":
            await self._cmd_calculator(turn, "")
        elif action == "language":
            await self._cmd_language(turn, "")
        else:
            await self._stale(turn)

    async def _set_language(self, turn: Turn, language: str) -> None:
        turn.user.language = language
        turn.t = translator(language)
        turn.outcome.language_changed = True
        turn.text("language.changed")
        if turn.draft is not None and turn.draft.step is not None:
            await self._show_step(turn)
        else:
            self._menu(turn)

    async def _cancel_answer(self, turn: Turn, confirmed: bool) -> None:
        turn.state.confirm_cancel = False
        if confirmed:
            await self._discard_draft(turn)
            turn.text("cancel.done")
            self._menu(turn)
        else:
            turn.text("cancel.kept")
            await self._show_step(turn)

    async def _consent_answer(self, turn: Turn, given: bool) -> None:
        assert turn.draft is not None
        assisted = turn.draft.assisted_by is not None
        turn.session.add(
            Consent(
                user_id=turn.user.id,
                application_id=turn.draft.id if given else None,
                given=given,
                method="in_person" if assisted else "chat",
                witness_user_id=turn.user.id if assisted else None,
                text_version=CONSENT_VERSION,
                language=turn.t.language,
            )
        )
        if not given:
            await self._discard_draft(turn)
            turn.text("consent.declined")
            self._menu(turn)
            return
        turn.text("consent.thanks")
        await self._goto(turn, QUESTIONS[0])

    async def _summary_button(self, turn: Turn, action: str) -> None:
        if action == "send":
            await self._submit(turn)
        elif action == "edit":
            assert turn.draft is not None
            turn.draft.step = EDIT_PICK
            await self._show_step(turn)
        elif action == "cancel":
            turn.state.confirm_cancel = True
            self._ask_cancel(turn)
        elif action == "back":
            last = applicable(turn.answers)[-1]
            await self._goto(turn, last)
        else:
            await self._stale(turn)

    async def _edit_button(self, turn: Turn, key: str) -> None:
        assert turn.draft is not None
        if key == "summary":
            turn.draft.step = SUMMARY
            await self._show_step(turn)
            return
        question = BY_KEY.get(key)
        if question is None or question.key not in _edit_targets():
            await self._stale(turn)
            return
        turn.state.editing = True
        await self._goto(turn, question)

    # ------------------------------------------------------------------ moving between steps

    async def _goto(self, turn: Turn, question: Question | None) -> None:
        """Make `question` (or the summary when None) the current step and show it."""
        assert turn.draft is not None
        leaving = BY_KEY.get(turn.draft.step or "")
        turn.state.page = 0
        if question is None:
            turn.state.editing = False
            turn.draft.step = SUMMARY
        else:
            turn.draft.step = question.key
        left_phone = leaving is not None and leaving.key == "phone" and question != leaving
        if left_phone and not any(r.remove_keyboard for r in turn.outcome.replies):
            # Take the "share my number" keyboard away once the phone question is behind us.
            turn.say(Reply(turn.t("keyboard.closed"), remove_keyboard=True))
        await self._show_step(turn)

    async def _after_answer(self, turn: Turn, question: Question) -> None:
        """Move on after a valid answer: the next question, or back to the summary."""
        if turn.state.editing:
            group = [q for q in applicable(turn.answers) if q.step == question.step]
            keys = [q.key for q in group]
            index = keys.index(question.key) if question.key in keys else len(keys)
            if index + 1 < len(group):
                await self._goto(turn, group[index + 1])
                return
        await self._goto(turn, next_question(turn.answers))

    async def _go_back(self, turn: Turn) -> None:
        assert turn.draft is not None
        if turn.state.editing:
            turn.state.editing = False
            await self._goto(turn, None)
            return
        previous = previous_question(turn.answers, turn.draft.step or "")
        if previous is None:
            if turn.draft.step == "phone":
                turn.say(Reply(turn.t("keyboard.closed"), remove_keyboard=True))
            turn.draft.step = CONSENT
            await self._show_step(turn)
        else:
            await self._goto(turn, previous)

    async def _skip(self, turn: Turn) -> None:
        assert turn.draft is not None
        question = BY_KEY[turn.draft.step or ""]
        if not self._skippable(turn, question):
            await self._stale(turn)
            return
        store_answer(turn.answers, question.key, None)
        await self._after_answer(turn, question)

    # ------------------------------------------------------------------ answers

    async def _draft_input(self, turn: Turn, incoming: Incoming) -> None:
        assert turn.draft is not None
        step = turn.draft.step or ""
        if turn.state.confirm_cancel:
            turn.text("cancel.use_buttons")
            self._ask_cancel(turn)
            return
        question = BY_KEY.get(step)
        if incoming.kind is InputKind.MEDIA:
            turn.text("media.hint.question" if question else "media.hint.buttons")
            await self._show_step(turn)
            return
        if question is None:
            turn.text("answer.use_buttons")
            await self._show_step(turn)
            return
        if incoming.kind is InputKind.TEXT and _means_back(turn.t, incoming.text):
            await self._go_back(turn)
            return
        try:
            if incoming.kind is InputKind.CONTACT:
                value = self._contact_answer(question, incoming)
            else:
                value = await self._text_answer(turn, question, incoming.text)
        except InvalidInput as exc:
            turn.error(exc)
            await self._show_step(turn)
            return
        if value is _ALREADY_HANDLED:
            return
        await self._accept(turn, question, value)

    async def _accept(self, turn: Turn, question: Question, value: Any) -> None:
        if question.key == "nik" and not await self._nik_is_free(turn, str(value)):
            await self._show_step(turn)
            return
        if question.key == "village":
            village = self.s.areas.village_by_code[str(value)]
            if turn.answers.get("district") != village.district_code:
                store_answer(turn.answers, "district", village.district_code)
        store_answer(turn.answers, question.key, value)
        if question.key == "phone":
            saved = turn.t("phone.saved", phone=format_phone_local(str(value)))
            turn.say(Reply(saved, remove_keyboard=True))
        await self._after_answer(turn, question)

    def _contact_answer(self, question: Question, incoming: Incoming) -> str:
        if question.kind is not Kind.PHONE:
            raise InvalidInput("contact.unexpected")
        if question.key == "phone" and not incoming.contact_is_own:
            raise InvalidInput("phone.error.not_own")
        return normalise_phone(incoming.contact_phone or "", mobile_only=question.key == "phone")

    async def _text_answer(self, turn: Turn, question: Question, text: str) -> Any:
        """Validate a typed answer for `question`; raise InvalidInput when it cannot be used."""
        text = text.strip()
        skip_words = (turn.t("nav.skip").lower(), "-", "lewati")
        if self._skippable(turn, question) and text.lower() in skip_words:
            return None
        key = question.key
        if key == "nik":
            return self._parse_nik(text).nik
        if key in ("full_name", "heir_name"):
            return parse_person_name(text)
        if key == "birth_date":
            return self._check_birth_date(parse_date(text))
        if key in ("phone", "heir_phone"):
            return normalise_phone(text, mobile_only=key == "phone")
        if key == "banjar":
            return parse_place(text)
        if key == "occupation_other":
            return parse_occupation_text(text)
        if key == "income":
            income = parse_rupiah(text)
            check_income(income, self.s.settings.rates)
            return income
        if key == "email":
            return parse_email(text)
        if key == "village":
            return await self._typed_village(turn, text)
        if key == "desa_adat":
            return await self._typed_desa_adat(turn, text)
        # A choice question: a typed label of one of its buttons counts as pressing it.
        options = await self._options(turn, question)
        wanted = area_data.normalise_name(text)
        for button in options:
            if area_data.normalise_name(button.label) == wanted or button.data == text:
                return await self._choice_value(turn, question, button.data.rsplit(":", 1)[-1])
        aliases = {
            "gender": {
                "l": "L",
                "laki": "L",
                "pria": "L",
                "male": "L",
                "p": "P",
                "wanita": "P",
                "female": "P",
            },
        }.get(key, {})
        if wanted in aliases:
            return aliases[wanted]
        raise InvalidInput("answer.pick_button")

    def _skippable(self, turn: Turn, question: Question) -> bool:
        """Skippable by the form, or the phone of a resident registered by a leader."""
        assisted = turn.draft is not None and turn.draft.assisted_by is not None
        return question.skippable or (assisted and question.key == "phone")

    def _parse_nik(self, text: str) -> NikInfo:
        return parse_nik(text, known_provinces=self.s.areas.province_codes, today=self.s.today())

    def _check_birth_date(self, birth: date) -> str:
        settings = self.s.settings
        check_age(birth, self.s.today(), settings.min_age, settings.max_age)
        return birth.isoformat()

    async def _nik_is_free(self, turn: Turn, nik: str) -> bool:
        """Whether no active application holds this NIK; says what to do if one does."""
        holder = await turn.session.scalar(
            select(Application).where(
                Application.nik_hash == self.s.cipher.nik_hash(nik),
                Application.status.in_(ACTIVE_STATUSES),
            )
        )
        if holder is None:
            return True
        if holder.user_id == turn.user.id:
            turn.text("nik.duplicate.own", reference=holder.reference or "-")
        else:
            turn.text("nik.duplicate.other")
        return False

    async def _answer_button(self, turn: Turn, question: Question, value: str) -> None:
        """A button of the current question was pressed."""
        if question.key == "village" and value.startswith("page"):
            page = value.removeprefix("page")
            if page.isdigit():
                turn.state.page = int(page)
                turn.say(await self._render_question(turn, question, edit=True))
                return
        if question.key == "regency" and value == "hint":
            village = self.s.areas.village_by_code.get(str(turn.state.extra.get("village_hint")))
            if village is None:
                await self._stale(turn)
                return
            district = self.s.areas.district_by_code[village.district_code]
            store_answer(turn.answers, "regency", district.regency_code)
            store_answer(turn.answers, "district", district.code)
            await self._accept(turn, BY_KEY["village"], village.code)
            return
        if question.key == "birth_date" and value == "nik":
            info = self._nik_info(turn)
            if info is None or info.birth_date is None:
                await self._stale(turn)
                return
            try:
                chosen: Any = self._check_birth_date(info.birth_date)
            except InvalidInput as exc:
                turn.error(exc)
                await self._show_step(turn)
                return
            await self._accept(turn, question, chosen)
            return
        if question.key == "village" and value in self.s.areas.village_by_code:
            # Any village of the branch: the list is paged and "did you mean" offers others.
            await self._accept(turn, question, value)
            return
        options = await self._options(turn, question)
        if not any(b.data.rsplit(":", 1)[-1] == value for b in options):
            await self._stale(turn)
            return
        await self._accept(turn, question, await self._choice_value(turn, question, value))

    async def _choice_value(self, turn: Turn, question: Question, value: str) -> Any:
        if question.key == "income":
            return int(value)
        if question.key == "period":
            return int(value)
        if question.key == "programs":
            return ["jkk", "jkm", "jht"] if value == "jht" else ["jkk", "jkm"]
        if question.key == "desa_adat":
            adat = await turn.session.get(DesaAdat, int(value))
            return {"id": adat.id, "name": adat.name} if adat else None
        return value

    async def _typed_village(self, turn: Turn, text: str) -> Any:
        areas = self.s.areas
        district = turn.answers.get("district")
        pool = areas.villages.get(str(district), [])
        matches = area_data.match_names(text, [(v.code, v.name) for v in pool], limit=5)
        if matches and _clear_winner(matches):
            return matches[0][0]
        if not matches:
            regency = str(turn.answers.get("regency"))
            others = [v for v in areas.villages_of_regency(regency) if v.district_code != district]
            matches = area_data.match_names(text, [(v.code, v.name) for v in others], limit=5)
        if not matches:
            district_name = areas.district_by_code[str(district)].name
            raise InvalidInput("village.error.not_found", district=district_name)
        t = turn.t
        buttons = []
        for code, _score in matches:
            village = areas.village_by_code[code]
            label = village.name
            if village.district_code != district:
                label = t(
                    "village.in_district",
                    village=village.name,
                    district=areas.district_by_code[village.district_code].name,
                )
            buttons.append(Button(label, f"f:village:{code}"))
        turn.say(Reply(t("village.did_you_mean"), buttons=button_rows(buttons, 1)))
        return _ALREADY_HANDLED

    async def _typed_desa_adat(self, turn: Turn, text: str) -> Any:
        candidates = await self._desa_adat_candidates(turn)
        matches = area_data.match_names(text, [(str(d.id), d.name) for d in candidates], limit=1)
        if matches and matches[0][1] >= 0.8:
            chosen = next(d for d in candidates if str(d.id) == matches[0][0])
            return {"id": chosen.id, "name": chosen.name}
        return {"id": None, "name": parse_place(text)}

    async def _desa_adat_candidates(self, turn: Turn) -> list[DesaAdat]:
        village = turn.answers.get("village")
        district = turn.answers.get("district")
        rows = await turn.session.scalars(
            select(DesaAdat)
            .where((DesaAdat.village_code == village) | (DesaAdat.district_code == district))
            .order_by(DesaAdat.village_code != village, DesaAdat.name)
            .limit(12)
        )
        return list(rows)

    def _nik_info(self, turn: Turn) -> NikInfo | None:
        nik = turn.answers.get("nik")
        if not nik:
            return None
        try:
            return self._parse_nik(str(nik))
        except InvalidInput:
            return None

    # ------------------------------------------------------------------ submission

    async def _submit(self, turn: Turn) -> None:
        assert turn.draft is not None
        missing = next_question(turn.answers)
        if missing is not None:
            await self._goto(turn, missing)
            return
        nik = str(turn.answers["nik"])
        if not await self._nik_is_free(turn, nik):
            turn.state.editing = True
            await self._goto(turn, BY_KEY["nik"])
            return
        draft = turn.draft
        self._save_draft(turn)
        for _attempt in range(5):
            try:
                async with turn.session.begin_nested():
                    draft.reference = new_reference()
                    draft.status = "submitted"
                    draft.step = None
                    draft.submitted_at = utcnow()
                    await turn.session.flush()
                break
            except IntegrityError:
                # Either the reference collided (try another) or the NIK was taken meanwhile.
                draft.status = "draft"
                draft.step = SUMMARY
                if not await self._nik_is_free(turn, nik):
                    turn.state.editing = True
                    await self._goto(turn, BY_KEY["nik"])
                    return
        else:
            raise RuntimeError("could not allocate an application reference")
        if draft.assisted_by is not None:
            code = new_claim_code()
            draft.claim_code_hash = self.s.cipher.keyed_hash(code)
            turn.text("submitted.assisted", reference=draft.reference, code=code)
        else:
            await self.community.follow_domicile(turn.session, turn.user, turn.answers)
            turn.text("submitted", reference=draft.reference)
        turn.draft = None

    # ------------------------------------------------------------------ rendering

    async def _show_step(self, turn: Turn) -> None:
        """Show the current step of the draft again."""
        assert turn.draft is not None
        step = turn.draft.step
        t = turn.t
        if step == CONSENT:
            assisted = turn.draft.assisted_by is not None
            text = t(
                "consent.text",
                version=CONSENT_VERSION,
                days=self.s.settings.draft_retention_days,
            )
            if assisted:
                text = t("consent.assisted_intro") + "\n\n" + text
            yes, no = (
                ("consent.assisted_yes", "consent.assisted_no")
                if assisted
                else (
                    "consent.yes",
                    "consent.no",
                )
            )
            turn.say(
                Reply(
                    text,
                    buttons=((Button(t(yes), "consent:yes"),), (Button(t(no), "consent:no"),)),
                )
            )
        elif step == SUMMARY:
            turn.say(self._render_summary(turn))
        elif step == EDIT_PICK:
            buttons = [Button(t(BY_KEY[k].label_key), f"edit:{k}") for k in _edit_targets()]
            rows = (*button_rows(buttons, 2), (Button(t("edit.back"), "edit:summary"),))
            turn.say(Reply(t("edit.prompt"), buttons=rows))
        elif step in BY_KEY:
            turn.say(await self._render_question(turn, BY_KEY[step]))

    async def _render_question(
        self, turn: Turn, question: Question, *, edit: bool = False
    ) -> Reply:
        t = turn.t
        parts = [t("progress", step=question.step, total=TOTAL_STEPS)]
        parts.append(t(question.prompt_key, **self._prompt_params(turn, question)))
        if question.key in turn.answers and turn.answers[question.key] is not None:
            parts.append(t("answer.current", value=self._display(turn, question.key)))
        options = await self._options(turn, question)
        per_row = 1 if question.key in ("programs", "period", "birth_date", "desa_adat") else 2
        rows = list(button_rows(options, per_row))
        if question.key == "village":
            rows.extend(self._page_row(turn))
        nav = [Button(t("nav.back"), f"back:{question.key}")]
        if self._skippable(turn, question):
            nav.append(Button(t("nav.skip"), f"skip:{question.key}"))
        rows.append(tuple(nav))
        if question.key == "phone" and turn.draft is not None and turn.draft.assisted_by:
            # The resident has no phone of their own: a typed number (a relative's) or Lewati.
            parts.append(t("phone.assisted_hint"))
        elif question.key == "phone":
            # A message carries one keyboard: the contact button, with Kembali as a typed answer.
            return Reply(
                "\n\n".join(parts),
                contact_button=t("phone.share_button"),
                typed_buttons=(t("nav.back"),),
            )
        return Reply("\n\n".join(parts), buttons=tuple(rows), edit=edit)

    def _prompt_params(self, turn: Turn, question: Question) -> dict[str, Any]:
        key = question.key
        t = turn.t
        if key == "gender":
            info = self._nik_info(turn)
            if info is None:
                return {"suggestion": ""}
            label = t("gender.male" if info.gender is Gender.MALE else "gender.female")
            return {"suggestion": t("gender.nik_suggests", gender=label)}
        if key == "district":
            regency = self.s.areas.regency_by_code.get(str(turn.answers.get("regency")))
            return {"regency": regency.name if regency else ""}
        if key in ("village", "banjar", "desa_adat"):
            district = self.s.areas.district_by_code.get(str(turn.answers.get("district")))
            village = self.s.areas.village_by_code.get(str(turn.answers.get("village")))
            kind = village.kind if village else "desa"
            return {
                "district": district.name if district else "",
                "village": village.name if village else "",
                "unit": t("unit.lingkungan" if kind == "kelurahan" else "unit.banjar"),
            }
        if key == "programs":
            income = int(turn.answers.get("income") or self.s.settings.min_income)
            basic = self._contribution(income, with_jht=False)
            full = self._contribution(income, with_jht=True)
            return {
                "income": format_rupiah(income),
                "jkk": format_rupiah(basic.jkk),
                "jkm": format_rupiah(basic.jkm),
                "jht": format_rupiah(full.jht),
                "basic": format_rupiah(basic.monthly),
                "full": format_rupiah(full.monthly),
            }
        if key == "period":
            return {"monthly": format_rupiah(self._answers_contribution(turn.answers, 1).monthly)}
        return {}

    async def _options(self, turn: Turn, question: Question) -> list[Button]:
        t = turn.t
        key = question.key
        f = f"f:{key}:"
        areas = self.s.areas
        if key == "birth_date":
            info = self._nik_info(turn)
            if info is None or info.birth_date is None:
                return []
            label = t("birth_date.use_nik", date=format_date(info.birth_date, t.language))
            return [Button(label, f + "nik")]
        if key == "gender":
            return [Button(t("gender.male"), f + "L"), Button(t("gender.female"), f + "P")]
        if key == "regency":
            buttons = [Button(r.name, f + r.code) for r in areas.regencies]
            hint = areas.village_by_code.get(str(turn.state.extra.get("village_hint")))
            if hint is not None:
                label = t("village.from_link", village=hint.name)
                buttons.insert(0, Button(label, f + "hint"))
            return buttons
        if key == "district":
            regency = str(turn.answers.get("regency"))
            return [Button(d.name, f + d.code) for d in areas.districts.get(regency, [])]
        if key == "village":
            villages = areas.villages.get(str(turn.answers.get("district")), [])
            start = turn.state.page * VILLAGES_PER_PAGE
            return [Button(v.name, f + v.code) for v in villages[start : start + VILLAGES_PER_PAGE]]
        if key == "desa_adat":
            candidates = await self._desa_adat_candidates(turn)
            return [Button(d.name, f + str(d.id)) for d in candidates]
        if key == "occupation":
            return [Button(t(f"occupation.{o}"), f + o) for o in OCCUPATIONS]
        if key == "income":
            return list(self._income_buttons(turn, f.rstrip(":"), flat=True))
        if key == "programs":
            income = int(turn.answers.get("income") or self.s.settings.min_income)
            basic = self._contribution(income, with_jht=False)
            full = self._contribution(income, with_jht=True)
            return [
                Button(t("programs.basic", amount=format_rupiah(basic.monthly)), f + "basic"),
                Button(t("programs.full", amount=format_rupiah(full.monthly)), f + "jht"),
            ]
        if key == "period":
            monthly = self._answers_contribution(turn.answers, 1).monthly
            return [
                Button(
                    t(f"period.option.{months}", amount=format_rupiah(monthly * months)),
                    f + str(months),
                )
                for months in PAYMENT_PERIODS
            ]
        if key == "heir_relationship":
            return [Button(t(f"relationship.{r}"), f + r) for r in RELATIONSHIPS]
        return []

    def _page_row(self, turn: Turn) -> list[tuple[Button, ...]]:
        villages = self.s.areas.villages.get(str(turn.answers.get("district")), [])
        page = turn.state.page
        row = []
        if page > 0:
            row.append(Button(turn.t("village.previous"), f"f:village:page{page - 1}"))
        if (page + 1) * VILLAGES_PER_PAGE < len(villages):
            row.append(Button(turn.t("village.next"), f"f:village:page{page + 1}"))
        return [tuple(row)] if row else []

    def _income_buttons(self, turn: Turn, prefix: str, *, flat: bool = False) -> Any:
        buttons = [
            Button(format_rupiah(amount), f"{prefix}:{amount}")
            for amount in self.s.settings.income_options
        ]
        return buttons if flat else button_rows(buttons, 2)

    def _render_summary(self, turn: Turn) -> Reply:
        t = turn.t
        lines = [t("summary.header")]
        shown: set[str] = set()
        for question in applicable(turn.answers):
            if question.key in shown or question.key in ("regency", "district"):
                continue
            shown.add(question.key)
            lines.append(
                t(
                    "summary.line",
                    label=t(question.label_key),
                    value=self._display(turn, question.key),
                )
            )
        contribution = self._answers_contribution(turn.answers, int(turn.answers.get("period", 1)))
        lines.append("")
        lines.append(self._contribution_text(turn, contribution))
        lines.append("")
        lines.append(t("summary.check"))
        return Reply(
            "\n".join(lines),
            buttons=(
                (Button(t("summary.send"), "sum:send"),),
                (Button(t("summary.edit"), "sum:edit"), Button(t("summary.cancel"), "sum:cancel")),
                (Button(t("nav.back"), "sum:back"),),
            ),
        )

    def _contribution_text(self, turn: Turn, c: Contribution) -> str:
        t = turn.t
        items = [
            t("contribution.jkk", amount=format_rupiah(c.jkk)),
            t("contribution.jkm", amount=format_rupiah(c.jkm)),
        ]
        if Program.JHT in c.programs:
            items.append(t("contribution.jht", amount=format_rupiah(c.jht)))
        return t(
            "contribution.summary",
            items="\n".join(items),
            monthly=format_rupiah(c.monthly),
            months=c.period_months,
            per_payment=format_rupiah(c.per_payment),
        )

    def _display(self, turn: Turn, key: str) -> str:
        """An answer as a person reads it (NIK masked)."""
        return display_answer(turn.t, self.s.areas, turn.answers, key)

    def _contribution(self, income: int, *, with_jht: bool) -> Contribution:
        programs = [Program.JKK, Program.JKM] + ([Program.JHT] if with_jht else [])
        return contribution_for(income, programs, 1, self.s.settings.rates)

    def _answers_contribution(self, answers: dict[str, Any], months: int) -> Contribution:
        return answers_contribution(answers, months, self.s.settings)

    def _minimum_monthly(self) -> int:
        return self._contribution(self.s.settings.min_income, with_jht=False).monthly


_ALREADY_HANDLED = object()


def _means_back(t: Translator, text: str) -> bool:
    """Typing the Kembali button's label (or plain "kembali"/"back") goes back."""
    wanted = area_data.normalise_name(text)
    return wanted in {area_data.normalise_name(t("nav.back")), "kembali", "back"}


def _clear_winner(matches: list[tuple[str, float]]) -> bool:
    """An exact name, or one small typo away with no close rival: take it without asking."""
    best = matches[0][1]
    if best >= 1.0:
        return True
    runner_up = matches[1][1] if len(matches) > 1 else 0.0
    return best >= 0.85 and best - runner_up >= 0.1


def _edit_targets() -> list[str]:
    """The first question of every progress step: one "edit" button each."""
    seen: dict[int, str] = {}
    for question in QUESTIONS:
        seen.setdefault(question.step, question.key)
    return list(seen.values())


def answers_contribution(answers: dict[str, Any], months: int, settings: Settings) -> Contribution:
    """The contribution the answers add up to."""
    income = int(answers.get("income") or settings.min_income)
    programs = [Program(p) for p in answers.get("programs") or ["jkk", "jkm"]]
    return contribution_for(income, programs, months, settings.rates)


def display_answer(t: Translator, areas: AreaDirectory, answers: dict[str, Any], key: str) -> str:
    """One answer as text for a screen; NIK masked, "-" when skipped."""
    value = answers.get(key)
    if value is None or value == "":
        return "-"
    if key == "nik":
        return mask_nik(str(value))
    if key == "birth_date":
        return format_date(date.fromisoformat(str(value)), t.language)
    if key == "gender":
        return t("gender.male" if value == "L" else "gender.female")
    if key in ("phone", "heir_phone"):
        return format_phone_local(str(value))
    if key == "regency":
        regency = areas.regency_by_code.get(str(value))
        return regency.name if regency else str(value)
    if key == "district":
        district = areas.district_by_code.get(str(value))
        return district.name if district else str(value)
    if key == "village":
        village = areas.village_by_code.get(str(value))
        if village is None:
            return str(value)
        district = areas.district_by_code[village.district_code]
        regency = areas.regency_by_code[district.regency_code]
        return t(
            f"village.describe.{village.kind}",
            village=village.name,
            district=district.name,
            regency=regency.name,
        )
    if key == "desa_adat":
        return str(value.get("name") or "-") if isinstance(value, dict) else "-"
    if key == "occupation":
        return t(f"occupation.{value}")
    if key == "heir_relationship":
        return t(f"relationship.{value}")
    if key == "income":
        return format_rupiah(int(value))
    if key == "programs":
        return " + ".join(str(p).upper() for p in value)
    if key == "period":
        return t(f"period.label.{int(value)}")
    return str(value)


async def purge_stale_drafts(session: AsyncSession, older_than: timedelta) -> int:
    """Delete drafts untouched for `older_than`; return how many were deleted."""
    cutoff = datetime.now().astimezone() - older_than
    stale = select(Application.id).where(
        Application.status == "draft", Application.updated_at < cutoff
    )
    ids = list((await session.scalars(stale)).all())
    if not ids:
        return 0
    await session.execute(
        update(Consent).where(Consent.application_id.in_(ids)).values(application_id=None)
    )
    await session.execute(delete(Application).where(Application.id.in_(ids)))
    return len(ids)
