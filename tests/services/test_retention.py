"""The daily retention job: what is past its time goes, twice changes nothing, logs hold counts."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core.messages import Reply
from bot.core.states import ApplicationStatus
from bot.db.models import Application, Broadcast, OutboxMessage, StaffRequest, User, utcnow
from bot.runtime import Runtime
from bot.services.broadcasts import set_photo, set_text
from bot.services.outbox import Outgoing, enqueue
from bot.services.retention import apply_retention
from tests.services.test_status_workflow import sent_application


async def test_closed_applications_and_undelivered_messages_go_in_time_and_once(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    old = utcnow() - timedelta(days=400)
    rejected = await sent_application(runtime, 9301, "BC-RET001", status="rejected")
    recent = await sent_application(runtime, 9302, "BC-RET002", status="cancelled")
    waiting = await sent_application(runtime, 9303, "BC-RET003")
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Application)
            .where(Application.id.in_([rejected, waiting]))
            .values(status_changed_at=old, nik_hash="x" * 64, village_code="51.02.05.2006")
        )
        await session.execute(
            update(Application).where(Application.id == recent).values(status_changed_at=utcnow())
        )
        await enqueue(session, runtime.cipher, [Outgoing(9301, reply=Reply("Nomor KPJ Anda"))])
        await enqueue(session, runtime.cipher, [Outgoing(9302, reply=Reply("baru"))])
        await session.execute(
            update(OutboxMessage)
            .values(state="failed", created_at=old)
            .where(OutboxMessage.chat_id == 9301)
        )
        await session.execute(
            update(OutboxMessage).values(state="failed").where(OutboxMessage.chat_id == 9302)
        )
        worker = await session.scalar(select(User).where(User.telegram_id == 9302))
        assert worker is not None
        session.add(
            StaffRequest(
                kind="correction",
                application_id=recent,
                user_id=worker.id,
                text_enc=runtime.cipher.encrypt({"text": "Nama saya salah"}),
                closed_at=old,
            )
        )
        # A leader's broadcast that ended long ago, and one still sending.
        ended = Broadcast(scope_kind="all", state="done", finished_at=old)
        sending = Broadcast(scope_kind="all", state="sending", created_at=old)
        for broadcast in (ended, sending):
            set_text(broadcast, runtime.cipher, "Rapat banjar bersama Pak Made")
            set_photo(broadcast, runtime.cipher, b"\xff\xd8 rapat")
        session.add_all([ended, sending])

    caplog.set_level(logging.INFO, logger="bot.services.retention")
    counts = await apply_retention(runtime)
    assert counts["closed_applications"] == 1
    assert counts["undelivered_messages"] == 1
    assert counts["request_texts"] == 1
    assert counts["broadcast_texts"] == 1
    async with runtime.sessions() as session:
        apps = {a.id: a for a in await session.scalars(select(Application))}
        left = [(o.chat_id, o.state) for o in await session.scalars(select(OutboxMessage))]
        request = await session.scalar(select(StaffRequest))
        texts = {
            b.state: (b.text_enc, b.photo_enc) for b in await session.scalars(select(Broadcast))
        }
    # Rejected long ago: a tombstone. Withdrawn just now, and still waiting: untouched.
    assert apps[rejected].erased_at is not None and apps[rejected].answers_enc is None
    assert apps[rejected].nik_hash is None and apps[rejected].village_code is None
    assert apps[rejected].status == ApplicationStatus.REJECTED
    assert apps[recent].answers_enc is not None and apps[recent].erased_at is None
    assert apps[waiting].answers_enc is not None and apps[waiting].nik_hash == "x" * 64
    assert left == [(9302, "failed")]
    assert request is not None and request.text_enc is None
    assert texts["done"] == (None, None) and None not in texts["sending"]
    # Counts only in the log, and a second run finds nothing more.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "1 closed applications" in logged and "Nomor KPJ" not in logged
    again = await apply_retention(runtime)
    assert again["closed_applications"] == again["undelivered_messages"] == 0
    assert again["request_texts"] == again["broadcast_texts"] == 0
