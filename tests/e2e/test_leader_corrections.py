"""Leaders and staff as they use the bot: permissions asked at every step, honest broadcasts,
schedules typed the way people write them, statistics in sections, and a /bantuan that fits."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.core.callbacks import BroadcastControl, encode
from bot.core.schedule import example_time
from bot.core.states import BroadcastState
from bot.db.models import Application, AuditEntry, Broadcast, Invitation, User
from bot.fakebot import BotMessage
from bot.runtime import Runtime
from bot.services.roles import RoleName, revoke_role
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_leaders import DAJAN_PEKEN, follower, leader


async def _revoke(runtime: Runtime, telegram_id: int, role: RoleName) -> None:
    """Branch staff remove a role (as /cabut or `python -m bot revoke` do)."""
    async with runtime.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None
        assert await revoke_role(session, user, role, actor_label="cli")


async def _broadcast(runtime: Runtime) -> Broadcast:
    async with runtime.sessions() as session:
        broadcast = await session.scalar(
            select(Broadcast).where(Broadcast.state != BroadcastState.COMPOSING)
        )
    assert broadcast is not None
    return broadcast


async def _schedule(perbekel: Person, when: str) -> list[BotMessage]:
    await perbekel.say("/siaran")
    await perbekel.tap("template.name.payment")
    await perbekel.tap("audience.followers")
    await perbekel.tap("compose.schedule")
    return await perbekel.say(when)


async def test_staff_revoked_in_the_invitation_step_get_no_invitation(bot: RunningBot) -> None:
    staff = await leader(bot, 6000, RoleName.STAFF, None)
    await staff.say("/undang")
    replies = await staff.tap("role.perbekel")
    assert staff.t("invite.ask_village") in texts(replies)
    await _revoke(bot.runtime, 6000, RoleName.STAFF)
    replies = await staff.say(DAJAN_PEKEN)
    assert staff.t("role.denied") in texts(replies)
    assert "t.me/" not in texts(replies)
    async with bot.runtime.sessions() as session:
        made = await session.scalar(
            select(func.count()).select_from(Invitation).where(Invitation.created_by.is_not(None))
        )
    assert made == 0


async def test_a_leader_revoked_at_the_schedule_step_cannot_schedule(bot: RunningBot) -> None:
    perbekel = await leader(bot, 6010, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 6011, DAJAN_PEKEN)
    await perbekel.say("/siaran")
    await perbekel.tap("template.name.payment")
    await perbekel.tap("audience.followers")
    await perbekel.tap("compose.schedule")
    await _revoke(bot.runtime, 6010, RoleName.PERBEKEL)
    replies = await perbekel.say("besok jam 9")
    assert perbekel.t("role.denied") in texts(replies)
    async with bot.runtime.sessions() as session:
        states = (await session.scalars(select(Broadcast.state))).all()
    assert BroadcastState.SCHEDULED not in states


async def test_schedules_typed_as_people_write_them(bot: RunningBot) -> None:
    """ "besok jam 9" is tomorrow 09:00 WITA; a past time is refused with the reason."""
    perbekel = await leader(bot, 6020, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 6021, DAJAN_PEKEN)
    now = datetime.now(bot.runtime.settings.tz)
    replies = await _schedule(perbekel, "01-01-2020 09.00")
    assert perbekel.t("compose.error.when_past", example=example_time(now)) in texts(replies)
    replies = await perbekel.say("besok jam 9")
    tomorrow = (now + timedelta(days=1)).strftime("%d-%m-%Y 09:00")
    assert perbekel.t("compose.scheduled", when=tomorrow, number=1) in texts(replies)


async def test_a_pause_by_staff_binds_the_leader_and_revoking_cancels(bot: RunningBot) -> None:
    """The leader cannot resume what staff paused; revoking the role cancels the broadcast,
    and an old Lanjutkan button of the revoked leader is refused."""
    perbekel = await leader(bot, 6030, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 6031, DAJAN_PEKEN)
    staff = await leader(bot, 6032, RoleName.STAFF, None)
    progress = (await _schedule(perbekel, "besok jam 9"))[-1]
    number = (await _broadcast(bot.runtime)).id
    own = staff.user.last
    assert own is not None
    await staff.user.press_data(
        encode(BroadcastControl("pause", number)), message_id=own.message_id
    )
    assert staff.t("broadcast.paused") in texts(await staff.user.replies())
    resume = encode(BroadcastControl("resume", number))
    await perbekel.user.press_data(resume, message_id=progress.message_id)
    assert perbekel.t("broadcast.resume_refused") in texts(await perbekel.user.replies())
    assert (await _broadcast(bot.runtime)).state == BroadcastState.PAUSED

    await _revoke(bot.runtime, 6030, RoleName.PERBEKEL)
    assert (await _broadcast(bot.runtime)).state == BroadcastState.CANCELLED
    await perbekel.user.press_data(resume, message_id=progress.message_id)
    assert perbekel.t("role.denied") in texts(await perbekel.user.replies())
    async with bot.runtime.sessions() as session:
        cancels = (
            await session.scalars(
                select(AuditEntry.details).where(AuditEntry.action == "broadcast_cancel")
            )
        ).all()
    assert [json.loads(c)["reason"] for c in cancels] == ["role_revoked"]


async def test_residents_are_told_who_sent_it_and_the_preview_is_honest(
    bot: RunningBot,
) -> None:
    perbekel = await leader(bot, 6040, RoleName.PERBEKEL, DAJAN_PEKEN)
    resident = await follower(bot, 6041, DAJAN_PEKEN)
    await perbekel.say("/siaran")
    await perbekel.tap("compose.own_text")
    replies = await perbekel.say("Om Swastiastu. Besok ada sosialisasi BPJS di balai banjar.")
    replies = await perbekel.tap("audience.followers")
    assert perbekel.t("compose.preview_intro_own", count=1) in texts(replies)
    assert "bahasanya sendiri" not in texts(replies)
    await perbekel.tap("compose.send_now")
    sender = resident.t("broadcast.from", role="Perbekel", place="Desa Dajan Peken")
    assert sender == "📣 Kabar dari Perbekel Desa Dajan Peken"
    for _ in range(200):
        if any(sender in (m.text or "") for m in bot.fake.messages(6041)):
            break
        await asyncio.sleep(0.05)
    news = [m.text or "" for m in bot.fake.messages(6041) if "sosialisasi" in (m.text or "")]
    assert len(news) == 1 and news[0].startswith(sender)


async def test_statistics_come_in_headed_sections(bot: RunningBot) -> None:
    perbekel = await leader(bot, 6050, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 6051, DAJAN_PEKEN)
    async with bot.runtime.sessions() as session, session.begin():
        # A worker of the village half-way through the form (its village already answered).
        user = await session.scalar(select(User).where(User.telegram_id == 6051))
        assert user is not None
        session.add(
            Application(
                user_id=user.id, status="draft", step="occupation", village_code=DAJAN_PEKEN
            )
        )
    replies = await perbekel.say("/statistik")
    t = perbekel.t
    text = texts(replies)
    for heading in ("stats.section.status", "stats.section.occupation", "stats.section.unfinished"):
        assert f"\n\n{t(heading)}\n" in text
    assert t("stats.unfinished", count=1) in text
    # Drafts are counted in their own section, not as a status.
    assert t("stats.status_line", status=t("status.draft"), count=1) not in text


async def test_help_lists_what_the_person_may_use_and_a_human_to_ask(bot: RunningBot) -> None:
    perbekel = await leader(bot, 6060, RoleName.PERBEKEL, DAJAN_PEKEN)
    replies = await perbekel.say("/bantuan")
    text = texts(replies)
    for command in ("/daftar", "/siaran", "/statistik", "/tautan", "/daftarkan", "/peran"):
        assert f"{command} – " in text
    assert "/undang" not in text and "/cabut" not in text
    settings = bot.runtime.settings
    contact = perbekel.t(
        "help.contact", address=settings.branch_address, call_centre=settings.call_centre
    )
    assert text.endswith(contact) and "175" in contact

    english = Person(bot.fake.user(6061, "John", language_code="en"), "en")
    replies = await english.say("/help")
    text = texts(replies)
    assert "/register – " in text and "/language – " in text and "/siaran" not in text
    assert "/daftar " not in text and "/broadcast" not in text
    replies = await english.say("/register")
    assert english.t("consent.yes") in str(replies[-1].buttons())
    replies = await english.say("/whatever")
    assert "/help" in english.t("command.unknown") and english.t("command.unknown") in texts(
        replies
    )
