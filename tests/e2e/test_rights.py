"""The rights of UU PDP from the chat alone: see and download my data, and erase it.

/dataku shows every answer, the history and who has seen or exported the application (from
the audit log, including exports that held it), with a JSON copy. /hapus erases after two
confirmations: a tombstone stays, nothing more is sent to the person (no notice, reminder or
broadcast), and a forged "erase now" without the confirmations does nothing.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.core import questions
from bot.core.callbacks import Erase, encode
from bot.core.states import ApplicationStatus
from bot.core.workflow import add_months
from bot.db.models import Application, AuditEntry, Consent, Follow, StatusChange, User, utcnow
from bot.services.registration import CONSENT_SEEN
from bot.services.reminders import remind_payments
from bot.services.roles import RoleName
from bot.services.workflow import Actor, change_status
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import stored_answers
from tests.e2e.test_leaders import leader
from tests.e2e.test_registration import NIK, register_until_summary
from tests.services.test_conversation_property import COMPLETE
from tests.services.test_export import SIDAKARYA, add_application
from tests.services.test_status_workflow import sent_application


async def worker_with_application(bot: RunningBot, user_id: int) -> tuple[Person, str]:
    """A worker whose complete application was sent a while ago (as the form leaves it).

    (One who typed the whole form just now would wait for Telegram's per-chat pace before
    the next answers reach them.)
    """
    runtime = bot.runtime
    reference = f"BC-W{user_id}"
    async with runtime.sessions() as session, session.begin():
        user = User(telegram_id=user_id, language="id")
        session.add(user)
        await session.flush()
        app = Application(
            user_id=user.id,
            status=ApplicationStatus.SUBMITTED,
            reference=reference,
            answers_enc=runtime.cipher.encrypt(dict(COMPLETE)),
            nik_hash=runtime.cipher.nik_hash(COMPLETE["nik"]),
            village_code=COMPLETE["village"],
            occupation=COMPLETE["occupation"],
            submitted_at=utcnow() - timedelta(hours=1),
        )
        session.add(app)
        await session.flush()
        session.add(
            Consent(
                user_id=user.id,
                application_id=app.id,
                given=True,
                text_version=questions.CONSENT_VERSION,
                language="id",
            )
        )
    return Person(bot.fake.user(user_id, "Made")), reference


async def registered_worker(bot: RunningBot, user_id: int) -> tuple[Person, str]:
    person = Person(bot.fake.user(user_id, "Made"))
    await register_until_summary(person)
    replies = await person.tap("summary.send")
    reference = next(w for w in texts(replies).split() if w.startswith("BC-")).strip(".,")
    return person, reference


async def test_my_data_shows_everything_with_who_saw_it_and_a_json_copy(bot: RunningBot) -> None:
    worker, reference = await registered_worker(bot, 8101)
    staff = await leader(bot, 8102, RoleName.STAFF, None)
    # Staff open the card (a view), and export this village (an export that holds it) and
    # another village (one that does not).
    assert reference in texts(await staff.say("/tinjau"))
    await staff.say("/ekspor")
    await staff.tap("export.button.send")

    replies = await worker.say("/dataku")
    shown = texts(replies)
    assert reference in shown
    assert NIK in shown  # their own screen: the full NIK
    assert "Sukadana" in shown and "Ni Luh Sari" in shown
    assert worker.t("mydata.seen.header") in shown
    assert "diperiksa di /tinjau" in shown
    assert "termasuk dalam ekspor data" in shown
    [document] = [m for m in replies if m.file_name]
    assert document.file_name is not None and document.file_name.endswith(".json")
    assert document.file_bytes is not None
    data = json.loads(document.file_bytes)
    [application] = data["applications"]
    assert application["reference"] == reference
    assert application["answers"]["nik"] == NIK
    assert {seen["action"] for seen in application["seen_by"]} >= {"review_view", "export"}
    assert data["consents"][0]["given"] is True
    # Nobody else's data: the staff member's own /dataku holds no application.
    staff_view = texts(await staff.say("/dataku"))
    assert reference not in staff_view and NIK not in staff_view


async def test_an_export_of_another_village_is_not_in_my_trail(bot: RunningBot) -> None:
    worker, _ = await registered_worker(bot, 8201)
    await add_application(bot.runtime, "BC-SIDA01", village=SIDAKARYA)
    perbekel = await leader(bot, 8202, RoleName.PERBEKEL, SIDAKARYA)
    await perbekel.say("/ekspor")
    await perbekel.tap("export.button.send")
    async with bot.runtime.sessions() as session:
        exports = await session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert exports is not None
    assert "termasuk dalam ekspor data" not in texts(await worker.say("/dataku"))


async def test_erase_asks_twice_then_leaves_a_tombstone_and_silence(bot: RunningBot) -> None:
    runtime = bot.runtime
    worker, reference = await worker_with_application(bot, 8301)
    async with runtime.sessions() as session, session.begin():
        me = await session.scalar(select(User).where(User.telegram_id == 8301))
        assert me is not None
        session.add(Follow(user_id=me.id, village_code="51.02.05.2006"))
    replies = await worker.say("/hapus")
    assert worker.t("erase.ask") in texts(replies)
    # A forged final button without the second confirmation does nothing.
    await worker.user.press_data(encode(Erase("final")), message_id=replies[-1].message_id)
    assert worker.t("button.stale") in texts(await worker.user.replies())
    replies = await worker.say("/hapus")
    replies = await worker.tap("erase.button.yes")
    assert worker.t("erase.ask_again") in texts(replies)
    replies = await worker.tap("erase.button.final")
    assert worker.t("erase.done", count=1) in texts(replies)

    async with runtime.sessions() as session:
        app = await session.scalar(select(Application).where(Application.reference == reference))
        user = await session.scalar(select(User).where(User.telegram_id == 8301))
        history = list(await session.scalars(select(StatusChange)))
        follows = list(await session.scalars(select(Follow)))
        consents = list(await session.scalars(select(Consent).order_by(Consent.id)))
    assert app is not None and user is not None
    # The tombstone: reference, dates, status; every personal field gone.
    assert app.status == ApplicationStatus.CANCELLED
    assert app.erased_at is not None and app.submitted_at is not None
    assert app.answers_enc is None and app.nik_hash is None and app.claim_code_hash is None
    assert app.village_code is None and app.desa_adat_id is None and app.occupation is None
    assert app.kpj_number is None and app.status_note == "erased"
    assert history and all(h.kpj_number is None and h.note is None for h in history)
    assert follows == []
    assert consents[-1].given is False
    assert user.erased_at is not None and user.opted_out_at is not None
    # /dataku shows only the tombstone.
    shown = texts(await worker.say("/dataku"))
    assert COMPLETE["nik"] not in shown and "Sukadana" not in shown
    assert reference in shown


async def test_a_registered_worker_who_erased_gets_no_reminder(bot: RunningBot) -> None:
    runtime = bot.runtime
    worker, reference = await worker_with_application(bot, 8501)
    today = date.today()
    async with runtime.sessions() as session, session.begin():
        app = await session.scalar(select(Application).where(Application.reference == reference))
        assert app is not None
        await change_status(
            session,
            runtime.settings,
            runtime.cipher,
            app,
            ApplicationStatus.REGISTERED,
            actor=Actor(label="cli"),
            today=today,
            kpj="12345678901",
            # Paid for three months on registration; the next payment falls due tomorrow.
            covered_from=add_months(today + timedelta(days=1), -3),
        )

    async def reminders_due() -> int:
        async with runtime.sessions() as session:
            await session.begin()
            count = await remind_payments(session, runtime.settings, runtime.cipher, today)
            await session.rollback()
            return count

    # Due tomorrow: a reminder would go out today...
    assert await reminders_due() == 1
    await worker.say("/hapus")
    await worker.tap("erase.button.yes")
    await worker.tap("erase.button.final")
    # ...but not once they have erased their data (the registration itself stays).
    assert await reminders_due() == 0
    async with runtime.sessions() as session:
        app = await session.scalar(select(Application).where(Application.reference == reference))
    assert app is not None and app.status == ApplicationStatus.REGISTERED
    assert app.answers_enc is None and app.kpj_number is None


async def test_erase_removes_a_draft_at_once(bot: RunningBot) -> None:
    person = Person(bot.fake.user(8401, "Ketut"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say(NIK)
    await person.say("/hapus")
    await person.tap("erase.button.yes")
    replies = await person.tap("erase.button.final")
    assert person.t("erase.done", count=0) in texts(replies)
    async with bot.runtime.sessions() as session:
        left = list(await session.scalars(select(Application)))
    assert left == []


async def test_before_verification_the_worker_edits_the_application_itself(
    bot: RunningBot,
) -> None:
    runtime = bot.runtime
    worker, reference = await registered_worker(bot, 8601)
    async with runtime.sessions() as session:
        before = await session.scalar(select(Application).where(Application.reference == reference))
    assert before is not None
    await worker.say("/status")
    replies = await worker.tap("correction.button.edit", reference=reference)
    assert worker.t("summary.header") in texts(replies)
    await worker.tap("summary.edit")
    await worker.tap("q.income.label")
    replies = await worker.say("2 juta")
    assert "Rp26.800" in texts(replies)
    replies = await worker.tap("summary.send")
    assert worker.t("correction.saved", reference=reference) in texts(replies)

    async with runtime.sessions() as session:
        apps = list(await session.scalars(select(Application)))
    # Still one application, the same reference and place in the queue, the new answer.
    [app] = apps
    assert (app.id, app.reference, app.status) == (before.id, reference, "submitted")
    assert app.submitted_at == before.submitted_at
    assert app.answers_enc is not None
    assert runtime.cipher.decrypt(app.answers_enc)["income"] == 2_000_000
    assert app.nik_hash == before.nik_hash


async def test_after_verification_a_correction_is_a_request_staff_close(bot: RunningBot) -> None:
    # Sent earlier (a worker who typed the whole form just now would wait for Telegram's
    # per-chat pace before the notices below reach them).
    reference = "BC-KOREK1"
    await sent_application(bot.runtime, 8701, reference)
    worker = Person(bot.fake.user(8701, "Made"))
    staff = await leader(bot, 8702, RoleName.STAFF, None)
    await staff.say("/tinjau")
    await staff.tap("review.button.verify")
    await worker.say("/status")
    replies = await worker.tap("correction.button.ask", reference=reference)
    assert worker.t("correction.ask", reference=reference) in texts(replies)
    assert worker.t("correction.error.length", low=5, high=1000) in texts(await worker.say("ok"))
    replies = await worker.say("Tanggal lahir seharusnya 18-08-1985.")
    assert worker.t("correction.sent", reference=reference) in texts(replies)

    card = texts(await staff.say("/tinjau"))
    assert "Tanggal lahir seharusnya 18-08-1985." in card and reference in card
    await staff.tap("review.request.button.close")
    told = texts(await worker.user.replies())
    assert worker.t("correction.done", reference=reference) in told
    trail = texts(await worker.say("/dataku"))
    assert "permintaan koreksi" in trail


async def test_an_edit_is_not_saved_once_staff_verified_meanwhile(bot: RunningBot) -> None:
    runtime = bot.runtime
    worker, reference = await registered_worker(bot, 8801)
    await worker.say("/status")
    await worker.tap("correction.button.edit", reference=reference)
    async with runtime.sessions() as session, session.begin():
        app = await session.scalar(select(Application).where(Application.reference == reference))
        assert app is not None
        await change_status(
            session,
            runtime.settings,
            runtime.cipher,
            app,
            ApplicationStatus.VERIFIED,
            actor=Actor(label="cli"),
            today=date.today(),
        )
    replies = await worker.tap("summary.send")
    assert worker.t("correction.too_late") in texts(replies)
    async with runtime.sessions() as session:
        apps = list(await session.scalars(select(Application)))
    assert [a.status for a in apps] == ["verified"]


async def test_a_new_consent_text_is_asked_again_before_the_form_goes_on(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = Person(bot.fake.user(8901, "Komang"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say(NIK)
    # A release with a new consent text.
    monkeypatch.setattr(questions, "CONSENT_VERSION", "2027-01-v2")
    replies = await person.say("Komang Ayu")
    assert person.t("consent.updated") in texts(replies)
    # Nothing more was stored before agreeing again.
    assert await stored_answers(bot.runtime, 8901) == {"nik": NIK}
    replies = await person.tap("consent.yes")
    # Back at the question that was open, the earlier answer kept.
    assert person.t("progress", step=2, total=12) in texts(replies)
    await person.say("Komang Ayu")
    assert (await stored_answers(bot.runtime, 8901))["full_name"] == "Komang Ayu"
    async with bot.runtime.sessions() as session:
        versions = list(await session.scalars(select(Consent.text_version).order_by(Consent.id)))
    assert versions == ["2026-11-v1", "2027-01-v2"]


async def test_a_draft_older_than_the_stored_version_is_judged_by_its_consent_row(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drafts written before the version was kept beside them: the consent row tells."""
    person = Person(bot.fake.user(8903, "Wayan"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    await person.say(NIK)

    async def forget_the_version() -> None:
        async with bot.runtime.sessions() as session, session.begin():
            draft = await session.scalar(select(Application))
            assert draft is not None
            state = json.loads(draft.flow_state)
            state["extra"].pop(CONSENT_SEEN)
            draft.flow_state = json.dumps(state)

    # Agreed to the current text: it goes on.
    await forget_the_version()
    replies = await person.say("Wayan Sudarma")
    assert person.t("consent.updated") not in texts(replies)
    assert (await stored_answers(bot.runtime, 8903))["full_name"] == "Wayan Sudarma"
    # A release with a new text: the older consent row means asking again.
    await forget_the_version()
    monkeypatch.setattr(questions, "CONSENT_VERSION", "2027-01-v2")
    replies = await person.say("01-01-1990")
    assert person.t("consent.updated") in texts(replies)
    assert "birth_date" not in await stored_answers(bot.runtime, 8903)


async def test_someone_under_18_is_sent_to_the_branch_with_a_parent(bot: RunningBot) -> None:
    person = Person(bot.fake.user(8902, "Gede"))
    await person.say("/daftar")
    await person.tap("consent.yes")
    today = date.today()
    born = today.replace(year=today.year - 16)
    # A NIK of someone born 16 years ago (Tabanan, male): refused, nothing stored.
    nik = f"510205{born:%d%m%y}0001"
    replies = await person.say(nik)
    assert person.t("birth_date.error.too_young", min_age=18) in texts(replies)
    assert "orang tua" in texts(replies)
    assert await stored_answers(bot.runtime, 8902) == {}
