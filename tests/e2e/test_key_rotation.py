"""`keys rotate` on a live bot with 10 000 applications: interrupted, run again, nothing lost.

(10 000 on SQLite, 2 000 on PostgreSQL.)

The bot runs as its own process with the new key and the old one while `python -m bot keys
rotate` rewrites everything, is killed part-way, and is run again; people keep registering
meanwhile. Afterwards the old key is dropped: every application opens with the new key alone,
every NIK hash is the new key's (a NIK already registered is still refused), a resident's
claim code still works, and the export holds every row.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from sqlalchemy import Connection, LargeBinary, String, Text, func, select

from bot.config import Settings
from bot.core.states import ApplicationStatus
from bot.db.models import Application, Base, Broadcast, OutboxMessage, StaffRequest
from bot.fakebot import FakeTelegram
from bot.runtime import Runtime
from bot.security import Cipher, generate_key
from bot.services.broadcasts import photo_of, set_photo, set_text
from bot.services.demo import add_demo_data
from bot.services.export_ahead import fill_export_cells
from tests.conftest import DATA_KEY
from tests.e2e.chat import Person, texts
from tests.e2e.test_crash import ROOT, BotProcess
from tests.e2e.test_registration import register_until_summary

# The 10 000 on SQLite; on PostgreSQL (same code, slower inserts) 2 000 keep the suite
# within its time.
APPLICATIONS = {"sqlite": 10_000, "postgres": 2_000}
CLAIM_CODE = "KODE2345"
PHOTO = b"\xff\xd8\xff\xe0 rapat banjar " * 2000


TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_=-]+")


def stored_tokens(connection: Connection) -> dict[str, list[str]]:
    """Every Fernet token in every text or bytes column of every table, by table."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | LargeBinary)]
        if not columns:
            continue
        for row in connection.execute(select(*columns)):
            for value in row:
                if isinstance(value, bytes):
                    # Photos: the token is the whole value, in ASCII.
                    value = value.decode("ascii", errors="replace")
                if isinstance(value, str):
                    found.setdefault(table.name, []).extend(TOKEN.findall(value))
    return {name: tokens for name, tokens in found.items() if tokens}


