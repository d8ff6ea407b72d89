"""The audit log: invitations, role changes, broadcasts and reports leave rows; `audit` lists
and exports them with filters; nothing in the application edits or deletes a row."""

from __future__ import annotations

import ast
import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

import bot
from bot.cli import _parser
from bot.db.models import AuditEntry, User
from bot.report_cli import run_report_command
from bot.runtime import Runtime
from bot.services.broadcasts import Target, create_broadcast
from bot.services.roles import RoleName, create_invitation, redeem_invitation, revoke_role
from bot.services.targets import replace_targets

WITA = ZoneInfo("Asia/Makassar")
DAJAN_PEKEN = "51.02.05.2006"


async def run(runtime: Runtime, *argv: str) -> int:
    """Run one command line as `python -m bot ARGV` would, on the test's database."""
    return await run_report_command(runtime, _parser().parse_args(list(argv)))


async def branch_history(runtime: Runtime) -> None:
    """A perbekel invited from the command line, who broadcasts and later loses the role."""
    async with runtime.sessions() as session, session.begin():
        payload = await create_invitation(
            session,
            runtime.areas,
            role=RoleName.PERBEKEL,
            village_code=DAJAN_PEKEN,
            actor_label="cli",
        )
        wayan = User(telegram_id=5001, language="id")
        session.add(wayan)
        await session.flush()
        await redeem_invitation(session, payload, wayan)
        await create_broadcast(
            session,
            Target("village", DAJAN_PEKEN, "followers"),
            settings=runtime.settings,
            cipher=runtime.cipher,
            text="Om Swastiastu, ada sosialisasi BPJS di balai banjar.",
            created_by=wayan,
        )
        await revoke_role(session, wayan, RoleName.PERBEKEL, actor_label="cli")
        # An entry from last month, for --since.
        session.add(
            AuditEntry(
                at=datetime(2026, 11, 2, 9, 0, tzinfo=WITA),
                actor_label="cli",
                action="targets_import",
                target='=HYPERLINK("http://x").csv',
                details="{}",
            )
        )


def files_in(folder: Path) -> list[str]:
    """The names of the files in a folder (no half-written ones left behind)."""
    return sorted(path.name for path in folder.iterdir())


async def actions(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_invitations_role_changes_and_broadcasts_are_audited(runtime: Runtime) -> None:
    await branch_history(runtime)

    assert await actions(runtime) == [
        "invite_create",
        "role_grant",
        "broadcast_create",
        "role_revoke",
        "targets_import",
    ]


async def test_audit_lists_entries_filtered_by_day_actor_and_action(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    await branch_history(runtime)

    def listed() -> list[str]:
        return [line.split()[3] for line in capsys.readouterr().out.splitlines()]

    assert await run(runtime, "audit") == 0
    assert listed() == [
        "invite_create",
        "role_grant",
        "broadcast_create",
        "role_revoke",
        "targets_import",
    ]
    await run(runtime, "audit", "--actor", "5001")
    assert listed() == ["role_grant", "broadcast_create"]
    await run(runtime, "audit", "--actor", "cli", "--action", "role_revoke")
    assert listed() == ["role_revoke"]
    await run(runtime, "audit", "--since", "2026-12-01")
    assert "targets_import" not in listed()
    await run(runtime, "audit", "--action", "nothing_like_this")
    assert listed() == []


async def test_admins_export_the_audit_log_as_csv_and_the_export_is_audited(
    runtime: Runtime, tmp_path: Path
) -> None:
    await branch_history(runtime)
    output = tmp_path / "audit" / "log.csv"

    assert await run(runtime, "audit", "--format", "csv", "--output", str(output)) == 0

    with output.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["action"] for row in rows][:2] == ["invite_create", "role_grant"]
    assert rows[1]["actor_telegram_id"] == "5001"
    assert json.loads(rows[1]["details"])["role"] == "perbekel"
    # A file name that a spreadsheet would run as a formula comes out as text.
    assert rows[-1]["target"] == '\'=HYPERLINK("http://x").csv'
    assert files_in(output.parent) == ["log.csv"]
    async with runtime.sessions() as session:
        export = await session.scalar(select(AuditEntry).where(AuditEntry.action == "audit_export"))
    assert export is not None and json.loads(export.details)["rows"] == 5


async def test_text_listing_cannot_be_written_to_a_file(
    runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(runtime, "audit", "--output", str(tmp_path / "x.txt")) == 2
    assert "--format csv" in capsys.readouterr().err


def test_no_code_in_the_bot_updates_or_deletes_audit_rows() -> None:
    package = Path(bot.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("update", "delete")
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "AuditEntry"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                sql = " ".join(node.value.upper().split())
                if "UPDATE AUDIT_LOG" in sql or "DELETE FROM AUDIT_LOG" in sql:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
async def test_postgresql_refuses_to_change_or_delete_an_audit_row(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await replace_targets(session, {DAJAN_PEKEN: 10}, source="a.csv", actor_label="cli")

    for statement in (
        update(AuditEntry).values(action="nothing_happened"),
        delete(AuditEntry),
    ):
        with pytest.raises(DBAPIError, match="cannot be changed or deleted"):
            async with runtime.sessions() as session, session.begin():
                await session.execute(statement)
    assert await actions(runtime) == ["targets_import"]


async def test_audit_person_lists_who_viewed_exported_or_changed_one_application(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """The basis of a breach notice: one application's trail, exports matched by filter."""
    from datetime import UTC, date

    from bot.core.states import ApplicationStatus
    from bot.services import audit
    from bot.services.export import ExportFilter, ExportRequest, ExportResult, record_export
    from bot.services.workflow import Actor, change_status
    from tests.services.test_status_workflow import sent_application

    app_id = await sent_application(runtime, 7001, "BC-TRAIL1")
    now = datetime.now(UTC)

    async def exported(village: str) -> None:
        request = ExportRequest(filter=ExportFilter(village=village))
        async with runtime.sessions() as session, session.begin():
            await record_export(
                session, ExportResult(5, 0.1, now), request, "csv", actor_label="cli:staff"
            )

    await exported(DAJAN_PEKEN)  # holds it
    await exported("51.71.01.2007")  # does not
    async with runtime.sessions() as session, session.begin():
        app = await session.get(bot.db.models.Application, app_id)
        assert app is not None
        await audit.record(session, "review_view", actor_label="cli", target="BC-TRAIL1")
        await change_status(
            session,
            runtime.settings,
            runtime.cipher,
            app,
            ApplicationStatus.VERIFIED,
            actor=Actor(label="cli"),
            today=date.today(),
        )
    capsys.readouterr()
    assert await run(runtime, "audit", "--person", "bc-trail1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["export", "review_view", "status_change"]
    assert DAJAN_PEKEN in lines[0]
    assert await run(runtime, "audit", "--person", "BC-NOPE00") == 1
