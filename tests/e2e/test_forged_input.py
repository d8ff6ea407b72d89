"""Forged, odd and other people's input: always a polite answer, never an internal error.

The button payloads come from the routing table: for every kind of button, the data the bot
really offered (or a plausible stand-in) is bent one field at a time (not a number, negative,
zero, huge, a Unicode digit, empty, extra or missing parts) and pressed by a stranger, a
worker, a village leader and branch staff. Deep links and command arguments get the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import get_type_hints

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.core.callbacks import SEPARATOR, Payload, Stale, decode
from bot.db.models import Application, Broadcast, DesaAdat, Invitation, Role, utcnow
from bot.fakebot import FakeTelegram
from bot.i18n import LANGUAGES, translator
from bot.services.roles import RoleName
from bot.services.routing import BUTTONS
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_leader_corrections import _schedule
from tests.e2e.test_leaders import DAJAN_PEKEN, follower, invite, leader
from tests.e2e.test_status_workflow import staff, worker

HUGE = "9" * 25
# Odd values for a number field and for a text field of a payload. Every number the codec
# refuses (negative, "²", ...) reaches the handlers as the same Stale: "abc" stands for them
# here, tests/core/test_callbacks.py tries them all.
ODD_NUMBERS = ("abc", "0", HUGE)
ODD_TEXTS = ("", "zz", HUGE)
# Data matching no payload at all.
UNKNOWN = ("zz:1", "zz", SEPARATOR, "?:x", "x" * 64, f"{HUGE}:{HUGE}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The bot-wide budget (replies and news alike), raised so that the test is quick: the
    presses come much faster than a person's, and the fake enforces no limit here."""
    return settings.model_copy(update={"broadcast_rate": 150.0})


def internal_errors() -> set[str]:
    """The apology the bot sends when it failed, in every language."""
    return {translator(language)("error.internal") for language in LANGUAGES}


def offered(fake: FakeTelegram, chat_ids: Iterable[int]) -> set[str]:
    """Every callback data the bot ever put on a button in these chats."""
    found: set[str] = set()
    for chat_id in chat_ids:
        for message in fake.messages(chat_id):
            for row in message.keyboard_rows():
                for button in row:
                    if isinstance(button, dict) and "callback_data" in button:
                        found.add(str(button["callback_data"]))
    return found


def _parts(payload: Payload) -> list[str]:
    values = [getattr(payload, f.name) for f in fields(payload)]  # type: ignore[arg-type]
    return ["" if value is None else str(value) for value in values]


def forgeries(kind: type[Payload], real: list[Payload]) -> Iterator[str]:
    """Callback data of `kind` bent one field at a time, plus extra and missing parts."""
    specs = fields(kind)  # type: ignore[arg-type]
    hints = get_type_hints(kind)
    samples = [_parts(p) for p in real] or [
        ["1" if hints[f.name] in (int, int | None) else "x" for f in specs]
    ]
    for sample in samples:
        for index, spec in enumerate(specs):
            odd = ODD_NUMBERS if hints[spec.name] in (int, int | None) else ODD_TEXTS
            for value in odd:
                bent = [*sample[:index], value, *sample[index + 1 :]]
                yield SEPARATOR.join([kind.TAG, *bent])
        yield SEPARATOR.join([kind.TAG, *sample, "1"])
        yield SEPARATOR.join([kind.TAG, *sample[:-1]])


def forged_data(real_data: set[str]) -> list[str]:
    """Forged data for every kind of button of the routing table, and unknown data."""
    real: dict[type[Payload], list[Payload]] = {}
    for data in sorted(real_data):
        payload = decode(data)
        if not isinstance(payload, Stale):
            real.setdefault(type(payload), []).append(payload)
    forged: list[str] = []
    for route in BUTTONS:
        # One real button of each kind is enough to bend.
        for data in forgeries(route.payload, real.get(route.payload, [])[:1]):
            if data not in forged and data not in real_data:
                forged.append(data)
    return [*forged, *UNKNOWN]


