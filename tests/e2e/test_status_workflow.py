"""Staff review applications with /tinjau; workers are told once and see it in /status.

Everything runs through the fake Telegram: two staff reviewing at the same time, workers
registering and withdrawing, forged button data, and a notice that survives a kill -9.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.core.dates import format_date
from bot.db.models import Application, OutboxMessage, StatusChange, User
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from bot.services.roles import RoleName
from bot.services.status_import import import_status
from tests.conftest import RunningBot
from tests.e2e.chat import Person, texts
from tests.e2e.test_crash import BotProcess
from tests.e2e.test_leaders import invite
from tests.e2e.test_registration import register_until_summary
from tests.services.test_delivery import until
from tests.services.test_status_workflow import sent_application

KPJ = "12345678901"


def nik_of(number: int) -> str:
    """A valid Tabanan NIK, born 17-08-1985, with its own serial."""
    return f"51020517088500{number + 1:02d}"


async def worker(bot: RunningBot, user_id: int, number: int) -> Person:
    """A worker who sent a registration."""
    person = Person(bot.fake.user(user_id, f"Warga{number}"))
    await register_until_summary(person, nik=nik_of(number), name=f"Warga Nomor {'ABC'[number]}")
    assert "BC-" in texts(await person.tap("summary.send"))
    return person


async def staff(bot: RunningBot, user_id: int) -> Person:
    """A branch staff member, by invitation."""
    person = Person(bot.fake.user(user_id, f"Petugas{user_id}"))
    await person.say(f"/start {await invite(bot.runtime, RoleName.STAFF)}")
    return person


async def references(runtime: Runtime) -> dict[int, str]:
    """Each worker's (chat id's) application reference."""
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(Application.reference, Application.user_id).where(
                    Application.reference.is_not(None)
                )
            )
        ).all()
        users = {u.id: u.telegram_id for u in (await session.scalars(select(User))).all()}
    return {int(users[user_id] or 0): str(reference) for reference, user_id in rows}


def received(fake: FakeTelegram, chat_id: int, fragment: str) -> int:
    """How many messages of a chat contain `fragment`."""
    return sum(fragment in (m.text or "") for m in fake.messages(chat_id))


async def test_two_staff_review_at_once_and_each_worker_is_told_exactly_once(
    bot: RunningBot,
) -> None:
    made, wayan = await worker(bot, 6101, 0), await worker(bot, 6102, 1)
    refs = await references(bot.runtime)
    first, second = await staff(bot, 6201), await staff(bot, 6202)

    cards = await asyncio.gather(first.say("/tinjau"), second.say("/tinjau"))
    shown = [{ref for ref in refs.values() if ref in texts(card)} for card in cards]
    # Each gets one card, and never the same one.
    assert all(len(s) == 1 for s in shown) and shown[0] != shown[1], shown
    assert nik_of(0) in texts(cards[0]) + texts(cards[1])  # staff see the whole NIK
    late = await staff(bot, 6203)
    assert late.t("review.empty", place=late.t("scope.branch")) in texts(await late.say("/tinjau"))

    by_ref = {ref: chat for chat, ref in refs.items()}
    registrar = first if by_ref[next(iter(shown[0]))] == 6101 else second
    rejecter = second if registrar is first else first
    t = registrar.t

    replies = await registrar.tap("review.button.verify")
    assert t("review.done.verified", reference=refs[6101]) in texts(replies)
    await registrar.tap("review.button.register")
    assert t("workflow.error.kpj", digits=11) in texts(await registrar.say("123"))
    assert t("review.ask.cover") in texts(await registrar.say("1234 5678 901"))
    today = bot.runtime.today()
    replies = await registrar.tap("review.cover.today", date=format_date(today, "id"))
    assert t("review.done.registered", reference=refs[6101], kpj=KPJ) in texts(replies)

    await rejecter.tap("review.button.reject")
    replies = await rejecter.tap("workflow.reason.nik")
    assert t("review.done.rejected", reference=refs[6102]) in texts(replies)

    fake = bot.fake
    # The workers typed fast while registering: Telegram's per-chat pace delays their notices.
    await until(
        lambda: received(fake, 6101, KPJ) == 1 and received(fake, 6102, "Dukcapil") == 1, 60
    )
    await asyncio.sleep(1.5)  # long enough for a repeat to show up, were there one
    assert received(fake, 6101, refs[6101] + " sudah diperiksa") == 1
    assert received(fake, 6101, KPJ) == 1
    assert received(fake, 6102, "Dukcapil") == 1 and received(fake, 6102, "/daftar") == 1

    # The worker's /status tells the story, and a registered worker may change the period.
    status = texts(await made.say("/status"))
    for expected in ("diverifikasi", "terdaftar", KPJ, format_date(today, "id")):
        assert expected in status
    await made.tap("period.change.button", reference=refs[6101])
    replies = await made.tap("period.option.12", amount="Rp261.600")
    assert made.t("period.change.done", period="Tiap 12 bulan", amount="Rp261.600") in texts(
        replies
    )
    assert "Dukcapil" in texts(await wayan.say("/status"))
    async with bot.runtime.sessions() as session:
        steps = (await session.scalars(select(StatusChange.to_status))).all()
    assert sorted(steps) == ["registered", "rejected", "verified"]


async def test_a_worker_withdraws_before_registration_after_confirming(bot: RunningBot) -> None:
    made = await worker(bot, 6301, 2)
    reference = (await references(bot.runtime))[6301]
    await made.say("/status")
    replies = await made.tap("withdraw.button", reference=reference)
    assert made.t("withdraw.confirm", reference=reference) in texts(replies)
    replies = await made.tap("withdraw.no")
    assert made.t("withdraw.kept", reference=reference) in texts(replies)
    await made.say("/status")
    await made.tap("withdraw.button", reference=reference)
    replies = await made.tap("withdraw.yes")
    assert made.t("withdraw.done", reference=reference) in texts(replies)
    assert "dibatalkan" in texts(await made.say("/status"))
    # Nothing is left for staff, and the worker may register again.
    officer = await staff(bot, 6302)
    assert "Tidak ada pendaftaran" in texts(await officer.say("/tinjau"))
    await made.say("/daftar")
    assert made.t("consent.yes") in made.user.last.buttons()[0]  # type: ignore[union-attr]


async def test_forged_review_buttons_get_a_polite_answer(bot: RunningBot) -> None:
    await worker(bot, 6401, 0)
    officer = await staff(bot, 6402)
    await officer.say("/tinjau")
    card = officer.user.last
    assert card is not None
    for data in (
        "tj:99999999999999999999:verify",
        "tj:-1:verify",
        "tj:0:register",
        "tj:1:explode",
        "tj:r:1:nonsense",
        "tj:c:1:2026-13-45",
        "wd:99999999999:yes",
        "pp:abc:3",
    ):
        await officer.user.press_data(data, message_id=card.message_id)
        said = texts(await officer.user.replies())
        assert officer.t("error.internal") not in said, data
        assert said, data


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_notice_written_before_a_kill_9_is_delivered_once_after_restart(
    runtime: Runtime,
    fake: FakeTelegram,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """The change and its notice commit together; a bot killed before the notice left sends
    it after the restart, once."""
    fake.user(6501, "Ketut")
    await sent_application(runtime, 6501, "BC-KIL001")
    process = BotProcess(fake, settings, None)
    await process.start()
    try:
        # Telegram fails every send for now: the notice stays in the outbox, being retried.
        fake.failing_methods["sendMessage"] = 502
        sheet = tmp_path / "status.csv"
        sheet.write_text("reference,status\nBC-KIL001,diverifikasi\n", encoding="utf-8")
        async with runtime.sessions() as session, session.begin():
            report = await import_status(
                session, runtime.settings, runtime.cipher, sheet, today=runtime.today()
            )
        assert len(report.applied) == 1

        async def refused_and_waiting() -> bool:
            # Tried, refused, and back to waiting for its next attempt: nothing in flight (a
            # notice in flight at a kill is reported uncertain instead, see the next test).
            async with runtime.sessions() as session:
                rows = (
                    await session.execute(select(OutboxMessage.state, OutboxMessage.attempts))
                ).all()
            return any(state == "pending" and attempts >= 1 for state, attempts in rows)

        await until(refused_and_waiting)
        await process.kill()
        fake.failing_methods.clear()
        await process.start()
        await until(lambda: received(fake, 6501, "BC-KIL001") == 1, 60)
        await asyncio.sleep(1.5)
        assert received(fake, 6501, "BC-KIL001") == 1
    finally:
        await process.stop()


async def test_a_notice_in_flight_at_a_kill_9_is_not_sent_again_after_restart(
    runtime: Runtime,
    fake: FakeTelegram,
    settings: Settings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A notice whose request reached Telegram just before the kill is never sent twice: the
    row was committed as "sending" before the request left, and the restarted bot reports it
    "uncertain" instead of sending it again."""
    fake.user(6502, "Kadek")
    await sent_application(runtime, 6502, "BC-KIL002")
    schema = None if settings.is_sqlite else str(request.getfixturevalue("postgres_schema"))
    process = BotProcess(fake, settings, schema)
    await process.start()
    try:
        # Telegram answers slowly: the request arrives (and is delivered) after the kill.
        fake.delay = 3.0
        sheet = tmp_path / "status.csv"
        sheet.write_text("reference,status\nBC-KIL002,diverifikasi\n", encoding="utf-8")
        async with runtime.sessions() as session, session.begin():
            report = await import_status(
                session, runtime.settings, runtime.cipher, sheet, today=runtime.today()
            )
        assert len(report.applied) == 1

        def requested() -> bool:
            return any(
                c.method == "sendMessage" and str(c.params.get("chat_id")) == "6502"
                for c in fake.calls
            )

        await until(requested)
        await process.kill()
        fake.delay = 0.0
        await until(lambda: received(fake, 6502, "BC-KIL002") == 1)
        await process.start()

        async def notice_state() -> list[str]:
            async with runtime.sessions() as session:
                return list(await session.scalars(select(OutboxMessage.state)))

        for _ in range(100):
            if await notice_state() == ["uncertain"]:
                break
            await asyncio.sleep(0.1)
        assert await notice_state() == ["uncertain"]
        await asyncio.sleep(1.5)
        assert received(fake, 6502, "BC-KIL002") == 1
    finally:
        fake.delay = 0.0
        await process.stop()
