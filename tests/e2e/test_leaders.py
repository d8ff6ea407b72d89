"""Village leaders: invitations, scoped roles, the role × action matrix, opting out, links."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.core.schedule import example_time
from bot.db.models import (
    Application,
    AuditEntry,
    Broadcast,
    Consent,
    Delivery,
    DesaAdat,
    Follow,
    Invitation,
    Role,
    User,
    utcnow,
)
from bot.fakebot import FakeUser
from bot.runtime import Runtime
from bot.services.broadcasts import photo_of, text_of
from bot.services.roles import RoleName, create_invitation
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts

DAJAN_PEKEN = "51.02.05.2006"  # a desa in Tabanan
DELOD_PEKEN = "51.02.05.2004"  # its neighbour
SERANGAN = "51.71.01.1001"  # a kelurahan in Denpasar


async def invite(runtime: Runtime, role: RoleName, village: str | None = None) -> str:
    """An invitation payload, as `python -m bot invite` creates it."""
    async with runtime.sessions() as session, session.begin():
        return await create_invitation(
            session, runtime.areas, role=role, village_code=village, actor_label="cli"
        )


async def leader(bot: RunningBot, user_id: int, role: RoleName, village: str | None) -> Person:
    """A person who opened an invitation for `role`."""
    person = Person(bot.fake.user(user_id, f"Leader{user_id}"))
    payload = await invite(bot.runtime, role, village)
    await person.say(f"/start {payload}")
    return person


async def follower(bot: RunningBot, user_id: int, village: str) -> Person:
    """A resident who follows a village (through its QR link)."""
    person = Person(bot.fake.user(user_id, f"Warga{user_id}"))
    await person.say(f"/start desa_{village.replace('.', '_')}")
    return person


async def audit_actions(runtime: Runtime) -> list[str]:
    """Every audit action recorded so far, in order."""
    async with runtime.sessions() as session:
        return list(
            (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        )


async def test_an_invitation_binds_the_role_once(bot: RunningBot) -> None:
    """The first opener becomes perbekel; the link then refuses everyone; all is audited."""
    payload = await invite(bot.runtime, RoleName.PERBEKEL, DAJAN_PEKEN)
    assert len(f"https://t.me/{bot.fake.bot_username}?start={payload}") < 100
    assert len(payload) <= 64
    perbekel = Person(bot.fake.user(5001, "Wayan"))
    replies = await perbekel.say(f"/start {payload}")
    assert perbekel.t("invite.accepted.perbekel", place="Desa Dajan Peken") in texts(replies)
    menus = [c for c in bot.fake.calls if c.method == "setMyCommands" and "5001" in str(c.params)]
    assert menus and "siaran" in str(menus[-1].params["commands"])

    other = Person(bot.fake.user(5002, "Made"))
    replies = await other.say(f"/start {payload}")
    assert other.t("invite.error.used") in texts(replies)
    replies = await other.say("/start inv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert other.t("invite.error.unknown") in texts(replies)

    expired = await invite(bot.runtime, RoleName.PERBEKEL, DELOD_PEKEN)
    async with bot.runtime.sessions() as session, session.begin():
        await session.execute(
            update(Invitation)
            .where(Invitation.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(days=1))
        )
    replies = await other.say(f"/start {expired}")
    assert other.t("invite.error.expired") in texts(replies)
    async with bot.runtime.sessions() as session:
        roles = (await session.execute(select(Role.user_id, Role.role, Role.village_code))).all()
    assert len(roles) == 1 and roles[0][1:] == ("perbekel", DAJAN_PEKEN)
    actions = await audit_actions(bot.runtime)
    assert actions.count("role_grant") == 1
    assert actions.count("invite_refused") == 3


async def test_a_perbekel_cannot_be_invited_to_a_kelurahan(runtime: Runtime) -> None:
    """Role and village kind must match (perbekel: desa; lurah: kelurahan)."""
    from bot.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        await invite(runtime, RoleName.PERBEKEL, SERANGAN)
    assert caught.value.key == "invite.error.kind_desa"
    with pytest.raises(InvalidInput):
        await invite(runtime, RoleName.LURAH, DAJAN_PEKEN)
    with pytest.raises(InvalidInput):
        await invite(runtime, RoleName.PERBEKEL, "99.99.99.9999")


async def test_stop_words_alone_opt_out_and_mulai_opts_back_in(bot: RunningBot) -> None:
    """ "berhenti", "STOP" alone stop news; inside a sentence they do not."""
    resident = await follower(bot, 5010, DAJAN_PEKEN)
    for sentence in ("saya mau berhenti merokok", "stop dulu ya"):
        replies = await resident.say(sentence)
        assert resident.t("optout.done") not in texts(replies)
    for word in ("STOP", "berhenti", "Berhenti langganan"):
        replies = await resident.say(word)
        assert resident.t("optout.done") in texts(replies)
        await resident.say("/mulai")
    await resident.say("/berhenti")
    async with bot.runtime.sessions() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 5010))
    assert user is not None and user.opted_out_at is not None
    replies = await resident.say("/mulai")
    assert resident.t("optin.done") in texts(replies)


async def test_blocking_is_noticed_and_writing_again_clears_it(bot: RunningBot) -> None:
    """A my_chat_member "kicked" marks the user blocked; their next message clears it."""
    resident = await follower(bot, 5011, DAJAN_PEKEN)
    await resident.user.block_bot()
    await _settle(resident.user)
    async with bot.runtime.sessions() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 5011))
        assert user is not None and user.blocked_at is not None
    await resident.user.unblock_bot()
    await resident.say("/start")
    async with bot.runtime.sessions() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 5011))
        assert user is not None and user.blocked_at is None


async def _settle(user: FakeUser) -> None:
    import asyncio

    for _ in range(50):
        await asyncio.sleep(0.05)


async def test_the_village_link_starts_registration_with_the_village_chosen(
    bot: RunningBot,
) -> None:
    """A QR scan follows the village and offers it as a one-tap answer, to be confirmed."""
    resident = await follower(bot, 5012, DAJAN_PEKEN)
    t = resident.t
    assert t("consent.yes") in resident.user.last.buttons()[0]  # type: ignore[union-attr]
    await resident.tap("consent.yes")
    for answer in ("5102051708850003", "Komang Sari", "17-08-1985"):
        await resident.say(answer)
    await resident.tap("gender.male")
    replies = await resident.say("081234567890")
    hint = t("village.from_link", village="Dajan Peken")
    assert hint in replies[-1].buttons()[0]
    replies = await resident.tap_label(hint)
    assert t(
        "q.banjar.prompt", unit=t("unit.banjar"), village="Dajan Peken", district="Tabanan"
    ) in texts(replies)
    async with bot.runtime.sessions() as session:
        follows = (await session.scalars(select(Follow.village_code))).all()
    assert follows == [DAJAN_PEKEN]


async def test_a_perbekel_broadcasts_to_followers_only_reachable_ones(bot: RunningBot) -> None:
    """/siaran: template, audience, exact count and preview, then one delivery per person."""
    perbekel = await leader(bot, 5020, RoleName.PERBEKEL, DAJAN_PEKEN)
    residents = [await follower(bot, 5021 + i, DAJAN_PEKEN) for i in range(4)]
    await follower(bot, 5030, DELOD_PEKEN)
    await residents[0].say("/berhenti")
    async with bot.runtime.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.telegram_id == 5022).values(blocked_at=utcnow())
        )
    replies = await perbekel.say("/siaran")
    assert perbekel.t("compose.content", scope="Desa Dajan Peken") in texts(replies)
    await perbekel.tap("template.name.benefits")
    replies = await perbekel.tap("audience.followers")
    assert perbekel.t("compose.confirm", count=2) in texts(replies)
    assert "Rp42 juta" in texts(replies)
    replies = await perbekel.tap("compose.send_now")
    async with bot.runtime.sessions() as session:
        broadcast = await session.scalar(select(Broadcast))
        assert broadcast is not None
        recipients = (
            await session.scalars(
                select(User.telegram_id)
                .join(Delivery, Delivery.user_id == User.id)
                .where(Delivery.broadcast_id == broadcast.id)
            )
        ).all()
    assert sorted(r or 0 for r in recipients) == [5023, 5024]
    progress = replies[-1]
    assert f"{broadcast.id}" in (progress.text or "")
    assert perbekel.t("broadcast.progress.cancel") in str(progress.buttons())
    assert broadcast.progress_message_id == progress.message_id


ACTIONS = ["/undang", "/cabut 5101", "/siaran", "/statistik", "/tautan"]
# role -> the actions it may take (everything else is refused with role.denied).
ALLOWED: dict[str, set[str]] = {
    "stranger": set(),
    "perbekel": {"/siaran", "/statistik", "/tautan"},
    "lurah": {"/siaran", "/statistik", "/tautan"},
    "staff": {"/undang", "/cabut 5101", "/siaran"},
    "admin": {"/undang", "/cabut 5101", "/siaran"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
async def test_role_action_matrix(bot: RunningBot, role: str) -> None:
    """Every command for every role: allowed ones work, the others are refused and logged."""
    await leader(bot, 5101, RoleName.PERBEKEL, DELOD_PEKEN)  # someone to revoke
    person = Person(bot.fake.user(5100, "Tester"))
    if role in ("perbekel", "lurah", "staff"):
        village = {"perbekel": DAJAN_PEKEN, "lurah": SERANGAN}.get(role)
        person = await leader(bot, 5100, RoleName(role), village)
    elif role == "admin":
        bot.runtime.settings.admin_telegram_ids.append(5100)
    denied = person.t("role.denied")
    for action in ACTIONS:
        replies = await person.say(action)
        refused = denied in texts(replies)
        assert refused == (action not in ALLOWED[role]), (role, action, texts(replies))
    async with bot.runtime.sessions() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))
        ).all()
    assert len(entries) == len(ACTIONS) - len(ALLOWED[role])
    assert all(json.loads(e.details)["what"] for e in entries)


@pytest.mark.parametrize(
    "data",
    [
        f"sc:scope:village:{DELOD_PEKEN}",
        "sc:scope:all:",
        f"stat:chart:village:{DELOD_PEKEN}",
        "stat:chart:desa_adat:1",
        "iv:role:perbekel",
        "iv:pick:51.02.05.2004",
        "rv:1:perbekel",
    ],
)
async def test_buttons_aimed_outside_the_scope_are_refused(bot: RunningBot, data: str) -> None:
    """A perbekel pressing a forged button for another village or a staff action is refused."""
    perbekel = await leader(bot, 5200, RoleName.PERBEKEL, DAJAN_PEKEN)
    last = perbekel.user.last
    assert last is not None
    await perbekel.user.press_data(data, message_id=last.message_id)
    replies = await perbekel.user.replies()
    assert perbekel.t("role.denied") in texts(replies)
    assert "denied" in await audit_actions(bot.runtime)
    async with bot.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
        assert await session.scalar(select(func.count()).select_from(Role)) == 1


async def test_statistics_chart_and_poster(bot: RunningBot) -> None:
    """/statistik gives numbers and a PNG chart; /tautan a link and a printable QR poster."""
    perbekel = await leader(bot, 5300, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 5301, DAJAN_PEKEN)
    replies = await perbekel.say("/statistik")
    assert perbekel.t("stats.followers", count=1) in texts(replies)
    replies = await perbekel.tap("stats.chart_button")
    photo = replies[-1]
    assert photo.kind == "photo" and photo.file_bytes is not None
    assert photo.file_bytes.startswith(b"\x89PNG")
    assert (photo.file_name, photo.mime_type) == ("statistik-51-02-05-2006.png", "image/png")
    replies = await perbekel.say("/tautan")
    link = f"https://t.me/{bot.fake.bot_username}?start=desa_51_02_05_2006"
    assert link in texts(replies)
    poster = replies[-1]
    assert poster.kind == "document" and poster.file_bytes is not None
    assert poster.file_bytes.startswith(b"\x89PNG")


async def test_assisted_registration_and_claim(bot: RunningBot) -> None:
    """A perbekel registers a resident in person; the resident's own account claims it later."""
    perbekel = await leader(bot, 5400, RoleName.PERBEKEL, DAJAN_PEKEN)
    t = perbekel.t
    replies = await perbekel.say("/daftarkan")
    assert t("assist.start") in texts(replies)
    assert t("consent.assisted_yes") in replies[-1].buttons()[0]
    await perbekel.tap("consent.assisted_yes")
    for answer in ("5102054708500001", "Ni Nyoman Rai", "07-08-1950"):
        replies = await perbekel.say(answer)
    assert t(
        "birth_date.error.over_age",
        max_age=64,
        address=bot.runtime.settings.branch_address,
        call_centre=bot.runtime.settings.call_centre,
    ) in texts(replies)
    replies = await perbekel.say("07-08-1965")
    # The NIK says 1950: asked once, then kept as typed.
    assert t("birth_date.confirm_nik", nik_date="7 Agustus 1950") in texts(replies)
    await perbekel.tap("confirm.yes")
    replies = await perbekel.tap("gender.female")
    assert t("q.phone.assisted_hint") in texts(replies)
    await perbekel.tap("nav.skip")
    await perbekel.tap_label(t("village.from_link", village="Dajan Peken"))
    for _ in range(2):
        await perbekel.tap("nav.skip")
    await perbekel.tap("occupation.pengrajin")
    await perbekel.tap_label("Rp1.000.000")
    await perbekel.tap("programs.basic", amount="Rp16.800")
    await perbekel.tap("period.option.1", amount="Rp16.800")
    await perbekel.tap("nav.skip")
    await perbekel.tap("nav.skip")
    replies = await perbekel.tap("summary.send")
    text = texts(replies)
    code = text.split("/klaim ")[1].split(maxsplit=1)[0].strip(".,")
    assert len(code) == 8
    async with bot.runtime.sessions() as session:
        application = await session.scalar(select(Application))
        consent = await session.scalar(select(Consent))
    assert application is not None and application.status == "submitted"
    assert application.assisted_by == application.user_id
    assert consent is not None and consent.method == "in_person"
    assert consent.witness_user_id == application.user_id

    resident = Person(bot.fake.user(5401, "Rai"))
    replies = await resident.say("/klaim SALAH123")
    assert resident.t("claim.unknown") in texts(replies)
    replies = await resident.say(f"/klaim {code.lower()}")
    assert resident.t("claim.done", reference=application.reference) in texts(replies)
    replies = await resident.say("/status")
    assert str(application.reference) in texts(replies)
    replies = await Person(bot.fake.user(5402, "Lain")).say(f"/klaim {code}")
    assert resident.t("claim.unknown") in texts(replies)
    async with bot.runtime.sessions() as session:
        follows = (await session.execute(select(Follow.user_id, Follow.village_code))).all()
    owner = await _user_id(bot.runtime, 5401)
    assert (owner, DAJAN_PEKEN) in [tuple(row) for row in follows]