async def press_all(person: Person, data: Iterable[str]) -> None:
    """Press every data on the person's newest message: each is answered, never with an apology.

    The answer may be a message, an edit, or only the stopped spinner (pressing "refresh" on a
    screen that shows the same thing already).
    """
    apologies = internal_errors()
    for item in data:
        last = person.user.last
        assert last is not None
        answered = len(person.user.callback_answers)
        await person.user.press_data(item, message_id=last.message_id)
        try:
            # Telegram's per-chat pace holds a long run of presses back: wait for it.
            replies = await person.user.replies(min_count=0, timeout=30)
        except TimeoutError:
            pytest.fail(f"no answer to {item!r} pressed by {person.user!r}")
        assert len(person.user.callback_answers) == answered + 1, (item, person.user)
        shown = texts(replies)
        assert not any(a in shown for a in apologies), (item, shown)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """ERROR records (an unhandled error in a handler logs one)."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _states(bot: RunningBot) -> tuple[list[str], list[str], int]:
    async with bot.runtime.sessions() as session:
        applications = list(
            await session.scalars(select(Application.status).order_by(Application.id))
        )
        broadcasts = list(await session.scalars(select(Broadcast.state).order_by(Broadcast.id)))
        roles = len((await session.scalars(select(Role.id))).all())
    return applications, broadcasts, roles


async def test_forged_buttons_get_a_polite_answer_from_every_role(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Every kind of button, bent and forged, pressed by four kinds of person."""
    caplog.set_level(logging.ERROR)
    made = await worker(bot, 9101, 0)
    await made.say("/status")
    perbekel = await leader(bot, 9201, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 9202, DAJAN_PEKEN)
    await _schedule(perbekel, "besok jam 9")
    await perbekel.say("/statistik")
    await perbekel.say("/ekspor")
    officer = await staff(bot, 9301)
    await officer.say("/tinjau")
    await officer.say("/undang")
    await officer.say("/cabut 9201")
    await officer.say("/siaran")
    stranger = Person(bot.fake.user(9401, "Orang"))
    await stranger.say("/start")
    people = [stranger, made, perbekel, officer]
    real = offered(bot.fake, [p.user.user_id for p in people])
    forged = forged_data(real)
    # Sanity: the generator covers every kind of button the table routes.
    tags = {decode(d).TAG for d in forged}
    assert {route.payload.TAG for route in BUTTONS} <= tags

    routed = {route.payload for route in BUTTONS}

    def others(person: Person) -> list[str]:
        """Real buttons the bot showed someone else: one of each routed kind (pressing more
        of a kind shows nothing new and only waits out Telegram's per-chat pace)."""
        own = offered(bot.fake, [person.user.user_id])
        kinds: dict[type, str] = {}
        for data in sorted(real - own):
            if type(decode(data)) in routed:
                kinds.setdefault(type(decode(data)), data)
        return sorted(kinds.values())

    before = await _states(bot)
    # Those without a role change nothing, whatever they press (other people's buttons too).
    await asyncio.gather(*(press_all(p, [*forged, *others(p)]) for p in (stranger, made)))
    assert await _states(bot) == before
    await asyncio.gather(*(press_all(p, [*forged, *others(p)]) for p in (perbekel, officer)))
    assert errors_logged(caplog) == []


# ---------------------------------------------------------------------- deep links


async def _start(bot: RunningBot, person: Person, payload: str) -> str:
    replies = await person.say(f"/start {payload}")
    shown = texts(replies)
    assert not any(a in shown for a in internal_errors()), (payload, shown)
    return shown


