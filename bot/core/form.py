"""The registration form, declared once.

The conversation, the summary with its "edit" buttons, the export columns and the tests
all read `QUESTIONS`. Each question names the answer key it fills, the progress step it
belongs to, how it is answered, and whether it may be skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.core.errors import InvalidInput

Answers = Mapping[str, Any]


class Kind(StrEnum):
    """How a question is answered."""

    TEXT = "text"  # typed, validated
    CHOICE = "choice"  # one of the buttons (typing a button's label also works)
    PHONE = "phone"  # typed or a shared contact
    VILLAGE = "village"  # paged buttons or a typed name


def _always(_answers: Answers) -> bool:
    return True


@dataclass(frozen=True)
class Question:
    """One question of the form."""

    key: str
    step: int
    kind: Kind
    skippable: bool = False
    applies: Callable[[Answers], bool] = _always
    # Answers that depend on this one and must be asked again when it changes.
    clears: tuple[str, ...] = ()

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


def _has_heir(answers: Answers) -> bool:
    return bool(answers.get("heir_name"))


def _other_occupation(answers: Answers) -> bool:
    return answers.get("occupation") == "lainnya"


QUESTIONS: tuple[Question, ...] = (
    Question("nik", 1, Kind.TEXT, clears=("birth_date", "gender")),
    Question("full_name", 2, Kind.TEXT),
    Question("birth_date", 3, Kind.TEXT),
    Question("gender", 4, Kind.CHOICE),
    Question("phone", 5, Kind.PHONE),
    Question("regency", 6, Kind.CHOICE, clears=("district", "village", "desa_adat")),
    Question("district", 6, Kind.CHOICE, clears=("village", "desa_adat")),
    Question("village", 6, Kind.VILLAGE, clears=("desa_adat",)),
    Question("banjar", 6, Kind.TEXT, skippable=True),
    Question("desa_adat", 6, Kind.CHOICE, skippable=True),
    Question("occupation", 7, Kind.CHOICE, clears=("occupation_other",)),
    Question("occupation_other", 7, Kind.TEXT, applies=_other_occupation),
    Question("income", 8, Kind.TEXT),
    Question("programs", 9, Kind.CHOICE),
    Question("period", 10, Kind.CHOICE),
    Question("heir_name", 11, Kind.TEXT, skippable=True),
    Question("heir_relationship", 11, Kind.CHOICE, applies=_has_heir),
    Question("heir_phone", 11, Kind.PHONE, skippable=True, applies=_has_heir),
    Question("email", 12, Kind.TEXT, skippable=True),
)

BY_KEY: dict[str, Question] = {q.key: q for q in QUESTIONS}
TOTAL_STEPS = max(q.step for q in QUESTIONS)

# No official list exists (DOMAIN.md); these are the jobs the branch names most, "lainnya" asks.
OCCUPATIONS: tuple[str, ...] = (
    "petani",
    "nelayan",
    "pedagang",
    "ojek",
    "sopir",
    "buruh_bangunan",
    "juru_parkir",
    "pengrajin",
    "seniman",
    "pemangku",
    "prajuru_adat",
    "lainnya",
)

RELATIONSHIPS: tuple[str, ...] = ("pasangan", "anak", "orang_tua", "saudara", "lainnya")


@dataclass
class FormState:
    """Plain (non-sensitive) conversation state kept beside the encrypted answers."""

    editing: bool = False
    page: int = 0
    confirm_cancel: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def applicable(answers: Answers) -> list[Question]:
    """The questions that apply given the answers so far, in order."""
    return [q for q in QUESTIONS if q.applies(answers)]


def next_question(answers: Answers) -> Question | None:
    """The first applicable question without an answer, or None when the form is complete."""
    for question in applicable(answers):
        if question.key not in answers:
            return question
    return None


def previous_question(answers: Answers, current: str) -> Question | None:
    """The applicable question before `current`, or None at the first one."""
    questions = applicable(answers)
    keys = [q.key for q in questions]
    if current not in keys:
        return None
    index = keys.index(current)
    return questions[index - 1] if index > 0 else None


def store_answer(answers: dict[str, Any], key: str, value: Any) -> None:
    """Set an answer; if it changed, drop the answers that depended on it."""
    changed = answers.get(key, object()) != value
    answers[key] = value
    if changed:
        for dependent in BY_KEY[key].clears:
            answers.pop(dependent, None)
    if key == "heir_name" and not value:
        answers.pop("heir_relationship", None)
        answers.pop("heir_phone", None)
    if key == "occupation" and value != "lainnya":
        answers.pop("occupation_other", None)


_SPACES = re.compile(r"\s+")
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '.,\-][^\W\d_]*)*$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FREE_TEXT = re.compile(r"^[\w .,'/()\-&]+$")


def clean_spaces(text: str) -> str:
    """Trim and collapse runs of whitespace."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def parse_person_name(text: str) -> str:
    """A person's full name as on the KTP: letters, spaces and a few marks, 2 to 100 characters."""
    name = clean_spaces(text)
    if len(name) < 2:
        raise InvalidInput("name.error.short")
    if len(name) > 100:
        raise InvalidInput("name.error.long")
    if any(ch.isdigit() for ch in name):
        raise InvalidInput("name.error.digits")
    if not _NAME_CHARS.match(name) or sum(ch.isalpha() for ch in name) < 2:
        raise InvalidInput("name.error.chars")
    return name


def parse_place(text: str) -> str:
    """A banjar, dusun or similar place name typed by the person."""
    value = clean_spaces(text)
    if len(value) < 2 or not any(ch.isalpha() for ch in value):
        raise InvalidInput("place.error.short")
    if len(value) > 60:
        raise InvalidInput("place.error.long")
    if not _FREE_TEXT.match(value):
        raise InvalidInput("place.error.chars")
    return value


def parse_occupation_text(text: str) -> str:
    """A job described in the person's own words."""
    value = clean_spaces(text)
    if len(value) < 3 or not any(ch.isalpha() for ch in value):
        raise InvalidInput("occupation.error.short")
    if len(value) > 60:
        raise InvalidInput("occupation.error.long")
    if not _FREE_TEXT.match(value):
        raise InvalidInput("occupation.error.chars")
    return value


def parse_email(text: str) -> str:
    """An email address, lower-cased."""
    value = text.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value) or ".." in value:
        raise InvalidInput("email.error.invalid")
    return value