async def _user_id(runtime: Runtime, telegram_id: int) -> int:
    async with runtime.sessions() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None
        return user.id


async def test_a_broadcast_with_one_photo(bot: RunningBot) -> None:
    """A leader sends one photo with a caption; the preview shows it, the broadcast keeps it."""
    perbekel = await leader(bot, 5500, RoleName.PERBEKEL, DAJAN_PEKEN)
    resident = await follower(bot, 5501, DAJAN_PEKEN)
    await perbekel.say("/siaran")
    await perbekel.tap("compose.own_text")
    await perbekel.user.send_photo()
    replies = await perbekel.user.replies()
    assert perbekel.t("compose.error.caption", limit=850) in texts(replies)
    await perbekel.user.send_photo(caption="Om Swastiastu. Sosialisasi BPJS di balai banjar.")
    await perbekel.user.replies()
    replies = await perbekel.tap("audience.followers")
    preview = next(m for m in replies if m.kind == "photo")
    assert "Sosialisasi BPJS" in (preview.caption or "")
    await perbekel.tap("compose.send_now")
    async with bot.runtime.sessions() as session:
        broadcast = await session.scalar(select(Broadcast))
    assert broadcast is not None and broadcast.photo_enc and broadcast.text_enc is not None
    # Text and photo kept encrypted (they may name or show people), opened by the data key only.
    assert "Swastiastu" not in broadcast.text_enc
    assert (text_of(broadcast, bot.runtime.cipher) or "").startswith("Om Swastiastu")
    sent = preview.file_bytes
    assert sent and sent.startswith(b"\xff\xd8") and sent not in broadcast.photo_enc
    assert photo_of(broadcast, bot.runtime.cipher) == sent
    # The follower gets the very photo, with its caption.
    received = [m for m in await resident.user.replies() if m.kind == "photo"]
    assert [(m.file_bytes, "Sosialisasi BPJS" in (m.caption or "")) for m in received] == [
        (sent, True)
    ]