UNKNOWN_PLACE = ("link.unknown_village", "start.greeting")
UNKNOWN_INVITATION = ("invite.error.unknown",)
WELCOME = ("start.greeting",)


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        (f"adat_{HUGE}", UNKNOWN_PLACE),
        ("adat_0", UNKNOWN_PLACE),
        ("adat_-1", UNKNOWN_PLACE),
        ("adat_²", UNKNOWN_PLACE),
        ("adat_abc", UNKNOWN_PLACE),
        ("adat_" + "1" * 4000, UNKNOWN_PLACE),
        (f"desa_{HUGE}", UNKNOWN_PLACE),
        ("desa_51_04_01_2001", UNKNOWN_PLACE),  # a village of Gianyar, outside the branch
        ("desa_99_99_99_9999", UNKNOWN_PLACE),
        ("desa_", UNKNOWN_PLACE),
        (f"inv_{HUGE}", UNKNOWN_INVITATION),
        ("inv_", UNKNOWN_INVITATION),
        ("inv_" + "A" * 4000, UNKNOWN_INVITATION),
        ("x" * 4000, WELCOME),
        ("\u3164\u3164", WELCOME),
        ("😀" * 30, WELCOME),
    ],
)
async def test_odd_deep_links_get_a_polite_answer(
    bot: RunningBot, caplog: pytest.LogCaptureFixture, payload: str, said: tuple[str, ...]
) -> None:
    """A random, over-long, huge or foreign /start payload: what is wrong, then the welcome."""
    caplog.set_level(logging.ERROR)
    person = Person(bot.fake.user(9501, "Tamu"))
    shown = await _start(bot, person, payload)
    for key in said:
        assert person.t(key, minimum="Rp16.800") in shown, (payload, shown)
    assert errors_logged(caplog) == []


async def test_expired_and_reused_invitations_and_a_gone_desa_adat(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """An invitation used twice, one expired, and the link of a desa adat that was removed."""
    caplog.set_level(logging.ERROR)
    payload = await invite(bot.runtime, RoleName.PERBEKEL, DAJAN_PEKEN)
    first, second = Person(bot.fake.user(9601, "Satu")), Person(bot.fake.user(9602, "Dua"))
    await _start(bot, first, payload)
    assert second.t("invite.error.used") in await _start(bot, second, payload)
    old = await invite(bot.runtime, RoleName.STAFF)
    async with bot.runtime.sessions() as session, session.begin():
        for invitation in await session.scalars(
            select(Invitation).where(Invitation.used_at.is_(None))
        ):
            invitation.expires_at = utcnow()
    assert second.t("invite.error.expired") in await _start(bot, second, old)
    async with bot.runtime.sessions() as session, session.begin():
        adat = DesaAdat(name="Desa Adat Sementara", village_code=DAJAN_PEKEN)
        session.add(adat)
        await session.flush()
        number = adat.id
    async with bot.runtime.sessions() as session, session.begin():
        await session.delete(await session.get(DesaAdat, number))
    assert second.t("link.unknown_village") in await _start(bot, second, f"adat_{number}")
    assert errors_logged(caplog) == []


ODD_ARGUMENTS = (
    HUGE,
    "-1",
    "0",
    "²",
    "abc",
    "9" * 19,
    "1" * 4000,
    "😀" * 2040,
    "\u3164\u3164",
    "\ud83d",  # half a surrogate pair, quoted back by /tinjau
)


@pytest.mark.parametrize("argument", ODD_ARGUMENTS)
async def test_odd_revoke_arguments_get_a_polite_answer(
    bot: RunningBot, caplog: pytest.LogCaptureFixture, argument: str
) -> None:
    """/cabut with a number no Telegram id can be: the usage or "nothing to remove"."""
    caplog.set_level(logging.ERROR)
    officer = await staff(bot, 9701)
    shown = texts(await officer.say(f"/cabut {argument}"))
    assert officer.t("revoke.usage") in shown or officer.t("revoke.nothing") in shown, shown
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("argument", ODD_ARGUMENTS)
async def test_odd_review_and_claim_arguments_get_a_polite_answer(
    bot: RunningBot, caplog: pytest.LogCaptureFixture, argument: str
) -> None:
    """/tinjau quotes an unknown village back only in part; /klaim refuses an odd code."""
    caplog.set_level(logging.ERROR)
    officer = await staff(bot, 9711)
    shown = texts(await officer.say(f"/tinjau {argument}"))
    assert shown.strip() and len(shown) < 1000, shown[:80]
    assert texts(await officer.say(f"/klaim {argument}")).strip()
    assert not any(a in texts(bot.fake.messages(9711)) for a in internal_errors())
    assert errors_logged(caplog) == []
