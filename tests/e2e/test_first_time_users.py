"""What first-time users stumbled on in the registration, each as it should be now."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from bot.db.models import Application
from bot.fakebot import BotMessage
from bot.services.export import export_rows, write_export
from bot.services.roles import RoleName
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_bad_input import current_step, stored_answers
from tests.e2e.test_leaders import DAJAN_PEKEN, leader
from tests.e2e.test_registration import NIK, register_until_summary


async def consent(person: Person) -> None:
    """Open the form and agree."""
    await person.say("/daftar")
    await person.tap("consent.yes")


async def to_village(person: Person, name: str = "I Made Sukadana") -> list[BotMessage]:
    """Consent, then good answers up to the village question (Kecamatan Tabanan)."""
    await consent(person)
    await person.say(NIK)
    await person.say(name)
    await person.tap("birth_date.use_nik", date="17 Agustus 1985")
    await person.tap("gender.male")
    await person.share_contact("6281234567890")
    await person.tap_label("Kabupaten Tabanan")
    return await person.tap_label("Tabanan")


async def test_a_birth_date_or_gender_unlike_the_nik_is_asked_once_and_marked(
    bot: RunningBot, tmp_path: Path
) -> None:
    """Kept as typed, but asked once, marked in the summary and flagged in the export."""
    person = Person(bot.fake.user(8101, "Made"))
    t = person.t
    await consent(person)
    await person.say(NIK)  # the NIK says 17 August 1985, male
    await person.say("I Made Sukadana")
    replies = await person.say("15-08-1990")
    assert t("birth_date.confirm_nik", nik_date="17 Agustus 1985") in texts(replies)
    assert "birth_date" not in await stored_answers(bot.runtime, 8101)
    # "Ubah" asks the date again; typing "ya" the second time keeps it.
    replies = await person.tap("confirm.change")
    assert t("progress", step=3, total=12) in texts(replies)
    await person.say("15-08-1990")
    replies = await person.say("ya")
    assert t("progress", step=4, total=12) in texts(replies)
    assert (await stored_answers(bot.runtime, 8101))["birth_date"] == "1990-08-15"
    replies = await person.tap("gender.female")
    assert t("gender.confirm_nik", gender=t("gender.male")) in texts(replies)
    await person.tap("confirm.yes")
    assert (await stored_answers(bot.runtime, 8101))["gender"] == "P"


async def test_the_mismatch_mark_reaches_the_summary_and_the_export(
    bot: RunningBot, tmp_path: Path
) -> None:
    """Staff can filter the export on applications whose data differ from the NIK."""
    person = Person(bot.fake.user(8102, "Made"))
    await register_until_summary(person)
    await person.tap("summary.edit")
    await person.tap("q.birth_date.label")
    await person.say("15-08-1990")
    replies = await person.tap("confirm.yes")
    assert "15 Agustus 1990 " + person.t("summary.differs_from_nik") in texts(replies)
    await person.tap("summary.send")
    output = tmp_path / "out.csv"
    runtime = bot.runtime
    async with runtime.sessions() as session:
        rows = export_rows(session, runtime.cipher, runtime.areas, runtime.settings)
        await write_export(rows, "csv", output)
    parsed = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8-sig"))))
    assert parsed[0]["differs_from_nik"] == "ya"


async def test_others_see_the_nik_masked(bot: RunningBot) -> None:
    """A leader filling the form for a resident sees the resident's NIK masked."""
    perbekel = await leader(bot, 8103, RoleName.PERBEKEL, DAJAN_PEKEN)
    await perbekel.say("/daftarkan")
    await perbekel.tap("consent.assisted_yes")
    await perbekel.say(NIK)
    replies = await perbekel.tap("nav.back")
    assert "5102********0003" in texts(replies)
    assert NIK not in texts(replies)


async def test_status_knows_an_unfinished_registration(bot: RunningBot) -> None:
    """/status at the consent step says the registration is unfinished and offers to go on."""
    person = Person(bot.fake.user(8104, "Luh"))
    await person.say("/daftar")
    replies = await person.say("/status")
    assert person.t("status.unfinished_started") in texts(replies)
    assert person.t("status.none") not in texts(replies)
    replies = await person.tap("menu.continue")
    assert person.t("consent.yes") in texts(replies) or replies[-1].buttons()


async def test_a_registered_worker_is_recognised_everywhere(bot: RunningBot) -> None:
    """/start, /daftar, the village link and the calculator say she is registered already."""
    person = Person(bot.fake.user(8105, "Wayan"))
    await register_until_summary(person)
    replies = await person.tap("summary.send")
    reference = next(w for w in texts(replies).split() if w.startswith("BC-")).strip(".,")
    already = person.t(
        "registered.already", reference=reference, status=person.t("status.submitted")
    )
    for command in ("/start", "/daftar", f"/start desa_{DAJAN_PEKEN.replace('.', '_')}"):
        replies = await person.say(command)
        assert already in texts(replies), command
        assert await current_step(bot.runtime, 8105) is None, command
    await person.say("/iuran")
    replies = await person.tap_label("Rp1.000.000")
    assert person.t("calculator.next_registered") in texts(replies)
    assert person.t("menu.register") not in str(replies[-1].buttons())
    # The duplicate-NIK answer does not suggest that anything sent will be deleted.
    assert "/batal" not in person.t("nik.duplicate.own", reference=reference)


async def test_following_the_village_is_said_before_and_after(bot: RunningBot) -> None:
    """Consent and the "sent" message both say she will get village news, with /berhenti."""
    person = Person(bot.fake.user(8106, "Ketut"))
    replies = await person.say("/daftar")
    assert "/berhenti" in texts(replies)
    await person.tap("consent.yes")
    await person.say("/batal")
    await person.tap("cancel.yes")
    await register_until_summary(person)
    replies = await person.tap("summary.send")
    assert "/berhenti" in texts(replies)


