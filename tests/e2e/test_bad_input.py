"""Bad answers at every step: one clear sentence, the same question again, nothing stored."""

from __future__ import annotations

from typing import Any

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
    "full_name": ["A", "Made 123", "!!!", "x" * 120],
    "birth_date": ["kemarin", "31-02-1990", "17-08-85", "17-08-2015", "17-08-1950", "17-08-2030"],
    "gender": ["mungkin"],
    "phone": ["12345", "+1 202 555 0143", "0361 123456", "0812"],
    "regency": ["Gianyar"],
    "district": ["Ubud"],
    "village": ["qwertyuiopasdf"],
    "banjar": ["!!", "x" * 70],
    "desa_adat": ["!!"],
    "occupation": ["astronot"],
    "income": ["banyak", "500 ribu", "0", "-5 juta", "1,5"],
    "programs": ["semua"],
    "period": ["2 bulan"],
    "heir_name": ["123"],
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
