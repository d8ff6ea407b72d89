"""The registration form engine: consent, the questions, confirmations, summary and submission.

It reads the form declaration (`bot/core/questions.py`) and nothing else about a question:
asking, validating, storing, going back, editing from the summary and submitting are the
same for every question. The draft application is the state: its step, its encrypted
answers and a little plain flow state, saved inside the update's one transaction.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import areas as area_data
from bot.core import questions
from bot.core.callbacks import (
    CancelAnswer,
    ConfirmAnswer,
    ConsentAnswer,
    EditPick,
    FormAnswer,
    FormBack,
    FormPage,
    FormSkip,
    Payload,
    SummaryAction,
    decode,
    encode,
)
from bot.core.contribution import Contribution, Program
from bot.core.errors import InvalidInput
from bot.core.form import (
    Contact,
    Form,
    FormContext,
    FormState,
    Kind,
    Lookup,
    Question,
    Stage,
)
from bot.core.messages import (
    Button,
    Incoming,
    InputKind,
    Reply,
    button_rows,
    can_change_keyboard,
)
from bot.core.money import format_rupiah
from bot.core.policy import POLICY, Action
from bot.core.questions import DidYouMean, contribution_of
from bot.core.states import ApplicationStatus
from bot.core.text import read_typed
from bot.db.models import (
    ACTIVE_STATUSES,
    Application,
    Consent,
    DesaAdat,
    User,
    owned_by,
    utcnow,
)
from bot.services import audit
from bot.services.export_ahead import fill_export_cells
from bot.services.guesses import nik_try_allowed
from bot.services.requests import DISPUTE, record_request
from bot.services.roles import grants_of
from bot.services.turn import Services, Turn

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# Steps of a draft that are not questions (the column holds a question key otherwise).
CONSENT_STEP = Stage.CONSENT.value
SUMMARY_STEP = Stage.SUMMARY.value
# Flow-state keys: the consent text version agreed to, and the step to go back to after
# agreeing to a newer one.
CONSENT_SEEN = "consent_version"
RESUME = "resume"
# Flow-state key of a draft that corrects a sent application (its id).
CORRECTS = "corrects"
# Flow-state key of a sent assisted application: its claim code, encrypted, until claimed.
CLAIM = "claim"
EDIT_STEP = Stage.EDIT_PICK.value
# Words that mean a button of a stage, besides its label (normalised).
YES_WORDS = ("ya", "iya", "y", "yes", "ok", "oke", "setuju", "saya setuju", "boleh", "benar")
NO_WORDS = ("tidak", "tdk", "no", "gak", "nggak", "enggak", "tolak", "tidak setuju")
BACK_WORDS = ("kembali", "back")
SKIP_WORDS = ("-", "lewati", "skip")
# Flow state: the one-time "share my number" keyboard was used and hid itself, but the client
# still holds it until a message takes it away.
HIDDEN_KEYBOARD = "hidden_keyboard"

AfterSubmit = Callable[[AsyncSession, User, Application], Awaitable[None]]


def new_claim_code() -> str:
    """A code a resident types (/klaim CODE) to take over an application a leader filled."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def new_reference() -> str:
    """A short, unguessable application reference such as BC-7KQ2M9."""
    return "BC-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


@dataclass(frozen=True)
class Choice:
    """A button of a stage that is not a question, and the words that mean it when typed."""

    action: str
    label: str
    words: tuple[str, ...] = ()


def pick_typed(text: str, choices: Sequence[Choice], *, prefixes: bool = True) -> str | None:
    """The action a typed text means: a label, a listed word, or an unambiguous beginning."""
    wanted = area_data.normalise_name(text)
    if not wanted:
        return None
    for choice in choices:
        if area_data.normalise_name(choice.label) == wanted or wanted in choice.words:
            return choice.action
    if not prefixes or len(wanted) < 3:
        return None
    found = {
        c.action
        for c in choices
        if (label := area_data.normalise_name(c.label)).startswith(wanted)
        or f" {wanted}" in f" {label}"
    }
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class ButtonStage:
    """A step of the flow answered with buttons: consent, the summary, its edit list, a query.

    The flow is these stages plus the questions; showing a stage, pressing one of its buttons
    and typing one of its words all go through this one description.
    """

    # Its buttons' payload type: one text field, the choice's action.
    payload: type[Payload]
    render: Callable[[Turn], Awaitable[Reply]]
    choices: Callable[[Turn], list[Choice]]
    act: Callable[[Turn, str], Awaitable[None]]
    # What a typed answer that means none of the buttons repeats (default: the whole stage).
    repeat: Callable[[Turn], Awaitable[Reply]] | None = None

    def button(self, choice: Choice) -> Button:
        """The button of one choice."""
        make: Callable[[str], Payload] = self.payload
        return Button(choice.label, encode(make(choice.action)))

    @staticmethod
    def action_of(pressed: Payload) -> str:
        """The action a pressed button of this stage carries."""
        return str(next(iter(vars(pressed).values())))


