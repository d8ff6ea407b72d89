"""NIKs and assisted forms: the chat learns nothing, staff see disputes, guesses are capped.

Before: typing another person's NIK answered "already registered in another application", and
whoever typed a NIK first blocked its owner with no trace staff could see. Now every refusal
reads the same, each different NIK tried is on record (audit), a chat may try only
NIK_TRIES_PER_DAY different NIKs a day, and the holder's application carries a dispute that
/tinjau shows. Wrong /klaim codes are capped the same way. A form a leader filled for a
resident is not the leader's own until claimed, and a leader revoked mid-way cannot finish it.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.db.models import Application, AuditEntry, StaffRequest, User, utcnow
from bot.runtime import Runtime
from bot.services.roles import RoleName, revoke_role
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers
from tests.e2e.test_leaders import leader
from tests.e2e.test_navigation import start_form
from tests.services.test_status_workflow import sent_application

# Valid Tabanan NIKs (born 17-08-1985), each with its own serial.
HELD_A = "5102051708850011"
HELD_B = "5102051708850012"
FREE = "5102051708850013"


async def holder(runtime: Runtime, telegram_id: int, reference: str, nik: str) -> int:
    """Someone else's sent application holding `nik`."""
    app_id = await sent_application(runtime, telegram_id, reference)
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Application)
            .where(Application.id == app_id)
            .values(nik_hash=runtime.cipher.nik_hash(nik))
        )
    return app_id


async def actions_of(runtime: Runtime, action: str) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_another_persons_nik_reveals_nothing_and_the_tries_are_capped(
    bot: RunningBot,
) -> None:
    runtime = bot.runtime
    runtime.settings.nik_tries_per_day = 2
    held_a = await holder(runtime, 7101, "BC-HELD01", HELD_A)
    await holder(runtime, 7102, "BC-HELD02", HELD_B)

    stranger = Person(bot.fake.user(7103, "Tamu"))
    await start_form(stranger)
    refused = stranger.t("nik.duplicate.other")
    answers = [texts(await stranger.say(nik)) for nik in (HELD_A, HELD_B, FREE)]
    # Held by someone, held by someone else, free but over the day's limit: the same words,
    # no reference, and the form still asks for the NIK with nothing stored.
    for answer in answers:
        assert refused in answer
        assert "BC-HELD" not in answer
    assert answers[0] == answers[1] == answers[2]
    assert await current_step(runtime, 7103) == "nik"
    assert await stored_answers(runtime, 7103) == {}
    # A NIK tried before costs nothing more: refused for being held, not for the limit.
    assert refused in texts(await stranger.say(HELD_A))

    async with runtime.sessions() as session:
        disputes = list(await session.scalars(select(StaffRequest).order_by(StaffRequest.id)))
    assert [d.application_id for d in disputes][:1] == [held_a]
    assert len(disputes) == 2
    tries = await actions_of(runtime, "nik_try")
    assert len(tries) == 2
    # Tries are kept as short keyed hashes, never the NIK.
    assert all(HELD_A not in (e.target or "") + e.details for e in tries)
    assert len(await actions_of(runtime, "nik_limit")) == 1
    assert len(await actions_of(runtime, "nik_dispute")) == 2


async def test_staff_see_a_dispute_on_the_card_and_on_its_own_and_close_it(
    bot: RunningBot,
) -> None:
    runtime = bot.runtime
    await holder(runtime, 7201, "BC-DISP01", HELD_A)
    stranger = Person(bot.fake.user(7202, "Tamu"))
    await start_form(stranger)
    await stranger.say(HELD_A)

    staff = await leader(bot, 7203, RoleName.STAFF, None)
    card = texts(await staff.say("/tinjau"))
    assert "BC-DISP01" in card
    assert staff.t("review.card.disputed", count=1) in card

    # Once the application is past review, the dispute comes as a card of its own.
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Application)
            .where(Application.reference == "BC-DISP01")
            .values(status="registered", review_claimed_by=None, review_claimed_until=None)
        )
    replies = await staff.say("/tinjau")
    shown = texts(replies)
    assert "BC-DISP01" in shown and "#" in shown
    replies = await staff.tap("review.request.button.close")
    assert staff.t("review.request.closed.nik_dispute") in texts(replies)
    async with runtime.sessions() as session:
        dispute = await session.scalar(select(StaffRequest))
    assert dispute is not None and dispute.closed_at is not None
    assert len(await actions_of(runtime, "request_closed")) == 1
    # Closed: /tinjau has nothing left.
    assert "BC-DISP01" not in texts(await staff.say("/tinjau"))


