"""Command line: `python -m bot COMMAND` or `bebas-cemas COMMAND` (run, chat, db, invite, ...)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_arguments import row_id_argument, telegram_id_argument
from bot.config import ConfigError, Settings, StartupError, load_settings
from bot.core.policy import INVITABLE_ROLES

if TYPE_CHECKING:
    from bot.runtime import Runtime


def _prog() -> str:
    """How the operator started us: `python -m bot`, or the `bebas-cemas` entry point."""
    started = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m bot" if started in ("", "__main__.py", "-m") else started


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Bebas Cemas: BPJS Ketenagakerjaan BPU registration bot.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve Telegram users (long polling or webhook); applies pending migrations first",
        description="Serve Telegram users with long polling, or in webhook mode with --webhook "
        "or when WEBHOOK_URL is set. Needs TELEGRAM_BOT_TOKEN.",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="take updates by webhook (needs WEBHOOK_URL and WEBHOOK_SECRET)",
    )
    chat = commands.add_parser(
        "chat",
        help="try the bot in this terminal against a built-in fake Telegram",
        description="Run the bot against a fake Telegram on loopback and chat with it here. "
        "No token needed.",
    )
    chat.add_argument("--language", choices=("id", "en"), help="the simulated user's language")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply pending migrations and load area data")
    villages = commands.add_parser("villages", help="look up villages")
    village_commands = villages.add_subparsers(
        dest="villages_command", required=True, metavar="ACTION"
    )
    search = village_commands.add_parser("search", help="find villages of the branch by name")
    search.add_argument("text", help="a village name, typos allowed")
    from bot.export_cli import add_demo_arguments, add_export_arguments

    add_export_arguments(
        commands.add_parser(
            "export",
            help="export applications to XLSX (for people) or CSV (for machines)",
            description="Write the applications that match the filters, with headers in the "
            "operator's language. Each export is recorded in the audit log.",
        )
    )
    add_demo_arguments(
        commands.add_parser(
            "demo-data",
            help="fill the database with synthetic applications (never real people)",
            description="Add N synthetic applications (valid NIKs and phones, Balinese names, "
            "spread over the branch's villages and the last months) for demos and benchmarks.",
        )
    )
    adat = commands.add_parser("desa-adat", help="manage the desa adat list")
    adat_commands = adat.add_subparsers(dest="adat_command", required=True, metavar="ACTION")
    importer = adat_commands.add_parser(
        "import",
        help="load desa adat from a CSV or XLSX (columns: name[,village_code][,district_code])",
    )
    importer.add_argument("file", type=Path)
    statuses = commands.add_parser(
        "import-status",
        help="apply status changes from a CSV or XLSX file (reference, status, kpj, reason)",
        description="Apply status changes row by row: valid rows are applied and each worker "
        "is told; every refused row is reported with the reason. A file that cannot be read "
        "as a whole changes nothing. Exit status 3 when some rows were refused.",
    )
    statuses.add_argument("file", type=Path, help="a .csv (UTF-8, comma-separated) or .xlsx file")
    commands.add_parser("keygen", help="print a new DATA_KEY")
    keys = commands.add_parser("keys", help="manage the data key")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser(
        "rotate",
        help="re-encrypt all stored data under DATA_KEY (with DATA_KEY_OLD still set)",
        description=(
            "Re-encrypt every stored row under DATA_KEY while the bot runs; the bot must "
            "already run with DATA_KEY (new) and DATA_KEY_OLD (old). Safe to interrupt and "
            "run again. When it reports nothing left, remove DATA_KEY_OLD and restart."
        ),
    )
    invite = commands.add_parser(
        "invite",
        help="create a one-time invitation link for a role",
        description="Create a one-time link (valid INVITATION_DAYS days) that gives its first "
        "opener a role. Prints the link; send it privately to the person.",
    )
    invite.add_argument("--role", required=True, choices=INVITABLE_ROLES)
    where = invite.add_mutually_exclusive_group()
    where.add_argument(
        "--village",
        help="village code or name for perbekel/lurah, e.g. 51.02.05.2006 or 'Dajan Peken'",
    )
    where.add_argument("--desa-adat", type=row_id_argument, help="desa adat id for bendesa_adat")
    invite.add_argument(
        "--bot-username",
        help="the bot's username for the t.me link "
        "(default: TELEGRAM_BOT_USERNAME, or asked from Telegram)",
    )
    revoke = commands.add_parser("revoke", help="remove a role from a Telegram user")
    revoke.add_argument("--telegram-id", type=telegram_id_argument, required=True)
    revoke.add_argument("--role", required=True, choices=INVITABLE_ROLES)
    broadcast = commands.add_parser(
        "broadcast",
        help="send (or schedule) a broadcast to followers",
        description="Queue a broadcast for the running bot to deliver; prints its id.",
    )
    scope = broadcast.add_mutually_exclusive_group(required=True)
    scope.add_argument("--village", help="village code")
    scope.add_argument("--desa-adat", type=row_id_argument, help="desa adat id")
    scope.add_argument("--regency", help="regency code, e.g. 51.71")
    scope.add_argument("--all", action="store_true", help="every follower of the branch")
    broadcast.add_argument("--text-file", type=Path, required=True, help="UTF-8 text to send")
    broadcast.add_argument(
        "--audience", default="followers", choices=("followers", "applicants", "unfinished")
    )
    broadcast.add_argument("--at", help='send at this WITA time, e.g. "2026-12-01 09:00"')
    status = commands.add_parser("broadcast-status", help="print the counts of a broadcast")
    status.add_argument("id", type=row_id_argument)
    _add_report_parsers(commands)
    return parser


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): a cheaper event loop under load."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _add_report_parsers(commands: Any) -> None:
    """Declare `report`, `targets` and `audit` on the main parser's subcommands."""
    report = commands.add_parser(
        "report",
        help="write the coverage report (PNG chart, XLSX workbook or CSV table)",
        description="Count applications and registrations per regency and village, the weekly "
        "trend, where unfinished registrations stop, and coverage where a target is known. "
        "The format follows the file name: report.png, report.xlsx or report.csv.",
    )
    report.add_argument("--output", type=Path, required=True, help="file to write")
    report.add_argument(
        "--language", choices=("id", "en"), help="language of labels (default: DEFAULT_LANGUAGE)"
    )
    targets = commands.add_parser("targets", help="manage coverage targets per village")
    target_commands = targets.add_subparsers(
        dest="targets_command", required=True, metavar="ACTION"
    )
    importer = target_commands.add_parser(
        "import",
        help="replace the targets with a CSV/XLSX (columns: village_code, potential_workers)",
        description="Replace every coverage target with the file's. Each row is checked first; "
        "if any row is wrong, all problems are listed and nothing changes.",
    )
    importer.add_argument("file", type=Path)
    log = commands.add_parser(
        "audit",
        help="list or export the audit log",
        description="List audit entries, oldest first, or write them as CSV with --format csv.",
    )
    log.add_argument("--since", type=date.fromisoformat, help="from this day (WITA), YYYY-MM-DD")
    log.add_argument(
        "--actor", help="a Telegram user id, or a label such as 'cli' for the command line"
    )
    log.add_argument("--action", help="one action, e.g. role_grant, broadcast_create, report")
    log.add_argument(
        "--person",
        metavar="REFERENCE",
        help="who viewed, exported or changed this application (e.g. BC-7K2M9Q), and when",
    )
    log.add_argument("--format", choices=("text", "csv"), default="text")
    log.add_argument("--output", type=Path, help="file to write (default: standard output)")


# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Keep memory flat when rows are made in one thread and freed in another.

    aiosqlite reads rows in a thread of its own and the event loop frees them; with glibc's
    default of one arena per thread (up to 8 per core), the freed memory is not reused and a
    1 000 000-row export grew to 360 MB instead of staying near 110 MB. Two arenas keep it
    flat. Nothing happens where the C library is not glibc.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a configuration problem ends with one line naming the setting."""
    cap_malloc_arenas()
    args = _parser().parse_args(argv)
    # python-telegram-bot 22 warns on every RetryAfter unless it may use timedelta; opt in.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    if args.command == "keygen":
        from bot.security import generate_key

        print(generate_key())
        return 0
    secrets: list[str] = []
    try:
        settings = load_settings()
        from bot.security import setup_logging

        secrets += [
            secret.get_secret_value()
            for secret in (
                settings.telegram_bot_token,
                settings.webhook_secret,
                settings.data_key,
                settings.data_key_old,
            )
            if secret is not None
        ]
        # In the terminal chat, log lines would land between the lines of the conversation.
        log_file = chat_log_file(settings) if args.command == "chat" else None
        setup_logging(
            settings.log_level, secrets, log_file=log_file, log_format=settings.log_format
        )
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_dispatch(args, settings))
    except ConfigError as exc:
        print(f"Configuration error: {_one_line(exc, secrets)}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"Cannot start: {_one_line(exc, secrets)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        # A bug, not a mistake of the operator: the traceback goes through the log, whose
        # filter takes secrets and personal data out of it.
        logging.getLogger("bot").critical("Stopped by an unexpected error", exc_info=True)
        return 1


def _one_line(exc: Exception, secrets: list[str]) -> str:
    """An error's message on one line, with no secret in it."""
    from bot.security import redact

    message = " ".join(str(exc).split())
    for secret in secrets:
        message = message.replace(secret, "[secret]")
    return redact(message)