async def test_a_broadcast_reaches_each_follower_once_in_their_language(
    bot: RunningBot,
) -> None:
    """Followers get the template in their own language, the leader a live progress message and
    a final report, and a worker half-way through registration keeps their place."""
    perbekel = await leader(bot, 5600, RoleName.PERBEKEL, DAJAN_PEKEN)
    english = Person(bot.fake.user(5601, "John", language_code="en"), "en")
    await english.say(f"/start desa_{DAJAN_PEKEN.replace('.', '_')}")
    busy = await follower(bot, 5602, DAJAN_PEKEN)
    await busy.tap("consent.yes")
    await busy.say("5102051708850003")
    await perbekel.say("/siaran")
    await perbekel.tap("template.name.minimum")
    await perbekel.tap("audience.followers")
    await perbekel.tap("compose.send_now")
    async with bot.runtime.sessions() as session:
        broadcast = await session.scalar(select(Broadcast))
        assert broadcast is not None
    report = perbekel.t("broadcast.report").split("%(")[0][:10]
    for _ in range(200):
        if any(report in (m.text or "") for m in bot.fake.messages(5600)):
            break
        await asyncio.sleep(0.05)
    minimum = "Rp16.800"
    english_texts = [m.text or "" for m in bot.fake.messages(5601)]
    busy_texts = [m.text or "" for m in bot.fake.messages(5602)]
    assert sum(english.t("template.minimum", minimum=minimum) in x for x in english_texts) == 1
    assert sum(busy.t("template.minimum", minimum=minimum) in x for x in busy_texts) == 1
    leader_texts = [m.text or "" for m in bot.fake.messages(5600)]
    assert any(report in x for x in leader_texts), leader_texts[-3:]
    replies = await busy.say("Made Busy")
    assert busy.t("progress", step=3, total=12) in texts(replies)
    async with bot.runtime.sessions() as session:
        states = (await session.scalars(select(Delivery.state))).all()
    assert sorted(states) == ["sent", "sent"]


