"""/ekspor: staff and leaders take the applications of their place as a file in the chat.

The filters are buttons (place, status, "only new since my last export", format) and travel
inside every button (`ExportChoice`), so the screen keeps no state of its own. Staff may
choose any regency, kecamatan or village of the branch and get the full NIK; a leader gets
their own village or desa adat only, with the NIK masked (the policy's `EXPORT_FULL_NIK`).
Every export is an audit row, as on the command line. A file over Telegram's upload limit
is zipped, and split if still too large (`bot.core.packaging`).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import asdict, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.callbacks import ExportChoice, encode
from bot.core.messages import Attachment, Button, Reply
from bot.core.packaging import for_upload
from bot.core.policy import POLICY, Action, Scope, ScopeKind
from bot.core.states import ApplicationStatus
from bot.core.workflow import STATUS_NAMES
from bot.db.models import ExportJob, utcnow
from bot.i18n import Translator
from bot.services.common import allowed, deny, grants, known_place, scope_label
from bot.services.export import (
    ExportFilter,
    ExportRequest,
    count_selected,
    last_export,
    record_export,
    run_export,
)
from bot.services.turn import Turn

ADAT = "adat"
# `Reply.track` name of the progress message of a background export.
TRACK = "export"
FORMATS = ("xlsx", "csv")
STATUSES = tuple(s for s in ApplicationStatus if s is not ApplicationStatus.DRAFT)
# The first screen: the person's whole place, any status, everything, XLSX.
START = ExportChoice("menu", "", "", "", 0, "xlsx")


def area_scope(area: str) -> Scope | None:
    """The place an area value stands for, as the policy knows places (None: malformed).

    A kecamatan is not a place of the policy: it counts as its regency's.
    """
    if area.startswith(ADAT):
        return Scope.parse(ScopeKind.DESA_ADAT, area[len(ADAT) :])
    depth = area.count(".")
    if depth == 1:
        return Scope(ScopeKind.REGENCY, area)
    if depth == 2:
        return Scope(ScopeKind.REGENCY, area.rsplit(".", 1)[0])
    if depth == 3:
        return Scope(ScopeKind.VILLAGE, area)
    return None


def area_of(scope: Scope) -> str:
    """The area value of a policy place ("" for the whole branch)."""
    if scope.kind is ScopeKind.DESA_ADAT:
        return f"{ADAT}{scope.code}"
    return scope.code or ""


def filter_for(area: str, status: str) -> ExportFilter:
    """The export filter of an area value and a status ("" for any)."""
    wanted = ExportFilter(status=ApplicationStatus(status) if status else None)
    if area.startswith(ADAT):
        return replace(wanted, desa_adat_id=int(area[len(ADAT) :]))
    depth = area.count(".")
    if depth == 1:
        return replace(wanted, regency=area)
    if depth == 2:
        return replace(wanted, district=area)
    return replace(wanted, village=area) if depth == 3 else wanted


class Exports:
    """The /ekspor screen, its buttons, and sending the file."""

    async def _place(self, turn: Turn, pick: ExportChoice) -> tuple[Scope, str] | None:
        """The place a press is about and its area value; None after refusing it."""
        held = await grants(turn)
        if pick.area:
            scope = area_scope(pick.area)
            if scope is None:
                await deny(turn, Action.EXPORT, pick.area)
                return None
            if not await allowed(turn, Action.EXPORT, scope):
                return None
            if not await known_place(turn, scope):
                turn.outcome.stale_button = True
                turn.text("button.stale")
                return None
            return scope, pick.area
        places = POLICY.scopes_for(held, Action.EXPORT)
        if not places:
            await deny(turn, Action.EXPORT, "-")
            return None
        return places[0], area_of(places[0])

    async def cmd_export(self, turn: Turn, _args: str) -> None:
        """Show the export screen with its filters."""
        await self.button(turn, START)

    async def button(self, turn: Turn, pick: ExportChoice) -> None:
        """One press on the export screen."""
        place = await self._place(turn, pick)
        if place is None:
            return
        scope, _area = place
        if (pick.status and pick.status not in STATUSES) or pick.fmt not in FORMATS:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        edit = pick is not START
        if pick.what == "areas":
            # Choosing among the branch's places is for those who may export all of them.
            if await allowed(turn, Action.EXPORT, Scope.branch()):
                await self._areas(turn, pick)
        elif pick.what == "statuses":
            self._statuses(turn, pick)
        elif pick.what == "go":
            await self._send(turn, pick, scope)
        else:
            following = {
                "area": replace(pick, area=pick.value),
                "status": replace(pick, status=pick.value),
                "new": replace(pick, new=0 if pick.new else 1),
                "fmt": replace(pick, fmt="csv" if pick.fmt == "xlsx" else "xlsx"),
            }.get(pick.what, pick)
            # The menu checks a newly chosen place like any other.
            await self._menu(turn, following, edit=edit)

    async def _menu(self, turn: Turn, pick: ExportChoice, *, edit: bool) -> None:
        t = turn.t
        place = await self._place(turn, pick)
        if place is None:
            return
        scope, area = place
        branch_wide = POLICY.permits(await grants(turn), Action.EXPORT, Scope.branch())
        state = replace(pick, what="", value="")
        text = t(
            "export.menu",
            area=await self._area_label(turn, area, scope),
            status=t(STATUS_NAMES[pick.status]) if pick.status else t("export.any_status"),
            new=t("export.yes") if pick.new else t("export.no"),
            format=pick.fmt.upper(),
        )
        rows: list[tuple[Button, ...]] = []
        first = [Button(t("export.button.status"), encode(replace(state, what="statuses")))]
        if branch_wide:
            first.insert(0, Button(t("export.button.area"), encode(replace(state, what="areas"))))
        rows.append(tuple(first))
        rows.append(
            (
                Button(
                    t("export.button.new_on" if pick.new else "export.button.new_off"),
                    encode(replace(state, what="new")),
                ),
                Button(
                    t("export.button.format", format=pick.fmt.upper()),
                    encode(replace(state, what="fmt")),
                ),
            )
        )
        rows.append((Button(t("export.button.send"), encode(replace(state, what="go"))),))
        turn.say(Reply(text, buttons=tuple(rows), edit=edit))

    async def _area_label(self, turn: Turn, area: str, scope: Scope) -> str:
        if not area:
            return turn.t("scope.branch")
        areas = turn.services.areas
        if area.count(".") == 1:
            regency = areas.regency(area)
            return regency.name if regency else area
        if area.count(".") == 2:
            district = areas.district(area)
            return turn.t("export.district", district=district.name) if district else area
        return await scope_label(turn, scope)

    async def _areas(self, turn: Turn, pick: ExportChoice) -> None:
        """The places under `pick.value` (the branch's regencies at first), to narrow down."""
        t = turn.t
        areas = turn.services.areas
        parent = pick.value
        state = replace(pick, what="", value="")
        depth = parent.count(".") if parent else 0
        if not parent:
            children = [(r.code, r.name) for r in areas.regencies]
        elif depth == 1:
            children = [(d.code, d.name) for d in areas.districts_of(parent)]
        else:
            children = [(v.code, v.name) for v in areas.villages_of(parent)]
        # Villages are chosen; regencies and kecamatan open the level below.
        action = "area" if depth == 2 else "areas"
        buttons = [
            Button(name, encode(replace(state, what=action, value=code))) for code, name in children
        ]
        rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
        whole = await self._area_label(turn, parent, Scope.branch())
        rows.insert(
            0,
            (
                Button(
                    t("export.button.all_in", area=whole),
                    encode(replace(state, what="area", value=parent)),
                ),
            ),
        )
        rows.append((Button(t("export.button.back"), encode(replace(state, what="menu"))),))
        turn.say(Reply(t("export.pick_area"), buttons=tuple(rows), edit=True))

    def _statuses(self, turn: Turn, pick: ExportChoice) -> None:
        t = turn.t
        state = replace(pick, what="status", value="")
        buttons = [
            Button(t(STATUS_NAMES[s]), encode(replace(state, value=s.value))) for s in STATUSES
        ]
        rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
        rows.insert(0, (Button(t("export.any_status"), encode(state)),))
        turn.say(Reply(t("export.pick_status"), buttons=tuple(rows), edit=True))

    async def _send(self, turn: Turn, pick: ExportChoice, scope: Scope) -> None:
        """Send the file now, or queue it for the background when it is large."""
        t = turn.t
        held = await grants(turn)
        services = turn.services
        area = pick.area or area_of(scope)
        wanted = filter_for(area, pick.status)
        if pick.new:
            since = await last_export(turn.session, actor=turn.user)
            wanted = replace(wanted, sent_after=since)
        request = ExportRequest(
            wanted,
            language=t.language,
            mask_nik=not POLICY.permits(held, Action.EXPORT_FULL_NIK, scope),
        )
        place = (area or "cabang").replace(".", "-")
        name = f"pendaftaran-{place}-{services.today():%Y-%m-%d}.{pick.fmt}"
        label = await self._area_label(turn, area, scope)
        expected = await count_selected(turn.session, services.settings, request, utcnow())
        if expected == 0:
            turn.text("export.empty")
            return
        if expected > services.settings.export_background_rows:
            job = ExportJob(
                user_id=turn.user.id,
                chat_id=turn.user.telegram_id,
                request=dump_request(request, pick.fmt, name, label),
                expected_rows=expected,
            )
            turn.session.add(job)
            await turn.session.flush()
            text = t("export.progress", count=expected, percent=0)
            turn.say(Reply(text, track=f"{TRACK}:{job.id}"))
            return
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / name
            result = await run_export(
                turn.session,
                services.cipher,
                services.areas,
                services.settings,
                request,
                pick.fmt,
                output,
            )
            data = await asyncio.to_thread(output.read_bytes)
        await record_export(turn.session, result, request, pick.fmt, actor=turn.user)
        for reply in file_replies(t, name, data, result.rows, label, masked=request.mask_nik):
            turn.say(reply)


def file_replies(
    t: Translator, name: str, data: bytes, rows: int, place: str, *, masked: bool
) -> list[Reply]:
    """The messages that carry an export: one document, or the parts of a split ZIP."""
    if rows == 0:
        return [Reply(t("export.empty"))]
    parts = for_upload(name, data)
    caption = t(
        "export.caption.masked" if masked else "export.caption.full", count=rows, area=place
    )
    if len(parts) > 1:
        caption += "\n" + t("export.split", parts=len(parts), name=parts[0][0])
    return [
        Reply(caption if number == 0 else part_name, attachment=Attachment(part_name, content))
        for number, (part_name, content) in enumerate(parts)
    ]


def dump_request(request: ExportRequest, fmt: str, name: str, place: str) -> str:
    """A background job's request as plain JSON (codes, flags and dates only)."""
    wanted = {
        k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(request.filter).items()
    }
    data = {
        "filter": wanted,
        "language": request.language,
        "mask_nik": request.mask_nik,
        "fmt": fmt,
        "name": name,
        "place": place,
    }
    return json.dumps(data, sort_keys=True)


def load_request(text: str) -> tuple[ExportRequest, str, str, str]:
    """What `dump_request` wrote: the request, format, file name and place label."""
    data = json.loads(text)
    raw = data["filter"]
    values: dict[str, Any] = {}
    for spec in fields(ExportFilter):
        value = raw.get(spec.name)
        if value is not None and spec.name in ("since", "until"):
            value = date.fromisoformat(value)
        elif value is not None and spec.name == "sent_after":
            value = datetime.fromisoformat(value)
        elif value is not None and spec.name == "status":
            value = ApplicationStatus(value)
        values[spec.name] = value
    request = ExportRequest(
        ExportFilter(**values), language=data["language"], mask_nik=data["mask_nik"]
    )
    return request, data["fmt"], data["name"], data["place"]


async def record_export_progress_message(
    session: AsyncSession, key: str, _chat_id: int, message_id: int
) -> None:
    """The "preparing your file" message was sent: keep its id to edit it with progress."""
    await session.execute(
        update(ExportJob).where(ExportJob.id == int(key)).values(progress_message_id=message_id)
    )