def chat_log_file(settings: Settings) -> Path:
    """Where the terminal chat logs: beside the SQLite database, or in ./data."""
    database = settings.sqlite_path
    return (database.parent if database is not None else Path("data")) / "chat.log"


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime import open_runtime

    if args.command == "run":
        return await _run(settings, webhook=args.webhook or settings.webhook_url is not None)
    if args.command == "chat":
        from bot.chat import run_chat

        return await run_chat(settings, language=args.language)
    async with open_runtime(settings) as runtime:
        if args.command == "db":
            print("Database is up to date.")
            return 0
        if args.command == "villages":
            found = runtime.areas.search(args.text, limit=10)
            if not found:
                print(f"No village of the branch matches {args.text!r}.")
                return 1
            for village in found:
                print(runtime.areas.label(village))
            return 0
        if args.command == "keys":
            return await _rotate_keys(runtime)
        if args.command == "import-status":
            return await _import_status(runtime, args.file)
        if args.command in ("export", "demo-data"):
            from bot.export_cli import run_demo_data, run_export_command

            if args.command == "export":
                return await run_export_command(runtime, args)
            return await run_demo_data(runtime, args)
        if args.command in ("invite", "revoke", "broadcast", "broadcast-status"):
            from bot.admin_cli import run_admin_command

            return await run_admin_command(runtime, args)
        if args.command in ("report", "targets", "audit"):
            from bot.report_cli import run_report_command

            return await run_report_command(runtime, args)
        if args.command == "desa-adat":
            from bot.core.tables import MEGABYTE, TableError
            from bot.services import audit
            from bot.services.desa_adat import import_desa_adat

            limit = runtime.settings.import_max_mb * MEGABYTE
            try:
                async with runtime.sessions() as session, session.begin():
                    result = await import_desa_adat(session, args.file, max_bytes=limit)
                    await audit.record(
                        session,
                        "desa_adat_import",
                        actor_label="cli",
                        target=args.file.name[:120],
                        added=result.added,
                        updated=result.updated,
                        skipped=len(result.problems or []),
                    )
            except TableError as exc:
                print(f"Cannot import {args.file}: {exc} Nothing was changed.", file=sys.stderr)
                return 1
            for problem in result.problems or []:
                print(f"skipped {problem}", file=sys.stderr)
            print(f"Desa adat: {result.added} added, {result.updated} updated.")
            return 0
    return 2


async def _rotate_keys(runtime: Runtime) -> int:
    from bot.services import audit
    from bot.services.export_ahead import fill_all_export_cells
    from bot.services.keys import rotate_keys

    def progress(table: str, last_id: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{table}: up to row {last_id}   ")
            sys.stderr.flush()

    report = await rotate_keys(runtime.sessions, runtime.cipher, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    # Re-encrypted answers forget their export cells (a trigger): made again under the new key.
    remade = await fill_all_export_cells(
        runtime.sessions, runtime.cipher, runtime.areas, runtime.settings
    )
    async with runtime.sessions() as session, session.begin():
        await audit.record(
            session,
            "keys_rotate",
            actor_label="cli",
            finished=report.finished,
            passes=report.passes,
            rewritten=report.rewritten,
            export_cells_made=remade,
        )
    for table, count in report.rewritten.items():
        print(f"{table}: {count} re-encrypted, {report.current.get(table, 0)} already current")
    if not report.finished:
        print(
            f"The bot kept changing rows during {report.passes} passes: run this again.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Done in {report.passes} pass(es): every row is under the new key. Remove "
        "DATA_KEY_OLD and restart the bot."
    )
    return 0


async def _import_status(runtime: Runtime, path: Path) -> int:
    from bot.core.tables import TableError
    from bot.i18n import translator
    from bot.services.leader import namespace_of
    from bot.services.status_import import import_status
    from bot.services.wakeup import channel_name, notify

    t = translator(runtime.settings.default_language)
    outbox = channel_name(await namespace_of(runtime.engine), "outbox")
    try:
        async with runtime.sessions() as session, session.begin():
            report = await import_status(
                session, runtime.settings, runtime.cipher, path, today=runtime.today()
            )
            # The running bot's sender looks at once (PostgreSQL), else within a second.
            await notify(session, outbox)
    except TableError as exc:
        print(t("import.refused", file=path.name, why=t(exc.key, **exc.params)), file=sys.stderr)
        return 1
    except OSError as exc:
        print(t("import.refused", file=path.name, why=exc.strerror or str(exc)), file=sys.stderr)
        return 1
    for line, reference, status in report.applied:
        print(t("import.report.applied", line=line, reference=reference, status=status))
    for line, reference, why in report.rejected:
        print(t("import.report.rejected", line=line, reference=reference, why=why))
    print(
        t(
            "import.report.summary",
            applied=len(report.applied),
            unchanged=len(report.unchanged),
            rejected=len(report.rejected),
        )
    )
    return 3 if report.rejected else 0


async def _run(settings: Settings, *, webhook: bool = False) -> int:
    from bot.channels.telegram import serve_polling
    from bot.channels.webhook import serve_webhook
    from bot.runtime import open_runtime

    if settings.telegram_bot_token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN: is not set (put it in .env; see .env.example)")
    if webhook and settings.webhook_url is None:
        raise ConfigError("WEBHOOK_URL: is not set (webhook mode needs it; see .env.example)")
    if webhook and settings.webhook_secret is None:
        raise ConfigError("WEBHOOK_SECRET: is not set (webhook mode needs it; see .env.example)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    serve = serve_webhook if webhook else serve_polling
    async with open_runtime(settings) as runtime:
        await serve(
            runtime,
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_api_base_url,
            stop,
        )
    return 0