async def test_a_scheduled_broadcast_can_be_cancelled_from_its_progress_message(
    bot: RunningBot,
) -> None:
    """Scheduling shows a progress message; its Batalkan button skips every recipient."""
    perbekel = await leader(bot, 5700, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 5701, DAJAN_PEKEN)
    await perbekel.say("/siaran")
    await perbekel.tap("template.name.payment")
    await perbekel.tap("audience.followers")
    replies = await perbekel.tap("compose.schedule")
    example = example_time(datetime.now(bot.runtime.settings.tz))
    assert perbekel.t("compose.when", example=example) in texts(replies)
    replies = await perbekel.say("kemarin sore")
    assert perbekel.t("compose.error.when", example=example) in texts(replies)
    replies = await perbekel.say("01-01-2099 09:00")
    assert perbekel.t("compose.error.when_far", days=90, example=example) in texts(replies)
    later = (datetime.now(bot.runtime.settings.tz) + timedelta(days=2)).strftime("%d-%m-%Y 09:00")
    replies = await perbekel.say(later)
    assert later in texts(replies)
    progress = replies[-1]
    stranger = Person(bot.fake.user(5702, "Orang"))
    await stranger.say("/start")
    own = stranger.user.last
    assert own is not None
    number = progress.text.split()[3] if progress.text else "1"
    await stranger.user.press_data(f"bc:cancel:{number}", message_id=own.message_id)
    assert stranger.t("role.denied") in texts(await stranger.user.replies())
    await perbekel.user.press(perbekel.t("broadcast.progress.cancel"), message=progress)
    replies = await perbekel.user.replies()
    # Cancelling asks first, on the progress message itself.
    assert perbekel.t("broadcast.cancel_confirm") in texts(replies)
    card = next(m for m in replies if m.message_id == progress.message_id)
    await perbekel.user.press(perbekel.t("broadcast.cancel_yes"), message=card)
    replies = await perbekel.user.replies()
    assert perbekel.t("broadcast.cancelled") in texts(replies)
    card = next(m for m in replies if m.message_id == progress.message_id)
    assert "100%" not in (card.text or "") and " 0%" in (card.text or "")
    async with bot.runtime.sessions() as session:
        broadcast = await session.scalar(select(Broadcast))
        states = (await session.scalars(select(Delivery.state))).all()
    assert broadcast is not None and broadcast.state == "cancelled"
    assert list(states) == ["skipped"]
    # Stored as UTC (SQLite keeps only the wall clock): 09:00 WITA is 01:00 UTC.
    assert broadcast.scheduled_at is not None
    assert broadcast.scheduled_at.replace(tzinfo=None).hour == 1
    reminder = perbekel.t("template.payment", minimum="Rp16.800")
    assert all(reminder not in (m.text or "") for m in bot.fake.messages(5701))


