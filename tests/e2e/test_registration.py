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
    await person.share_contact("6281234567890")
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
