"""Branch staff invite village leaders and revoke roles; everyone may see their own (/peran)."""

from __future__ import annotations

from sqlalchemy import select

from bot.core import areas as area_data
from bot.core.callbacks import InvitePlace, InviteRole, RevokePick, encode
from bot.core.errors import InvalidInput
from bot.core.messages import Button, Reply, button_rows
from bot.core.numbers import row_id, telegram_id
from bot.core.policy import POLICY, Action, Grant, RoleSpec, Scope, ScopeKind
from bot.core.states import UserMode
from bot.db.models import DesaAdat, User
from bot.services.common import deny, grant_place, grants, mode_state, set_mode
from bot.services.roles import (
    INVITE_PREFIX,
    create_invitation,
    deep_link,
    grants_of,
    redeem_invitation,
    revoke_role,
)
from bot.services.turn import Turn


class Invitations:
    """/undang, /cabut, /peran and opening an invitation link."""

    async def start_link(self, turn: Turn, payload: str) -> bool:
        """An invitation link: bind its role to this person; False if it is not one."""
        if not payload.startswith(INVITE_PREFIX):
            return False
        try:
            grant = await redeem_invitation(turn.session, payload, turn.user)
        except InvalidInput as exc:
            turn.error(exc)
            return True
        spec = POLICY.role(grant.role)
        turn.outcome.roles_changed = True
        if spec is not None:
            turn.text(spec.accepted, place=await grant_place(turn, grant))
        return True

    async def cmd_roles(self, turn: Turn, _args: str) -> None:
        """List the person's roles and their places."""
        held = await grants(turn)
        if not held:
            turn.text("role.none")
            return
        lines = [turn.t("role.header")]
        for grant in held:
            role = self._role_label(turn, grant.role)
            lines.append(turn.t("role.line", role=role, place=await grant_place(turn, grant)))
        turn.say(Reply("\n".join(lines)))

    def _role_label(self, turn: Turn, role: str) -> str:
        spec = POLICY.role(role)
        return turn.t(spec.label) if spec is not None else role

    async def cmd_invite(self, turn: Turn, _args: str) -> None:
        """Offer the roles this person may invite someone to."""
        roles = POLICY.invitable_roles(await grants(turn))
        buttons = [Button(turn.t(r.label), encode(InviteRole(r.name))) for r in roles]
        turn.say(Reply(turn.t("invite.role"), buttons=button_rows(buttons, 2)))

    async def role_button(self, turn: Turn, pick: InviteRole) -> None:
        """The role is chosen: branch roles are issued at once, others ask for the place."""
        spec = POLICY.role(pick.role)
        if spec is None or not POLICY.may_invite(await grants(turn), spec.name, None):
            await deny(turn, Action.INVITE, f"role:{pick.role}")
            return
        if spec.scope is ScopeKind.BRANCH:
            await self._issue(turn, spec, Scope.branch())
            return
        set_mode(turn, UserMode.INVITE, {"role": spec.name})
        turn.text("invite.ask_adat" if spec.scope is ScopeKind.DESA_ADAT else "invite.ask_village")

    async def place_button(self, turn: Turn, pick: InvitePlace) -> None:
        """A place picked from the search results."""
        spec = POLICY.role(str(mode_state(turn).get("role")))
        if turn.user.mode != UserMode.INVITE or spec is None:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        kind = ScopeKind.DESA_ADAT if spec.scope is ScopeKind.DESA_ADAT else ScopeKind.VILLAGE
        await self._issue(turn, spec, Scope(kind, pick.place))

    async def place_text(self, turn: Turn, text: str) -> None:
        """The typed name (or code) of the place: issue on an exact code, else offer matches."""
        spec = POLICY.role(str(mode_state(turn).get("role")))
        if spec is None:
            set_mode(turn, None)
            turn.text("button.stale")
            return
        areas = turn.services.areas
        if spec.scope is ScopeKind.DESA_ADAT:
            adat = list(await turn.session.scalars(select(DesaAdat)))
            names = {str(a.id): a.name for a in adat}
            matches = area_data.match_names(text, list(names.items()), limit=6)
            buttons = [Button(names[key], encode(InvitePlace(key))) for key, _ in matches]
        else:
            code = text.strip()
            if code in areas.village_by_code:
                await self._issue(turn, spec, Scope(ScopeKind.VILLAGE, code))
                return
            buttons = [
                Button(
                    f"{v.name} ({areas.district_by_code[v.district_code].name})",
                    encode(InvitePlace(v.code)),
                )
                for v in areas.search(text, limit=6)
            ]
        if not buttons:
            turn.text("invite.not_found")
            return
        turn.say(Reply(turn.t("invite.pick"), buttons=button_rows(buttons, 1)))

    async def _issue(self, turn: Turn, spec: RoleSpec, scope: Scope) -> None:
        # Asked again here: the role may have been revoked since the first step.
        if not POLICY.may_invite(await grants(turn), spec.name, scope):
            await deny(turn, Action.INVITE, f"{scope.kind}:{scope.code or '-'}")
            return
        village = scope.code if scope.kind is ScopeKind.VILLAGE else None
        adat = None
        if scope.kind is ScopeKind.DESA_ADAT:
            # An id no row can have is a desa adat that does not exist.
            adat = row_id(scope.code) or -1
        settings = turn.services.settings
        try:
            payload = await create_invitation(
                turn.session,
                turn.services.areas,
                role=spec.name,
                village_code=village,
                desa_adat_id=adat,
                created_by=turn.user,
                days=settings.invitation_days,
            )
        except InvalidInput as exc:
            turn.error(exc)
            return
        set_mode(turn, None)
        turn.text(
            "invite.created",
            role=turn.t(spec.label),
            place=await grant_place(turn, Grant(spec.name, village, adat)),
            link=deep_link(turn.services.bot_username, payload),
            days=settings.invitation_days,
        )

    async def cmd_revoke(self, turn: Turn, args: str) -> None:
        """/cabut TELEGRAM_ID: offer that person's roles to remove."""
        number = telegram_id(args)
        if number is None:
            turn.text("revoke.usage")
            return
        target = await turn.session.scalar(select(User).where(User.telegram_id == number))
        held = await grants_of(turn.session, target, []) if target is not None else []
        if target is None or not held:
            turn.text("revoke.nothing")
            return
        buttons = [
            Button(
                f"{self._role_label(turn, g.role)} · {await grant_place(turn, g)}",
                encode(RevokePick(target.id, g.role)),
            )
            for g in held
        ]
        turn.say(Reply(turn.t("revoke.pick"), buttons=button_rows(buttons, 1)))

    async def revoke_button(self, turn: Turn, pick: RevokePick) -> None:
        """Remove the picked role (and cancel the broadcasts waiting in its name)."""
        target = await turn.session.get(User, pick.user_id)
        if target is None or POLICY.role(pick.role) is None:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        removed = await revoke_role(
            turn.session,
            target,
            pick.role,
            actor=turn.user,
            admin_ids=turn.services.settings.admin_telegram_ids,
        )
        turn.text("revoke.done" if removed else "revoke.nothing")
        if target.telegram_id is not None:
            turn.outcome.roles_changed_for.append(target.telegram_id)
