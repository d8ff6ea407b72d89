"""Button data: typed payloads, built and parsed by one codec.

Wire form: `tag:field:field…` (the tag names the payload type; fields in declaration order,
an absent optional field is empty). Telegram allows 64 bytes of callback data, so `encode`
refuses anything longer when the button is built, not when a person presses it. Data that
no longer parses (a button from before a change, or forged) decodes to `Stale`, which still
says which feature made it, so that feature can answer it sensibly. A number field holds
ASCII digits from 0 to the largest row id (`bot.core.numbers`): anything else, negative or
too big for the database, decodes to `Stale` as well, so no handler queries with it. To
change a payload's fields, give it a new tag and list the old one in `RETIRED`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar, get_type_hints

from bot.core.numbers import whole_number

MAX_BYTES = 64
SEPARATOR = ":"


class Payload:
    """Base of every button payload; subclasses are frozen dataclasses with a `TAG`."""

    TAG: ClassVar[str]


P = TypeVar("P", bound=type[Payload])
_TYPES: dict[str, type[Payload]] = {}
# Tags of payload types that were replaced; their buttons decode to Stale(tag).
RETIRED: frozenset[str] = frozenset()


def payload(cls: P) -> P:
    """Register a payload type with the codec (a class decorator)."""
    if cls.TAG in _TYPES:
        raise ValueError(f"callback tag {cls.TAG!r} declared twice")
    _TYPES[cls.TAG] = cls
    return cls


@dataclass(frozen=True)
class Stale(Payload):
    """Data that matches no current payload; `tag` is the feature's tag when recognised."""

    TAG: ClassVar[str] = "?"
    tag: str | None
    data: str


def encode(value: Payload) -> str:
    """The callback data of a payload; ValueError if it cannot be sent to Telegram."""
    parts = [value.TAG]
    for f in fields(value):  # type: ignore[arg-type]
        item = getattr(value, f.name)
        text = "" if item is None else str(item)
        if SEPARATOR in text:
            raise ValueError(f"{value.TAG}.{f.name} may not contain {SEPARATOR!r}: {text!r}")
        parts.append(text)
    data = SEPARATOR.join(parts)
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def _tag_of(data: str) -> str | None:
    # Tags may hold a separator themselves ("sc:scope"); the longest match wins.
    best: str | None = None
    for tag in (*_TYPES, *RETIRED):
        if (data == tag or data.startswith(tag + SEPARATOR)) and (
            best is None or len(tag) > len(best)
        ):
            best = tag
    return best


def decode(data: str) -> Payload:
    """The payload of some callback data; `Stale` when it is old, unknown or malformed."""
    tag = _tag_of(data)
    cls = _TYPES.get(tag or "")
    if cls is None:
        return Stale(tag, data)
    rest = data[len(tag or "") + 1 :]
    specs = fields(cls)  # type: ignore[arg-type]
    raw = rest.split(SEPARATOR, len(specs) - 1) if specs else []
    if len(raw) != len(specs) or (not specs and rest):
        return Stale(tag, data)
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for spec, text in zip(specs, raw, strict=True):
        kind = hints[spec.name]
        optional = type(None) in getattr(kind, "__args__", ())
        if text == "":
            if not optional and kind is not str:
                return Stale(tag, data)
            values[spec.name] = None if optional else ""
        elif kind in (int, int | None):
            number = whole_number(text)
            if number is None:
                return Stale(tag, data)
            values[spec.name] = number
        else:
            values[spec.name] = text
    return cls(**values)


# ---------------------------------------------------------------- registration form
# The form engine's buttons; the step they belong to travels with them.


@payload
@dataclass(frozen=True)
class FormAnswer(Payload):
    """An option of a form question, by the option's code."""

    TAG: ClassVar[str] = "f"
    step: str
    value: str


@payload
@dataclass(frozen=True)
class FormBack(Payload):
    """Back from a form question."""

    TAG: ClassVar[str] = "back"
    step: str


@payload
@dataclass(frozen=True)
class FormSkip(Payload):
    """Skip an optional form question."""

    TAG: ClassVar[str] = "skip"
    step: str


@payload
@dataclass(frozen=True)
class FormPage(Payload):
    """Another page of a long option list (the villages of a kecamatan)."""

    TAG: ClassVar[str] = "pg"
    step: str
    page: int


@payload
@dataclass(frozen=True)
class ConfirmAnswer(Payload):
    """Keep ("yes") or change ("no") an answer the bot queried."""

    TAG: ClassVar[str] = "ok"
    answer: str


@payload
@dataclass(frozen=True)
class ConsentAnswer(Payload):
    """Yes or no to the consent text."""

    TAG: ClassVar[str] = "consent"
    answer: str


@payload
@dataclass(frozen=True)
class SummaryAction(Payload):
    """A button under the summary: send, edit, cancel, back."""

    TAG: ClassVar[str] = "sum"
    action: str


@payload
@dataclass(frozen=True)
class EditPick(Payload):
    """Which answer to change from the summary ("summary" to go back)."""

    TAG: ClassVar[str] = "edit"
    key: str


