"""Text one person wrote, as someone else receives it: measured as Telegram measures it, and
shown exactly as written (no formatting, no links made from markup)."""

from __future__ import annotations

import asyncio

from bot.db.models import DesaAdat
from bot.fakebot import BotMessage, FakeTelegram
from bot.services.roles import RoleName, create_invitation
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step
from tests.e2e.test_leaders import DAJAN_PEKEN, follower, leader

# Markup of every kind Telegram knows (HTML, Markdown, MarkdownV2), and a link.
MARKUP = (
    '<b>Penting</b> <a href="http://contoh.test/x">klik</a> *tebal* _miring_ [x](http://y.test)'
)


async def received(fake: FakeTelegram, chat_id: int, fragment: str) -> list[BotMessage]:
    """The messages of a chat holding `fragment`, once the first has arrived."""
    for _ in range(200):
        found = [m for m in fake.messages(chat_id) if fragment in (m.text or m.caption or "")]
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing with {fragment!r} reached chat {chat_id}")


def assert_plain(fake: FakeTelegram) -> None:
    """Nothing the bot sent or edited asked Telegram to read markup or add entities."""
    for call in fake.calls:
        if call.method in ("sendMessage", "editMessageText", "sendPhoto", "editMessageCaption"):
            assert call.params.get("parse_mode") is None, call
            assert not call.params.get("entities") and not call.params.get("caption_entities")


async def _own_text(perbekel: Person) -> None:
    await perbekel.say("/siaran")
    await perbekel.tap("compose.own_text")


async def test_a_broadcast_is_measured_in_utf16_units_as_telegram_counts(bot: RunningBot) -> None:
    """2 100 emoji are 4 200 units: refused at once, not failed at sending; the longest text
    allowed (emoji and mathematical letters, two units each) reaches the resident whole."""
    perbekel = await leader(bot, 9901, RoleName.PERBEKEL, DAJAN_PEKEN)
    resident = await follower(bot, 9902, DAJAN_PEKEN)
    await _own_text(perbekel)
    too_long = perbekel.t("compose.error.length")
    for text in ("😀" * 2100, "𝐌" * 1751, "😀" * 1750 + "a"):
        assert too_long in texts(await perbekel.say(text)), len(text)
    longest = "😀" * 1000 + "𝐌𝐚𝐝𝐞" * 187 + "ab"  # 2 000 + 1 496 + 2 = 3 498 units
    replies = await perbekel.say(longest)
    assert perbekel.t("compose.audience") in texts(replies)
    await perbekel.tap("audience.followers")
    await perbekel.tap("compose.send_now")
    news = await received(bot.fake, resident.user.user_id, longest)
    assert len(news) == 1
    assert not [c for c in bot.fake.calls if c.error and "too long" in c.error]


async def test_a_photo_caption_is_measured_in_utf16_units(bot: RunningBot) -> None:
    perbekel = await leader(bot, 9911, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 9912, DAJAN_PEKEN)
    await _own_text(perbekel)
    await perbekel.user.send_photo(caption="😀" * 426)  # 852 units, over the 850 allowed
    replies = await perbekel.user.replies()
    assert perbekel.t("compose.error.caption", limit=850) in texts(replies)
    await perbekel.user.send_photo(caption="😀" * 425)
    replies = await perbekel.user.replies()
    assert perbekel.t("compose.audience") in texts(replies)


async def test_markup_in_a_broadcast_reaches_residents_as_plain_text(bot: RunningBot) -> None:
    perbekel = await leader(bot, 9921, RoleName.PERBEKEL, DAJAN_PEKEN)
    resident = await follower(bot, 9922, DAJAN_PEKEN)
    await _own_text(perbekel)
    await perbekel.say(MARKUP)
    await perbekel.tap("audience.followers")
    await perbekel.tap("compose.send_now")
    (news,) = await received(bot.fake, resident.user.user_id, MARKUP)
    assert news.parse_mode is None and not news.entities
    assert_plain(bot.fake)


async def test_markup_in_a_desa_adat_name_is_shown_as_written(bot: RunningBot) -> None:
    """A desa adat name from an imported list, seen by its bendesa and by a krama."""
    name = f"Desa Adat {MARKUP}"[:120]
    async with bot.runtime.sessions() as session, session.begin():
        adat = DesaAdat(name=name, village_code=DAJAN_PEKEN, district_code="51.02.05")
        session.add(adat)
        await session.flush()
        adat_id = adat.id
        payload = await create_invitation(
            session, bot.runtime.areas, role=RoleName.BENDESA_ADAT, desa_adat_id=adat_id
        )
    bendesa = Person(bot.fake.user(9931, "Bendesa"))
    assert name in texts(await bendesa.say(f"/start {payload}"))
    krama = Person(bot.fake.user(9932, "Krama"))
    assert krama.t("link.welcome", village=name) in texts(await krama.say(f"/start adat_{adat_id}"))
    assert name in texts(await bendesa.say("/statistik"))
    assert_plain(bot.fake)


async def test_markup_cannot_get_into_a_name_others_see(bot: RunningBot) -> None:
    """Names reach staff cards and leaders' screens: markup characters are refused in them."""
    person = Person(bot.fake.user(9941, "Ayu"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say("5171014711900002")
    for name in ("<b>Made</b>", "I Made *Sukadana*", "[Made](http://y.test)", "Made_Sukadana"):
        replies = await person.say(name)
        assert person.t("name.error.chars") in texts(replies), name
        assert await current_step(bot.runtime, 9941) == "full_name"
    assert_plain(bot.fake)
