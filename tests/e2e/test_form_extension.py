"""A question added to a copy of the form, with its declaration and two texts only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.core.form import FormContext, Kind, Question
from bot.core.questions import REGISTRATION, parse_occupation_text
from bot.db.models import Application
from bot.fakebot import FakeTelegram
from bot.i18n import add_texts, remove_texts
from bot.runtime import Runtime
from bot.services.conversation import Conversation
from bot.services.export import columns_of, export_rows
from tests.conftest import RunningBot, start_bot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import stored_answers
from tests.e2e.test_registration import register_until_summary


def _parse_side_job(text: str, _ctx: FormContext) -> str:
    return parse_occupation_text(text)


SIDE_JOB = Question("side_job", 12, Kind.TEXT, parse=_parse_side_job, skippable=True)
FORM = REGISTRATION.with_question(SIDE_JOB, after="email")
TEXTS = {
    "id": {
        "q.side_job.prompt": "Apa pekerjaan sampingan Anda? Contoh: tukang canang",
        "q.side_job.label": "Pekerjaan sampingan",
    },
    "en": {
        "q.side_job.prompt": "What is your side job? Example: offering maker",
        "q.side_job.label": "Side job",
    },
}


@pytest.fixture
async def extended_bot(fake: FakeTelegram, runtime: Runtime) -> AsyncIterator[RunningBot]:
    """The real bot asking the extended form."""
    for language, added in TEXTS.items():
        add_texts(language, added)
    runtime.conversation = Conversation(runtime.conversation.s, FORM)
    running = await start_bot(fake, runtime)
    try:
        yield running
    finally:
        await running.stop()
        for language, added in TEXTS.items():
            remove_texts(language, list(added))


async def test_a_new_question_is_asked_checked_summarised_edited_exported_and_encrypted(
    extended_bot: RunningBot,
) -> None:
    """The new question is asked, a bad answer re-asked, shown, editable, exported, encrypted."""
    bot = extended_bot
    person = Person(bot.fake.user(8801, "Komang"))
    t = person.t
    prompt = TEXTS["id"]["q.side_job.prompt"]
    await register_until_summary(person)
    assert prompt in person.last_text

    replies = await person.say("!!")
    assert t("occupation.error.short") in texts(replies)
    assert prompt in replies[-1].text  # type: ignore[operator]
    assert "side_job" not in await stored_answers(bot.runtime, 8801)

    replies = await person.say("Tukang canang")
    assert "Pekerjaan sampingan: Tukang canang" in texts(replies)

    await person.tap("summary.edit")
    await person.tap("q.email.label")
    replies = await person.tap("nav.skip")
    assert prompt in texts(replies)
    assert "Tukang canang" in texts(replies)
    replies = await person.say("Penjual canang")
    assert "Pekerjaan sampingan: Penjual canang" in texts(replies)
    assert (await stored_answers(bot.runtime, 8801))["side_job"] == "Penjual canang"

    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)
    runtime = bot.runtime
    async with runtime.sessions() as session:
        app = await session.scalar(select(Application).where(Application.status == "submitted"))
        assert app is not None and app.answers_enc is not None
        assert "canang" not in app.answers_enc
        rows = [
            r
            async for r in export_rows(
                session, runtime.cipher, runtime.areas, runtime.settings, FORM
            )
        ]
    assert "side_job" in columns_of(FORM)
    assert rows[0]["side_job"] == "Penjual canang"
