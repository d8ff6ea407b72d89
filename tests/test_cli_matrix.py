"""Every command-line action, generated from the parser: misuse is refused, use is audited.

The command line is the branch operator's (whoever holds the database and the key): it has no
roles of its own, so what must hold for it is that a wrong or hostile argument (an id the
database cannot hold, a place outside the branch, a desa adat that does not exist, a file
that is not there) gets one line, a non-zero exit and no change at all; and that every action
that changes data or takes it out is in the audit log, as the command line's. The bot's own
commands and buttons, per role, are in tests/services/test_permission_matrix.py.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import _dispatch, _parser
from bot.config import ConfigError, Settings
from bot.core.states import ApplicationStatus
from bot.db.models import Application, AuditEntry, Base, DesaAdat, Role, User
from bot.runtime import Runtime
from bot.services.demo import add_demo_data

# What each command does, by the words that name it: the audit action it leaves when it
# changes data or takes data out; "reads" when it shows no personal data and changes nothing;
# "serves" for the bot itself (its commands per role are the bot's permission matrix);
# "prints" for keygen, which touches no data.
ACTIONS: dict[tuple[str, ...], str] = {
    ("run",): "serves",
    ("chat",): "serves",
    ("db", "upgrade"): "reads",
    ("villages", "search"): "reads",
    ("export",): "export",
    ("demo-data",): "demo_data",
    ("desa-adat", "import"): "desa_adat_import",
    ("import-status",): "status_import",
    ("keygen",): "prints",
    ("keys", "rotate"): "keys_rotate",
    ("invite",): "invite_create",
    ("revoke",): "role_revoke",
    ("broadcast",): "broadcast_create",
    ("broadcast-status",): "reads",
    ("report",): "report",
    ("targets", "import"): "targets_import",
    ("audit",): "audit_export",
}

# How the audit log names the command line: "cli" (or "cli:<operator>" for exports), and
# "import" for status changes read from a file.
CLI_LABELS = {"cli", "import"}
HUGE = "9" * 25
OUTSIDE_VILLAGE = "51.04.01.2001"  # Gianyar: not a regency of the branch
UNKNOWN_ADAT = "4242"

# Refused by the parser, before anything is opened: one "error:" line after the usage.
PARSE_ERRORS = [
    ["invite", "--role", "perbekel", "--desa-adat", HUGE],
    ["invite", "--role", "raja"],
    ["revoke", "--telegram-id", HUGE, "--role", "perbekel"],
    ["revoke", "--telegram-id", "-5", "--role", "perbekel"],
    ["revoke", "--telegram-id", "١٢٣", "--role", "perbekel"],
    ["broadcast", "--desa-adat", "1e9", "--text-file", "news.txt"],
    ["broadcast", "--village", OUTSIDE_VILLAGE, "--all", "--text-file", "news.txt"],
    ["broadcast-status", HUGE],
    ["broadcast-status", "0"],
    ["export", "--format", "csv", "--desa-adat", "-1"],
    ["export", "--format", "pdf"],
    ["demo-data", "--applications", "-5"],
    ["demo-data", "--applications", HUGE],
    ["audit", "--since", "kemarin"],
    ["keys", "turn"],
    ["targets"],
]

# Refused once the database is open: non-zero, one line, nothing changed.
REFUSED = [
    ["invite", "--role", "perbekel", "--village", OUTSIDE_VILLAGE],
    ["invite", "--role", "bendesa_adat", "--desa-adat", UNKNOWN_ADAT],
    ["invite", "--role", "perbekel", "--village", "x" * 5000],
    ["revoke", "--telegram-id", "777000", "--role", "perbekel"],
    ["broadcast", "--village", OUTSIDE_VILLAGE, "--text-file", "news.txt"],
    ["broadcast", "--regency", "51.04", "--text-file", "news.txt"],
    ["broadcast", "--desa-adat", UNKNOWN_ADAT, "--text-file", "news.txt"],
    ["broadcast", "--all", "--text-file", "missing.txt"],
    ["broadcast", "--all", "--text-file", "empty.txt"],
    ["broadcast", "--all", "--text-file", "news.txt", "--at", "besok pagi"],
    ["broadcast-status", UNKNOWN_ADAT],
    ["export", "--format", "csv", "--regency", "51.04", "--output", "out.csv"],
    ["export", "--format", "csv", "--district", "51.02.99", "--output", "out.csv"],
    ["export", "--format", "csv", "--village", OUTSIDE_VILLAGE, "--output", "out.csv"],
    ["export", "--format", "csv", "--desa-adat", UNKNOWN_ADAT, "--output", "out.csv"],
    ["export", "--format", "csv", "--status", "lunas", "--output", "out.csv"],
    ["export", "--format", "csv", "--since", "31-31-2026", "--output", "out.csv"],
    ["export", "--format", "xlsx"],
    ["import-status", "missing.csv"],
    ["desa-adat", "import", "missing.csv"],
    ["targets", "import", "missing.csv"],
    ["report", "--output", "report.pdf"],
    ["audit", "--person", "BC-NOPE99"],
    ["villages", "search", "zzqqxx"],
    ["keys", "rotate"],
]


def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command the parser knows, as the words that name it."""
    found: set[tuple[str, ...]] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= commands(sub, (*words, name))
    return found or {words}


