"""Staff commands of the command line for numbers: `report`, `targets import` and `audit`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.charts import render_report_chart
from bot.core.images import group_thousands
from bot.core.reports import write_csv, write_xlsx
from bot.core.tables import MEGABYTE, TableError
from bot.db.models import Application, AuditEntry, User
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services import audit
from bot.services.reports import gather_report, report_chart, report_summary
from bot.services.targets import check_targets, replace_targets

CLI = "cli"
REPORT_FORMATS = {".png": "png", ".xlsx": "xlsx", ".csv": "csv"}
AUDIT_COLUMNS = ("id", "at", "actor_telegram_id", "actor_label", "action", "target", "details")
# A cell starting with one of these is run as a formula by Excel or Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def run_report_command(runtime: Runtime, args: argparse.Namespace) -> int:
    """Run report, targets import or audit."""
    if args.command == "report":
        return await _report(runtime, args.output, args.language)
    if args.command == "targets":
        return await _import_targets(runtime, args.file)
    return await _audit(runtime, args)


def _write_beside(output: Path, write: Any) -> None:
    """Write through a temporary file beside `output`, renamed when complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    try:
        write(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


async def _report(runtime: Runtime, output: Path, language: str | None) -> int:
    kind = REPORT_FORMATS.get(output.suffix.lower())
    if kind is None:
        print("--output must end in .png, .xlsx or .csv", file=sys.stderr)
        return 2
    t = translator(language or runtime.settings.default_language)
    today = runtime.today()
    async with runtime.sessions() as session, session.begin():
        report = await gather_report(
            session, runtime.areas, tz=runtime.settings.tz, today=today, t=t
        )
        await audit.record(
            session,
            "report",
            actor_label=CLI,
            target="branch",
            output=kind,
            applications=report.total.applications,
        )
    if kind == "png":
        png = await asyncio.to_thread(render_report_chart, report_chart(report, t, today))
        _write_beside(output, lambda path: path.write_bytes(png))
    elif kind == "xlsx":
        _write_beside(output, lambda path: write_xlsx(report, path, t))
    else:
        _write_beside(output, lambda path: write_csv(report, path))
    print(report_summary(report, t, today))
    print(f"Report written to {output}.", file=sys.stderr)
    return 0


async def _import_targets(runtime: Runtime, path: Path) -> int:
    villages = {code: village.name for code, village in runtime.areas.village_by_code.items()}
    try:
        checked = check_targets(path, villages, max_bytes=runtime.settings.import_max_mb * MEGABYTE)
    except TableError as exc:
        print(f"Cannot import {path}: {exc} Nothing was changed.", file=sys.stderr)
        return 1
    if checked.problems:
        for problem in checked.problems:
            print(problem, file=sys.stderr)
        print(f"{len(checked.problems)} row(s) need fixing; nothing was changed.", file=sys.stderr)
        return 1
    async with runtime.sessions() as session, session.begin():
        before = await replace_targets(session, checked.targets, source=path.name, actor_label=CLI)
    total = group_thousands(sum(checked.targets.values()))
    print(
        f"Targets: {len(checked.targets)} villages, {total} potential workers "
        f"(replacing {before} villages' targets)."
    )
    return 0


def _inert(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


async def _audit_rows(
    session: AsyncSession, query: Select[AuditEntry, int | None]
) -> AsyncIterator[tuple[AuditEntry, int | None]]:
    result = await session.stream(query.execution_options(yield_per=2000))
    async for entry, telegram_id in result:
        yield entry, telegram_id


async def _person(runtime: Runtime, reference: str) -> int:
    """`audit --person`: the trail of one application (the basis of a breach notice)."""
    from bot.services.trail import trail_of

    tz = runtime.settings.tz
    async with runtime.sessions() as session:
        app = await session.scalar(
            select(Application).where(Application.reference == reference.strip().upper())
        )
        if app is None:
            print(f"No application {reference.strip()!r}.", file=sys.stderr)
            return 1
        traces = await trail_of(session, app, runtime.settings)
        users: dict[int, int | None] = {
            uid: tid for uid, tid in await session.execute(select(User.id, User.telegram_id))
        }
    for trace in traces:
        at = trace.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        who = trace.actor_label or str(users.get(trace.actor_user_id or 0) or "-")
        print(f"{at}  {who:>12}  {trace.action:<20}  {json.dumps(trace.details, sort_keys=True)}")
    print(f"{len(traces)} entries for {app.reference}.", file=sys.stderr)
    return 0


async def _audit(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.person:
        return await _person(runtime, args.person)
    tz = runtime.settings.tz
    query = (
        select(AuditEntry, User.telegram_id)
        .outerjoin(User, User.id == AuditEntry.actor_user_id)
        .order_by(AuditEntry.id)
    )
    if args.since is not None:
        since = datetime.combine(args.since, time(), tzinfo=tz).astimezone(UTC)
        query = query.where(AuditEntry.at >= since)
    if args.action:
        query = query.where(AuditEntry.action == args.action)
    if args.actor:
        actor = args.actor.strip()
        if actor.isdigit():
            query = query.where(User.telegram_id == int(actor))
        else:
            query = query.where(AuditEntry.actor_label == actor)
    if args.output is not None and args.format != "csv":
        print("--output needs --format csv", file=sys.stderr)
        return 2
    handle: TextIO
    count = 0
    async with runtime.sessions() as session:
        if args.format == "csv" and args.output is not None:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            partial = args.output.with_name(f".{args.output.name}.partial")
            try:
                with partial.open("w", newline="", encoding="utf-8-sig") as handle:
                    count = await _write_audit_csv(session, query, handle, tz)
                os.replace(partial, args.output)
            finally:
                partial.unlink(missing_ok=True)
        elif args.format == "csv":
            count = await _write_audit_csv(session, query, sys.stdout, tz)
        else:
            async for entry, telegram_id in _audit_rows(session, query):
                count += 1
                at = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
                who = str(telegram_id) if telegram_id is not None else entry.actor_label or "-"
                print(
                    f"{at}  {who:>12}  {entry.action:<20}  {entry.target or '-'}  {entry.details}"
                )
    if args.format == "csv":
        # Taking the log out of the system is itself an export worth recording.
        filters = {
            "since": args.since.isoformat() if args.since else None,
            "actor": args.actor,
            "action": args.action,
        }
        async with runtime.sessions() as session, session.begin():
            await audit.record(
                session,
                "audit_export",
                actor_label=CLI,
                target=args.output.name if args.output else "stdout",
                rows=count,
                filters=json.dumps(filters, sort_keys=True),
            )
    print(f"{count} audit entries.", file=sys.stderr)
    return 0


async def _write_audit_csv(
    session: AsyncSession,
    query: Select[AuditEntry, int | None],
    handle: TextIO,
    tz: Any,
) -> int:
    writer = csv.writer(handle)
    writer.writerow(AUDIT_COLUMNS)
    count = 0
    async for entry, telegram_id in _audit_rows(session, query):
        count += 1
        writer.writerow(
            _inert(cell)
            for cell in (
                entry.id,
                entry.at.astimezone(tz).isoformat(timespec="seconds"),
                telegram_id if telegram_id is not None else "",
                entry.actor_label or "",
                entry.action,
                entry.target or "",
                entry.details,
            )
        )
    return count
