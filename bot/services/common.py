"""What the resident and leader features share: grants, refusals, place names, following.

Every privileged step asks `allowed` at the moment it acts, whatever the button or the
earlier step carried; a refusal is written to the audit log.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.numbers import row_id
from bot.core.policy import POLICY, Action, Grant, Scope, ScopeKind
from bot.core.states import UserMode
from bot.db.models import Application, DesaAdat, Follow, User
from bot.services import audit
from bot.services.roles import grants_of
from bot.services.turn import Turn


async def grants(turn: Turn) -> list[Grant]:
    """The roles the person holds right now (admins from the settings)."""
    return await grants_of(turn.session, turn.user, turn.services.settings.admin_telegram_ids)


async def deny(turn: Turn, action: str, target: str) -> None:
    """Refuse a privileged action, end the dialogue it belonged to, and write it down."""
    await audit.record(turn.session, "denied", actor=turn.user, target=target, what=action)
    set_mode(turn, None)
    turn.text("role.denied")


async def allowed(turn: Turn, action: Action, scope: Scope | None = None) -> bool:
    """Ask the policy now; refuse (audited) when it says no."""
    if POLICY.permits(await grants(turn), action, scope):
        return True
    await deny(turn, action, _target(scope))
    return False


def _target(scope: Scope | None) -> str:
    if scope is None:
        return "-"
    return f"{scope.kind}:{scope.code or '-'}"


def mode_state(turn: Turn) -> dict[str, Any]:
    """The plain state of the person's current non-registration dialogue."""
    raw = turn.user.mode_state
    return dict(json.loads(raw)) if raw else {}


def set_mode(turn: Turn, mode: UserMode | None, state: dict[str, Any] | None = None) -> None:
    """Enter (or leave, with None) a dialogue outside the registration form."""
    turn.user.mode = mode.value if mode is not None else None
    turn.user.mode_state = json.dumps(state) if state is not None else None


def village_label(turn: Turn, code: str | None) -> str:
    """ "Desa Dajan Peken" or "Kelurahan Serangan"; the code when unknown."""
    village = turn.services.areas.village_by_code.get(code or "")
    if village is None:
        return code or "-"
    return turn.t(f"village.kind.{village.kind}", village=village.name)


async def scope_label(turn: Turn, scope: Scope) -> str:
    """A place as people name it."""
    if scope.kind is ScopeKind.VILLAGE:
        return village_label(turn, scope.code)
    if scope.kind is ScopeKind.DESA_ADAT:
        number = row_id(scope.code)
        adat = await turn.session.get(DesaAdat, number) if number is not None else None
        return adat.name if adat else "-"
    if scope.kind is ScopeKind.REGENCY:
        regency = turn.services.areas.regency_by_code.get(scope.code or "")
        return regency.name if regency else "-"
    return turn.t("scope.branch")


async def known_place(turn: Turn, scope: Scope) -> bool:
    """Whether a place exists: the branch, one of its regencies or villages, a desa adat."""
    areas = turn.services.areas
    if scope.kind is ScopeKind.REGENCY:
        return (scope.code or "") in areas.regency_by_code
    if scope.kind is ScopeKind.VILLAGE:
        return (scope.code or "") in areas.village_by_code
    if scope.kind is ScopeKind.DESA_ADAT:
        number = row_id(scope.code)
        return number is not None and await turn.session.get(DesaAdat, number) is not None
    return True


async def grant_place(turn: Turn, grant: Grant) -> str:
    """The place of a grant as people name it."""
    scope = POLICY.scope_of(grant)
    return await scope_label(turn, scope) if scope is not None else "-"


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


async def follow_application(session: AsyncSession, user: User, application: Application) -> None:
    """A registered worker follows the desa of their domicile and their desa adat."""
    if application.village_code is not None:
        await follow(session, user, village_code=application.village_code)
    if application.desa_adat_id is not None:
        await follow(session, user, desa_adat_id=application.desa_adat_id)


class StartRegistration(Protocol):
    """The registration entry, handed in so that features need not import the conversation."""

    async def __call__(
        self, turn: Turn, args: str = "", village_hint: str = "", assisted: bool = False
    ) -> None:
        """Start (or resume) a registration, with the village offered as a one-tap answer."""