async def test_typed_words_press_buttons(bot: RunningBot) -> None:
    """Labels, beginnings and common words work at every button step."""
    person = Person(bot.fake.user(8107, "Nyoman"))
    t = person.t
    await person.say("/daftar")
    replies = await person.say("mungkin nanti")
    # A refusal repeats the short question, not the whole consent text.
    assert t("consent.short") in texts(replies)
    assert t("consent.text", days=30) not in texts(replies)
    replies = await person.say("setuju")
    assert t("progress", step=1, total=12) in texts(replies)
    await person.say(NIK)
    await person.say("I Made Sukadana")
    await person.say("17-08-1985")
    await person.say("laki-laki")
    await person.share_contact("6281234567890")
    replies = await person.say("tabanan")
    assert await current_step(bot.runtime, 8107) == "district"
    await person.say("Tabanan")
    await person.say("Dajan Peken")
    await person.say("-")
    await person.say("lewati")
    await person.say("dagang")
    answers = await stored_answers(bot.runtime, 8107)
    assert answers["gender"] == "L"
    assert answers["regency"] == "51.02"
    assert answers["occupation"] == "pedagang"


async def test_a_greeting_gets_the_welcome(bot: RunningBot) -> None:
    """A first "halo" or "selamat pagi" is answered with the welcome, not "not understood"."""
    person = Person(bot.fake.user(8108, "Kadek"))
    for greeting in ("halo", "Selamat pagi!"):
        replies = await person.say(greeting)
        assert "Rp16.800" in texts(replies)
        assert person.t("idle.not_understood") not in texts(replies)


async def test_names_email_typos_and_an_heirs_own_number(bot: RunningBot) -> None:
    """Names shown in title case; a gmial.com and the worker's own number as heir asked once."""
    person = Person(bot.fake.user(8109, "Made"))
    t = person.t
    await to_village(person, "i made sukadana")
    assert (await stored_answers(bot.runtime, 8109))["full_name"] == "i made sukadana"
    await person.say("dajan peken")
    await person.tap("nav.skip")
    await person.tap("nav.skip")
    await person.tap("occupation.petani")
    await person.say("1,5 juta")
    await person.tap("programs.basic", amount="Rp21.800")
    await person.tap("period.option.1", amount="Rp21.800")
    await person.say("NI LUH SARI")
    await person.tap("relationship.pasangan")
    replies = await person.say("0812-3456-7890")
    assert t("heir_phone.confirm_own", phone="0812-3456-7890") in texts(replies)
    await person.tap("confirm.yes")
    replies = await person.say("made@gmial.com")
    assert t("email.confirm_typo", meant="made@gmail.com") in texts(replies)
    await person.tap("confirm.change")
    replies = await person.say("made@gmail.com")
    summary = texts(replies)
    assert "I Made Sukadana" in summary
    assert "Ni Luh Sari" in summary
    assert (await stored_answers(bot.runtime, 8109))["email"] == "made@gmail.com"


async def test_too_old_is_told_once_and_kembali_says_so(bot: RunningBot) -> None:
    """Over the age limit: told with the branch contact, the NIK's date is not offered again."""
    person = Person(bot.fake.user(8110, "Nenek"))
    t = person.t
    await consent(person)
    await person.say("5102054708500001")  # born 7 August 1950
    replies = await person.say("Ni Nyoman Rai")
    assert t("birth_date.use_nik", date="7 Agustus 1950") not in str(replies[-1].buttons())
    replies = await person.say("07-08-1950")
    assert t(
        "birth_date.error.over_age",
        max_age=64,
        address=bot.runtime.settings.branch_address,
        call_centre=bot.runtime.settings.call_centre,
    ) in texts(replies)
    assert "7 Agustus 1950" not in str(replies[-1].buttons())
    await person.say("07-08-1975")
    await person.tap("confirm.yes")
    await person.tap("gender.female")
    replies = await person.say("kembali")
    assert t("keyboard.back") in texts(replies)
    assert t("keyboard.closed") not in texts(replies)


async def test_village_prompts_fit_the_chosen_kecamatan(bot: RunningBot) -> None:
    """The example comes from the chosen kecamatan; no desa adat loaded is said plainly."""
    person = Person(bot.fake.user(8111, "Gede"))
    t = person.t
    prompt = texts(await to_village(person))
    assert "Sidakarya" not in prompt
    example = prompt.split(t("q.village.prompt", district="Tabanan", example="").split("\n")[-1])[
        -1
    ].split("\n")[0]
    village_names = {v.name for v in bot.runtime.areas.villages_of("51.02.05")}
    assert example.strip() in village_names
    await person.say("dajan peken")
    replies = await person.tap("nav.skip")
    assert t("desa_adat.none_known", village="Dajan Peken") in texts(replies)
    async with bot.runtime.sessions() as session:
        assert await session.scalar(select(Application.village_code)) == DAJAN_PEKEN


async def test_following_ones_own_village_again_says_since_registering(bot: RunningBot) -> None:
    """/ikuti of the village she registered in says she has had its news since then."""
    person = Person(bot.fake.user(8112, "Putu"))
    await register_until_summary(person)
    await person.tap("summary.send")
    await person.say("/ikuti")
    await person.tap_label("Kabupaten Tabanan")
    await person.tap_label("Tabanan")
    replies = await person.tap_label("Dajan Peken")
    village = person.t("village.kind.desa", village="Dajan Peken")
    assert person.t("follow.since_registered", village=village) in texts(replies)