async def test_a_leader_registering_residents_is_not_capped(bot: RunningBot) -> None:
    """Assisted registration types many residents' NIKs a day: no limit, still no leak."""
    runtime = bot.runtime
    runtime.settings.nik_tries_per_day = 1
    await holder(runtime, 7301, "BC-LEAD01", HELD_A)
    perbekel = await leader(bot, 7302, RoleName.PERBEKEL, "51.02.05.2006")
    await perbekel.say("/daftarkan")
    await perbekel.tap("consent.assisted_yes")
    assert perbekel.t("nik.duplicate.other") in texts(await perbekel.say(HELD_A))
    replies = await perbekel.say(FREE)
    assert perbekel.t("nik.duplicate.other") not in texts(replies)
    assert await current_step(runtime, 7302) != "nik"


async def test_wrong_claim_codes_are_capped_per_day(bot: RunningBot) -> None:
    runtime = bot.runtime
    runtime.settings.claim_tries_per_day = 2
    app_id = await sent_application(runtime, 7401, "BC-CLAIM1")
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Application)
            .where(Application.id == app_id)
            .values(claim_code_hash=runtime.cipher.keyed_hash("BENAR234"))
        )
    resident = Person(bot.fake.user(7402, "Rai"))
    for guess in ("SALAH111", "SALAH222"):
        assert resident.t("claim.unknown") in texts(await resident.say(f"/klaim {guess}"))
    # The limit holds even for the right code, so guessing on is pointless.
    replies = await resident.say("/klaim BENAR234")
    assert resident.t("claim.limit") in texts(replies)
    assert len(await actions_of(runtime, "claim_refused")) == 2
    assert len(await actions_of(runtime, "claim_limit")) == 1
    async with runtime.sessions() as session:
        app = await session.get(Application, app_id)
    assert app is not None and app.claim_code_hash is not None


async def test_a_form_filled_for_a_resident_is_not_the_leaders_own_until_claimed(
    bot: RunningBot,
) -> None:
    """Before: the leader's /status listed the resident's application as the leader's, and
    the leader's own /daftar said "already registered"."""
    runtime = bot.runtime
    perbekel = await leader(bot, 7501, RoleName.PERBEKEL, "51.02.05.2006")
    async with runtime.sessions() as session, session.begin():
        me = await session.scalar(select(User).where(User.telegram_id == 7501))
        assert me is not None
        session.add(
            Application(
                user_id=me.id,
                assisted_by=me.id,
                status="submitted",
                reference="BC-RESID1",
                answers_enc=runtime.cipher.encrypt({"nik": FREE}),
                claim_code_hash=runtime.cipher.keyed_hash("KODE2345"),
                nik_hash=runtime.cipher.nik_hash(FREE),
                submitted_at=utcnow(),
            )
        )
    assert "BC-RESID1" not in texts(await perbekel.say("/status"))
    replies = await perbekel.say("/daftar")
    assert "BC-RESID1" not in texts(replies)
    assert perbekel.t("consent.yes") in replies[-1].buttons()[0]


async def test_a_leader_revoked_mid_way_cannot_finish_a_residents_form(bot: RunningBot) -> None:
    runtime = bot.runtime
    perbekel = await leader(bot, 7601, RoleName.PERBEKEL, "51.02.05.2006")
    await perbekel.say("/daftarkan")
    await perbekel.tap("consent.assisted_yes")
    await perbekel.say(FREE)
    async with runtime.sessions() as session, session.begin():
        me = await session.scalar(select(User).where(User.telegram_id == 7601))
        assert me is not None
        assert await revoke_role(session, me, RoleName.PERBEKEL, actor_label="cli")
    replies = await perbekel.say("Ni Nyoman Rai")
    assert perbekel.t("assist.revoked") in texts(replies)
    assert await current_step(runtime, 7601) is None
    async with runtime.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(Application))
        denied = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "denied").order_by(AuditEntry.id.desc())
        )
    # The resident's unsent answers went with the draft.
    assert left == 0
    assert denied is not None and '"what": "assist"' in denied.details