@payload
@dataclass(frozen=True)
class CancelAnswer(Payload):
    """Yes or no to discarding the draft."""

    TAG: ClassVar[str] = "cancel"
    answer: str


# ---------------------------------------------------------------- menu and settings


@payload
@dataclass(frozen=True)
class MenuAction(Payload):
    """A main-menu button: register, info, iuran, language."""

    TAG: ClassVar[str] = "menu"
    action: str


@payload
@dataclass(frozen=True)
class LanguagePick(Payload):
    """A language from the language picker."""

    TAG: ClassVar[str] = "lang"
    language: str


@payload
@dataclass(frozen=True)
class CalculatorAmount(Payload):
    """An income button of the contribution calculator."""

    TAG: ClassVar[str] = "iuran"
    amount: int


# ---------------------------------------------------------------- residents and leaders


@payload
@dataclass(frozen=True)
class FollowPick(Payload):
    """A step of /ikuti: level r (regency), d (district) or v (village), and its code."""

    TAG: ClassVar[str] = "fl"
    level: str
    code: str


@payload
@dataclass(frozen=True)
class InviteRole(Payload):
    """The role an invitation is for."""

    TAG: ClassVar[str] = "iv:role"
    role: str


@payload
@dataclass(frozen=True)
class InvitePlace(Payload):
    """The village code or desa adat id an invitation is for."""

    TAG: ClassVar[str] = "iv:pick"
    place: str


@payload
@dataclass(frozen=True)
class RevokePick(Payload):
    """Which role of which person to remove."""

    TAG: ClassVar[str] = "rv"
    user_id: int
    role: str


@payload
@dataclass(frozen=True)
class ComposeScope(Payload):
    """The place a broadcast is for (`code` empty for the whole branch)."""

    TAG: ClassVar[str] = "sc:scope"
    kind: str
    code: str | None


@payload
@dataclass(frozen=True)
class ComposeChoice(Payload):
    """A choice while composing broadcast `broadcast_id`, made at compose step `step`."""

    TAG: ClassVar[str] = "sc2"
    broadcast_id: int
    step: str
    choice: str
    value: str


@payload
@dataclass(frozen=True)
class BroadcastControl(Payload):
    """Pause, resume, cancel (asks first), cancel_yes, cancel_no on a progress message."""

    TAG: ClassVar[str] = "bc"
    action: str
    broadcast_id: int


@payload
@dataclass(frozen=True)
class StatisticsChart(Payload):
    """The chart of a place's numbers."""

    TAG: ClassVar[str] = "stat:chart"
    kind: str
    code: str


# ---------------------------------------------------------------- the status workflow


@payload
@dataclass(frozen=True)
class ReviewAction(Payload):
    """A button of a /tinjau card: verify, register, reject or skip application `app`."""

    TAG: ClassVar[str] = "tj"
    app: int
    action: str


@payload
@dataclass(frozen=True)
class ReviewReason(Payload):
    """A common reason for rejecting application `app` (a code of REJECTION_REASONS)."""

    TAG: ClassVar[str] = "tj:r"
    app: int
    reason: str


@payload
@dataclass(frozen=True)
class ReviewCover(Payload):
    """The day cover starts for application `app` being registered (YYYY-MM-DD)."""

    TAG: ClassVar[str] = "tj:c"
    app: int
    day: str


@payload
@dataclass(frozen=True)
class ReviewRequest(Payload):
    """A button of a /tinjau request card (a NIK dispute, a correction): close or skip it."""

    TAG: ClassVar[str] = "tj:q"
    request: int
    action: str


@payload
@dataclass(frozen=True)
class Erase(Payload):
    """/hapus: "first" confirmation, "final" confirmation, or "no"."""

    TAG: ClassVar[str] = "hp"
    step: str


@payload
@dataclass(frozen=True)
class Correct(Payload):
    """From /status: "edit" application `app` (not verified yet) or "ask" for a correction."""

    TAG: ClassVar[str] = "kr"
    app: int
    action: str


@payload
@dataclass(frozen=True)
class Withdraw(Payload):
    """The worker withdraws application `app`: ask, yes or no."""

    TAG: ClassVar[str] = "wd"
    app: int
    answer: str


@payload
@dataclass(frozen=True)
class PeriodChange(Payload):
    """A registered worker changes the payment period of `app` (0: show the choices)."""

    TAG: ClassVar[str] = "pp"
    app: int
    months: int


# ---------------------------------------------------------------- exports


@payload
@dataclass(frozen=True)
class ExportChoice(Payload):
    """A press on the /ekspor screen: what it does, and the filters chosen so far.

    The filters travel with every button, so the screen needs no stored state: `area` is a
    regency, kecamatan or village code, `adat<ID>` for a desa adat, or empty for the
    person's whole place; `status` an application status or empty for any; `new` 1 for
    "only what was sent since my last export"; `fmt` xlsx or csv.
    """

    TAG: ClassVar[str] = "ex"
    what: str
    value: str
    area: str
    status: str
    new: int
    fmt: str


RETIRED = frozenset({"sc"})
