"""Random sessions of several people at once: commands, texts, contacts and button presses.

Hypothesis drives three workers and one admin through the real conversation core (each input
in a transaction of its own, as the bot handles it), pressing buttons they were shown, forged
ones, typing their own answers, each other's NIKs and names, and noise. After every input:

- nothing raised and the internal-error apology was never needed;
- every stored answer is one the form would accept;
- nobody was shown another person's NIK, name or phone unless they typed it themselves;
- no notice went to someone who erased their data (withdrew consent).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core.messages import Incoming, InputKind
from bot.db.models import Application, User
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.updates import answer
from tests.conftest import _empty_user_tables
from tests.services.test_conversation_property import check_stored

ADMIN = 20


@dataclass(frozen=True)
class Someone:
    chat_id: int
    nik: str
    name: str
    phone: str


PEOPLE = (
    Someone(11, "5102051708850011", "Wayan Suastika", "081234500011"),
    Someone(12, "5102051708850012", "Made Ariani", "081234500012"),
    Someone(13, "5102051708850013", "Nyoman Budiasa", "081234500013"),
)
COMMANDS = (
    "start",
    "daftar",
    "status",
    "dataku",
    "hapus",
    "berhenti",
    "mulai",
    "batal",
    "bantuan",
    "iuran",
    "ikuti",
    "klaim",
    "tinjau",
    "ekspor",
)
PLAIN = (
    "ya",
    "setuju",
    "Tabanan",
    "dajan peken",
    "Banjar Dukuh",
    "1,5 juta",
    "petani",
    "17-08-1985",
    "lewati",
    "kembali",
    "batal",
)
FORGED = ("hp:final", "tj:1:verify", "tj:q:1:close", "kr:1:edit", "wd:1:yes", "nonsense", "f:x:y")


@dataclass
class Seen:
    """What each person typed (they may be shown it back) and the buttons they hold."""

    typed: dict[int, set[str]] = field(default_factory=dict)
    buttons: dict[int, list[str]] = field(default_factory=dict)


step = st.tuples(
    st.sampled_from([*(p.chat_id for p in PEOPLE), ADMIN]),
    st.sampled_from(["command", "text", "own", "other", "press", "press", "contact", "noise"]),
    st.integers(min_value=0, max_value=40),
    st.text(max_size=30),
)


def _incoming(chat_id: int, kind: str, pick: int, noise: str, seen: Seen) -> Incoming:
    me = next((p for p in PEOPLE if p.chat_id == chat_id), PEOPLE[0])
    other = PEOPLE[(PEOPLE.index(me) + 1 + pick) % len(PEOPLE)]
    if kind == "command":
        name = COMMANDS[pick % len(COMMANDS)]
        return Incoming(InputKind.COMMAND, text=name, args=noise.strip() if pick % 3 else "")
    if kind == "own":
        return Incoming(InputKind.TEXT, text=(me.nik, me.name, me.phone)[pick % 3])
    if kind == "other":
        return Incoming(InputKind.TEXT, text=(other.nik, other.name)[pick % 2])
    if kind == "press":
        held = seen.buttons.get(chat_id) or []
        data = held[pick % len(held)] if held and pick % 5 else FORGED[pick % len(FORGED)]
        return Incoming(InputKind.BUTTON, text=data)
    if kind == "contact":
        return Incoming(InputKind.CONTACT, contact_phone=me.phone, contact_is_own=pick % 4 != 0)
    if kind == "text":
        return Incoming(InputKind.TEXT, text=PLAIN[pick % len(PLAIN)])
    return Incoming(InputKind.TEXT, text=noise or "?")


async def _play(runtime: Runtime, steps: list[tuple[int, str, int, str]]) -> None:
    await _empty_user_tables(runtime.engine)
    seen = Seen()
    internal = {translator(lang)("error.internal") for lang in ("id", "en")}
    for chat_id, kind, pick, noise in steps:
        incoming = _incoming(chat_id, kind, pick, noise, seen)
        typed = seen.typed.setdefault(chat_id, set())
        typed.update(filter(None, (incoming.text, incoming.args, incoming.contact_phone)))
        result = await answer(runtime, chat_id, "id", incoming)
        texts = [r.text for r in result.outcome.replies]
        assert not internal & set(texts), (incoming, texts)
        buttons = [b.data for r in result.outcome.replies for row in r.buttons for b in row]
        if buttons:
            seen.buttons[chat_id] = buttons
        shown = "\n".join(texts)
        for person in PEOPLE:
            if person.chat_id == chat_id:
                continue
            for secret in (person.nik, person.name, person.phone[1:]):
                if secret in shown:
                    # Only an admin reviewing, or someone repeating what they typed, sees it.
                    assert chat_id == ADMIN or any(secret in t for t in typed), (secret, shown)
        async with runtime.sessions() as session:
            erased = set(
                await session.scalars(select(User.telegram_id).where(User.erased_at.is_not(None)))
            )
            drafts = list(
                await session.scalars(select(Application).where(Application.status == "draft"))
            )
        for target, _reply in result.outcome.notices:
            assert target not in erased, (incoming, target)
        for draft in drafts:
            if draft.answers_enc:
                check_stored(runtime.cipher.decrypt(draft.answers_enc), runtime)


@hsettings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=5, max_size=40))
def test_several_people_at_once_never_break_or_leak(
    loop_runtime: tuple[asyncio.AbstractEventLoop, Runtime],
    steps: list[tuple[int, str, int, str]],
) -> None:
    loop, runtime = loop_runtime
    runtime.settings.admin_telegram_ids = [ADMIN]
    loop.run_until_complete(_play(runtime, steps))