def test_every_command_line_action_is_classified() -> None:
    """A new command cannot slip in without saying what it does to data."""
    assert commands(_parser()) == set(ACTIONS)


@pytest.mark.parametrize("argv", PARSE_ERRORS, ids=" ".join)
def test_odd_arguments_are_refused_by_the_parser_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err


def cli_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's settings as the command line gets them (on PostgreSQL: the test schema)."""
    if settings.is_sqlite:
        return settings
    schema = str(request.getfixturevalue("postgres_schema"))
    return settings.model_copy(update={"database_schema": schema})


async def table_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def a_branch_with_a_leader(runtime: Runtime) -> None:
    """Something to change: a desa adat, a perbekel and a sent application."""
    async with runtime.sessions() as session, session.begin():
        session.add(DesaAdat(name="Desa Adat Kukuh", village_code="51.02.05.2006"))
        leader = User(telegram_id=5500, language="id")
        session.add(leader)
        await session.flush()
        session.add(Role(user_id=leader.id, role="perbekel", village_code="51.02.05.2006"))
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=3, seed=4)
        waiting = await session.scalar(
            select(Application).where(Application.reference.is_not(None)).limit(1)
        )
        assert waiting is not None
        waiting.status = ApplicationStatus.SUBMITTED


@dataclass
class CommandLine:
    """The operator's folder, and commands run there against the test's database."""

    settings: Settings
    folder: Path

    async def run(self, argv: list[str]) -> int:
        return await _dispatch(_parser().parse_args(argv), self.settings)


@pytest.fixture
async def command_line(
    runtime: Runtime,
    settings: Settings,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> CommandLine:
    """A branch with a desa adat, a perbekel and a few applications; news.txt to send."""
    await a_branch_with_a_leader(runtime)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "news.txt").write_text("Kabar dari cabang.", encoding="utf-8")
    return CommandLine(cli_settings(settings, request), tmp_path)


@pytest.mark.parametrize("argv", REFUSED, ids=lambda argv: " ".join(a[:30] for a in argv))
async def test_wrong_arguments_change_nothing_and_say_why_in_one_line(
    argv: list[str],
    runtime: Runtime,
    command_line: CommandLine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (command_line.folder / "empty.txt").write_text("  \n", encoding="utf-8")
    before = await table_counts(runtime)
    try:
        code = await command_line.run(argv)
    except ConfigError as exc:
        # `main` prints it as one "Configuration error: ..." line (tests/e2e/test_startup.py).
        code, said = 2, str(exc)
    else:
        out = capsys.readouterr()
        said = out.err or out.out
    assert code != 0
    lines = [line for line in said.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in said, said
    assert await table_counts(runtime) == before
    assert sorted(os.listdir(command_line.folder)) == ["empty.txt", "news.txt"]


async def test_every_action_that_changes_or_takes_data_is_audited_as_the_command_line(
    runtime: Runtime, command_line: CommandLine, capsys: pytest.CaptureFixture[str]
) -> None:
    async with runtime.sessions() as session:
        reference = await session.scalar(
            select(Application.reference).where(Application.status == ApplicationStatus.SUBMITTED)
        )
        assert reference is not None
        adat = await session.scalar(select(DesaAdat.id))
    tmp_path = command_line.folder
    (tmp_path / "adat.csv").write_text(
        "name,village_code\nDesa Adat Tegal,51.02.05.2006\n", encoding="utf-8"
    )
    (tmp_path / "targets.csv").write_text(
        "village_code,potential_workers\n51.02.05.2006,1200\n", encoding="utf-8"
    )
    (tmp_path / "status.csv").write_text(
        f"reference,status\n{reference},diverifikasi\n", encoding="utf-8"
    )
    runs = {
        ("export",): ["export", "--format", "csv", "--output", "out.csv", "--operator", "ani"],
        ("demo-data",): ["demo-data", "--applications", "1", "--seed", "3"],
        ("desa-adat", "import"): ["desa-adat", "import", "adat.csv"],
        ("import-status",): ["import-status", "status.csv"],
        ("invite",): ["invite", "--role", "bendesa_adat", "--desa-adat", str(adat)],
        ("revoke",): ["revoke", "--telegram-id", "5500", "--role", "perbekel"],
        ("broadcast",): ["broadcast", "--all", "--text-file", "news.txt"],
        ("report",): ["report", "--output", "report.csv"],
        ("targets", "import"): ["targets", "import", "targets.csv"],
        ("audit",): ["audit", "--format", "csv", "--output", "audit.csv"],
    }
    changing = {
        words for words, action in ACTIONS.items() if action not in ("reads", "serves", "prints")
    }
    # keys rotate needs a second key: its audit entry is checked by the rotation test of
    # tests/e2e/test_startup.py.
    assert changing - set(runs) == {("keys", "rotate")}
    for words, argv in runs.items():
        async with runtime.sessions() as session:
            last = int(await session.scalar(select(func.max(AuditEntry.id))) or 0)
        code = await command_line.run(argv)
        out = capsys.readouterr()
        assert code == 0, (argv, out.out, out.err)
        async with runtime.sessions() as session:
            added = (
                await session.execute(
                    select(AuditEntry.action, AuditEntry.actor_label).where(AuditEntry.id > last)
                )
            ).all()
        assert any(
            action == ACTIONS[words] and (label or "").split(":")[0] in CLI_LABELS
            for action, label in added
        ), (argv, added)
