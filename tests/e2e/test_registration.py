"""A worker registers from /start to the reference number, in Indonesian and in English."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from bot.db.models import Application, Consent
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.export import export_rows, write_export
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts

NIK = "5102051708850003"  # Tabanan, born 17-08-1985, male


async def register_until_summary(
    person: Person, nik: str = NIK, name: str = "I Made   Sukadana"
) -> None:
    """Answer every question with good answers, stopping at the summary."""
    await answer_until_phone(person, nik, name)
    await person.share_contact("6281234567890")
    await answer_after_phone(person)


async def answer_until_phone(person: Person, nik: str = NIK, name: str = "I Made Sukadana") -> None:
    """From /start to the question about the person's own phone number."""
    t = person.t
    replies = await person.say("/start")
    assert "Rp16.800" in texts(replies)
    await person.tap("menu.register")
    assert t("consent.yes") in person.user.last.buttons()[0]  # type: ignore[union-attr]
    replies = await person.tap("consent.yes")
    assert t("progress", step=1, total=12) in texts(replies)
    replies = await person.say(nik)
    assert t("progress", step=2, total=12) in texts(replies)
    await person.say(name)
    await person.tap(
        "birth_date.use_nik", date="17 Agustus 1985" if t.language == "id" else "17 August 1985"
    )
    await person.tap("gender.male")


async def answer_after_phone(person: Person) -> None:
    """From the regency to the summary, with good answers."""
    await person.tap_label("Kabupaten Tabanan")
    await person.tap_label("Tabanan")
    await person.say("dajan  peken")
    await person.say("Banjar Dukuh")
    await person.tap("nav.skip")
    await person.tap("occupation.petani")
    await person.say("1,5 juta")
    await person.tap("programs.basic", amount="Rp21.800")
    await person.tap("period.option.3", amount="Rp65.400")
    await person.say("Ni Luh Sari")
    await person.tap("relationship.pasangan")
    await person.say("0813-1111-2222")
    await person.tap("nav.skip")


async def test_worker_registers_in_indonesian(bot: RunningBot) -> None:
    """A worker goes through every question and gets a reference number; staff can export it."""
    person = Person(bot.fake.user(1001, "Made", language_code="id"))
    await register_until_summary(person)
    summary = person.last_text
    # Her own summary shows the whole NIK: she checks it against her KTP.
    assert NIK in summary
    assert "Dajan Peken" in summary
    assert "Rp21.800" in summary
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)

    runtime: Runtime = bot.runtime
    async with runtime.sessions() as session:
        app = await session.scalar(select(Application).where(Application.status == "submitted"))
        assert app is not None
        assert app.reference is not None and app.reference in texts(replies)
        assert app.village_code == "51.02.05.2006"
        assert app.answers_enc is not None and NIK not in app.answers_enc
        # Its export cells were made as it was sent, encrypted too.
        assert app.export_cells_enc is not None and app.export_cells_for is not None
        assert NIK not in app.export_cells_enc
        assert NIK in runtime.cipher.decrypt_bytes(app.export_cells_enc.encode()).decode()
        consent = await session.scalar(select(Consent).where(Consent.application_id == app.id))
        assert consent is not None and consent.given and consent.language == "id"
        rows = [
            r async for r in export_rows(session, runtime.cipher, runtime.areas, runtime.settings)
        ]
    assert len(rows) == 1
    row = rows[0]
    assert row["nik"] == NIK
    assert row["phone"] == "+6281234567890"
    assert row["village_code"] == "51.02.05.2006"
    assert row["village_name"] == "Dajan Peken"
    assert row["monthly_contribution"] == 21800
    assert row["per_payment"] == 65400
    assert row["full_name"] == "I Made Sukadana"
    assert row["heir_phone"] == "+6281311112222"


async def test_worker_registers_in_english(bot: RunningBot, tmp_path: Path) -> None:
    """An English-speaking worker gets every question in English and can submit."""
    person = Person(bot.fake.user(1002, "Wayan", language_code="en"), "en")
    await register_until_summary(person)
    assert person.t("summary.header") in person.last_text
    assert person.t("summary.header") != translator("id")("summary.header")
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)
    output = tmp_path / "out.csv"
    runtime = bot.runtime
    async with runtime.sessions() as session:
        rows = export_rows(session, runtime.cipher, runtime.areas, runtime.settings)
        assert await write_export(rows, "csv", output) == 1
    parsed = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8-sig"))))
    assert parsed[0]["village_name"] == "Dajan Peken"
    # In CSV a leading "+" would start a formula in a spreadsheet: a quote neutralises it.
    assert parsed[0]["phone"] == "'+6281234567890"


async def test_a_shared_number_costs_one_message_and_its_keyboard_goes_later(
    bot: RunningBot,
) -> None:
    """Pressing "share my number" is answered by the next question alone, headed by the number.

    The one-time keyboard hid itself when its button was pressed, so taking it away waits for
    a message that goes anyway: the confirmation of the sent registration at the latest.
    """
    person = Person(bot.fake.user(1003, "Komang", language_code="id"))
    t = person.t
    await answer_until_phone(person, "5102051708850011", "I Komang Arta")
    replies = await person.share_contact("6281234567890")
    assert len(replies) == 1
    assert t("q.phone.saved", value="0812-3456-7890") in texts(replies)
    assert t("keyboard.closed") not in texts(replies)
    assert replies[0].has_inline_keyboard, "the regency question, with its buttons"
    await answer_after_phone(person)
    assert person.user.reply_keyboard() is not None, "still held by the client"
    replies = await person.tap("summary.send")
    assert "BC-" in texts(replies)
    assert person.user.reply_keyboard() is None


async def test_a_typed_number_takes_the_keyboard_away_at_once(bot: RunningBot) -> None:
    """A number typed while the keyboard is on screen: the keyboard goes with the answer."""
    person = Person(bot.fake.user(1004, "Ketut", language_code="id"))
    t = person.t
    await answer_until_phone(person, "5102051708850029", "I Ketut Arta")
    assert person.user.reply_keyboard() is not None
    replies = await person.say("0812-3456-7890")
    assert t("q.phone.saved", value="0812-3456-7890") in texts(replies)
    assert person.user.reply_keyboard() is None
