"""Bad answers at every step: one clear sentence, the same question again, nothing stored."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.questions import REGISTRATION
from bot.db.models import Application, User
from bot.runtime import Runtime
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts

# For each question: bad typed answers. Media and a stranger's contact are tried too.
BAD_ANSWERS: dict[str, list[str]] = {
    "nik": [
        "123",
        "abcdefghijklmnop",
        "9902051708850003",
        "5102051713850003",
        "5102053208850003",
        "5102051708850000",
        "51020517088500031",
    ],
    "full_name": [
        "A",
        "Made 123",
        "!!!",
        "x" * 120,
        "\u3164\u3164",  # Hangul fillers: a name that looks empty
        "\u115f\u115f",
        "\u2800\u2800",
        "Made\u200bSukadana",
        "M\u0430de Sukadana",  # a Cyrillic а among Latin letters
        "Made\x07",
    ],
    "birth_date": ["kemarin", "31-02-1990", "17-08-85", "17-08-2015", "17-08-1950", "17-08-2030"],
    "gender": ["mungkin"],
    "phone": ["12345", "+1 202 555 0143", "0361 123456", "0812"],
    "regency": ["Gianyar"],
    "district": ["Ubud"],
    "village": ["qwertyuiopasdf"],
    "banjar": ["!!", "x" * 70, "\u3164\u3164"],
    "desa_adat": ["!!", "\u3164\u3164", "Desa Adat Sid\u0430karya"],
    "occupation": ["astronot"],
    "income": ["banyak", "500 ribu", "0", "-5 juta", "1,5"],
    "programs": ["semua"],
    "period": ["2 bulan"],
    "heir_name": ["123", "\uffa0\uffa0", "\u0399 Putu Eka"],  # fillers; a Greek Iota
    "heir_relationship": ["tetangga"],
    "heir_phone": ["999", "hallo"],
    "email": ["bukan email", "a@b"],
}

GOOD: list[tuple[str, str, Any]] = [
    ("nik", "say", "5171014711900002"),
    ("full_name", "say", "Ni Kadek Ayu"),
    ("birth_date", "say", "7 Nov 1990"),
    ("gender", "tap", "gender.female"),
    ("phone", "say", "+62 812 3456 7890"),
    ("regency", "label", "Kota Denpasar"),
    ("district", "label", "Denpasar Selatan"),
    ("village", "say", "sidakaria"),
    ("banjar", "say", "Banjar Kaja"),
    ("desa_adat", "say", "Desa Adat Sidakarya"),
    ("occupation", "tap", "occupation.pedagang"),
    ("income", "say", "Rp 2 jt"),
    ("programs", "say", None),
    ("period", "say", None),
    ("heir_name", "say", "I Putu Eka"),
    ("heir_relationship", "tap", "relationship.anak"),
    ("heir_phone", "say", "081311112222"),
    ("email", "say", "ayu@example.com"),
]


async def stored_answers(runtime: Runtime, telegram_id: int) -> dict[str, Any]:
    """The decrypted answers of the person's draft."""
    async with runtime.sessions() as session:
        draft = await session.scalar(
            select(Application)
            .join(User, User.id == Application.user_id)
            .where(User.telegram_id == telegram_id, Application.status == "draft")
        )
        assert draft is not None
        return runtime.cipher.decrypt(draft.answers_enc) if draft.answers_enc else {}


async def current_step(runtime: Runtime, telegram_id: int) -> str | None:
    """The step the person's draft is at."""
    async with runtime.sessions() as session:
        return await session.scalar(
            select(Application.step)
            .join(User, User.id == Application.user_id)
            .where(User.telegram_id == telegram_id, Application.status == "draft")
        )


