"""Background exports: a job cut short by a crash is written again and its file queued once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.db.models import ExportJob, OutboxMessage, User
from bot.runtime import Runtime
from bot.services.export import ExportFilter, ExportRequest
from bot.services.export_jobs import run_export_jobs
from bot.services.exporting import dump_request
from bot.services.outbox import decode
from tests.services.test_export import DAJAN_PEKEN, add_application


async def test_a_job_left_running_by_a_crash_is_written_again_and_sent_once(
    runtime: Runtime,
) -> None:
    await add_application(runtime, "BC-TAB001")
    request = ExportRequest(ExportFilter(village=DAJAN_PEKEN), mask_nik=True)
    async with runtime.sessions() as session, session.begin():
        staff = User(telegram_id=4242, language="id")
        session.add(staff)
        await session.flush()
        # The process died while writing this one.
        session.add(
            ExportJob(
                user_id=staff.id,
                chat_id=4242,
                request=dump_request(request, "csv", "pendaftaran.csv", "Desa Dajan Peken"),
                expected_rows=1,
                state="running",
            )
        )
    stop = asyncio.Event()
    loop = asyncio.create_task(run_export_jobs(runtime, stop, poll_seconds=0.05))
    try:
        for _ in range(400):
            async with runtime.sessions() as session:
                state = await session.scalar(select(ExportJob.state))
            if state == "done":
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
    async with runtime.sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
        jobs = await session.scalar(select(func.count()).select_from(ExportJob))
    assert jobs == 1
    [row] = rows
    item = decode(row.chat_id, row.priority, runtime.cipher.decrypt(row.payload))
    assert item.reply is not None and item.reply.attachment is not None
    content = item.reply.attachment.content.decode("utf-8-sig")
    assert "BC-TAB001" in content and "5102********0003" in content
