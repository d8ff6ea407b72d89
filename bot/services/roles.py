"""Grants and invitations in the database; what a role may do is decided in bot.core.policy."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import InvalidInput
from bot.core.policy import POLICY, Action, Grant, RoleName, Scope, ScopeKind
from bot.core.states import BroadcastState
from bot.db.models import Broadcast, DesaAdat, Invitation, Role, User, utcnow
from bot.services import audit
from bot.services.areas import AreaDirectory
from bot.services.broadcasts import broadcast_scope
from bot.services.delivery import set_broadcast_state

__all__ = ["Grant", "RoleName", "create_invitation", "grants_of", "revoke_role"]

INVITE_PREFIX = "inv_"


async def grants_of(session: AsyncSession, user: User, admin_ids: list[int]) -> list[Grant]:
    """Every role the user holds; admins come from ADMIN_TELEGRAM_IDS."""
    grants = [
        Grant(r.role, r.village_code, r.desa_adat_id)
        for r in await session.scalars(
            select(Role).where(Role.user_id == user.id).order_by(Role.id)
        )
    ]
    if user.telegram_id is not None and user.telegram_id in admin_ids:
        grants.insert(0, Grant(RoleName.ADMIN))
    return grants


async def check_target(
    session: AsyncSession,
    areas: AreaDirectory,
    role: str,
    village_code: str | None,
    desa_adat_id: int | None,
) -> None:
    """Refuse a role/place combination the policy does not allow (with a message id)."""
    spec = POLICY.role(role)
    kind = spec.scope if spec is not None else ScopeKind.BRANCH
    village_kind = None
    if village_code or kind is ScopeKind.VILLAGE:
        village = areas.village_by_code.get(village_code or "")
        if village is None:
            raise InvalidInput("invite.error.village", code=village_code or "-")
        scope, village_kind = Scope(ScopeKind.VILLAGE, village.code), village.kind
    elif desa_adat_id is not None or kind is ScopeKind.DESA_ADAT:
        if desa_adat_id is None or await session.get(DesaAdat, desa_adat_id) is None:
            raise InvalidInput("invite.error.desa_adat")
        scope = Scope(ScopeKind.DESA_ADAT, str(desa_adat_id))
    else:
        scope = Scope.branch()
    problem = POLICY.fits(role, scope, village_kind)
    if problem is not None:
        village = areas.village_by_code.get(village_code or "")
        name = village.name if village else "-"
        raise InvalidInput(problem, village=name, code=village_code or "-")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_invitation(
    session: AsyncSession,
    areas: AreaDirectory,
    *,
    role: str,
    village_code: str | None = None,
    desa_adat_id: int | None = None,
    created_by: User | None = None,
    actor_label: str | None = None,
    days: int = 7,
) -> str:
    """Create a one-time invitation; return the `start` payload (keep it secret)."""
    await check_target(session, areas, role, village_code, desa_adat_id)
    token = secrets.token_urlsafe(24)
    session.add(
        Invitation(
            token_hash=_hash(token),
            role=str(role),
            village_code=village_code,
            desa_adat_id=desa_adat_id,
            created_by=created_by.id if created_by else None,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    await audit.record(
        session,
        "invite_create",
        actor=created_by,
        actor_label=actor_label,
        target=village_code or (f"desa_adat:{desa_adat_id}" if desa_adat_id else "branch"),
        role=str(role),
    )
    return INVITE_PREFIX + token


def deep_link(bot_username: str, payload: str) -> str:
    """The t.me link that opens the bot with a `start` payload."""
    return f"https://t.me/{bot_username}?start={payload}"


async def redeem_invitation(session: AsyncSession, payload: str, user: User) -> Grant:
    """Bind the invitation's role to `user`; refuse unknown, used or expired tokens."""
    token = payload.removeprefix(INVITE_PREFIX)
    invitation = await session.scalar(
        select(Invitation).where(Invitation.token_hash == _hash(token)).with_for_update()
    )
    if invitation is None:
        await audit.record(session, "invite_refused", actor=user, reason="unknown")
        raise InvalidInput("invite.error.unknown")
    if invitation.used_at is not None:
        await audit.record(session, "invite_refused", actor=user, reason="used")
        raise InvalidInput("invite.error.used")
    if invitation.expires_at < utcnow():
        await audit.record(session, "invite_refused", actor=user, reason="expired")
        raise InvalidInput("invite.error.expired")
    invitation.used_at = utcnow()
    invitation.used_by = user.id
    grant = Grant(invitation.role, invitation.village_code, invitation.desa_adat_id)
    await add_role(session, user, grant, granted_by=invitation.created_by)
    await audit.record(
        session,
        "role_grant",
        actor=user,
        target=grant.village_code or str(grant.desa_adat_id or "branch"),
        role=grant.role,
        invitation=invitation.id,
    )
    return grant


async def add_role(
    session: AsyncSession, user: User, grant: Grant, granted_by: int | None = None
) -> None:
    """Give `user` a role unless they hold it already."""
    existing = await session.scalar(
        select(Role).where(
            Role.user_id == user.id,
            Role.role == grant.role,
            Role.village_code.is_(None)
            if grant.village_code is None
            else Role.village_code == grant.village_code,
            Role.desa_adat_id.is_(None)
            if grant.desa_adat_id is None
            else Role.desa_adat_id == grant.desa_adat_id,
        )
    )
    if existing is None:
        session.add(
            Role(
                user_id=user.id,
                role=grant.role,
                village_code=grant.village_code,
                desa_adat_id=grant.desa_adat_id,
                granted_by=granted_by,
            )
        )
        await session.flush()


async def revoke_role(
    session: AsyncSession,
    user: User,
    role: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    admin_ids: list[int] | None = None,
) -> int:
    """Remove every grant of `role` from `user`; return how many were removed.

    Their scheduled or paused broadcasts to places they no longer cover are cancelled.
    """
    result = await session.execute(
        delete(Role).where(Role.user_id == user.id, Role.role == str(role))
    )
    removed = int(getattr(result, "rowcount", 0) or 0)
    await audit.record(
        session,
        "role_revoke",
        actor=actor,
        actor_label=actor_label,
        target=f"user:{user.id}",
        role=str(role),
        removed=removed,
    )
    if removed:
        await _cancel_orphaned_broadcasts(session, user, actor, actor_label, admin_ids or [])
    return removed


async def _cancel_orphaned_broadcasts(
    session: AsyncSession,
    user: User,
    actor: User | None,
    actor_label: str | None,
    admin_ids: list[int],
) -> None:
    # Waiting broadcasts speak in the person's name; without the role they must not go out.
    grants = await grants_of(session, user, admin_ids)
    waiting = await session.scalars(
        select(Broadcast).where(
            Broadcast.created_by == user.id,
            Broadcast.state.in_((BroadcastState.SCHEDULED, BroadcastState.PAUSED)),
        )
    )
    for broadcast in list(waiting):
        scope = broadcast_scope(broadcast)
        if POLICY.permits(grants, Action.BROADCAST, scope):
            continue
        if await set_broadcast_state(session, broadcast.id, BroadcastState.CANCELLED):
            await audit.record(
                session,
                "broadcast_cancel",
                actor=actor,
                actor_label=actor_label,
                target=f"broadcast:{broadcast.id}",
                reason="role_revoked",
            )