async def test_every_step_refuses_bad_answers_and_asks_again(bot: RunningBot) -> None:
    """At each question, every bad answer gets an explanation and the same question."""
    person = Person(bot.fake.user(2001, "Ayu", language_code="id"))
    t = person.t
    await person.say("/daftar")
    await person.tap("consent.yes")
    for key, how, good in GOOD:
        question = REGISTRATION.by_key[key]
        assert await current_step(bot.runtime, 2001) == key
        prompt = t("progress", step=question.step, total=12)
        before = await stored_answers(bot.runtime, 2001)
        for bad in BAD_ANSWERS[key]:
            replies = await person.say(bad)
            shown = texts(replies)
            # The explanation first, then the same question (one message or two).
            explanation, asked, _ = shown.partition(prompt)
            assert asked and explanation.strip(), (key, bad, shown)
            assert prompt in (replies[-1].text or ""), (key, bad, shown)
            assert shown.count(prompt) == 1, (key, bad, shown)
            assert await current_step(bot.runtime, 2001) == key, (key, bad)
        await person.user.send_sticker()
        replies = await person.user.replies()
        assert prompt in (replies[-1].text or ""), (key, "sticker")
        if key == "phone":
            replies = await person.share_contact("6281299998888", own=False)
            assert t("phone.error.not_own") in texts(replies)
        assert await stored_answers(bot.runtime, 2001) == before, key
        if how == "say" and good is None:
            keyboard = person.user.last
            assert keyboard is not None
            await person.tap_label(keyboard.buttons()[0][0])
        elif how == "say":
            await person.say(good)
        elif how == "tap":
            await person.tap(good)
        else:
            await person.tap_label(good)
        after = await stored_answers(bot.runtime, 2001)
        assert key in after, (key, texts([person.user.last]) if person.user.last else "")
    assert await current_step(bot.runtime, 2001) == "summary"
    answers = await stored_answers(bot.runtime, 2001)
    assert answers["birth_date"] == "1990-11-07"
    assert answers["gender"] == "P"
    assert answers["phone"] == "+6281234567890"
    assert answers["village"] == "51.71.01.2007"
    assert answers["income"] == 2_000_000
    assert answers["desa_adat"] == {"id": None, "name": "Desa Adat Sidakarya"}


async def _to_name_question(person: Person) -> None:
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say("5171014711900002")


async def test_hidden_characters_are_named_and_the_question_asked_again(bot: RunningBot) -> None:
    """Fillers, control characters and look-alike letters: one sentence saying which."""
    person = Person(bot.fake.user(2101, "Ayu", language_code="id"))
    await _to_name_question(person)
    prompt = person.t("progress", step=2, total=12)
    for name, key in (
        ("\u3164\u3164", "text.error.invisible"),
        ("\u115f\u115f", "text.error.invisible"),
        ("\u200b", "text.error.invisible"),
        ("\u2800\u2800", "text.error.invisible"),
        ("Made\x00Sukadana", "text.error.control"),
        ("M\u0430de Suk\u0430dana", "text.error.mixed_script"),
    ):
        shown = texts(await person.say(name))
        assert person.t(key) in shown and prompt in shown, (name, shown)
        assert await current_step(bot.runtime, 2101) == "full_name"


async def test_fullwidth_and_mathematical_letters_are_kept_as_plain_ones(bot: RunningBot) -> None:
    person = Person(bot.fake.user(2102, "Ayu", language_code="id"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    fullwidth = {ord("0") + i: 0xFF10 + i for i in range(10)}
    await person.say("5171014711900002".translate(fullwidth))
    assert await current_step(bot.runtime, 2102) == "full_name"
    await person.say("Ｎｉ Ｋａｄｅｋ 𝐀𝐲𝐮")
    answers = await stored_answers(bot.runtime, 2102)
    assert answers["nik"] == "5171014711900002"
    assert answers["full_name"] == "Ni Kadek Ayu"


# Odd Unicode of every kind, and the longest messages Telegram delivers.
ODD_TEXTS = [
    "a" * 4096,
    "😀" * 2048,
    "M" + "\u0301" * 4095,  # combining marks
    "\u202eadaM\u202c",  # right-to-left override
    "\u200fMade\u200e",
    "Made 😀 👨\u200d👩\u200d👧",
    "\ud83d",  # half of a surrogate pair
    "x\x00y",
    "\U0001d40c\U0001d41a",  # mathematical letters
    "\u3164\u3164",
]


async def test_odd_unicode_and_full_length_messages_never_crash_any_step(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """At every question: an answer or a polite refusal with the question, never an error."""
    caplog.set_level(logging.ERROR)
    person = Person(bot.fake.user(2103, "Ayu", language_code="id"))
    apology = person.t("error.internal")
    await person.say("/daftar")
    await person.tap("consent.yes")
    for key, how, good in GOOD:
        for odd in ODD_TEXTS:
            if await current_step(bot.runtime, 2103) != key:
                break  # an odd text was a fine answer here (a desa adat named with emoji?)
            shown = texts(await person.say(odd))
            assert shown and apology not in shown, (key, odd[:20])
        if await current_step(bot.runtime, 2103) != key:
            continue
        if how == "say" and good is None:
            keyboard = person.user.last
            assert keyboard is not None
            await person.tap_label(keyboard.buttons()[0][0])
        elif how == "say":
            await person.say(good)
        elif how == "tap":
            await person.tap(good)
        else:
            await person.tap_label(good)
    assert await current_step(bot.runtime, 2103) == "summary"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
