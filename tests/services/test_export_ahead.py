"""Export cells made ahead: the same bytes as cells made at export time, forgotten with the
answers they were made from."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.core.questions import REGISTRATION
from bot.core.states import ApplicationStatus
from bot.db.models import Application, User
from bot.runtime import Runtime
from bot.services.demo import add_demo_data
from bot.services.export import ExportRequest, run_export
from bot.services.export_ahead import default_source, fill_export_cells
from bot.services.export_rows import cells_signature
from tests.services.test_export import INJECTIONS, add_application, add_typed_everywhere

# Texts that CSV must quote or neutralise, or that hold the separator of kept cells.
ODD = (
    *INJECTIONS,
    "Banjar Kaja, Sesetan",
    "Br. Tengah; Dauh",
    'Made "Dek" Ari',
    "two\nlines",
    "unit\x1fseparator",
    "Ni Luh Putu Çaka Ñyoman",
)


async def _fill_the_database(runtime: Runtime) -> None:
    """Synthetic applications, odd texts in every free-text answer, a NIK of this year, an
    erased application and status notes with delimiters."""
    async with runtime.sessions() as session, session.begin():
        await add_demo_data(session, runtime.cipher, runtime.areas, applications=240, seed=11)
    for number, value in enumerate(ODD):
        status = ApplicationStatus.REJECTED if number % 2 else ApplicationStatus.SUBMITTED
        await add_typed_everywhere(runtime, f"BC-ODD{number:03}", value, status)
    # A NIK's 31 December of this year's two digits reads as last century's until that day
    # (the birth date agrees), and as this century's from then on (the mismatch flag).
    year = date.today().year
    await add_application(
        runtime,
        "BC-NIK001",
        nik=f"5102053112{year % 100:02}0001",
        birth_date=f"{year - 100}-12-31",
    )
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Application)
            .where(Application.reference.like("BC-ODD%"))
            .values(status_note='Data tidak sesuai, "cek"; lagi')
        )
        # Kept cells beside a note or an assistant that CSV quotes or neutralises.
        sent = (
            await session.scalars(
                select(Application.id)
                .where(Application.reference.like("BC-%"), Application.status != "draft")
                .order_by(Application.id)
            )
        ).all()
        for number, ident in enumerate(sent[1:120:7]):
            await session.execute(
                update(Application)
                .where(Application.id == ident)
                .values(status_note=ODD[number % len(ODD)])
            )
        helper = await session.scalar(select(func.min(User.id)))
        await session.execute(
            update(Application).where(Application.id.in_(sent[2:120:11])).values(assisted_by=helper)
        )
        first = await session.scalar(
            select(func.min(Application.id)).where(Application.status != "draft")
        )
        await session.execute(
            update(Application)
            .where(Application.id == first)
            .values(answers_enc=None, erased_at=datetime(2026, 11, 30, tzinfo=UTC))
        )


async def _export(
    runtime: Runtime, tmp_path: Path, name: str, request: ExportRequest, **options: Any
) -> bytes:
    output = tmp_path / name
    async with runtime.sessions() as session:
        await run_export(
            session,
            runtime.cipher,
            runtime.areas,
            runtime.settings,
            request,
            "csv",
            output,
            **options,
        )
    return output.read_bytes()


KINDS: dict[str, tuple[ExportRequest, dict[str, Any]]] = {
    "comma": (ExportRequest(), {"workers": 0}),
    "semicolon": (ExportRequest(), {"workers": 0, "delimiter": ";"}),
    "workers": (ExportRequest(), {"workers": 2, "parallel_from": 0}),
    "english": (ExportRequest(language="en"), {"workers": 0}),
    "masked": (ExportRequest(mask_nik=True), {"workers": 0}),
}


async def test_cells_made_ahead_give_the_bytes_made_at_export_time(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Every kind of CSV export is the same file before and after the cells are made."""
    await _fill_the_database(runtime)
    before = {
        kind: await _export(runtime, tmp_path, f"{kind}-before.csv", request, **options)
        for kind, (request, options) in KINDS.items()
    }
    async with runtime.sessions() as session, session.begin():
        # Made on 1 January: the NIK above reads differently before the year ends.
        made = await fill_export_cells(
            session,
            runtime.cipher,
            runtime.areas,
            runtime.settings,
            today=date(date.today().year, 1, 1),
        )
    assert made == 240 + len(ODD) + 1 - 1  # every sent application but the erased one
    async with runtime.sessions() as session, session.begin():
        # Nothing left to make: a second run makes none.
        again = await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
        looked_at = (
            await session.execute(
                select(Application.reference, Application.export_cells_enc).where(
                    Application.export_cells_for.is_not(None)
                )
            )
        ).all()
    assert again == 0
    assert len(looked_at) == made
    # Texts CSV quotes and this year's NIK are made at export time; the rest are kept.
    quoted = [n for n, value in enumerate(ODD) if any(c in value for c in ',;"\n\x1f')]
    assert len(quoted) == 6
    assert {reference for reference, token in looked_at if token is None} == {
        *(f"BC-ODD{number:03}" for number in quoted),
        "BC-NIK001",
    }
    for kind, (request, options) in KINDS.items():
        after = await _export(runtime, tmp_path, f"{kind}-after.csv", request, **options)
        assert after == before[kind], kind