def rotate_command(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "keys", "rotate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_keys_rotate_on_a_live_bot_loses_nothing(
    runtime: Runtime,
    fake: FakeTelegram,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> None:
    old, new = DATA_KEY, generate_key()
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(
            session,
            runtime.cipher,
            runtime.areas,
            applications=APPLICATIONS["sqlite" if settings.is_sqlite else "postgres"],
            seed=9,
        )
        # Their export cells, made under the old key (a rotation renews or remakes them).
        await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
        # One assisted application waiting to be claimed, with its code.
        claimed = await session.scalar(select(Application).order_by(Application.id).limit(1))
        assert claimed is not None
        claimed.assisted_by = claimed.user_id
        claimed.claim_code_hash = runtime.cipher.keyed_hash(CLAIM_CODE)
        claimed.flow_state = json.dumps({"claim": runtime.cipher.encrypt({"code": CLAIM_CODE})})
        claimed_id, claimed_ref = claimed.id, claimed.reference
        held = await session.scalar(
            select(Application).where(Application.status == ApplicationStatus.SUBMITTED).limit(1)
        )
        assert held is not None and held.answers_enc is not None
        held_nik = str(runtime.cipher.decrypt(held.answers_enc)["nik"])
        # A leader's broadcast text and a worker's correction request: encrypted too.
        news = Broadcast(scope_kind="all", state="done")
        set_text(news, runtime.cipher, "Kabar untuk Bu Ketut Sari di Banjar Kaja")
        set_photo(news, runtime.cipher, PHOTO)
        session.add(news)
        session.add(
            StaffRequest(
                kind="correction",
                application_id=held.id,
                user_id=held.user_id,
                text_enc=runtime.cipher.encrypt({"text": "Nama ibu saya Ni Luh Sari"}),
            )
        )
    async with runtime.sessions() as session:
        total = int(await session.scalar(select(func.count()).select_from(Application)) or 0)

    schema = None if settings.is_sqlite else str(request.getfixturevalue("postgres_schema"))
    bot = BotProcess(fake, settings, schema)
    bot.env.update(DATA_KEY=new, DATA_KEY_OLD=old)
    await bot.start()
    try:
        # Someone registers while the rotation runs (written under the new key).
        worker = Person(fake.user(9101, "Made"))
        registering = asyncio.create_task(register_until_summary(worker, nik="5102051708850099"))
        # A rotation killed part-way...
        first = rotate_command(bot.env)
        await asyncio.sleep(1.5)
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.communicate, timeout=30)
        # ...and run again to the end.
        second = rotate_command(bot.env)
        out, err = await asyncio.to_thread(second.communicate, timeout=240)
        assert second.returncode == 0, err.decode()
        assert b"every row is under the new key" in out, out.decode()
        await registering
        assert "BC-" in texts(await worker.tap("summary.send"))
    finally:
        await bot.stop()

    # The old key goes: everything must open with the new one alone.
    only_new = Cipher(new.encode())
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(Application.id, Application.answers_enc, Application.nik_hash)
            )
        ).all()
        payloads = list(await session.scalars(select(OutboxMessage.payload)))
    assert len(rows) == total + 1  # nothing lost, nothing doubled
    for _, token, nik_hash in rows:
        if token is None:
            continue
        answers = only_new.decrypt(token)
        if "nik" in answers:
            assert nik_hash == only_new.nik_hash(str(answers["nik"]))
    for payload in payloads:
        only_new.decrypt(payload)
    async with runtime.sessions() as session:
        # Every sent application's export cells were made again (under the new key, as the
        # token scan below checks): exports stay fast after a rotation.
        lacking = await session.scalar(
            select(func.count()).where(
                Application.status != ApplicationStatus.DRAFT,
                Application.answers_enc.is_not(None),
                Application.export_cells_for.is_(None),
            )
        )
    assert lacking == 0
    # Every token anywhere in the database (whole values, or inside JSON) opens with it.
    async with runtime.engine.connect() as connection:
        tokens = await connection.run_sync(stored_tokens)
    assert {"applications", "broadcasts", "staff_requests", "key_check"} <= tokens.keys()
    # The broadcast's text and its photo.
    assert len(tokens["broadcasts"]) == 2
    async with runtime.sessions() as session:
        kept = await session.get(Broadcast, news.id)
    assert kept is not None and photo_of(kept, only_new) == PHOTO
    for found in tokens.values():
        for token in found:
            # Opened (its MAC checked and decrypted) whatever it holds: JSON or a photo.
            only_new.decrypt_bytes(token.encode())

    bot.env.pop("DATA_KEY_OLD")
    bot.env["DATA_KEY"] = new
    await bot.start()
    try:
        # A NIK registered before the rotation is still found (by its new hash).
        stranger = Person(fake.user(9102, "Tamu"))
        await stranger.say("/daftar")
        await stranger.tap("consent.yes")
        assert stranger.t("nik.duplicate.other") in texts(await stranger.say(held_nik))
        # The resident's claim code still works.
        resident = Person(fake.user(9103, "Rai"))
        replies = await resident.say(f"/klaim {CLAIM_CODE}")
        assert resident.t("claim.done", reference=claimed_ref) in texts(replies)
    finally:
        await bot.stop()
    async with runtime.sessions() as session:
        app = await session.get(Application, claimed_id)
    assert app is not None and app.claim_code_hash is None

    # The export reads every sent application with the new key alone.
    exported = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "export", "--format", "csv"],
        cwd=ROOT,
        env=bot.env,
        capture_output=True,
        check=True,
    )
    lines = exported.stdout.decode("utf-8-sig").strip().splitlines()
    async with runtime.sessions() as session:
        sent = await session.scalar(
            select(func.count())
            .select_from(Application)
            .where(Application.status != ApplicationStatus.DRAFT)
        )
    assert len(lines) - 1 == sent
