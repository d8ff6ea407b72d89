"""The shape of a form: what a question declares, the stages of the flow, and moving through it.

The registration questions themselves are declared in `bot/core/questions.py`; everything
that asks, validates, stores, goes back, edits from the summary, and exports reads those
declarations through the types here. Nothing outside a declaration looks at a question's key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from bot.core.contribution import Rates

Answers = Mapping[str, Any]


class Stage(StrEnum):
    """The stages of the registration flow (drawn in docs/registration.mmd)."""

    CONSENT = "consent"
    QUESTION = "question"
    CONFIRM = "confirm"
    SUMMARY = "summary"
    EDIT_PICK = "edit_pick"
    SUBMITTED = "submitted"


# Which stage follows which; docs/registration.mmd draws exactly these (a test compares).
STAGE_TRANSITIONS: frozenset[tuple[Stage | None, Stage | None]] = frozenset(
    {
        (None, Stage.CONSENT),
        (Stage.CONSENT, Stage.QUESTION),
        (Stage.CONSENT, None),
        (Stage.QUESTION, Stage.QUESTION),
        (Stage.QUESTION, Stage.CONFIRM),
        (Stage.CONFIRM, Stage.QUESTION),
        (Stage.CONFIRM, Stage.SUMMARY),
        (Stage.QUESTION, Stage.CONSENT),
        (Stage.QUESTION, Stage.SUMMARY),
        (Stage.SUMMARY, Stage.QUESTION),
        (Stage.SUMMARY, Stage.EDIT_PICK),
        (Stage.EDIT_PICK, Stage.QUESTION),
        (Stage.EDIT_PICK, Stage.SUMMARY),
        (Stage.SUMMARY, Stage.SUBMITTED),
        (Stage.QUESTION, None),
        (Stage.SUMMARY, None),
    }
)


class Kind(StrEnum):
    """How a question is answered."""

    TEXT = "text"  # typed, validated
    CHOICE = "choice"  # one of the buttons (a typed label, prefix or synonym also works)
    PHONE = "phone"  # typed, or a shared contact
    VILLAGE = "village"  # paged buttons or a typed name


class Contact(StrEnum):
    """Whether a shared contact answers a question."""

    NO = "no"
    ANYONE = "anyone"  # any contact (an heir's number)
    OWN = "own"  # only one's own, offered with a "share my number" keyboard


class Lookup(StrEnum):
    """Data a question needs from the database before it can be asked or answered."""

    DESA_ADAT = "desa_adat"


class AreaLike(Protocol):
    """A regency, district or village as the directory holds it."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...


class VillageLike(AreaLike, Protocol):
    """A village: its district and whether it is a desa or a kelurahan."""

    @property
    def district_code(self) -> str: ...

    @property
    def kind(self) -> str: ...


class DistrictLike(AreaLike, Protocol):
    """A district (kecamatan) and its regency."""

    @property
    def regency_code(self) -> str: ...


class Directory(Protocol):
    """The branch's areas, as `bot.services.areas.AreaDirectory` holds them."""

    @property
    def province_codes(self) -> frozenset[str]: ...

    @property
    def regencies(self) -> Sequence[AreaLike]: ...

    def regency(self, code: str) -> AreaLike | None: ...

    def district(self, code: str) -> DistrictLike | None: ...

    def village(self, code: str) -> VillageLike | None: ...

    def districts_of(self, regency_code: str) -> Sequence[DistrictLike]: ...

    def villages_of(self, district_code: str) -> Sequence[VillageLike]: ...

    def villages_of_regency(self, regency_code: str) -> Sequence[VillageLike]: ...


class Text(Protocol):
    """A translator: message id and parameters in, text out."""

    language: str

    def __call__(self, key: str, /, **params: Any) -> str: ...


@dataclass(frozen=True)
class Option:
    """One button of a question: its short code (in callback data), label and stored value.

    `then` holds answers stored right after this one, for a button that answers several
    questions at once (the village of a QR link answers regency, district and village).
    """

    code: str
    label: str
    value: Any
    then: tuple[tuple[str, Any], ...] = ()


class Confirmation:
    """A valid but surprising answer: asked once whether it is right, then kept.

    Like `InvalidInput`, it carries a message id and its parameters straight to the locales.
    """

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params


