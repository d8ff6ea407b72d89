"""Many people at once: one person's updates in order, others not held up, floods slowed."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.db.models import InboxUpdate
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from tests.conftest import RunningBot, start_bot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers
from tests.e2e.test_registration import NIK


def _sends_to(fake: FakeTelegram, chat_id: int) -> list[int]:
    """Positions in the fake's call log of the messages sent to one chat."""
    return [
        index
        for index, call in enumerate(fake.calls)
        if call.method == "sendMessage"
        and call.error is None
        and int(call.params.get("chat_id", 0)) == chat_id
    ]


async def test_answers_typed_in_a_rush_are_taken_in_order(bot: RunningBot) -> None:
    """Three answers sent before the first reply arrives land on their own questions."""
    person = Person(bot.fake.user(7001, "Made"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    for answer in (NIK, "Made Suardana", "17-08-1985"):
        await person.user.send_text(answer)
    await person.user.replies(min_count=3)
    assert await current_step(bot.runtime, 7001) == "gender"
    answers = await stored_answers(bot.runtime, 7001)
    assert answers["nik"] == NIK
    assert answers["full_name"] == "Made Suardana"
    assert answers["birth_date"] == "1985-08-17"


async def test_a_flood_is_warned_once_and_does_not_hold_anyone_up(
    fake: FakeTelegram, runtime: Runtime
) -> None:
    """One person sends 40 messages at once; a neighbour starting the form is answered first."""
    runtime.settings.flood_burst = 6
    runtime.settings.flood_per_minute = 6
    bot: RunningBot = await start_bot(fake, runtime)
    try:
        flooder = Person(fake.user(7002, "Kadek"))
        neighbour = Person(fake.user(7003, "Komang"))
        for number in range(40):
            await flooder.user.send_text(f"halo {number}")
        replies = await neighbour.say("/daftar")
        assert neighbour.t("consent.text", days=30) in texts(replies)
        await flooder.user.replies(timeout=30, min_count=7)
        flooder_texts = [m.text or "" for m in fake.messages(7002)]
        warning = flooder.t("flood.slow_down")
        assert flooder_texts.count(warning) == 1
        # Six handled (each answered), one warning, the other 33 never stored.
        async with runtime.sessions() as session:
            stored = await session.scalar(
                select(func.count()).select_from(InboxUpdate).where(InboxUpdate.chat_id == 7002)
            )
        assert stored == 7
        # Replies to one chat are paced at about one a second, so the flooder's last reply
        # went out after the neighbour's first although the neighbour wrote last.
        assert min(_sends_to(fake, 7003)) < max(_sends_to(fake, 7002))
    finally:
        await bot.stop()


async def test_many_people_at_once_are_all_answered(bot: RunningBot) -> None:
    """Thirty people open the form at the same moment; each gets the consent question once."""
    people = [Person(bot.fake.user(7100 + n, f"Warga {n}")) for n in range(30)]
    await asyncio.gather(*(p.user.send_text("/daftar") for p in people))
    results = await asyncio.gather(*(p.user.replies(timeout=30) for p in people))
    for person, replies in zip(people, results, strict=True):
        consent = person.t("consent.text", days=30)
        assert [m for m in replies if (m.text or "").startswith(consent)], person
        assert (
            sum((m.text or "").startswith(consent) for m in bot.fake.messages(person.user.user_id))
            == 1
        )
