"""The command line, run as an operator would: `python -m bot ...` in a fresh folder."""

from __future__ import annotations

import asyncio
import atexit
import csv
import io
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot import cli
from bot.config import load_settings
from bot.db.models import Application, User
from bot.db.session import make_engine, make_sessionmaker, upgrade_database
from bot.runtime import open_runtime
from bot.security import LIBRARIES, generate_key
from bot.services.areas import load_areas
from bot.services.export import COLUMNS, headers
from tests.core.test_tables import bad_files
from tests.services.test_conversation_property import COMPLETE

LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


_MIGRATED: list[Path] = []


async def _migrate(path: Path) -> None:
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")
    engine = make_engine(settings.database_url)
    try:
        await upgrade_database(engine)
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_areas(session, settings.branch_regencies)
    finally:
        await engine.dispose()


def migrated_database() -> Path:
    """A database with every migration applied and the areas loaded, and nothing else (no
    key check value yet): made once per test process and copied, so each command does not
    spend its time migrating. Commands run with `fresh=True` still start from nothing."""
    if not _MIGRATED:
        folder = Path(tempfile.mkdtemp(prefix="bebas-cemas-cli-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "bot.db"
        asyncio.run(_migrate(path))
        _MIGRATED.append(path)
    return _MIGRATED[0]


def run(
    tmp_path: Path,
    *args: str,
    key: str = "",
    command: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
    fresh: bool = False,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` (or `command ARGS`) with a database in tmp_path (a copy of
    `migrated_database()` the first time, unless `fresh`).

    `python -m bot` runs in this process (`in_process`: a new interpreter costs about a second
    of CPU, and the commands are run about a hundred times here) unless `process` is set;
    another `command` always runs as a process of its own.
    """
    database = tmp_path / "bot.db"
    if not fresh and not database.exists():
        shutil.copyfile(migrated_database(), database)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "PTB_TIMEDELTA": "true",
    }
    if key:
        env["DATA_KEY"] = key
    env.update(extra or {})
    if not command and not process:
        return in_process(tmp_path, args, env)
    return subprocess.run(
        [*(command or (sys.executable, "-m", "bot")), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# What `python -m bot` puts in sys.argv[0], from which the command line names itself.
MAIN_MODULE = str(Path(cli.__file__).with_name("__main__.py"))


def in_process(
    folder: Path, args: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` as the command line's `main()` in this process, with what a
    process of its own would get: only `env` as its environment, `folder` as its working
    folder, its own sys.argv, standard output and error. Whatever it changes in this process
    (logging, signal handlers, the event loop policy, warning filters) is put back after."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with _process_state_kept():
        os.environ.clear()
        os.environ.update(env)
        os.chdir(folder)
        sys.argv = [MAIN_MODULE, *args]
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                returncode = cli.main()
            except SystemExit as ended:
                returncode = _exit_status(ended.code)
    return subprocess.CompletedProcess(
        ["python", "-m", "bot", *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


def _exit_status(code: object) -> int:
    """The status a process ends with after `raise SystemExit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back what a command changes for the whole process when it runs in this one."""
    environ, folder, argv = dict(os.environ), os.getcwd(), sys.argv
    signals = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    policy = asyncio.get_event_loop_policy()
    root = logging.getLogger()
    # The libraries' loggers are made now, so that the levels the command gives them are
    # undone with everyone else's.
    for name in LIBRARIES:
        logging.getLogger(name)
    loggers = [root, *root.manager.loggerDict.values()]
    kept = [
        (logger, logger.level, logger.handlers[:], logger.filters[:], logger.propagate)
        for logger in loggers
        if isinstance(logger, logging.Logger)
    ]
    disabled = root.manager.disable
    try:
        with warnings.catch_warnings(), _malloc_arenas_untouched():
            yield
    finally:
        for handler in root.handlers:
            if handler not in kept[0][2]:
                handler.close()
        for logger, level, handlers, filters, propagate in kept:
            logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate
            logger.setLevel(level)
        logging.disable(disabled)
        asyncio.set_event_loop_policy(policy)
        for number, action in signals.items():
            if signal.getsignal(number) is not action:
                signal.signal(number, action)
        sys.argv = argv
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environ)


@contextmanager
def _malloc_arenas_untouched() -> Iterator[None]:
    """`main()` caps glibc's malloc arenas for its process (`cap_malloc_arenas`), which cannot
    be undone: here it is left out. The commands run as processes of their own below
    (`python -m bot`, `bebas-cemas`) still do it."""
    real = cli.cap_malloc_arenas
    cli.cap_malloc_arenas = lambda arenas=2: None
    try:
        yield
    finally:
        cli.cap_malloc_arenas = real


def readme_commands() -> list[list[str]]:
    """The commands README.md lists, as typed there (`.venv/bin/python -m bot WORDS ...`)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    found: list[list[str]] = []
    for line in readme.splitlines():
        if not line.startswith(".venv/bin/python -m bot "):
            continue
        words = []
        # The command's words end where its arguments begin: TEXT, --option, (choice).
        for word in line.split()[3:]:
            if word.startswith(("-", "(")) or word.isupper():
                break
            words.append(word)
        if words not in found:
            found.append(words)
    return found


def test_the_readme_lists_every_command() -> None:
    """README.md names each command in the form that works on a fresh clone."""
    listed = {words[0] for words in readme_commands()}
    expected = (
        "run chat db villages export demo-data desa-adat keygen invite revoke broadcast report "
        "targets audit keys"
    )
    assert listed == {*expected.split(), "broadcast-status", "import-status"}


@pytest.mark.parametrize("command", [[], *readme_commands()], ids=" ".join)
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    """`--help` explains each command the README lists, run as the README writes it."""
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m bot")


def test_python_m_bot_ends_with_the_commands_status(tmp_path: Path) -> None:
    """As a process of its own: 0 after help, 2 for a wrong command line, 1 when nothing is
    found."""
    helped = run(tmp_path, "--help", process=True)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: python -m bot")
    wrong = run(tmp_path, process=True)
    assert wrong.returncode == 2
    assert wrong.stdout == "" and "error: the following arguments are required" in wrong.stderr
    missing = run(tmp_path, "villages", "search", "xqzvw", process=True)
    assert missing.returncode == 1, missing.stderr
    assert "No village" in missing.stdout


def test_village_search_tolerates_typos(tmp_path: Path) -> None:
    """`villages search` finds Dajan Peken from a misspelling, and says when nothing matches."""
    found = run(tmp_path, "villages", "search", "dajan pekan")
    assert found.returncode == 0, found.stderr
    assert "51.02.05.2006  Dajan Peken (desa), Tabanan, Kabupaten Tabanan" in found.stdout
    assert (tmp_path / "bot.key").exists()
    missing = run(tmp_path, "villages", "search", "xqzvw")
    assert missing.returncode == 1
    assert "No village" in missing.stdout


def said(stream: str) -> list[str]:
    """The lines a command printed itself, without the log records of start-up."""
    return [line for line in stream.splitlines() if not LOG_RECORD.match(line)]


def test_the_entry_point_works_like_python_m_bot(tmp_path: Path) -> None:
    """The venv's `bebas-cemas` runs the same commands and names itself in its help."""
    entry_point = str(Path(sys.executable).with_name("bebas-cemas"))
    helped = run(tmp_path, "invite", "--help", command=(entry_point,))
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: bebas-cemas invite")
    found = run(tmp_path, "villages", "search", "dajan peken", command=(entry_point,), fresh=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("51.02.05.2006  Dajan Peken (desa)")


def test_invite_takes_a_village_name_and_prints_the_payload_on_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    """Without a bot username, standard output is the payload alone; the note comes apart."""
    result = run(tmp_path, "invite", "--role", "perbekel", "--village", "dajan pekan")

    assert result.returncode == 0, result.stderr
    [payload] = result.stdout.splitlines()
    assert payload.startswith("inv_") and " " not in payload
    note = said(result.stderr)
    assert "Village: 51.02.05.2006  Dajan Peken (desa), Tabanan, Kabupaten Tabanan" in note
    assert any(line.endswith(f":buka {payload}") for line in note)
    assert any("TELEGRAM_BOT_USERNAME" in line and payload not in line for line in note)


def test_invite_refuses_an_unclear_or_unknown_village_in_one_line(tmp_path: Path) -> None:
    """Several villages match: they are listed with codes; none: one line says so."""
    unclear = run(tmp_path, "invite", "--role", "perbekel", "--village", "Peken")
    assert unclear.returncode == 1
    assert unclear.stdout == ""
    first, *candidates = said(unclear.stderr)
    assert first == "'Peken' matches 4 villages; give --village one of these codes:"
    assert "  51.02.05.2006  Dajan Peken (desa), Tabanan, Kabupaten Tabanan" in candidates
    assert len(candidates) == 4

    unknown = run(tmp_path, "invite", "--role", "perbekel", "--village", "xqzvw")
    assert unknown.returncode == 1
    assert said(unknown.stderr) == ["No village of the branch is called 'xqzvw'."]


def test_desa_adat_import_reports_bad_rows(tmp_path: Path) -> None:
    """Rows with unknown codes are skipped and named; good rows are added once."""
    source = tmp_path / "adat.csv"
    source.write_text(
        "name,village_code\n"
        "Desa Adat Sidakarya,51.71.01.2007\n"
        "Desa Adat Tabanan,\n"
        "Desa Adat Entah,99.99.99.9999\n",
        encoding="utf-8",
    )
    first = run(tmp_path, "desa-adat", "import", str(source))
    assert first.returncode == 0, first.stderr
    assert "2 added" in first.stdout
    assert "line 4: unknown village code 99.99.99.9999" in first.stderr
    again = run(tmp_path, "desa-adat", "import", str(source))
    assert "0 added" in again.stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("nama\nX\n", encoding="utf-8")
    refused = run(tmp_path, "desa-adat", "import", str(broken))
    assert refused.returncode == 1
    assert "'name'" in refused.stderr


def submitted_application(tmp_path: Path, key: str) -> None:
    """A database in tmp_path holding one sent application (BC-TEST22)."""
    shutil.copyfile(migrated_database(), tmp_path / "bot.db")
    asyncio.run(_submitted_application(tmp_path, key))


async def _submitted_application(tmp_path: Path, key: str) -> None:
    settings = load_settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", data_key=key
    )
    async with (
        open_runtime(settings) as runtime,
        runtime.sessions() as session,
        session.begin(),
    ):
        user = User(telegram_id=77, language="id")
        session.add(user)
        await session.flush()
        answers = dict(COMPLETE, period=6, programs=["jkk", "jkm", "jht"])
        session.add(
            Application(
                user_id=user.id,
                status="submitted",
                reference="BC-TEST22",
                answers_enc=runtime.cipher.encrypt(answers),
                village_code=answers["village"],
                submitted_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
            )
        )


def by_column(
    header: list[str] | tuple[object, ...], row: list[str] | tuple[object, ...]
) -> dict[str, object]:
    """A row of an export keyed by column name, whatever the header's language."""
    names = dict(zip(headers("id"), COLUMNS, strict=True))
    # A sheet read back leaves out empty cells at the end of a row.
    return {names[str(title)]: value for title, value in zip(header, row, strict=False)}


def test_export_csv_and_xlsx(tmp_path: Path) -> None:
    """Exports carry the full NIK as text, the phone, village code and name, contribution."""
    key = generate_key()
    submitted_application(tmp_path, key)
    result = run(tmp_path, "export", "--format", "csv", key=key)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.startswith("\ufeff")
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    row = by_column(header, rows[0])
    assert row["nik"] == "5102051708850003"
    # CSV has no text type: a leading quote keeps a spreadsheet from reading "+62..." as a sum.
    assert row["phone"] == "'+6281234567890"
    assert (row["village_code"], row["village_name"]) == ("51.02.05.2006", "Dajan Peken")
    assert row["programs"] == "JKK+JKM+JHT"
    assert row["monthly_contribution"] == str(15000 + 6800 + 30000)
    assert row["per_payment"] == str(51800 * 6)
    assert "Exported 1 applications in" in result.stderr

    output = tmp_path / "out" / "applications.xlsx"
    result = run(tmp_path, "export", "--format", "xlsx", "--output", str(output), key=key)
    assert result.returncode == 0, result.stderr
    book = load_workbook(output, read_only=True)
    sheet = book.active
    assert sheet is not None
    header_cells, first = list(sheet.iter_rows(values_only=True))[:2]
    book.close()
    record = by_column(header_cells, first)
    assert record["nik"] == "5102051708850003"
    assert record["phone"] == "+6281234567890"
    assert record["monthly_contribution"] == 51800
    assert record["village_name"] == "Dajan Peken"
    assert [p.name for p in output.parent.iterdir()] == ["applications.xlsx"]


def test_keygen_prints_a_usable_key(tmp_path: Path) -> None:
    """`keygen` prints a key that DATA_KEY accepts (each a process of its own)."""
    result = run(tmp_path, "keygen", process=True)
    key = result.stdout.strip()
    assert result.returncode == 0
    upgrade = run(tmp_path, "db", "upgrade", key=key, process=True)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "up to date" in upgrade.stdout
    assert not (tmp_path / "bot.key").exists()


def test_import_status_reports_each_row_and_refuses_an_unreadable_file(tmp_path: Path) -> None:
    """Applied and refused rows are listed; a semicolon file changes nothing; twice is once."""
    key = generate_key()
    submitted_application(tmp_path, key)
    sheet = tmp_path / "status.csv"
    sheet.write_text(
        "Nomor referensi,Status,Nomor KPJ,Catatan status\n"
        "BC-TEST22,terdaftar,12345678901,\n"
        "BC-NOPE99,ditolak,,NIK salah\n",
        encoding="utf-8",
    )
    result = run(tmp_path, "import-status", str(sheet), key=key)
    assert result.returncode == 3, result.stderr
    lines = said(result.stdout)
    assert "baris 2: BC-TEST22 → terdaftar" in lines
    assert any(line.startswith("baris 3: BC-NOPE99 DITOLAK:") for line in lines)
    assert lines[-1] == "Selesai: 1 diterapkan, 0 sudah sesuai, 1 ditolak."

    again = run(tmp_path, "import-status", str(sheet), key=key)
    assert said(again.stdout)[-1] == "Selesai: 0 diterapkan, 1 sudah sesuai, 1 ditolak."

    semicolons = tmp_path / "excel.csv"
    semicolons.write_text("reference;status\nBC-TEST22;ditolak\n", encoding="utf-8")
    refused = run(tmp_path, "import-status", str(semicolons), key=key)
    assert refused.returncode == 1
    assert "titik koma" in said(refused.stderr)[-1] and refused.stdout == ""


def test_targets_import_then_report_in_every_format(tmp_path: Path) -> None:
    """Staff load targets, a bad file changes nothing, and the report shows them."""
    good = tmp_path / "target.csv"
    good.write_text(
        "village_code,potential_workers\n51.02.05.2006,1200\n51.71.01.2007,800\n",
        encoding="utf-8",
    )
    loaded = run(tmp_path, "targets", "import", str(good))
    assert loaded.returncode == 0, loaded.stderr
    assert "Targets: 2 villages, 2.000 potential workers" in loaded.stdout

    semicolons = tmp_path / "excel.csv"
    semicolons.write_text("village_code;potential_workers\n51.02.05.2006;5\n", encoding="utf-8")
    refused = run(tmp_path, "targets", "import", str(semicolons))
    assert refused.returncode == 1
    assert "separates columns with ';'" in refused.stderr
    assert "Nothing was changed" in refused.stderr
    wrong_row = tmp_path / "typo.csv"
    wrong_row.write_text("village_code,potential_workers\n51.02.05.2006,dua\n", encoding="utf-8")
    refused = run(tmp_path, "targets", "import", str(wrong_row))
    assert refused.returncode == 1
    assert said(refused.stderr) == [
        "line 2: potential_workers must be a whole number above 0, not 'dua'",
        "1 row(s) need fixing; nothing was changed.",
    ]

    table = run(tmp_path, "report", "--output", "out/report.csv")
    assert table.returncode == 0, table.stderr
    assert "Target per desa belum diisi" not in table.stdout
    with (tmp_path / "out" / "report.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    targets = {r["code"]: r["value"] for r in rows if r["measure"] == "potential_workers"}
    assert targets == {"51.02.05.2006": "1200", "51.71.01.2007": "800", "": "2000"} | {
        "51.02": "1200",
        "51.71": "800",
    }

    picture = run(tmp_path, "report", "--output", "report.png", "--language", "en")
    assert picture.returncode == 0, picture.stderr
    assert picture.stdout.startswith("📊 Coverage report as of ")
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    workbook = run(tmp_path, "report", "--output", "report.xlsx")
    assert workbook.returncode == 0, workbook.stderr
    assert load_workbook(tmp_path / "report.xlsx").sheetnames[0] == "Per kabupaten"
    unknown = run(tmp_path, "report", "--output", "report.pdf")
    assert unknown.returncode == 2
    assert not (tmp_path / "report.pdf").exists()


def test_export_filters_and_new_since_the_operators_last_export(tmp_path: Path) -> None:
    """`--new` remembers each operator apart; a village by name; a bad status in one line."""
    key = generate_key()
    submitted_application(tmp_path, key)
    output = tmp_path / "baru.csv"
    args = ("export", "--output", str(output), "--village", "dajan peken", "--new")
    first = run(tmp_path, *args, "--operator", "wayan", "--delimiter", ";", key=key)
    assert first.returncode == 0, first.stderr
    header, row = output.read_text(encoding="utf-8-sig").splitlines()
    assert header.startswith("Nomor pendaftaran;Status;Dikirim (WITA);NIK;")
    assert row.startswith("BC-TEST22;menunggu verifikasi;2026-12-01 10:00:00;5102051708850003;")
    assert said(first.stderr)[-1].startswith(f"Exported 1 applications to {output} in ")
    again = run(tmp_path, *args, "--operator", "wayan", key=key)
    assert said(again.stderr)[-1].startswith("Exported 0 applications")
    other = run(tmp_path, *args, "--operator", "komang", key=key)
    assert said(other.stderr)[-1].startswith("Exported 1 applications")
    wrong = run(tmp_path, "export", "--status", "lunas", key=key)
    assert wrong.returncode == 2
    assert said(wrong.stderr)[-1].startswith("unknown status 'lunas'")


def desa_adat_rows(tmp_path: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(tmp_path / "bot.db") as db:
        return db.execute("SELECT name, village_code FROM desa_adat ORDER BY name").fetchall()


ADAT_FILES = bad_files(["name", "village_code"], ["Desa Adat Sanur", "51.71.01.2007"])


@pytest.mark.parametrize(
    ("name", "content", "key", "row"), ADAT_FILES, ids=[n for n, *_ in ADAT_FILES]
)
def test_desa_adat_import_refuses_a_bad_file_in_one_sentence_and_changes_nothing(
    tmp_path: Path, name: str, content: bytes, key: str, row: int | None
) -> None:
    """A NUL, a 128 KB cell, an unclosed quote, semicolons, Latin-1, UTF-16...: no traceback,
    one sentence naming the row where it applies, and the list stays as it was."""
    good = tmp_path / "good.csv"
    good.write_text("name,village_code\nDesa Adat Sidakarya,51.71.01.2007\n", encoding="utf-8")
    assert run(tmp_path, "desa-adat", "import", str(good)).returncode == 0
    before = desa_adat_rows(tmp_path)

    bad = tmp_path / name
    bad.write_bytes(content)
    refused = run(tmp_path, "desa-adat", "import", str(bad))
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    [line] = said(refused.stderr)
    assert line.startswith(f"Cannot import {bad}: ") and line.endswith("Nothing was changed.")
    if row is not None:
        assert f"line {row}" in line
    assert desa_adat_rows(tmp_path) == before


def test_desa_adat_import_refuses_a_file_over_import_max_mb(tmp_path: Path) -> None:
    big = tmp_path / "adat.csv"
    big.write_text("name\n" + "Desa Adat Sidakarya\n" * 60_000, encoding="utf-8")
    env = {"IMPORT_MAX_MB": "1"}
    refused = run(tmp_path, "desa-adat", "import", str(big), extra=env)
    assert refused.returncode == 1
    assert said(refused.stderr) == [
        f"Cannot import {big}: the file is larger than 1 MB (the IMPORT_MAX_MB limit). Check "
        "that it is the right file. Nothing was changed."
    ]
    assert desa_adat_rows(tmp_path) == []


def test_desa_adat_import_names_rows_it_cannot_store(tmp_path: Path) -> None:
    """A name longer than the column and a village outside its district are skipped by row;
    an XLSX is read as well as a CSV."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "village_code", "district_code"])
    sheet.append(["Desa Adat Sidakarya", "51.71.01.2007", "51.71.01"])
    sheet.append(["Desa Adat " + "X" * 200, "51.71.01.2007", None])
    sheet.append(["Desa Adat Salah", "51.71.01.2007", "51.02.05"])
    source = tmp_path / "adat.xlsx"
    book.save(source)
    result = run(tmp_path, "desa-adat", "import", str(source))
    assert result.returncode == 0, result.stderr
    assert said(result.stderr) == [
        "skipped line 3: the name has 210 characters, more than the 120 it may have",
        "skipped line 4: village 51.71.01.2007 is not in district 51.02.05",
    ]
    assert desa_adat_rows(tmp_path) == [("Desa Adat Sidakarya", "51.71.01.2007")]