@dataclass
class FormContext:
    """Everything a question's functions may read: answers so far and the world around them."""

    answers: Answers
    t: Text
    areas: Directory
    rates: Rates
    today: date
    income_options: Sequence[int] = ()
    min_age: int = 18
    max_age: int = 65
    # Where a person the bot cannot register is sent (settings BRANCH_ADDRESS, CALL_CENTRE).
    branch_address: str = ""
    call_centre: str = ""
    # A leader fills the form for a resident (assisted registration).
    assisted: bool = False
    # Screens for the person herself show the NIK in full; others see it masked.
    own_screen: bool = True
    page: int = 0
    # The village of the QR link the person came from.
    village_hint: str | None = None
    # Loaded when a question declares Lookup.DESA_ADAT: (id, name) pairs near the village.
    desa_adat: Sequence[tuple[int, str]] = ()
    # Export columns share what they compute from one row's answers (the contribution, what
    # the NIK says) here; the export empties it before each row.
    memo: dict[str, Any] = field(default_factory=dict)
    # What does not depend on the row (the names of a village's areas), kept across rows.
    cache: dict[Any, Any] = field(default_factory=dict)


Parser = Callable[[str, FormContext], Any]
Check = Callable[[Any, FormContext], None]
Confirm = Callable[[Any, FormContext], Confirmation | None]
Provider = Callable[[FormContext], Sequence[Option]]
Finder = Callable[[str, FormContext], Option | None]
Display = Callable[[Any, FormContext], str]
Params = Callable[[FormContext], Mapping[str, Any]]
Implies = Callable[[Any, FormContext], Sequence[tuple[str, Any]]]
Applies = Callable[[Answers], bool]


def _always(_answers: Answers) -> bool:
    return True


def _no_params(_ctx: FormContext) -> Mapping[str, Any]:
    return {}


def _plain(value: Any, _ctx: FormContext) -> str:
    return str(value)


Getter = Callable[[Answers], Any]


@dataclass(frozen=True)
class Column:
    """One export column: its name and how it is computed from the answers.

    `value` is the plain definition. `bind`, where given, makes the same cell from one row's
    answers alone, with what does not change between rows (translations, the directory,
    caches) bound once per export: a million rows then pay no per-cell dispatch through the
    context. A test holds every `bind` to its `value`.
    """

    name: str
    value: Callable[[Answers, FormContext], Any]
    bind: Callable[[FormContext], Getter] | None = None

    def getter(self, ctx: FormContext) -> Getter:
        """This column's cell from one row's answers; `ctx` is kept for every row."""
        if self.bind is not None:
            return self.bind(ctx)
        value = self.value

        def cell(answers: Answers) -> Any:
            # A plain column reads the row from the context (what the NIK says, and so on).
            if ctx.answers is not answers:
                ctx.answers = answers
                ctx.memo.clear()
            return value(answers, ctx)

        return cell


def row_maker(columns: Sequence[Column], ctx: FormContext) -> Callable[[Answers], list[Any]]:
    """One export row's cells from its answers, the columns bound to `ctx` once."""
    getters = [column.getter(ctx) for column in columns]

    def row(answers: Answers) -> list[Any]:
        return [get(answers) for get in getters]

    return row


@dataclass(frozen=True)
class Indexed:
    """A plain column of the application that mirrors an answer (for lookups and reports).

    `hashed` keeps only a keyed hash (the NIK); `unique` refuses an answer another active
    application already holds.
    """

    column: str
    value: Callable[[Any], Any] = lambda v: v
    hashed: bool = False
    unique: bool = False


@dataclass(frozen=True)
class Question:
    """One question, declared with everything the engine, summary and export need."""

    key: str
    step: int
    kind: Kind
    parse: Parser | None = None
    options: Provider | None = None
    # Finds a pressed button's option when it may not be on the screen any more (paged lists).
    find: Finder | None = None
    check: Check | None = None
    confirm: Confirm | None = None
    display: Display = _plain
    params: Params = _no_params
    # Answers stored before this one, derived from its value (a village implies its district).
    implies: Implies | None = None
    clears: tuple[str, ...] = ()
    applies: Applies = _always
    skippable: bool = False
    skippable_when_assisted: bool = False
    contact: Contact = Contact.NO
    lookups: frozenset[Lookup] = frozenset()
    # The village a lookup is for (the desa adat near the person's village).
    near: Callable[[Answers], str | None] | None = None
    per_row: int = 2
    page_size: int | None = None
    in_summary: bool = True
    # Typed words that mean an option (normalised text -> option code).
    synonyms: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[Column, ...] | None = None
    indexed: Indexed | None = None

    @property
    def prompt_key(self) -> str:
        """Message id of the question."""
        return f"q.{self.key}.prompt"

    @property
    def help_key(self) -> str:
        """Message id of the help for the question."""
        return f"q.{self.key}.help"

    @property
    def label_key(self) -> str:
        """Message id of the short label (summary, edit buttons, export header)."""
        return f"q.{self.key}.label"

    @property
    def saved_key(self) -> str:
        """Message id said after a shared-contact question is answered."""
        return f"q.{self.key}.saved"

    @property
    def duplicate_keys(self) -> tuple[str, str]:
        """Message ids when a unique answer is already taken: by the person, by someone else."""
        return f"{self.key}.duplicate.own", f"{self.key}.duplicate.other"

    @property
    def assisted_hint_key(self) -> str:
        """Message id of the hint shown when a leader fills this question for a resident."""
        return f"q.{self.key}.assisted_hint"

    def may_skip(self, ctx: FormContext) -> bool:
        """Whether "Lewati" is offered here."""
        return self.skippable or (self.skippable_when_assisted and ctx.assisted)

    def export_columns(self) -> tuple[Column, ...]:
        """The export columns of this question (by default its raw answer)."""
        if self.columns is not None:
            return self.columns
        return (raw_column(self.key),)


