"""Roles, their scopes, and one-time invitations that grant them."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import InvalidInput
from bot.db.models import DesaAdat, Invitation, Role, User, utcnow
from bot.services import audit
from bot.services.areas import AreaDirectory

INVITE_PREFIX = "inv_"


class RoleName(StrEnum):
    """The roles the bot knows."""

    ADMIN = "admin"
    STAFF = "staff"
    PERBEKEL = "perbekel"
    LURAH = "lurah"
    BENDESA_ADAT = "bendesa_adat"


BRANCH_ROLES = frozenset({RoleName.ADMIN, RoleName.STAFF})
LEADER_ROLES = frozenset({RoleName.PERBEKEL, RoleName.LURAH, RoleName.BENDESA_ADAT})


@dataclass(frozen=True)
class Grant:
    """One role with its scope: the whole branch, one village, or one desa adat."""

    role: RoleName
    village_code: str | None = None
    desa_adat_id: int | None = None

    @property
    def is_branch(self) -> bool:
        """Whether the role covers the whole branch."""
        return self.role in BRANCH_ROLES

    def covers_village(self, village_code: str) -> bool:
        """Whether this grant may act on a village."""
        return self.is_branch or self.village_code == village_code

    def covers_desa_adat(self, desa_adat_id: int) -> bool:
        """Whether this grant may act on a desa adat."""
        return self.is_branch or self.desa_adat_id == desa_adat_id


async def grants_of(session: AsyncSession, user: User, admin_ids: list[int]) -> list[Grant]:
    """Every role the user holds; admins come from ADMIN_TELEGRAM_IDS."""
    grants = [
        Grant(RoleName(r.role), r.village_code, r.desa_adat_id)
        for r in await session.scalars(
            select(Role).where(Role.user_id == user.id).order_by(Role.id)
        )
    ]
    if user.telegram_id is not None and user.telegram_id in admin_ids:
        grants.insert(0, Grant(RoleName.ADMIN))
    return grants


def is_staff(grants: list[Grant]) -> bool:
    """Whether any grant covers the whole branch."""
    return any(g.is_branch for g in grants)


async def check_target(
    session: AsyncSession,
    areas: AreaDirectory,
    role: RoleName,
    village_code: str | None,
    desa_adat_id: int | None,
) -> None:
    """Refuse a role/scope combination that makes no sense (with a message id)."""
    if role is RoleName.ADMIN:
        raise InvalidInput("invite.error.admin")
    if role is RoleName.STAFF:
        if village_code or desa_adat_id:
            raise InvalidInput("invite.error.staff_scope")
        return
    if role is RoleName.BENDESA_ADAT:
        if desa_adat_id is None or await session.get(DesaAdat, desa_adat_id) is None:
            raise InvalidInput("invite.error.desa_adat")
        return
    village = areas.village_by_code.get(village_code or "")
    if village is None:
        raise InvalidInput("invite.error.village", code=village_code or "-")
    if role is RoleName.PERBEKEL and village.kind != "desa":
        raise InvalidInput("invite.error.kind_desa", village=village.name)
    if role is RoleName.LURAH and village.kind != "kelurahan":
        raise InvalidInput("invite.error.kind_kelurahan", village=village.name)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_invitation(
    session: AsyncSession,
    areas: AreaDirectory,
    *,
    role: RoleName,
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
            role=role.value,
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
        role=role.value,
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
    grant = Grant(RoleName(invitation.role), invitation.village_code, invitation.desa_adat_id)
    await add_role(session, user, grant, granted_by=invitation.created_by)
    await audit.record(
        session,
        "role_grant",
        actor=user,
        target=grant.village_code or str(grant.desa_adat_id or "branch"),
        role=grant.role.value,
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
            Role.role == grant.role.value,
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
                role=grant.role.value,
                village_code=grant.village_code,
                desa_adat_id=grant.desa_adat_id,
                granted_by=granted_by,
            )
        )
        await session.flush()


async def revoke_role(
    session: AsyncSession,
    user: User,
    role: RoleName,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
) -> int:
    """Remove every grant of `role` from `user`; return how many were removed."""
    result = await session.execute(
        delete(Role).where(Role.user_id == user.id, Role.role == role.value)
    )
    removed = int(getattr(result, "rowcount", 0) or 0)
    await audit.record(
        session,
        "role_revoke",
        actor=actor,
        actor_label=actor_label,
        target=f"user:{user.id}",
        role=role.value,
        removed=removed,
    )
    return removed
