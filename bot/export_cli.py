"""The command line's `export` and `demo-data`: arguments in, the export service out.

An operator on the command line is identified by `--operator` (by default the login name of
the OS user running it); the audit log records each export as `cli:<operator>`, and
`--new` takes what was sent since that operator's last complete export.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.cli_arguments import count_argument, row_id_argument, seed_argument
from bot.core.dates import parse_date
from bot.core.errors import InvalidInput
from bot.services import audit
from bot.services.export import (
    FORMATS,
    ExportFilter,
    ExportRequest,
    cli_actor,
    count_selected,
    last_export,
    parse_status,
    record_export,
    run_export,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `export`."""
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument(
        "--output",
        type=Path,
        help="file to write; it appears only once complete (default: standard output, CSV)",
    )
    parser.add_argument("--regency", metavar="CODE", help="regency code, e.g. 51.02")
    parser.add_argument("--district", metavar="CODE", help="kecamatan code, e.g. 51.02.05")
    parser.add_argument(
        "--village", metavar="CODE|NAME", help="e.g. 51.02.05.2006 or 'Dajan Peken'"
    )
    parser.add_argument("--desa-adat", type=row_id_argument, metavar="ID", help="desa adat id")
    parser.add_argument(
        "--status",
        help="submitted|verified|registered|rejected|cancelled "
        "(or menunggu|diverifikasi|terdaftar|ditolak|dibatalkan)",
    )
    parser.add_argument("--since", metavar="DATE", help="sent on or after this day (WITA)")
    parser.add_argument("--until", metavar="DATE", help="sent on or before this day (WITA)")
    parser.add_argument(
        "--new",
        action="store_true",
        help="only what was sent since this operator's last complete export",
    )
    parser.add_argument(
        "--operator",
        default=None,
        help="who is exporting, for the audit log and --new (default: the OS user name)",
    )
    parser.add_argument(
        "--language", choices=("id", "en"), help="language of the headers and statuses"
    )
    parser.add_argument(
        "--delimiter",
        default=",",
        choices=(",", ";"),
        help="CSV field separator; ';' for Excel set to Indonesian",
    )
    parser.add_argument(
        "--workers",
        type=count_argument,
        metavar="N",
        help="processes that decrypt and format the rows beside the reading one "
        "(default: EXPORT_WORKERS, else one per core)",
    )


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `demo-data`."""
    parser.add_argument("--applications", type=count_argument, required=True, metavar="N")
    parser.add_argument("--drafts", type=count_argument, default=0, metavar="N")
    parser.add_argument("--seed", type=seed_argument, default=None, metavar="S")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return parse_date(text)
    except InvalidInput:
        raise ValueError(f"{option}: expected a date such as 2026-12-01 or 01-12-2026") from None


def _filter(runtime: Runtime, args: argparse.Namespace) -> ExportFilter:
    """The filters asked for, checked against the branch's areas; ValueError says what is wrong."""
    areas = runtime.areas
    if args.regency and areas.regency(args.regency) is None:
        raise ValueError(f"--regency: {args.regency!r} is not a regency code of the branch")
    if args.district and areas.district(args.district) is None:
        raise ValueError(f"--district: {args.district!r} is not a kecamatan code of the branch")
    village = None
    if args.village:
        found = areas.find_village(args.village)
        if len(found) != 1:
            listed = "; ".join(areas.label(v) for v in found) or "none"
            raise ValueError(
                f"--village: {args.village!r} matches {len(found)} villages ({listed})"
            )
        village = found[0].code
    return ExportFilter(
        regency=args.regency,
        district=args.district,
        village=village,
        desa_adat_id=args.desa_adat,
        status=parse_status(args.status) if args.status else None,
        since=_day(args.since, "--since"),
        until=_day(args.until, "--until"),
    )


class Bar:
    """A progress bar on a terminal's standard error; silent when that is not a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.shown = stream.isatty()

    def __call__(self, done: int) -> None:
        if not self.shown or not self.total:
            return
        share = min(done / self.total, 1.0)
        filled = int(share * 30)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} {done}/{self.total}"
        )
        self.stream.flush()

    def end(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 60 + "\r")


async def run_export_command(runtime: Runtime, args: argparse.Namespace) -> int:
    """`export`: write the selected applications, record who took them, print one summary line."""
    settings = runtime.settings
    operator = args.operator or getpass.getuser()
    actor_label = cli_actor(operator)
    try:
        wanted = _filter(runtime, args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if wanted.desa_adat_id is not None:
        from bot.admin_cli import desa_adat_exists

        if not await desa_adat_exists(runtime, wanted.desa_adat_id):
            return 2
    if args.output is None and args.format == "xlsx":
        print("--output is needed for XLSX", file=sys.stderr)
        return 2
    async with runtime.sessions() as session:
        if args.new:
            since = await last_export(session, actor_label=actor_label)
            wanted = ExportFilter(**{**vars(wanted), "sent_after": since})
        request = ExportRequest(wanted, language=args.language or settings.default_language)
        bar = Bar(0, sys.stderr)
        if bar.shown and args.output is not None:
            bar.total = await count_selected(session, settings, request, datetime.now(UTC))
        result = await run_export(
            session,
            runtime.cipher,
            runtime.areas,
            settings,
            request,
            args.format,
            args.output if args.output is not None else sys.stdout,
            delimiter=args.delimiter,
            progress=bar,
            workers=args.workers,
        )
        bar.end()
    async with runtime.sessions() as session, session.begin():
        await record_export(session, result, request, args.format, actor_label=actor_label)
    rate = result.rows / result.seconds if result.seconds > 0 else 0.0
    where = f" to {args.output}" if args.output else ""
    print(
        f"Exported {result.rows} applications{where} in {result.seconds:.1f} s "
        f"({rate:.0f} rows/s).",
        file=sys.stderr,
    )
    return 0


async def run_demo_data(runtime: Runtime, args: argparse.Namespace) -> int:
    """`demo-data`: add synthetic applications and say how many and how fast."""
    from bot.services.demo import add_demo_data
    from bot.services.export_ahead import fill_export_cells

    started = time.perf_counter()
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(
            session,
            runtime.cipher,
            runtime.areas,
            applications=args.applications,
            drafts=args.drafts,
            seed=args.seed,
        )
        # As the bot leaves a sent application: with its export cells made.
        await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
        # Synthetic rows show up in exports and reports: the log says where they came from.
        await audit.record(
            session,
            "demo_data",
            actor_label="cli",
            applications=args.applications,
            drafts=args.drafts,
        )
    seconds = time.perf_counter() - started
    print(
        f"Added {args.applications} synthetic applications and {args.drafts} drafts "
        f"in {seconds:.1f} s."
    )
    return 0