def raw_cell(value: Any) -> Any:
    """An answer as an export cell: lists joined, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "+".join(str(v).upper() for v in value)
    return value


def raw_column(key: str) -> Column:
    """A column holding an answer as it is (`raw_cell`)."""

    def bind(_ctx: FormContext) -> Getter:
        get = raw_cell

        def cell(answers: Answers) -> Any:
            value = answers.get(key)
            # Most answers are plain text or numbers: no call for them.
            kind = type(value)
            if kind is str or kind is int:
                return value
            if type(value) is list and all(type(v) is str for v in value):
                # Upper case is decided letter by letter, and "+" has none: the same text.
                return "+".join(value).upper()
            return get(value)

        return cell

    return Column(key, lambda answers, _ctx: raw_cell(answers.get(key)), bind)


@dataclass(frozen=True)
class Form:
    """An ordered set of questions and the rules for moving through them."""

    questions: tuple[Question, ...]
    # Columns before and after the questions' own (reference, status, contribution, ...).
    leading_columns: tuple[str, ...] = ()
    trailing_columns: tuple[Column, ...] = ()

    @cached_property
    def by_key(self) -> dict[str, Question]:
        """Questions by key."""
        return {q.key: q for q in self.questions}

    @cached_property
    def total_steps(self) -> int:
        """How many progress steps the person sees ("Langkah 3 dari 12")."""
        return max(q.step for q in self.questions)

    def with_question(self, question: Question, *, after: str) -> Form:
        """A copy with one more question placed after `after` (for tests and new fields)."""
        index = [q.key for q in self.questions].index(after) + 1
        questions = (*self.questions[:index], question, *self.questions[index:])
        return dataclasses.replace(self, questions=questions)

    def applicable(self, answers: Answers) -> list[Question]:
        """The questions that apply given the answers so far, in order."""
        return [q for q in self.questions if q.applies(answers)]

    def summary_lines(self, answers: Answers, ctx: FormContext) -> list[str]:
        """Every applicable answer as "label: value" (the summary, review cards, /dataku)."""
        t = ctx.t
        lines = []
        for question in self.applicable(answers):
            if not question.in_summary:
                continue
            value = answers.get(question.key)
            shown = "-" if value is None or value == "" else question.display(value, ctx)
            lines.append(t("summary.line", label=t(question.label_key), value=shown))
        return lines

    def next_question(self, answers: Answers) -> Question | None:
        """The first applicable question without an answer, or None when the form is complete."""
        for question in self.applicable(answers):
            if question.key not in answers:
                return question
        return None

    def previous_question(self, answers: Answers, current: str) -> Question | None:
        """The applicable question before `current`, or None at the first one."""
        questions = self.applicable(answers)
        keys = [q.key for q in questions]
        if current not in keys:
            return None
        index = keys.index(current)
        return questions[index - 1] if index > 0 else None

    def store(self, answers: dict[str, Any], key: str, value: Any) -> None:
        """Set an answer; if it changed, drop the answers that depended on it.

        Answers of questions that no longer apply are dropped too (an heir's relationship
        once the heir is skipped), so a stored form never holds an answer it would not ask.
        """
        changed = answers.get(key, object()) != value
        answers[key] = value
        if changed:
            for dependent in self.by_key[key].clears:
                answers.pop(dependent, None)
        for question in self.questions:
            if question.key in answers and not question.applies(answers):
                del answers[question.key]

    def edit_targets(self) -> list[Question]:
        """The first question of every progress step: one "edit" button each."""
        seen: dict[int, Question] = {}
        for question in self.questions:
            seen.setdefault(question.step, question)
        return list(seen.values())

    def step_group(self, answers: Answers, question: Question) -> list[Question]:
        """The applicable questions sharing `question`'s progress step, in order."""
        return [q for q in self.applicable(answers) if q.step == question.step]

    def columns(self) -> tuple[Column, ...]:
        """Every export column of the questions, then the trailing ones."""
        own = tuple(c for q in self.questions for c in q.export_columns())
        return (*own, *self.trailing_columns)


@dataclass
class FormState:
    """Plain (non-sensitive) conversation state kept beside the encrypted answers."""

    editing: bool = False
    page: int = 0
    confirm_cancel: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
