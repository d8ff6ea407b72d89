"""Large /ekspor exports in the background: a loop over `ExportJob` rows, run by the leader.

Claim, commit, act, record: a pending job is marked running (committed), its file written
while a progress message is edited now and then, and then, in one transaction, the file is
queued in the outbox and the job marked done with its audit row. A crash before that
transaction leaves the job "running"; the next start-up sets it pending again and writes the
file anew, so the person gets it once. An error on the way (a database busy for too long,
say) does the same at once, up to `TRIES` times; then the person is told it failed.

The progress task is stopped between two of its edits, never cancelled inside one: a write
cut off in the middle could leave its connection holding SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.messages import Reply
from bot.db.models import ExportJob, User, utcnow
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.export import record_export, run_export
from bot.services.exporting import file_replies, load_request
from bot.services.outbox import Action, Outgoing, enqueue
from bot.services.pacing import wait_at_most

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
# How often the progress message is brought up to date, at most.
PROGRESS_SECONDS = 3.0
# Times a job is written before the person is told it failed.
TRIES = 3


async def run_export_jobs(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    nudge: Callable[[], None] | None = None,
    poll_seconds: float = 2.0,
) -> None:
    """Write pending export jobs one at a time until `stop` is set."""
    poke = nudge or (lambda: None)
    recovered = False
    failures: dict[int, int] = {}
    while not stop.is_set():
        job_id = None
        try:
            if not recovered:
                await _recover(runtime)
                recovered = True
            job_id = await _claim(runtime)
            if job_id is None:
                await wait_at_most(stop, poll_seconds)
                continue
            await _run(runtime, job_id, poke)
        except Exception:
            log.exception("An export job failed; the loop goes on")
            if job_id is not None:
                failures[job_id] = failures.get(job_id, 0) + 1
                await _again_or_failed(runtime, job_id, failures[job_id] >= TRIES)
                poke()
            await wait_at_most(stop, poll_seconds)


async def _again_or_failed(runtime: Runtime, job_id: int, last: bool) -> None:
    """A job cut short by an error: pending again, or (its last try) failed and said so."""
    try:
        async with runtime.sessions() as session, session.begin():
            job = await session.get(ExportJob, job_id)
            if job is None or job.state != RUNNING:
                return
            if not last:
                job.state = PENDING
                return
            await _finish(session, job_id, FAILED, None)
            t = translator(json.loads(job.request)["language"])
            failed = Outgoing(job.chat_id, reply=Reply(t("export.failed")), priority=1)
            await enqueue(session, runtime.cipher, [failed])
    except Exception:
        # Still "running": the next start-up sets it pending again.
        log.exception("Could not record how export job %s ended", job_id)


async def _recover(runtime: Runtime) -> None:
    """Jobs cut short by a crash or a stop are written again from the start."""
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(ExportJob).where(ExportJob.state == RUNNING).values(state=PENDING)
        )


async def _claim(runtime: Runtime) -> int | None:
    async with runtime.sessions() as session, session.begin():
        job_id = await session.scalar(
            select(ExportJob.id).where(ExportJob.state == PENDING).order_by(ExportJob.id).limit(1)
        )
        if job_id is None:
            return None
        claimed = await session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.state == PENDING)
            .values(state=RUNNING, started_at=utcnow())
        )
        return job_id if claimed.rowcount else None  # type: ignore[attr-defined]


async def _run(runtime: Runtime, job_id: int, nudge: Callable[[], None]) -> None:
    async with runtime.sessions() as session:
        job = await session.get(ExportJob, job_id)
        assert job is not None
        chat_id, user_id, expected, text = job.chat_id, job.user_id, job.expected_rows, job.request
    request, fmt, name, place = load_request(text)
    t = translator(request.language)
    done = 0

    def progress(count: int) -> None:
        nonlocal done
        done = count

    written = asyncio.Event()
    shown = asyncio.create_task(
        _show_progress(runtime, job_id, chat_id, expected, lambda: done, nudge, written)
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / name
            async with runtime.sessions() as session:
                result = await run_export(
                    session,
                    runtime.cipher,
                    runtime.areas,
                    runtime.settings,
                    request,
                    fmt,
                    output,
                    progress=progress,
                )
            data = await asyncio.to_thread(output.read_bytes)
    except Exception:
        written.set()
        await shown
        log.exception("Export job %s failed", job_id)
        async with runtime.sessions() as session, session.begin():
            await _finish(session, job_id, FAILED, None)
            reply = Reply(t("export.failed"))
            await enqueue(session, runtime.cipher, [Outgoing(chat_id, reply=reply, priority=1)])
        nudge()
        return
    written.set()
    await shown
    replies = file_replies(t, name, data, result.rows, place, masked=request.mask_nik)
    async with runtime.sessions() as session, session.begin():
        user = await session.get(User, user_id)
        await record_export(session, result, request, fmt, actor=user)
        await _finish(session, job_id, DONE, result.rows)
        items = [Outgoing(chat_id, reply=reply, priority=1) for reply in replies]
        job = await session.get(ExportJob, job_id)
        if job is not None and job.progress_message_id is not None:
            # The progress message says it is done, rather than stopping at some percent.
            ready = Reply(t("export.progress.done", count=result.rows))
            items.append(_edit(chat_id, job.progress_message_id, ready))
        await enqueue(session, runtime.cipher, items)
    nudge()


def _edit(chat_id: int, message_id: int, reply: Reply) -> Outgoing:
    """A change to the progress message (cosmetic: nothing is lost if it cannot be made)."""
    return Outgoing(
        chat_id, Action.EDIT, reply=reply, message_id=message_id, quiet=True, priority=1
    )


async def _finish(session: AsyncSession, job_id: int, state: str, rows: int | None) -> None:
    await session.execute(
        update(ExportJob)
        .where(ExportJob.id == job_id)
        .values(state=state, rows=rows, finished_at=utcnow())
    )


async def _show_progress(
    runtime: Runtime,
    job_id: int,
    chat_id: int,
    expected: int,
    done: Callable[[], int],
    nudge: Callable[[], None],
    written: asyncio.Event,
) -> None:
    """Edit the "preparing" message with the share written, every few seconds, until the
    file is `written` (checked between edits only)."""
    last = -1
    while True:
        await wait_at_most(written, PROGRESS_SECONDS)
        if written.is_set():
            return
        percent = min(99, done() * 100 // max(expected, 1))
        if percent == last:
            continue
        try:
            async with runtime.sessions() as session, session.begin():
                job = await session.get(ExportJob, job_id)
                if job is None or job.progress_message_id is None:
                    continue
                language = json.loads(job.request)["language"]
                text = translator(language)("export.progress", count=expected, percent=percent)
                edit = _edit(chat_id, job.progress_message_id, Reply(text))
                await enqueue(session, runtime.cipher, [edit])
        except Exception:
            # Only the progress shown: the export itself goes on.
            log.warning("Could not show export job %s's progress", job_id, exc_info=True)
            continue
        nudge()
        last = percent
