"""Progress survives restarts: a new bot object continues exactly where the person stopped.

(Killing and terminating the `python -m bot run` process: `test_crash.py`.)
"""

from __future__ import annotations

from bot.fakebot import FakeTelegram
from tests.conftest import RunningBot, RuntimeFactory, start_bot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers


async def test_a_new_application_object_continues_the_draft(
    bot: RunningBot, fake: FakeTelegram, runtime_factory: RuntimeFactory
) -> None:
    """Half-way answers are still there after the bot is stopped and built anew."""
    person = Person(fake.user(3001, "Komang", language_code="id"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say("5102051708850003")
    await person.say("Komang Ardana")
    await bot.stop()

    async with runtime_factory() as fresh:
        again = await start_bot(fake, fresh)
        try:
            replies = await person.say("/daftar")
            assert person.t("register.resumed") in texts(replies)
            assert person.t("progress", step=3, total=12) in texts(replies)
            answers = await stored_answers(fresh, 3001)
            assert answers == {"nik": "5102051708850003", "full_name": "Komang Ardana"}
            await person.say("17-08-1985")
            assert await current_step(fresh, 3001) == "gender"
        finally:
            await again.stop()