async def test_a_bendesa_adat_has_the_tools_for_the_desa_adat(bot: RunningBot) -> None:
    """Statistics, link and broadcasts of a bendesa adat are about the desa adat's krama."""
    async with bot.runtime.sessions() as session, session.begin():
        adat = DesaAdat(
            name="Desa Adat Kota Tabanan", village_code=DAJAN_PEKEN, district_code="51.02.05"
        )
        session.add(adat)
        await session.flush()
        adat_id = adat.id
    async with bot.runtime.sessions() as session, session.begin():
        payload = await create_invitation(
            session, bot.runtime.areas, role=RoleName.BENDESA_ADAT, desa_adat_id=adat_id
        )
    bendesa = Person(bot.fake.user(5800, "Bendesa"))
    replies = await bendesa.say(f"/start {payload}")
    assert bendesa.t("invite.accepted.bendesa_adat", place="Desa Adat Kota Tabanan") in texts(
        replies
    )
    replies = await bendesa.say("/tautan")
    link = f"https://t.me/{bot.fake.bot_username}?start=adat_{adat_id}"
    assert link in texts(replies)
    krama = Person(bot.fake.user(5801, "Krama"))
    replies = await krama.say(f"/start adat_{adat_id}")
    assert krama.t("link.welcome", village="Desa Adat Kota Tabanan") in texts(replies)
    replies = await bendesa.say("/statistik")
    assert bendesa.t("stats.followers", count=1) in texts(replies)
    replies = await bendesa.tap("stats.chart_button")
    assert replies[-1].kind == "photo"
    replies = await bendesa.say("/siaran")
    assert bendesa.t("compose.content", scope="Desa Adat Kota Tabanan") in texts(replies)
    await bendesa.tap("template.name.register")
    replies = await bendesa.tap("audience.followers")
    assert bendesa.t("compose.confirm", count=1) in texts(replies)