async def test_an_export_joins_the_kept_cells(runtime: Runtime, tmp_path: Path) -> None:
    """The kept cells are what the export writes (so the test above compares two paths)."""
    await add_application(runtime, "BC-TAB001")
    async with runtime.sessions() as session, session.begin():
        assert await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
        signature = cells_signature(default_source(runtime.areas, runtime.settings), REGISTRATION)
        columns = len(REGISTRATION.columns())
        planted = signature + "\x1f".join(f"kept{n}" for n in range(columns))
        await session.execute(
            update(Application).values(
                export_cells_enc=runtime.cipher.encrypt_bytes(planted.encode()).decode()
            )
        )
    for kind in ("comma", "semicolon", "workers"):
        request, options = KINDS[kind]
        delimiter = options.get("delimiter", ",")
        text = (await _export(runtime, tmp_path, f"{kind}.csv", request, **options)).decode()
        row = text.splitlines()[1].split(delimiter)
        assert row[3 : 3 + columns] == [f"kept{n}" for n in range(columns)], kind
        assert row[0] == "BC-TAB001"
    # Under another signature they are not used.
    request, options = KINDS["english"]
    text = (await _export(runtime, tmp_path, "english.csv", request, **options)).decode()
    assert "kept0" not in text


@pytest.mark.parametrize("change", ["answers", "erasure"])
async def test_changed_answers_forget_their_cells(runtime: Runtime, change: str) -> None:
    """Whatever writes new answers (or none), the kept cells go with the old ones."""
    await add_application(runtime, "BC-TAB001")
    await add_application(runtime, "BC-TAB002")
    async with runtime.sessions() as session, session.begin():
        await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
    async with runtime.sessions() as session, session.begin():
        app = await session.scalar(select(Application).where(Application.reference == "BC-TAB001"))
        assert app is not None and app.export_cells_enc and app.export_cells_for
        # A status change is not an answer change: the cells stay.
        app.status = ApplicationStatus.VERIFIED
        await session.flush()
        await session.refresh(app)
        assert app.export_cells_enc is not None
        if change == "answers":
            answers = runtime.cipher.decrypt(app.answers_enc or "")
            app.answers_enc = runtime.cipher.encrypt({**answers, "banjar": "Banjar Baru"})
        else:
            app.answers_enc = None
        await session.flush()
        kept = (
            await session.execute(
                select(Application.export_cells_enc, Application.export_cells_for).where(
                    Application.id == app.id
                )
            )
        ).one()
        assert tuple(kept) == (None, None)
        other = await session.scalar(
            select(Application.export_cells_enc).where(Application.reference == "BC-TAB002")
        )
        assert other is not None
    async with runtime.sessions() as session, session.begin():
        made = await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
    assert made == (1 if change == "answers" else 0)


async def test_kept_cells_under_another_signature_stop_the_export(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The plain signature column alone is not trusted: cells whose encrypted signature
    differs (a tampered or broken row) stop the export, and no file looks complete."""
    await add_application(runtime, "BC-TAB001")
    async with runtime.sessions() as session, session.begin():
        await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
        forged = "0" * 32 + "\x1f".join("x" for _column in REGISTRATION.columns())
        await session.execute(
            update(Application).values(
                export_cells_enc=runtime.cipher.encrypt_bytes(forged.encode()).decode()
            )
        )
    output = tmp_path / "out" / "export.csv"
    with pytest.raises(RuntimeError, match="signature"):
        await _export(runtime, output.parent, output.name, ExportRequest(), workers=0)
    assert list(output.parent.iterdir()) == []
