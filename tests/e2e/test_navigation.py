"""Kembali, Ubah, Batal, old buttons, duplicates, language switch and the side commands."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.db.models import Application, Consent, DesaAdat
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from tests.conftest import RunningBot, start_bot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers
from tests.e2e.test_registration import NIK, register_until_summary


async def start_form(person: Person) -> None:
    """Open the form and give consent."""
    await person.say("/daftar")
    await person.tap("consent.yes")


async def test_kembali_goes_back_one_question_and_keeps_the_answer(bot: RunningBot) -> None:
    """A worker at the name question goes back to the NIK, sees it in full, and can go on."""
    person = Person(bot.fake.user(4001, "Gede"))
    await start_form(person)
    await person.say(NIK)
    replies = await person.tap("nav.back")
    assert person.t("progress", step=1, total=12) in texts(replies)
    # Her own screen: the whole NIK, to check against her KTP.
    assert NIK in texts(replies)
    replies = await person.tap("nav.back")
    assert person.t("consent.yes") in replies[-1].buttons()[0]
    await person.tap("consent.yes")
    assert await current_step(bot.runtime, 4001) == "nik"
    await person.say(NIK)
    assert await current_step(bot.runtime, 4001) == "full_name"


async def test_ubah_changes_one_answer_and_returns_to_the_summary(bot: RunningBot) -> None:
    """From the summary a worker changes the income and sees the new contribution."""
    person = Person(bot.fake.user(4002, "Putu"))
    await register_until_summary(person)
    await person.tap("summary.edit")
    replies = await person.tap("q.income.label")
    assert person.t("progress", step=8, total=12) in texts(replies)
    replies = await person.say("2 juta")
    assert person.t("summary.header") in texts(replies)
    assert "Rp26.800" in texts(replies)
    assert (await stored_answers(bot.runtime, 4002))["income"] == 2_000_000


async def test_ubah_domicile_walks_the_whole_address(bot: RunningBot) -> None:
    """Changing the regency asks kecamatan and desa again, then returns to the summary."""
    person = Person(bot.fake.user(4003, "Kadek"))
    await register_until_summary(person)
    await person.tap("summary.edit")
    await person.tap("q.regency.label")
    await person.tap_label("Kota Denpasar")
    assert await current_step(bot.runtime, 4003) == "district"
    await person.tap_label("Denpasar Selatan")
    await person.say("Sidakarya")
    await person.tap("nav.skip")
    replies = await person.tap("nav.skip")
    assert person.t("summary.header") in texts(replies)
    assert "Sidakarya" in texts(replies)
    answers = await stored_answers(bot.runtime, 4003)
    assert answers["village"] == "51.71.01.2007"
    assert answers["banjar"] is None


async def test_batal_asks_first_then_deletes_the_answers(bot: RunningBot) -> None:
    """/batal needs a confirmation; "Tidak" keeps the place, "Ya" deletes everything typed."""
    person = Person(bot.fake.user(4004, "Nengah"))
    await start_form(person)
    await person.say(NIK)
    replies = await person.say("/batal")
    assert person.t("cancel.confirm") in texts(replies)
    replies = await person.tap("cancel.no")
    assert person.t("progress", step=2, total=12) in texts(replies)
    await person.say("/batal")
    replies = await person.tap("cancel.yes")
    assert person.t("cancel.done") in texts(replies)
    async with bot.runtime.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Application))
        consent = await session.scalar(select(Consent))
    assert count == 0
    assert consent is not None and consent.application_id is None


async def test_declining_consent_stores_nothing_personal(bot: RunningBot) -> None:
    """Without consent there is no application; the refusal itself is recorded."""
    person = Person(bot.fake.user(4005, "Luh"))
    await person.say("/daftar")
    replies = await person.tap("consent.no")
    assert person.t("consent.declined") in texts(replies)
    async with bot.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Application)) == 0
        consent = await session.scalar(select(Consent))
    assert consent is not None and consent.given is False


async def test_old_buttons_are_not_acted_on(bot: RunningBot) -> None:
    """A button from an earlier question is answered with a note and the current question."""
    person = Person(bot.fake.user(4006, "Ketut"))
    await start_form(person)
    # The pressed question became the next one: it shows the choice made, then the new question.
    chosen = f"✅ {person.t('consent.yes')}\n\n"
    consent_message = next(m for m in bot.fake.messages(4006) if (m.text or "").startswith(chosen))
    # It now asks for the NIK: the consent buttons are gone.
    assert person.t("progress", step=1, total=12) in (consent_message.text or "")
    labels = [label for row in consent_message.buttons() for label in row]
    assert person.t("consent.yes") not in labels and person.t("consent.no") not in labels
    assert not any(
        (m.text or "").startswith(person.t("consent.text", days=30))
        for m in bot.fake.messages(4006)
    )
    await person.say(NIK)
    await person.user.press_data("consent:yes", message_id=consent_message.message_id)
    replies = await person.user.replies()
    assert person.t("button.stale") in texts(replies)
    assert person.t("progress", step=2, total=12) in texts(replies)
    await person.user.press_data("f:gender:L", message_id=consent_message.message_id)
    replies = await person.user.replies()
    assert person.t("button.stale") in texts(replies)
    await person.user.press_data("f:full_name:<script>", message_id=consent_message.message_id)
    await person.user.replies()
    await person.user.press_data("nonsense", message_id=consent_message.message_id)
    await person.user.replies()
    assert await stored_answers(bot.runtime, 4006) == {"nik": NIK}


async def test_one_nik_one_active_application(bot: RunningBot) -> None:
    """A NIK with an active application is not registered twice, and no details leak."""
    owner = Person(bot.fake.user(4007, "Wayan"))
    await register_until_summary(owner)
    replies = await owner.tap("summary.send")
    reference = next(w for w in texts(replies).split() if w.startswith("BC-")).strip(".,")

    stranger = Person(bot.fake.user(4008, "Tamu"))
    await start_form(stranger)
    replies = await stranger.say(NIK)
    assert stranger.t("nik.duplicate.other") in texts(replies)
    assert reference not in texts(replies)
    assert "Sukadana" not in texts(replies)
    assert await current_step(bot.runtime, 4008) == "nik"

    # The owner is recognised instead of being walked into the form again.
    replies = await owner.say("/daftar")
    assert reference in texts(replies)
    assert owner.t("consent.yes") not in texts(replies)
    assert await current_step(bot.runtime, 4007) is None
    replies = await owner.say("/status")
    assert reference in texts(replies)


async def test_language_switch_in_the_middle(bot: RunningBot) -> None:
    """Switching to English mid-form repeats the current question in English."""
    person = Person(bot.fake.user(4009, "Made"))
    await start_form(person)
    await person.say(NIK)
    await person.say("/bahasa")
    replies = await person.tap_label("English")
    person.use_language("en")
    assert person.t("language.changed") in texts(replies)
    assert person.t("progress", step=2, total=12) in texts(replies)
    assert person.t("q.full_name.prompt") in texts(replies)
    await person.say("Made Wirawan")
    assert await current_step(bot.runtime, 4009) == "birth_date"
    chat_menus = [
        c
        for c in bot.fake.calls
        if c.method == "setMyCommands" and "scope" in c.params and "4009" in str(c.params["scope"])
    ]
    assert chat_menus, "the chat's command menu follows the new language"


async def test_calculator_info_status_and_help(bot: RunningBot) -> None:
    """The side commands answer without a registration."""
    person = Person(bot.fake.user(4010, "Komang"))
    replies = await person.say("/iuran")
    assert person.t("calculator.prompt") in texts(replies)
    replies = await person.tap_label("Rp1.000.000")
    assert "Rp16.800" in texts(replies) and "Rp36.800" in texts(replies)
    await person.say("/iuran")
    replies = await person.say("sejuta")
    assert person.t("calculator.prompt") in texts(replies)
    replies = await person.say("2,5 jt")
    assert "Rp31.800" in texts(replies)
    replies = await person.say("/info")
    assert "42" in texts(replies)
    replies = await person.say("/status")
    assert person.t("status.none") in texts(replies)
    replies = await person.say("/bantuan")
    assert person.t("help.header") in texts(replies) and "/daftar" in texts(replies)
    replies = await person.say("/entahlah")
    assert person.t("command.unknown") in texts(replies)
    await person.user.send_photo()
    replies = await person.user.replies()
    assert person.t("media.hint.idle") in texts(replies)


async def test_command_menus_are_set_per_language(bot: RunningBot) -> None:
    """At start-up the command menu is set for Indonesian and for English."""
    languages = {
        c.params.get("language_code") for c in bot.fake.calls if c.method == "setMyCommands"
    }
    assert {"id", "en"} <= languages


async def test_a_refused_start_up_call_does_not_stop_the_bot(
    fake: FakeTelegram, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """If Telegram refuses setMyCommands, the bot logs a warning and keeps serving."""
    fake.failing_methods["setMyCommands"] = 400
    with caplog.at_level(logging.WARNING):
        running = await start_bot(fake, runtime)
    try:
        assert any("command menu" in r.getMessage() for r in caplog.records)
        person = Person(fake.user(4011, "Sari"))
        replies = await person.say("/start")
        assert "Rp16.800" in texts(replies)
    finally:
        await running.stop()


async def test_desa_adat_of_the_village_are_offered(bot: RunningBot) -> None:
    """Imported desa adat of the chosen desa appear as buttons."""
    async with bot.runtime.sessions() as session, session.begin():
        session.add(
            DesaAdat(
                name="Desa Adat Kota Tabanan",
                village_code="51.02.05.2006",
                district_code="51.02.05",
            )
        )
    person = Person(bot.fake.user(4012, "Gede"))
    await start_form(person)
    for answer in (NIK, "Gede Artha", "17-08-1985"):
        await person.say(answer)
    await person.tap("gender.male")
    await person.say("081234567890")
    await person.tap_label("Kabupaten Tabanan")
    await person.tap_label("Tabanan")
    await person.say("Dajan Peken")
    replies = await person.tap("nav.skip")
    assert "Desa Adat Kota Tabanan" in replies[-1].buttons()[0]
    await person.tap_label("Desa Adat Kota Tabanan")
    answers = await stored_answers(bot.runtime, 4012)
    assert answers["desa_adat"]["name"] == "Desa Adat Kota Tabanan"
    assert await current_step(bot.runtime, 4012) == "occupation"