class Registration:
    """Asks the declared form, one step at a time, and submits the application."""

    def __init__(
        self,
        services: Services,
        form: Form,
        after_submit: AfterSubmit,
        show_menu: Callable[[Turn], None],
    ) -> None:
        self.s = services
        self.form = form
        self.after_submit = after_submit
        # Where a person lands when the registration ends without being sent.
        self.show_menu = show_menu
        self.stages: dict[Stage, ButtonStage] = {
            Stage.CONSENT: ButtonStage(
                ConsentAnswer,
                self._consent_full,
                self._consent_choices,
                self._consent_answer,
                # The whole consent text once is enough; a refusal repeats only the question.
                repeat=self._consent_short,
            ),
            Stage.SUMMARY: ButtonStage(
                SummaryAction, self._summary, self._summary_choices, self._summary_action
            ),
            Stage.EDIT_PICK: ButtonStage(
                EditPick, self._edit_pick, self._edit_choices, self._edit_action
            ),
            Stage.CONFIRM: ButtonStage(
                ConfirmAnswer, self._confirm_reply, self._confirm_choices, self._confirm_answer
            ),
        }

    # ------------------------------------------------------------------ the draft

    async def load(self, turn: Turn) -> None:
        """Read the person's draft (if any) into the turn."""
        turn.draft = await turn.session.scalar(
            select(Application)
            .where(
                Application.user_id == turn.user.id,
                Application.status == ApplicationStatus.DRAFT,
            )
            .order_by(Application.id.desc())
            .limit(1)
        )
        if turn.draft is not None:
            if turn.draft.answers_enc:
                turn.answers = self.s.cipher.decrypt(turn.draft.answers_enc)
            raw = json.loads(turn.draft.flow_state or "{}")
            turn.state = FormState(**{k: v for k, v in raw.items() if k in FormState().__dict__})

    def save(self, turn: Turn) -> None:
        """Write the turn's answers and flow state back to the draft."""
        draft = turn.draft
        if draft is None or draft.status != ApplicationStatus.DRAFT:
            return
        draft.answers_enc = self.s.cipher.encrypt(turn.answers) if turn.answers else None
        draft.flow_state = json.dumps(asdict(turn.state), sort_keys=True)
        draft.language = turn.t.language
        for question in self.form.questions:
            if question.indexed is not None:
                value = turn.answers.get(question.key)
                setattr(draft, question.indexed.column, self._indexed_value(question, value))
        draft.updated_at = utcnow()

    def _indexed_value(self, question: Question, value: Any) -> Any:
        assert question.indexed is not None
        if value is None:
            return None
        if question.indexed.hashed:
            return self.s.cipher.nik_hash(str(value))
        return question.indexed.value(value)

    async def discard(self, turn: Turn) -> None:
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

    async def _still_assisting(self, turn: Turn) -> bool:
        """A form filled for a resident goes on only while the leader may still do that.

        A leader whose role was revoked mid-way is told so, and the resident's unsent answers
        are deleted (the leader may no longer hold them); the refusal is audited.
        """
        draft = turn.draft
        if draft is None or draft.assisted_by is None:
            return True
        held = await grants_of(turn.session, turn.user, self.s.settings.admin_telegram_ids)
        if POLICY.scopes_for(held, Action.ASSIST):
            return True
        await audit.record(
            turn.session, "denied", actor=turn.user, target=f"application:{draft.id}", what="assist"
        )
        await self.discard(turn)
        turn.text("assist.revoked")
        return False

    def stage(self, turn: Turn) -> Stage | None:
        """Where the draft stands (None without a draft in progress)."""
        if turn.draft is None or turn.draft.step is None:
            return None
        step = turn.draft.step
        if step in (CONSENT_STEP, SUMMARY_STEP, EDIT_STEP):
            return Stage(step)
        if "confirm" in turn.state.extra:
            return Stage.CONFIRM
        return Stage.QUESTION

    def current(self, turn: Turn) -> Question | None:
        """The question being asked, if the draft is at one."""
        if turn.draft is None:
            return None
        return self.form.by_key.get(turn.draft.step or "")

    def in_progress(self, turn: Turn) -> bool:
        """Whether the person is somewhere in the form."""
        return self.stage(turn) is not None

    def help_key(self, turn: Turn) -> str | None:
        """The help text of where the person is, if any."""
        question = self.current(turn)
        if question is not None:
            return question.help_key
        if self.stage(turn) is Stage.CONSENT:
            return "consent.help"
        return None

    def progress_step(self, turn: Turn) -> int | None:
        """The progress step of the current question (for /status)."""
        question = self.current(turn)
        return question.step if question is not None else None

    # ------------------------------------------------------------------ entry

    async def open_correction(self, turn: Turn, app: Application) -> None:
        """Edit a sent application not yet verified: a draft with its answers, at the summary.

        Sending the draft writes the answers back into the application (same reference, same
        place in the review queue); cancelling it, or leaving it, changes nothing.
        """
        turn.user.mode = None
        turn.answers = self.s.cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        turn.state = FormState()
        turn.state.extra[CORRECTS] = app.id
        turn.draft = Application(
            user_id=turn.user.id,
            status=ApplicationStatus.DRAFT,
            step=SUMMARY_STEP,
            language=turn.t.language,
        )
        turn.session.add(turn.draft)
        await turn.session.flush()
        await audit.record(turn.session, "correction_open", actor=turn.user, target=app.reference)
        await self.show(turn)

    async def _make_export_cells(self, turn: Turn, app_id: int) -> None:
        """A sent application's export cells, made now (see bot.services.export_ahead)."""
        s = self.s
        await fill_export_cells(
            turn.session, s.cipher, s.areas, s.settings, ids=[app_id], today=s.today()
        )

    async def _apply_correction(self, turn: Turn, app_id: int) -> None:
        """Write a correction draft back into its application, if that can still be edited."""
        draft = turn.draft
        assert draft is not None
        app = await turn.session.get(Application, app_id)
        if (
            app is None
            or app.user_id != turn.user.id
            or app.status != ApplicationStatus.SUBMITTED
            or app.erased_at is not None
        ):
            # Verified (or withdrawn) while it was being edited: staff may have copied it.
            await self.discard(turn)
            turn.text("correction.too_late")
            return
        self.save(turn)
        app.answers_enc = draft.answers_enc
        for question in self.form.questions:
            if question.indexed is not None:
                column = question.indexed.column
                setattr(app, column, getattr(draft, column))
        app.language = draft.language
        await turn.session.flush()
        await self._make_export_cells(turn, app.id)
        reference = app.reference or "-"
        await self.discard(turn)
        await audit.record(turn.session, "corrected", actor=turn.user, target=app.reference)
        turn.text("correction.saved", reference=reference)
        self._drop_hidden_keyboard(turn)

    async def start(self, turn: Turn, *, village_hint: str = "", assisted: bool = False) -> None:
        """Begin (or continue) the registration."""
        turn.user.mode = None
        if turn.draft is None:
            turn.draft = Application(
                user_id=turn.user.id,
                status=ApplicationStatus.DRAFT,
                step=CONSENT_STEP,
                language=turn.t.language,
                assisted_by=turn.user.id if assisted else None,
            )
            turn.session.add(turn.draft)
            await turn.session.flush()
        if village_hint:
            turn.state.extra["village_hint"] = village_hint
        elif self.stage(turn) is Stage.QUESTION:
            turn.text("register.resumed")
        turn.state.confirm_cancel = False
        await self.show(turn)

    async def show(self, turn: Turn) -> None:
        """Show the current step of the draft again."""
        stage = self.stage(turn)
        if stage in self.stages:
            turn.say(await self.stages[stage].render(turn))
        elif stage is Stage.QUESTION:
            question = self.current(turn)
            assert question is not None
            turn.say(await self._render_question(turn, question))

    # ------------------------------------------------------------------ context

    async def context(self, turn: Turn, question: Question | None = None) -> FormContext:
        """What the declared functions of `question` may read."""
        settings = self.s.settings
        draft = turn.draft
        assisted = draft is not None and draft.assisted_by is not None
        ctx = FormContext(
            answers=turn.answers,
            t=turn.t,
            areas=self.s.areas,
            rates=settings.rates,
            today=self.s.today(),
            income_options=settings.income_options,
            min_age=settings.min_age,
            max_age=settings.max_age,
            branch_address=settings.branch_address,
            call_centre=settings.call_centre,
            assisted=assisted,
            own_screen=not assisted,
            page=turn.state.page,
            village_hint=turn.state.extra.get("village_hint"),
        )
        if question is not None and Lookup.DESA_ADAT in question.lookups:
            near = question.near(turn.answers) if question.near else None
            ctx.desa_adat = await self._desa_adat_near(turn, near)
        return ctx

    async def _desa_adat_near(self, turn: Turn, code: str | None) -> list[tuple[int, str]]:
        village = self.s.areas.village(code or "")
        district = village.district_code if village else None
        rows = await turn.session.execute(
            select(DesaAdat.id, DesaAdat.name)
            .where(
                (DesaAdat.village_code == (village.code if village else None))
                | (DesaAdat.district_code == district)
            )
            .order_by(DesaAdat.village_code != (village.code if village else None), DesaAdat.name)
            .limit(12)
        )
        return [(int(number), str(name)) for number, name in rows.all()]

    # ------------------------------------------------------------------ rendering

    async def _consent_full(self, turn: Turn) -> Reply:
        return self._consent_reply(turn, short=False)

    async def _consent_short(self, turn: Turn) -> Reply:
        return self._consent_reply(turn, short=True)

    def _consent_reply(self, turn: Turn, *, short: bool) -> Reply:
        t = turn.t
        assert turn.draft is not None
        assisted = turn.draft.assisted_by is not None
        if short:
            text = t("consent.short")
        else:
            text = t("consent.text", days=self.s.settings.draft_retention_days)
            if assisted:
                text = t("consent.assisted_intro") + "\n\n" + text
        rows = self._rows(Stage.CONSENT, self._consent_choices(turn), (1, 1))
        return Reply(text, buttons=rows)

    def _consent_choices(self, turn: Turn) -> list[Choice]:
        t = turn.t
        assert turn.draft is not None
        assisted = turn.draft.assisted_by is not None
        yes, no = (
            ("consent.assisted_yes", "consent.assisted_no")
            if assisted
            else ("consent.yes", "consent.no")
        )
        return [Choice("yes", t(yes), YES_WORDS), Choice("no", t(no), NO_WORDS)]

    def _rows(
        self, stage: Stage, choices: Sequence[Choice], layout: Sequence[int]
    ) -> tuple[tuple[Button, ...], ...]:
        """A stage's buttons laid out `layout[i]` to row i."""
        spec = self.stages[stage]
        buttons = [spec.button(c) for c in choices]
        rows: list[tuple[Button, ...]] = []
        for size in layout:
            rows.append(tuple(buttons[:size]))
            buttons = buttons[size:]
        return tuple(rows)

    async def _render_question(
        self, turn: Turn, question: Question, *, edit: bool = False
    ) -> Reply:
        t = turn.t
        ctx = await self.context(turn, question)
        parts = [t("progress", step=question.step, total=self.form.total_steps)]
        parts.append(t(question.prompt_key, **question.params(ctx)))
        if turn.answers.get(question.key) is not None:
            parts.append(
                t("answer.current", value=question.display(turn.answers[question.key], ctx))
            )
        options = list(question.options(ctx)) if question.options else []
        page_row: list[Button] = []
        if question.page_size:
            start = turn.state.page * question.page_size
            if turn.state.page > 0:
                page_row.append(
                    Button(
                        t("village.previous"), encode(FormPage(question.key, turn.state.page - 1))
                    )
                )
            if start + question.page_size < len(options):
                page_row.append(
                    Button(t("village.next"), encode(FormPage(question.key, turn.state.page + 1)))
                )
            options = options[start : start + question.page_size]
        buttons = [Button(o.label, encode(FormAnswer(question.key, o.code))) for o in options]
        rows = list(button_rows(buttons, question.per_row))
        if page_row:
            rows.append(tuple(page_row))
        nav = [Button(t("nav.back"), encode(FormBack(question.key)))]
        if question.may_skip(ctx):
            nav.append(Button(t("nav.skip"), encode(FormSkip(question.key))))
        rows.append(tuple(nav))
        if question.skippable_when_assisted and ctx.assisted:
            parts.append(t(question.assisted_hint_key))
        elif question.contact is Contact.OWN:
            # A message carries one keyboard: the contact button, with Kembali as a typed answer.
            return Reply(
                "\n\n".join(parts),
                contact_button=t("phone.share_button"),
                typed_buttons=(t("nav.back"),),
            )
        return Reply("\n\n".join(parts), buttons=tuple(rows), edit=edit)

    async def _summary(self, turn: Turn) -> Reply:
        t = turn.t
        ctx = await self.context(turn)
        lines = [t("summary.header"), *self.form.summary_lines(turn.answers, ctx)]
        lines.append("")
        lines.append(contribution_text(turn, contribution_of(turn.answers, ctx.rates)))
        lines.append("")
        lines.append(t("summary.check"))
        rows = self._rows(Stage.SUMMARY, self._summary_choices(turn), (1, 2, 1))
        return Reply("\n".join(lines), buttons=rows)

    def _summary_choices(self, turn: Turn) -> list[Choice]:
        t = turn.t
        return [
            Choice("send", t("summary.send"), ("kirim", "send", "ya")),
            Choice("edit", t("summary.edit"), ("ubah", "edit", "ganti")),
            Choice("cancel", t("summary.cancel"), ("batal", "hapus", "cancel")),
            Choice("back", t("nav.back"), BACK_WORDS),
        ]

    async def _edit_pick(self, turn: Turn) -> Reply:
        t = turn.t
        choices = self._edit_choices(turn)
        # Two steps to a row, and "back to the summary" alone on the last.
        steps = len(choices) - 1
        layout = (2,) * (steps // 2) + (1,) * (steps % 2) + (1,)
        return Reply(t("edit.prompt"), buttons=self._rows(Stage.EDIT_PICK, choices, layout))

    def _edit_choices(self, turn: Turn) -> list[Choice]:
        t = turn.t
        choices = [Choice(q.key, t(q.label_key)) for q in self.form.edit_targets()]
        choices.append(Choice("summary", t("edit.back"), BACK_WORDS))
        return choices

    async def _confirm_reply(self, turn: Turn) -> Reply:
        t = turn.t
        pending = turn.state.extra.get("confirm") or {}
        text = t(str(pending.get("message")), **dict(pending.get("params") or {}))
        rows = self._rows(Stage.CONFIRM, self._confirm_choices(turn), (1, 1))
        return Reply(text, buttons=rows)

    def _confirm_choices(self, turn: Turn) -> list[Choice]:
        t = turn.t
        return [
            Choice("yes", t("confirm.yes"), (*YES_WORDS, "sudah benar")),
            Choice("no", t("confirm.change"), (*NO_WORDS, "ubah", "salah", "ganti")),
        ]

    # ------------------------------------------------------------------ buttons

    async def button(self, turn: Turn, data: str) -> bool:
        """A button of the form was pressed; False if it is not one of the form's."""
        if not await self._still_assisting(turn):
            return True
        pressed = decode(data)
        if not await self._consent_current(turn):
            return True
        if isinstance(pressed, CancelAnswer):
            if turn.state.confirm_cancel and pressed.answer in ("yes", "no"):
                await self.cancel_answer(turn, pressed.answer == "yes")
            else:
                await self.stale(turn)
            return True
        for stage, spec in self.stages.items():
            if isinstance(pressed, spec.payload):
                if self.stage(turn) is stage:
                    await spec.act(turn, spec.action_of(pressed))
                else:
                    await self.stale(turn)
                return True
        if isinstance(pressed, FormAnswer | FormBack | FormSkip | FormPage):
            question = self.current(turn)
            if (
                question is None
                or pressed.step != question.key
                or self.stage(turn) is not Stage.QUESTION
            ):
                # A button of a question that has passed (or was never asked).
                await self.stale(turn)
            elif isinstance(pressed, FormBack):
                await self.go_back(turn)
            elif isinstance(pressed, FormSkip):
                await self._skip(turn, question)
            elif isinstance(pressed, FormPage):
                await self._page(turn, question, pressed.page)
            else:
                await self._option_pressed(turn, question, pressed.value)
            return True
        return False

    async def stale(self, turn: Turn) -> None:
        """An old button, or one whose question has passed: say so and show where we are."""
        turn.outcome.stale_button = True
        turn.text("button.stale")
        if self.in_progress(turn):
            await self.show(turn)

    async def _page(self, turn: Turn, question: Question, page: int) -> None:
        if page < 0:
            await self.stale(turn)
            return
        turn.state.page = page
        turn.say(await self._render_question(turn, question, edit=True))

    async def _option_pressed(self, turn: Turn, question: Question, code: str) -> None:
        ctx = await self.context(turn, question)
        option = next(
            (o for o in (question.options(ctx) if question.options else ()) if o.code == code), None
        )
        if option is None and question.find is not None:
            option = question.find(code, ctx)
        if option is None:
            await self.stale(turn)
            return
        await self._accept(turn, question, option.value, then=option.then)

    async def _consent_answer(self, turn: Turn, action: str) -> None:
        if action not in ("yes", "no"):
            await self.stale(turn)
            return
        given = action == "yes"
        assert turn.draft is not None
        assisted = turn.draft.assisted_by is not None
        turn.session.add(
            Consent(
                user_id=turn.user.id,
                application_id=turn.draft.id if given else None,
                given=given,
                method="in_person" if assisted else "chat",
                witness_user_id=turn.user.id if assisted else None,
                text_version=questions.CONSENT_VERSION,
                language=turn.t.language,
            )
        )
        if given and not assisted:
            # Consent given again after /hapus: they may be told about their application.
            turn.user.erased_at = None
        if not given:
            await self.discard(turn)
            turn.text("consent.declined")
            self.show_menu(turn)
            return
        turn.state.extra[CONSENT_SEEN] = questions.CONSENT_VERSION
        turn.text("consent.thanks")
        resume = self.form.by_key.get(str(turn.state.extra.pop(RESUME, "")))
        await self._goto(turn, resume or self.form.questions[0])

    async def _consent_current(self, turn: Turn) -> bool:
        """Whether the draft's consent is to the current text; if not, it is asked again.

        A registration started under an older consent text stores nothing more until the
        person agrees to the new one; then it goes on from where it was.
        """
        draft = turn.draft
        if draft is None or draft.step in (CONSENT_STEP, None):
            return True
        seen = turn.state.extra.get(CONSENT_SEEN)
        if seen is None:
            # A draft from before the version was kept beside it: the consent row says which
            # text was agreed to (none found: asked again, to be safe).
            # (A correction's draft goes by the consent of the application it corrects.)
            agreed_for = [draft.id, turn.state.extra.get(CORRECTS, draft.id)]
            seen = await turn.session.scalar(
                select(Consent.text_version)
                .where(Consent.application_id.in_(agreed_for), Consent.given.is_(True))
                .order_by(Consent.id.desc())
                .limit(1)
            )
            if seen is not None:
                turn.state.extra[CONSENT_SEEN] = seen
        if seen == questions.CONSENT_VERSION:
            return True
        turn.state.extra[RESUME] = draft.step
        draft.step = CONSENT_STEP
        turn.text("consent.updated")
        await self.show(turn)
        return False

    async def _summary_action(self, turn: Turn, action: str) -> None:
        assert turn.draft is not None
        if action == "send":
            await self._submit(turn)
        elif action == "edit":
            turn.draft.step = EDIT_STEP
            await self.show(turn)
        elif action == "cancel":
            self.ask_cancel(turn)
        elif action == "back":
            await self._goto(turn, self.form.applicable(turn.answers)[-1])
        else:
            await self.stale(turn)

    async def _edit_action(self, turn: Turn, key: str) -> None:
        assert turn.draft is not None
        if key == "summary":
            turn.draft.step = SUMMARY_STEP
            await self.show(turn)
            return
        question = self.form.by_key.get(key)
        if question is None or question not in self.form.edit_targets():
            await self.stale(turn)
            return
        turn.state.editing = True
        await self._goto(turn, question)

    async def _confirm_answer(self, turn: Turn, action: str) -> None:
        pending = turn.state.extra.pop("confirm", None) or {}
        question = self.current(turn)
        if question is None or action not in ("yes", "no"):
            await self.stale(turn)
            return
        if action == "no":
            await self.show(turn)
            return
        value = self.s.cipher.decrypt(str(pending.get("value")))["v"]
        await self._accept(turn, question, value, confirmed=True)

    # ------------------------------------------------------------------ cancelling

    def ask_cancel(self, turn: Turn) -> None:
        """Ask whether to delete the unfinished registration."""
        t = turn.t
        turn.state.confirm_cancel = True
        turn.say(
            Reply(
                t("cancel.confirm"),
                buttons=(
                    (
                        Button(t("cancel.yes"), encode(CancelAnswer("yes"))),
                        Button(t("cancel.no"), encode(CancelAnswer("no"))),
                    ),
                ),
            )
        )

    def _cancel_choices(self, turn: Turn) -> list[Choice]:
        t = turn.t
        return [
            Choice("yes", t("cancel.yes"), (*YES_WORDS, "hapus")),
            Choice("no", t("cancel.no"), (*NO_WORDS, "lanjut", "lanjutkan")),
        ]

    async def cancel_answer(self, turn: Turn, confirmed: bool) -> None:
        """The answer to "delete this registration?"."""
        turn.state.confirm_cancel = False
        if confirmed:
            await self.discard(turn)
            turn.text("cancel.done")
            self.show_menu(turn)
        else:
            turn.text("cancel.kept")
            await self.show(turn)

    # ------------------------------------------------------------------ moving between steps

    async def _goto(self, turn: Turn, question: Question | None, *, back: bool = False) -> None:
        """Make `question` (or the summary when None) the current step and show it."""
        assert turn.draft is not None
        leaving = self.current(turn)
        turn.state.page = 0
        turn.state.extra.pop("confirm", None)
        if question is None:
            turn.state.editing = False
            turn.draft.step = SUMMARY_STEP
        else:
            turn.draft.step = question.key
        self._close_contact_keyboard(turn, leaving, question, back=back)
        await self.show(turn)
        self._drop_hidden_keyboard(turn)

    def _close_contact_keyboard(
        self, turn: Turn, leaving: Question | None, going: Question | None, *, back: bool = False
    ) -> None:
        left = leaving is not None and leaving.contact is Contact.OWN and going != leaving
        hidden = HIDDEN_KEYBOARD in turn.state.extra
        if left and not hidden and not any(r.remove_keyboard for r in turn.outcome.replies):
            # Take the "share my number" keyboard away once its question is behind us.
            key = "keyboard.back" if back else "keyboard.closed"
            turn.say(Reply(turn.t(key), remove_keyboard=True))

    def _drop_hidden_keyboard(self, turn: Turn) -> None:
        """Take away a "share my number" keyboard the client has hidden, in a message going anyway.

        The keyboard is one-time: once its button was pressed, the client hides it but keeps it
        behind a key in the input field. Taking it away costs no message of its own when the
        last message of this turn has no inline buttons, which is the only kind that can carry
        the removal; until then it stays hidden. A turn that shows the keyboard again replaces it.
        """
        if HIDDEN_KEYBOARD not in turn.state.extra or not turn.outcome.replies:
            return
        replies = turn.outcome.replies
        if any(r.contact_button is not None for r in replies):
            del turn.state.extra[HIDDEN_KEYBOARD]
            return
        if can_change_keyboard(replies[-1]):
            replies[-1] = replace(replies[-1], remove_keyboard=True)
            del turn.state.extra[HIDDEN_KEYBOARD]

    async def _after_answer(self, turn: Turn, question: Question) -> None:
        """Move on after a valid answer: the next question, or back to the summary."""
        if turn.state.editing:
            group = self.form.step_group(turn.answers, question)
            keys = [q.key for q in group]
            index = keys.index(question.key) if question.key in keys else len(keys)
            if index + 1 < len(group):
                await self._goto(turn, group[index + 1])
                return
        await self._goto(turn, self.form.next_question(turn.answers))

    async def go_back(self, turn: Turn) -> None:
        """One question back (or to the summary when editing from it)."""
        assert turn.draft is not None
        if turn.state.editing:
            turn.state.editing = False
            await self._goto(turn, None)
            return
        current = self.current(turn)
        previous = self.form.previous_question(turn.answers, turn.draft.step or "")
        if previous is None:
            self._close_contact_keyboard(turn, current, None, back=True)
            turn.state.extra.pop("confirm", None)
            turn.draft.step = CONSENT_STEP
            await self.show(turn)
        else:
            await self._goto(turn, previous, back=True)

    async def _skip(self, turn: Turn, question: Question) -> None:
        if not question.may_skip(await self.context(turn, question)):
            await self.stale(turn)
            return
        self.form.store(turn.answers, question.key, None)
        await self._after_answer(turn, question)

    # ------------------------------------------------------------------ typed answers

    async def typed(self, turn: Turn, incoming: Incoming) -> None:
        """Text, a contact or media sent while the form is in progress."""
        assert turn.draft is not None
        if not await self._still_assisting(turn) or not await self._consent_current(turn):
            return
        if turn.state.confirm_cancel:
            action = pick_typed(incoming.text, self._cancel_choices(turn))
            if incoming.kind is InputKind.TEXT and action is not None:
                await self.cancel_answer(turn, action == "yes")
            else:
                turn.text("cancel.use_buttons")
                self.ask_cancel(turn)
            return
        stage = self.stage(turn)
        if incoming.kind is InputKind.MEDIA:
            turn.text("media.hint.question" if stage is Stage.QUESTION else "media.hint.buttons")
            await self.show(turn)
            return
        if stage is not Stage.QUESTION:
            await self._typed_at_buttons(turn, stage, incoming)
            return
        question = self.current(turn)
        assert question is not None
        if incoming.kind is InputKind.TEXT and pick_typed(
            incoming.text, [Choice("back", turn.t("nav.back"), BACK_WORDS)], prefixes=False
        ):
            await self.go_back(turn)
            return
        ctx = await self.context(turn, question)
        try:
            if incoming.kind is InputKind.CONTACT:
                value = self._contact_answer(question, incoming, ctx)
                then: tuple[tuple[str, Any], ...] = ()
            else:
                value, then = self._text_answer(question, incoming.text, ctx)
        except DidYouMean as choices:
            buttons = [
                Button(o.label, encode(FormAnswer(question.key, o.code))) for o in choices.options
            ]
            turn.say(Reply(turn.t(choices.key), buttons=button_rows(buttons, 1)))
            return
        except InvalidInput as exc:
            turn.error(exc)
            await self.show(turn)
            return
        shared = incoming.kind is InputKind.CONTACT
        await self._accept(turn, question, value, then=then, shared=shared)

    async def _typed_at_buttons(self, turn: Turn, stage: Stage | None, incoming: Incoming) -> None:
        """Typing at a step answered with buttons: a label, a word or a prefix presses one."""
        spec = self.stages.get(stage) if stage is not None else None
        if spec is None:
            return
        typed = incoming.text if incoming.kind is InputKind.TEXT else ""
        action = pick_typed(typed, spec.choices(turn))
        if action is not None:
            await spec.act(turn, action)
            return
        turn.text("answer.use_buttons")
        turn.say(await (spec.repeat or spec.render)(turn))

    def _contact_answer(self, question: Question, incoming: Incoming, ctx: FormContext) -> Any:
        if question.contact is Contact.NO or question.parse is None:
            raise InvalidInput("contact.unexpected")
        if question.contact is Contact.OWN and not incoming.contact_is_own:
            raise InvalidInput("phone.error.not_own")
        return question.parse(incoming.contact_phone or "", ctx)

    def _text_answer(
        self, question: Question, text: str, ctx: FormContext
    ) -> tuple[Any, tuple[tuple[str, Any], ...]]:
        """Read a typed answer; raise InvalidInput (or DidYouMean) when it cannot be used.

        Every typed answer, of every question, is first read by `read_typed` (NFKC; control,
        invisible and look-alike mixed-script text refused) before its question parses it.
        """
        text = read_typed(text).strip()
        skip = (area_data.normalise_name(ctx.t("nav.skip")), *SKIP_WORDS)
        if question.may_skip(ctx) and (text in skip or area_data.normalise_name(text) in skip):
            return None, ()
        options = list(question.options(ctx)) if question.options else []
        if options:
            choices = [
                Choice(
                    o.code,
                    o.label,
                    tuple(word for word, code in question.synonyms.items() if code == o.code),
                )
                for o in options
            ]
            code = pick_typed(text, choices, prefixes=question.kind is Kind.CHOICE)
            chosen = next((o for o in options if o.code == code), None)
            if chosen is not None:
                return chosen.value, chosen.then
        if question.parse is not None:
            return question.parse(text, ctx), ()
        raise InvalidInput("answer.pick_button")

    async def _accept(
        self,
        turn: Turn,
        question: Question,
        value: Any,
        *,
        then: tuple[tuple[str, Any], ...] = (),
        confirmed: bool = False,
        shared: bool = False,
    ) -> None:
        """Store a valid answer and move on; `shared` when it came as a shared contact."""
        ctx = await self.context(turn, question)
        try:
            if question.check is not None and value is not None:
                question.check(value, ctx)
        except InvalidInput as exc:
            turn.error(exc)
            await self.show(turn)
            return
        if not await self._is_free(turn, question, value):
            await self.show(turn)
            return
        confirmation = question.confirm(value, ctx) if question.confirm and not confirmed else None
        if confirmation is not None:
            turn.state.extra["confirm"] = {
                "message": confirmation.key,
                "params": dict(confirmation.params),
                "value": self.s.cipher.encrypt({"v": value}),
            }
            await self.show(turn)
            return
        self._store(turn, question, value, ctx)
        last = question
        for key, extra in then:
            last = self.form.by_key[key]
            self._store(turn, last, extra, ctx)
        if question.contact is Contact.OWN and value is not None:
            saved = turn.t(question.saved_key, value=question.display(value, ctx))
            if shared:
                # The one-time keyboard hid itself when its button was pressed: the
                # acknowledgement joins the next question instead of a message of its own.
                turn.say(Reply(saved))
                turn.state.extra[HIDDEN_KEYBOARD] = True
            else:
                turn.say(Reply(saved, remove_keyboard=True))
        await self._after_answer(turn, last)

    def _store(self, turn: Turn, question: Question, value: Any, ctx: FormContext) -> None:
        if question.implies is not None and value is not None:
            for key, implied in question.implies(value, ctx):
                if turn.answers.get(key) != implied:
                    self.form.store(turn.answers, key, implied)
        self.form.store(turn.answers, question.key, value)

    async def _is_free(self, turn: Turn, question: Question, value: Any) -> bool:
        """Whether no other active application holds this answer; says what to do if one does.

        The person's own application is named. Anything else (another person's application
        holds it, or this chat tried too many different values today) gets one and the same
        sentence, which reveals nothing about whether or by whom the value is registered; a
        value held by someone else is recorded as a dispute for staff (/tinjau).
        """
        indexed = question.indexed
        if indexed is None or not indexed.unique or value is None:
            return True
        column = getattr(Application, indexed.column)
        # During a key rotation a hash may still be under the old key: look for both.
        wanted = (
            self.s.cipher.nik_hashes(str(value))
            if indexed.hashed
            else [self._indexed_value(question, value)]
        )
        holder = await turn.session.scalar(
            select(Application).where(column.in_(wanted), Application.status.in_(ACTIVE_STATUSES))
        )
        if holder is not None and holder.id == turn.state.extra.get(CORRECTS):
            # The application this draft corrects: it is the same person's own answer.
            return True
        own, refused = question.duplicate_keys
        if holder is not None and holder.user_id == turn.user.id:
            turn.text(own, reference=holder.reference or "-")
            return False
        assisted = turn.draft is not None and turn.draft.assisted_by is not None
        if not assisted and not await nik_try_allowed(
            turn.session,
            self.s.cipher,
            turn.user,
            question.key,
            str(value),
            self.s.settings.nik_tries_per_day,
        ):
            turn.text(refused)
            return False
        if holder is None:
            return True
        await record_request(turn.session, DISPUTE, holder, turn.user)
        turn.text(refused)
        return False

    # ------------------------------------------------------------------ submission

    async def _submit(self, turn: Turn) -> None:
        assert turn.draft is not None
        missing = self.form.next_question(turn.answers)
        if missing is not None:
            await self._goto(turn, missing)
            return
        unique = [q for q in self.form.questions if q.indexed and q.indexed.unique]
        for question in unique:
            if not await self._is_free(turn, question, turn.answers.get(question.key)):
                turn.state.editing = True
                await self._goto(turn, question)
                return
        corrects = turn.state.extra.get(CORRECTS)
        if corrects is not None:
            await self._apply_correction(turn, int(corrects))
            return
        draft = turn.draft
        self.save(turn)
        for _attempt in range(5):
            try:
                async with turn.session.begin_nested():
                    draft.reference = new_reference()
                    draft.status = ApplicationStatus.SUBMITTED
                    draft.step = None
                    draft.submitted_at = utcnow()
                    await turn.session.flush()
                break
            except IntegrityError:
                # Either the reference collided (try another) or an answer was taken meanwhile.
                draft.status = ApplicationStatus.DRAFT
                draft.step = SUMMARY_STEP
                for question in unique:
                    if not await self._is_free(turn, question, turn.answers.get(question.key)):
                        turn.state.editing = True
                        await self._goto(turn, question)
                        return
        else:
            raise RuntimeError("could not allocate an application reference")
        await self._make_export_cells(turn, draft.id)
        if draft.assisted_by is not None:
            code = new_claim_code()
            draft.claim_code_hash = self.s.cipher.keyed_hash(code)
            # Kept (encrypted) only so that a key rotation can hash it under the new key.
            draft.flow_state = json.dumps({CLAIM: self.s.cipher.encrypt({"code": code})})
            turn.text("submitted.assisted", reference=draft.reference, code=code)
        else:
            await self.after_submit(turn.session, turn.user, draft)
            turn.text("submitted", reference=draft.reference)
        self._drop_hidden_keyboard(turn)
        turn.draft = None


async def active_application(turn: Turn) -> Application | None:
    """The person's newest application that was sent and still holds its NIK, if any."""
    return await turn.session.scalar(
        select(Application)
        .where(owned_by(turn.user.id), Application.status.in_(ACTIVE_STATUSES))
        .order_by(Application.id.desc())
        .limit(1)
    )


def contribution_text(turn: Turn, c: Contribution) -> str:
    """The contribution per programme, per month and per payment, as the summary shows it."""
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


async def purge_stale_drafts(session: AsyncSession, older_than: timedelta) -> int:
    """Delete drafts untouched for `older_than`; return how many were deleted."""
    cutoff = datetime.now().astimezone() - older_than
    stale = select(Application.id).where(
        Application.status == ApplicationStatus.DRAFT, Application.updated_at < cutoff
    )
    ids = list((await session.scalars(stale)).all())
    if not ids:
        return 0
    await session.execute(
        update(Consent).where(Consent.application_id.in_(ids)).values(application_id=None)
    )
    await session.execute(delete(Application).where(Application.id.in_(ids)))
    return len(ids)
