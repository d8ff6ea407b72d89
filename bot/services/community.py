"""Residents and village leaders: following a village, opting out, invitations, roles,
broadcasts, village statistics and links. Channel-free, like the registration conversation.

Every privileged action checks the person's roles and scope in the database, whatever the
button that asked for it carried; refusals are written to the audit log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import areas as area_data
from bot.core.errors import InvalidInput
from bot.core.images import (
    ChartLabels,
    PosterText,
    VillageStats,
    render_poster,
    render_statistics_chart,
)
from bot.core.messages import Attachment, Button, Incoming, InputKind, Reply, button_rows
from bot.db.models import Application, Broadcast, DesaAdat, Follow, User, utcnow
from bot.services import audit
from bot.services.broadcasts import (
    AUDIENCES,
    STATUSES,
    TEMPLATES,
    Target,
    count_recipients,
    create_broadcast,
    render,
)
from bot.services.delivery import broadcast_counts, default_progress, set_broadcast_state
from bot.services.roles import (
    LEADER_ROLES,
    Grant,
    RoleName,
    create_invitation,
    deep_link,
    grants_of,
    is_staff,
    redeem_invitation,
    revoke_role,
)
from bot.services.turn import Turn

STOP_WORDS = frozenset({"berhenti", "stop", "berhenti langganan", "unsubscribe"})
VILLAGE_LINK_PREFIX = "desa_"
ADAT_LINK_PREFIX = "adat_"
# The broadcast footer is added under the caption; Telegram's caption limit is 1024.
MAX_CAPTION = 850
MAX_PHOTO_BYTES = 5_000_000
SCHEDULE_FORMATS = ("%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M")

Handler = Callable[["Turn", str], Awaitable[None]]


def _photo(state: dict[str, Any]) -> bytes | None:
    encoded = state.get("photo")
    return base64.b64decode(encoded) if encoded else None


async def follow(
    session: AsyncSession,
    user: User,
    *,
    village_code: str | None = None,
    desa_adat_id: int | None = None,
) -> bool:
    """Follow a village or a desa adat; return False if already following it."""
    existing = await session.scalar(
        select(Follow).where(
            Follow.user_id == user.id,
            Follow.village_code.is_(None)
            if village_code is None
            else Follow.village_code == village_code,
            Follow.desa_adat_id.is_(None)
            if desa_adat_id is None
            else Follow.desa_adat_id == desa_adat_id,
        )
    )
    if existing is not None:
        return False
    session.add(Follow(user_id=user.id, village_code=village_code, desa_adat_id=desa_adat_id))
    await session.flush()
    return True


class Community:
    """The resident and leader side of the bot."""

    def __init__(self, services: Any, start_registration: Callable[..., Awaitable[None]]) -> None:
        self.s = services
        # The registration conversation's entry, for village links that start it.
        self.start_registration = start_registration
        self.commands: dict[str, Handler] = {
            "ikuti": self._cmd_follow,
            "berhenti": self._cmd_opt_out,
            "mulai": self._cmd_opt_in,
            "undang": self._cmd_invite,
            "cabut": self._cmd_revoke,
            "siaran": self._cmd_compose,
            "statistik": self._cmd_statistics,
            "tautan": self._cmd_link,
            "peran": self._cmd_roles,
            "daftarkan": self._cmd_assist,
            "klaim": self._cmd_claim,
        }

    # ------------------------------------------------------------------ entry point

    async def handle(self, turn: Turn, incoming: Incoming) -> bool:
        """Handle the input if it belongs to this side of the bot; say whether it did."""
        if incoming.kind is InputKind.COMMAND:
            if incoming.text == "start" and incoming.args:
                return await self._start_payload(turn, incoming.args)
            handler = self.commands.get(incoming.text)
            if handler is None:
                return False
            turn.user.mode = None
            turn.user.mode_state = None
            await handler(turn, incoming.args)
            return True
        if incoming.kind is InputKind.BUTTON:
            scope, _, rest = incoming.text.partition(":")
            button = {
                "fl": self._follow_button,
                "iv": self._invite_button,
                "rv": self._revoke_button,
                "sc": self._compose_button,
                "bc": self._control_button,
                "stat": self._chart_button,
            }.get(scope)
            if button is None:
                return False
            await button(turn, rest)
            return True
        if (
            incoming.kind is InputKind.MEDIA
            and turn.user.mode == "compose"
            and self._state(turn).get("step") == "text"
        ):
            await self._compose_photo(turn, incoming)
            return True
        if incoming.kind is InputKind.TEXT:
            if area_data.normalise_name(incoming.text) in STOP_WORDS:
                await self._cmd_opt_out(turn, "")
                return True
            mode = turn.user.mode
            if mode == "invite":
                await self._invite_text(turn, incoming.text)
                return True
            if mode == "compose":
                await self._compose_text(turn, incoming.text)
                return True
        return False

    # ------------------------------------------------------------------ helpers

    def _state(self, turn: Turn) -> dict[str, Any]:
        raw = turn.user.mode_state
        return dict(json.loads(raw)) if raw else {}

    def _set_mode(self, turn: Turn, mode: str | None, state: dict[str, Any] | None = None) -> None:
        turn.user.mode = mode
        turn.user.mode_state = json.dumps(state) if state is not None else None

    async def has_roles(self, turn: Turn) -> bool:
        """Whether the person holds any role (leaders get more help)."""
        return bool(await self._grants(turn))

    async def _grants(self, turn: Turn) -> list[Grant]:
        return await grants_of(turn.session, turn.user, self.s.settings.admin_telegram_ids)

    async def _deny(self, turn: Turn, action: str, target: str) -> None:
        """Refuse a privileged action, and write it down."""
        await audit.record(turn.session, "denied", actor=turn.user, target=target, what=action)
        self._set_mode(turn, None)
        turn.text("role.denied")

    def _village_label(self, turn: Turn, code: str | None) -> str:
        village = self.s.areas.village_by_code.get(code or "")
        if village is None:
            return code or "-"
        return turn.t(f"village.kind.{village.kind}", village=village.name)

    async def _scope_label(self, turn: Turn, kind: str, code: str | None) -> str:
        if kind == "village":
            return self._village_label(turn, code)
        if kind == "desa_adat":
            adat = await turn.session.get(DesaAdat, int(code or 0))
            return adat.name if adat else "-"
        if kind == "regency":
            regency = self.s.areas.regency_by_code.get(code or "")
            return regency.name if regency else "-"
        return turn.t("scope.branch")

    # ------------------------------------------------------------------ start payloads

    async def _start_payload(self, turn: Turn, payload: str) -> bool:
        if payload.startswith("inv_"):
            await self._redeem(turn, payload)
            return True
        if payload.startswith(VILLAGE_LINK_PREFIX):
            code = payload.removeprefix(VILLAGE_LINK_PREFIX).replace("_", ".")
            if code in self.s.areas.village_by_code:
                await self._village_link(turn, code)
                return True
            turn.text("link.unknown_village")
            return False
        if payload.startswith(ADAT_LINK_PREFIX):
            number = payload.removeprefix(ADAT_LINK_PREFIX)
            adat = await turn.session.get(DesaAdat, int(number)) if number.isdigit() else None
            if adat is None:
                turn.text("link.unknown_village")
                return False
            await follow(turn.session, turn.user, desa_adat_id=adat.id)
            turn.text("link.welcome", village=adat.name)
            await self.start_registration(turn, "", village_hint=adat.village_code or "")
            return True
        return False

    async def _redeem(self, turn: Turn, payload: str) -> None:
        try:
            grant = await redeem_invitation(turn.session, payload, turn.user)
        except InvalidInput as exc:
            turn.error(exc)
            return
        turn.outcome.roles_changed = True
        where = await self._grant_place(turn, grant)
        turn.text(f"invite.accepted.{grant.role.value}", place=where)

    async def _grant_place(self, turn: Turn, grant: Grant) -> str:
        if grant.village_code:
            return self._village_label(turn, grant.village_code)
        if grant.desa_adat_id:
            return await self._scope_label(turn, "desa_adat", str(grant.desa_adat_id))
        return turn.t("scope.branch")

    async def _village_link(self, turn: Turn, code: str) -> None:
        """A village QR code: follow its news and start registration with the village chosen."""
        await follow(turn.session, turn.user, village_code=code)
        turn.text("link.welcome", village=self._village_label(turn, code))
        await self.start_registration(turn, "", village_hint=code)

    # ------------------------------------------------------------------ following

    async def _cmd_follow(self, turn: Turn, _args: str) -> None:
        buttons = [Button(r.name, f"fl:r:{r.code}") for r in self.s.areas.regencies]
        turn.say(Reply(turn.t("follow.regency"), buttons=button_rows(buttons, 2)))

    async def _follow_button(self, turn: Turn, rest: str) -> None:
        kind, _, code = rest.partition(":")
        areas = self.s.areas
        if kind == "r" and code in areas.regency_by_code:
            buttons = [Button(d.name, f"fl:d:{d.code}") for d in areas.districts.get(code, [])]
            turn.say(Reply(turn.t("follow.district"), buttons=button_rows(buttons, 2)))
        elif kind == "d" and code in areas.district_by_code:
            villages = areas.villages.get(code, [])
            buttons = [Button(v.name, f"fl:v:{v.code}") for v in villages]
            turn.say(Reply(turn.t("follow.village"), buttons=button_rows(buttons, 2)))
        elif kind == "v" and code in areas.village_by_code:
            added = await follow(turn.session, turn.user, village_code=code)
            key = "follow.done" if added else "follow.already"
            turn.text(key, village=self._village_label(turn, code))
        else:
            turn.text("button.stale")

    async def follow_application(
        self, session: AsyncSession, user: User, application: Application
    ) -> None:
        """A registered worker follows the desa of their domicile and their desa adat."""
        if application.village_code is not None:
            await follow(session, user, village_code=application.village_code)
        if application.desa_adat_id is not None:
            await follow(session, user, desa_adat_id=application.desa_adat_id)

    async def _cmd_opt_out(self, turn: Turn, _args: str) -> None:
        turn.user.opted_out_at = utcnow()
        turn.text("optout.done")
        await audit.record(turn.session, "optout", actor=turn.user)

    async def _cmd_opt_in(self, turn: Turn, _args: str) -> None:
        turn.user.opted_out_at = None
        follows = await turn.session.scalar(
            select(func.count()).select_from(Follow).where(Follow.user_id == turn.user.id)
        )
        turn.text("optin.done" if follows else "optin.done_no_village")
        await audit.record(turn.session, "optin", actor=turn.user)

    # ------------------------------------------------------------------ roles

    async def _cmd_roles(self, turn: Turn, _args: str) -> None:
        grants = await self._grants(turn)
        if not grants:
            turn.text("role.none")
            return
        lines = [turn.t("role.header")]
        for grant in grants:
            place = await self._grant_place(turn, grant)
            lines.append(turn.t("role.line", role=turn.t(f"role.{grant.role.value}"), place=place))
        turn.say(Reply("\n".join(lines)))

    async def _cmd_invite(self, turn: Turn, _args: str) -> None:
        if not is_staff(await self._grants(turn)):
            await self._deny(turn, "invite", "-")
            return
        roles = [RoleName.PERBEKEL, RoleName.LURAH, RoleName.BENDESA_ADAT, RoleName.STAFF]
        buttons = [Button(turn.t(f"role.{r.value}"), f"iv:role:{r.value}") for r in roles]
        turn.say(Reply(turn.t("invite.role"), buttons=button_rows(buttons, 2)))

    async def _invite_button(self, turn: Turn, rest: str) -> None:
        if not is_staff(await self._grants(turn)):
            await self._deny(turn, "invite", rest)
            return
        kind, _, value = rest.partition(":")
        if kind == "role" and value in RoleName.__members__.values():
            role = RoleName(value)
            if role is RoleName.STAFF:
                await self._issue(turn, role, None, None)
                return
            self._set_mode(turn, "invite", {"role": role.value})
            key = "invite.ask_adat" if role is RoleName.BENDESA_ADAT else "invite.ask_village"
            turn.text(key)
        elif kind == "pick":
            state = self._state(turn)
            role_name = state.get("role")
            if role_name is None:
                turn.text("button.stale")
                return
            role = RoleName(role_name)
            if role is RoleName.BENDESA_ADAT:
                await self._issue(turn, role, None, int(value) if value.isdigit() else -1)
            else:
                await self._issue(turn, role, value, None)
        else:
            turn.text("button.stale")

    async def _invite_text(self, turn: Turn, text: str) -> None:
        state = self._state(turn)
        role = RoleName(state.get("role", RoleName.PERBEKEL.value))
        if role is RoleName.BENDESA_ADAT:
            adat = list(await turn.session.scalars(select(DesaAdat)))
            matches = area_data.match_names(text, [(str(a.id), a.name) for a in adat], limit=6)
            buttons = [
                Button(next(a.name for a in adat if str(a.id) == key), f"iv:pick:{key}")
                for key, _ in matches
            ]
        else:
            code = text.strip()
            if code in self.s.areas.village_by_code:
                await self._issue(turn, role, code, None)
                return
            found = self.s.areas.search(text, limit=6)
            buttons = [
                Button(
                    f"{v.name} ({self.s.areas.district_by_code[v.district_code].name})",
                    f"iv:pick:{v.code}",
                )
                for v in found
            ]
        if not buttons:
            turn.text("invite.not_found")
            return
        turn.say(Reply(turn.t("invite.pick"), buttons=button_rows(buttons, 1)))

    async def _issue(
        self, turn: Any, role: RoleName, village: str | None, adat: int | None
    ) -> None:
        try:
            payload = await create_invitation(
                turn.session,
                self.s.areas,
                role=role,
                village_code=village,
                desa_adat_id=adat,
                created_by=turn.user,
                days=self.s.settings.invitation_days,
            )
        except InvalidInput as exc:
            turn.error(exc)
            return
        self._set_mode(turn, None)
        link = deep_link(self.s.bot_username, payload)
        place = await self._grant_place(turn, Grant(role, village, adat))
        turn.text(
            "invite.created",
            role=turn.t(f"role.{role.value}"),
            place=place,
            link=link,
            days=self.s.settings.invitation_days,
        )

    async def _cmd_revoke(self, turn: Turn, args: str) -> None:
        if not is_staff(await self._grants(turn)):
            await self._deny(turn, "revoke", args or "-")
            return
        if not args.strip().isdigit():
            turn.text("revoke.usage")
            return
        target = await turn.session.scalar(select(User).where(User.telegram_id == int(args)))
        grants = await grants_of(turn.session, target, []) if target is not None else []
        if target is None or not grants:
            turn.text("revoke.nothing")
            return
        buttons = [
            Button(
                f"{turn.t(f'role.{g.role.value}')} · {await self._grant_place(turn, g)}",
                f"rv:{target.id}:{g.role.value}",
            )
            for g in grants
        ]
        turn.say(Reply(turn.t("revoke.pick"), buttons=button_rows(buttons, 1)))

    async def _revoke_button(self, turn: Turn, rest: str) -> None:
        user_id, _, role_name = rest.partition(":")
        if not is_staff(await self._grants(turn)):
            await self._deny(turn, "revoke", rest)
            return
        target = await turn.session.get(User, int(user_id)) if user_id.isdigit() else None
        if target is None or role_name not in RoleName.__members__.values():
            turn.text("button.stale")
            return
        removed = await revoke_role(turn.session, target, RoleName(role_name), actor=turn.user)
        turn.text("revoke.done" if removed else "revoke.nothing")
        if target.telegram_id is not None:
            turn.outcome.roles_changed_for.append(target.telegram_id)

    # ------------------------------------------------------------------ broadcasts

    async def _scopes(self, turn: Turn) -> list[tuple[str, str | None]]:
        grants = await self._grants(turn)
        scopes: list[tuple[str, str | None]] = []
        if is_staff(grants):
            scopes.append(("all", None))
            scopes.extend(("regency", r.code) for r in self.s.areas.regencies)
        for grant in grants:
            if grant.role in LEADER_ROLES:
                if grant.village_code:
                    scopes.append(("village", grant.village_code))
                elif grant.desa_adat_id is not None:
                    scopes.append(("desa_adat", str(grant.desa_adat_id)))
        return scopes

    async def _may_use(self, turn: Turn, kind: str, code: str | None) -> bool:
        grants = await self._grants(turn)
        if is_staff(grants):
            return kind in ("all", "regency", "village", "desa_adat")
        for grant in grants:
            if kind == "village" and grant.village_code == code:
                return True
            if kind == "desa_adat" and str(grant.desa_adat_id) == code:
                return True
        return False

    async def _cmd_compose(self, turn: Turn, _args: str) -> None:
        scopes = await self._scopes(turn)
        if not scopes:
            await self._deny(turn, "broadcast", "-")
            return
        if len(scopes) == 1:
            await self._compose_scope(turn, *scopes[0])
            return
        buttons = [
            Button(await self._scope_label(turn, kind, code), f"sc:scope:{kind}:{code or ''}")
            for kind, code in scopes
        ]
        turn.say(Reply(turn.t("compose.scope"), buttons=button_rows(buttons, 1)))

    async def _compose_scope(self, turn: Turn, kind: str, code: str | None) -> None:
        if not await self._may_use(turn, kind, code):
            await self._deny(turn, "broadcast", f"{kind}:{code}")
            return
        self._set_mode(turn, "compose", {"kind": kind, "code": code, "step": "content"})
        buttons = [Button(turn.t(f"template.name.{n}"), f"sc:tpl:{n}") for n in TEMPLATES]
        buttons.append(Button(turn.t("compose.own_text"), "sc:own"))
        turn.say(
            Reply(
                turn.t("compose.content", scope=await self._scope_label(turn, kind, code)),
                buttons=button_rows(buttons, 1),
            )
        )

    async def _compose_button(self, turn: Turn, rest: str) -> None:
        action, _, value = rest.partition(":")
        state = self._state(turn)
        if action == "scope":
            kind, _, code = value.partition(":")
            await self._compose_scope(turn, kind, code or None)
            return
        if turn.user.mode != "compose" or not state:
            turn.text("button.stale")
            return
        if not await self._may_use(turn, state["kind"], state.get("code")):
            await self._deny(turn, "broadcast", f"{state['kind']}:{state.get('code')}")
            return
        if action == "tpl" and value in TEMPLATES:
            state.update(template=value, text=None, step="audience")
            self._set_mode(turn, "compose", state)
            self._ask_audience(turn)
        elif action == "own":
            state.update(step="text")
            self._set_mode(turn, "compose", state)
            turn.text("compose.write")
        elif action == "aud" and value in AUDIENCES:
            if value == "status":
                state.update(audience=value, step="status")
                self._set_mode(turn, "compose", state)
                buttons = [Button(turn.t(f"status.{s}"), f"sc:st:{s}") for s in STATUSES]
                turn.say(Reply(turn.t("compose.status"), buttons=button_rows(buttons, 2)))
                return
            state.update(audience=value, status=None)
            await self._preview(turn, state)
        elif action == "st" and value in STATUSES:
            state.update(audience="status", status=value)
            await self._preview(turn, state)
        elif action == "send" and state.get("step") == "preview":
            await self._send(turn, state, None)
        elif action == "when" and state.get("step") == "preview":
            state.update(step="when")
            self._set_mode(turn, "compose", state)
            turn.text("compose.when")
        elif action == "cancel":
            self._set_mode(turn, None)
            turn.text("compose.cancelled")
        else:
            turn.text("button.stale")

    async def _compose_text(self, turn: Turn, text: str) -> None:
        state = self._state(turn)
        step = state.get("step")
        if step == "text":
            body = text.strip()
            if len(body) < 5 or len(body) > 3500:
                turn.text("compose.error.length")
                return
            state.update(text=body, template=None, step="audience")
            self._set_mode(turn, "compose", state)
            self._ask_audience(turn)
        elif step == "when":
            moment = self._parse_when(text)
            if moment is None:
                turn.text("compose.error.when")
                return
            await self._send(turn, state, moment)
        else:
            turn.text("answer.use_buttons")

    async def _compose_photo(self, turn: Turn, incoming: Incoming) -> None:
        """One photo with a caption: the caption is the message (Telegram allows 1024 letters)."""
        if incoming.photo is None:
            turn.text("compose.error.media")
            return
        caption = incoming.text.strip()
        if len(caption) < 5 or len(caption) > MAX_CAPTION:
            turn.text("compose.error.caption", limit=MAX_CAPTION)
            return
        photo = await incoming.photo()
        if len(photo) > MAX_PHOTO_BYTES:
            turn.text("compose.error.photo_size")
            return
        state = self._state(turn)
        state.update(
            text=caption,
            template=None,
            photo=base64.b64encode(photo).decode(),
            step="audience",
        )
        self._set_mode(turn, "compose", state)
        self._ask_audience(turn)

    def _parse_when(self, text: str) -> datetime | None:
        tz = self.s.settings.tz
        for fmt in SCHEDULE_FORMATS:
            try:
                moment = datetime.strptime(" ".join(text.split()), fmt).replace(tzinfo=tz)
            except ValueError:
                continue
            now = datetime.now(tz)
            if now < moment < now + timedelta(days=90):
                return moment
            return None
        return None

    def _ask_audience(self, turn: Turn) -> None:
        buttons = [Button(turn.t(f"audience.{a}"), f"sc:aud:{a}") for a in AUDIENCES]
        turn.say(Reply(turn.t("compose.audience"), buttons=button_rows(buttons, 1)))

    def _target(self, state: dict[str, Any]) -> Target:
        return Target(
            state["kind"],
            state.get("code"),
            state.get("audience", "followers"),
            state.get("status"),
        )

    async def _preview(self, turn: Turn, state: dict[str, Any]) -> None:
        state["step"] = "preview"
        self._set_mode(turn, "compose", state)
        count = await count_recipients(
            turn.session, self._target(state), self.s.settings.branch_regencies
        )
        sample = Broadcast(
            template=state.get("template"),
            text=state.get("text"),
            audience=state["audience"],
            photo=_photo(state),
        )
        turn.text("compose.preview_intro", count=count)
        turn.say(render(sample, turn.user, self.s.settings))
        buttons = (
            (Button(turn.t("compose.send_now"), "sc:send"),),
            (Button(turn.t("compose.schedule"), "sc:when"),),
            (Button(turn.t("compose.cancel"), "sc:cancel"),),
        )
        turn.say(Reply(turn.t("compose.confirm", count=count), buttons=buttons))

    async def _send(self, turn: Turn, state: dict[str, Any], when: datetime | None) -> None:
        broadcast = await create_broadcast(
            turn.session,
            self._target(state),
            settings=self.s.settings,
            text=state.get("text"),
            template=state.get("template"),
            photo=_photo(state),
            created_by=turn.user,
            scheduled_at=when,
            progress_chat_id=turn.user.telegram_id,
        )
        self._set_mode(turn, None)
        if when is not None:
            turn.text(
                "compose.scheduled", when=when.strftime("%d-%m-%Y %H:%M"), number=broadcast.id
            )
        # The live progress message, which the delivery engine edits in place from now on.
        counts = await broadcast_counts(turn.session, broadcast.id)
        view = default_progress(broadcast, counts, turn.t.language)
        turn.say(replace(view, track=f"broadcast:{broadcast.id}"))

    async def _control_button(self, turn: Turn, rest: str) -> None:
        action, _, number = rest.partition(":")
        broadcast = await turn.session.get(Broadcast, int(number)) if number.isdigit() else None
        if broadcast is None or action not in ("pause", "resume", "cancel"):
            turn.text("button.stale")
            return
        allowed = broadcast.created_by == turn.user.id or is_staff(await self._grants(turn))
        if not allowed:
            await self._deny(turn, f"broadcast_{action}", f"broadcast:{broadcast.id}")
            return
        state = {"pause": "paused", "resume": "sending", "cancel": "cancelled"}[action]
        await set_broadcast_state(turn.session, broadcast.id, state)
        await audit.record(
            turn.session, f"broadcast_{action}", actor=turn.user, target=f"broadcast:{broadcast.id}"
        )
        if action == "pause":
            turn.text("broadcast.paused")
        elif action == "resume":
            turn.text("broadcast.resumed")
        else:
            turn.text("broadcast.cancelled")
        # The progress message shows the new state and its buttons at once.
        await turn.session.refresh(broadcast)
        counts = await broadcast_counts(turn.session, broadcast.id)
        turn.say(replace(default_progress(broadcast, counts, turn.t.language), edit=True))

    # ------------------------------------------------------------------ assisted registration

    async def _cmd_assist(self, turn: Turn, _args: str) -> None:
        """A leader fills the form for a resident who has no phone of their own."""
        grants = await self._grants(turn)
        if not grants:
            await self._deny(turn, "assist", "-")
            return
        if turn.draft is not None:
            turn.text("assist.busy")
            return
        village = next((g.village_code for g in grants if g.village_code), "")
        turn.text("assist.start")
        await self.start_registration(turn, "", village_hint=village or "", assisted=True)

    async def _cmd_claim(self, turn: Turn, args: str) -> None:
        """A resident's own account takes over the application a leader registered for them."""
        code = "".join(args.split()).upper()
        if not code:
            turn.text("claim.usage")
            return
        application = await turn.session.scalar(
            select(Application).where(
                Application.claim_code_hash == self.s.cipher.keyed_hash(code),
                Application.status != "draft",
            )
        )
        if application is None:
            await audit.record(turn.session, "claim_refused", actor=turn.user)
            turn.text("claim.unknown")
            return
        application.user_id = turn.user.id
        application.claim_code_hash = None
        await self.follow_application(turn.session, turn.user, application)
        await audit.record(
            turn.session, "claim", actor=turn.user, target=f"application:{application.id}"
        )
        turn.text("claim.done", reference=application.reference or "-")

    # ------------------------------------------------------------------ village tools

    async def _leader_place(self, turn: Turn, action: str) -> tuple[str, str] | None:
        """The village or desa adat a leader's role is for (refused without one)."""
        for grant in await self._grants(turn):
            if grant.village_code:
                return "village", grant.village_code
            if grant.desa_adat_id is not None:
                return "desa_adat", str(grant.desa_adat_id)
        await self._deny(turn, action, "-")
        return None

    async def place_numbers(self, session: AsyncSession, kind: str, code: str) -> dict[str, Any]:
        """Followers and applications of a village or desa adat (status, occupation, 30 days)."""
        if kind == "village":
            follows = Follow.village_code == code
            applications = Application.village_code == code
        else:
            follows = Follow.desa_adat_id == int(code)
            applications = Application.desa_adat_id == int(code)
        followers = await session.scalar(
            select(func.count(func.distinct(Follow.user_id))).where(follows)
        )
        by_status = dict(
            (
                await session.execute(
                    select(Application.status, func.count())
                    .where(applications)
                    .group_by(Application.status)
                )
            ).all()
        )
        by_occupation = dict(
            (
                await session.execute(
                    select(Application.occupation, func.count())
                    .where(applications, Application.status != "draft")
                    .group_by(Application.occupation)
                )
            ).all()
        )
        since = utcnow() - timedelta(days=30)
        moments = (
            await session.scalars(
                select(Application.submitted_at).where(
                    applications,
                    Application.status != "draft",
                    Application.submitted_at >= since,
                )
            )
        ).all()
        tz = self.s.settings.tz
        daily: dict[date, int] = {}
        for moment in moments:
            if moment is not None:
                day = moment.astimezone(tz).date()
                daily[day] = daily.get(day, 0) + 1
        return {
            "followers": int(followers or 0),
            "by_status": {str(k): int(v) for k, v in by_status.items()},
            "by_occupation": {str(k or "-"): int(v) for k, v in by_occupation.items()},
            "recent": len(moments),
            "daily": sorted(daily.items()),
        }

    async def _cmd_statistics(self, turn: Turn, _args: str) -> None:
        place = await self._leader_place(turn, "statistics")
        if place is None:
            return
        kind, code = place
        numbers = await self.place_numbers(turn.session, kind, code)
        t = turn.t
        lines = [
            t("stats.header", village=await self._scope_label(turn, kind, code)),
            t("stats.followers", count=numbers["followers"]),
            t("stats.recent", count=numbers["recent"]),
        ]
        for status, count in sorted(numbers["by_status"].items()):
            lines.append(t("stats.status_line", status=t(f"status.{status}"), count=count))
        for occupation, count in sorted(numbers["by_occupation"].items()):
            label = t(f"occupation.{occupation}") if occupation != "-" else "-"
            lines.append(t("stats.occupation_line", occupation=label, count=count))
        turn.say(
            Reply(
                "\n".join(lines),
                buttons=((Button(t("stats.chart_button"), f"stat:chart:{kind}:{code}"),),),
            )
        )

    async def _chart_button(self, turn: Turn, rest: str) -> None:
        _, _, place = rest.partition(":")
        kind, _, code = place.partition(":")
        grants = await self._grants(turn)
        allowed = (kind == "village" and any(g.covers_village(code) for g in grants)) or (
            kind == "desa_adat"
            and code.isdigit()
            and any(g.covers_desa_adat(int(code)) for g in grants)
        )
        if not allowed:
            await self._deny(turn, "statistics_chart", place)
            return
        numbers = await self.place_numbers(turn.session, kind, code)
        t = turn.t
        village = await self._scope_label(turn, kind, code)
        stats = VillageStats(
            village_name=village,
            followers=numbers["followers"],
            by_status={t(f"status.{k}"): v for k, v in numbers["by_status"].items()},
            by_occupation={
                (t(f"occupation.{k}") if k != "-" else "-"): v
                for k, v in numbers["by_occupation"].items()
            },
            daily=numbers["daily"] or [(self.s.today(), 0)],
        )
        labels = ChartLabels(
            title=t("chart.title"),
            status_title=t("chart.status"),
            occupation_title=t("chart.occupation"),
            daily_title=t("chart.daily"),
            followers_label=t("chart.followers"),
            no_data=t("chart.no_data"),
            other=t("chart.other"),
        )
        png = render_statistics_chart(stats, labels=labels)
        turn.say(
            Reply(
                t("chart.caption", village=village),
                attachment=Attachment(
                    f"statistik-{code.replace('.', '-')}.png", png, is_photo=True
                ),
            )
        )

    async def _cmd_link(self, turn: Turn, _args: str) -> None:
        place = await self._leader_place(turn, "link")
        if place is None:
            return
        kind, code = place
        prefix = VILLAGE_LINK_PREFIX if kind == "village" else ADAT_LINK_PREFIX
        link = deep_link(self.s.bot_username, prefix + code.replace(".", "_"))
        village = await self._scope_label(turn, kind, code)
        turn.text("link.text", village=village, link=link)
        t = turn.t
        poster = render_poster(
            village_name=village,
            link=link,
            lines=PosterText(
                slogan=t("poster.slogan"),
                steps=(t("poster.step1"), t("poster.step2"), t("poster.step3")),
                footer=t("poster.footer"),
            ),
        )
        turn.say(
            Reply(
                t("poster.caption"),
                attachment=Attachment(f"poster-{code.replace('.', '-')}.png", poster),
            )
        )