async def _cli(bot: RunningBot, *args: str) -> tuple[int, str, str]:
    settings = bot.runtime.settings
    assert settings.data_key is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": settings.database_url,
            "DATA_KEY": settings.data_key.get_secret_value(),
            "TELEGRAM_BOT_TOKEN": bot.fake.token,
            "TELEGRAM_API_BASE_URL": bot.fake.base_url,
            "PTB_TIMEDELTA": "true",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


# The command line works on the database file; the PostgreSQL schema of the tests is private.
@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_invite_and_revoke_from_the_command_line(bot: RunningBot) -> None:
    """`python -m bot invite` prints a t.me link; `revoke` removes the role and its menu."""
    code, out, err = await _cli(bot, "invite", "--role", "perbekel", "--village", DAJAN_PEKEN)
    assert code == 0, err
    link = out.strip()
    assert link.startswith(f"https://t.me/{bot.fake.bot_username}?start=inv_")
    perbekel = Person(bot.fake.user(5900, "Perbekel"))
    replies = await perbekel.say(f"/start {link.split('start=')[1]}")
    assert perbekel.t("invite.accepted.perbekel", place="Desa Dajan Peken") in texts(replies)
    code, out, err = await _cli(bot, "revoke", "--telegram-id", "5900", "--role", "perbekel")
    assert code == 0, err
    assert "Removed 1 role(s)." in out
    menus = [c for c in bot.fake.calls if c.method == "setMyCommands" and "5900" in str(c.params)]
    assert "siaran" in str(menus[-2].params["commands"])
    assert "siaran" not in str(menus[-1].params["commands"])
    replies = await perbekel.say("/siaran")
    assert perbekel.t("role.denied") in texts(replies)
    assert "role_revoke" in await audit_actions(bot.runtime)
