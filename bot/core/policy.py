"""Who may do what, where: the roles declared once, and one function that decides.

Pure Python: no database, no Telegram. A role is a `RoleSpec` (its scope kind, the village
kinds it fits, what it may do, who may invite it, its texts); a person's roles are `Grant`s;
`Policy.permits(grants, action, scope)` is the only place a permission is decided. Adding a
role (a kelian banjar, a branch "petugas") is one more `RoleSpec` plus its texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.numbers import row_id


class ScopeKind(StrEnum):
    """The kinds of place a role or an action is about, from the widest."""

    BRANCH = "branch"
    REGENCY = "regency"
    VILLAGE = "village"
    DESA_ADAT = "desa_adat"


class Action(StrEnum):
    """Privileged things a person can do; everything else is open to everyone."""

    BROADCAST = "broadcast"
    BROADCAST_CONTROL = "broadcast_control"
    STATISTICS = "statistics"
    LINK = "link"
    ASSIST = "assist"
    INVITE = "invite"
    REVOKE = "revoke"
    VIEW_ROLES = "view_roles"
    # Move applications through the status workflow (/tinjau).
    REVIEW = "review"
    REPORT = "report"
    # Export the applications of a place (/ekspor, the command line's `export`).
    EXPORT = "export"
    # See the full NIK in an export: staff key it into the national system; leaders do not.
    EXPORT_FULL_NIK = "export_full_nik"


# How the code of a regency and of a village is written (Kemendagri codes).
_CODE_SHAPES = {
    ScopeKind.REGENCY: re.compile(r"[0-9]{2}\.[0-9]{2}"),
    ScopeKind.VILLAGE: re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}"),
}


@dataclass(frozen=True)
class Scope:
    """A place: the whole branch, a regency, a village (desa/kelurahan) or a desa adat."""

    kind: ScopeKind
    code: str | None = None

    @classmethod
    def branch(cls) -> Scope:
        """The whole branch."""
        return cls(ScopeKind.BRANCH)

    @classmethod
    def parse(cls, kind: str, code: str | None) -> Scope | None:
        """A place named in data from outside (a button, a stored row); None when malformed.

        Only the shape is checked (a regency "51.02", a village "51.02.05.2006", a desa adat
        a row id); whether the place exists is the caller's to ask.
        """
        if kind not in ScopeKind.__members__.values():
            return None
        scope_kind = ScopeKind(kind)
        if scope_kind is ScopeKind.BRANCH:
            return cls.branch() if not code else None
        if scope_kind is ScopeKind.DESA_ADAT:
            number = row_id(code)
            return cls(scope_kind, str(number)) if number is not None else None
        if code is None or not _CODE_SHAPES[scope_kind].fullmatch(code):
            return None
        return cls(scope_kind, code)

    def contains(self, other: Scope) -> bool:
        """Whether `other` lies inside this place (a place contains itself)."""
        if self.kind is ScopeKind.BRANCH:
            return True
        if self == other:
            return True
        # Village codes begin with their regency's code (51.02.05.2006 is in 51.02).
        return (
            self.kind is ScopeKind.REGENCY
            and other.kind is ScopeKind.VILLAGE
            and (other.code or "").startswith(f"{self.code}.")
        )


@dataclass(frozen=True)
class RoleSpec:
    """One role, declared once: where it applies, what it may do, who may hand it out."""

    name: str
    scope: ScopeKind
    actions: frozenset[Action]
    # For village roles: the village kinds (desa, kelurahan) a holder may lead.
    village_kinds: frozenset[str] = frozenset()
    # Roles whose holders may invite someone to this role; empty: never by invitation.
    invited_by: frozenset[str] = frozenset()
    # Message id of the error when a village of another kind is chosen.
    kind_error: str = "invite.error.village"

    @property
    def label(self) -> str:
        """Message id of the role's name."""
        return f"role.{self.name}"

    @property
    def accepted(self) -> str:
        """Message id of the welcome after the invitation was opened."""
        return f"invite.accepted.{self.name}"

    @property
    def invitable(self) -> bool:
        """Whether the role is given by invitation at all."""
        return bool(self.invited_by)


@dataclass(frozen=True)
class Grant:
    """One role held, with its place (none for branch roles)."""

    role: str
    village_code: str | None = None
    desa_adat_id: int | None = None


class RoleName(StrEnum):
    """The names of the declared roles (the database stores these strings)."""

    ADMIN = "admin"
    STAFF = "staff"
    PERBEKEL = "perbekel"
    LURAH = "lurah"
    BENDESA_ADAT = "bendesa_adat"


_BRANCH = frozenset({RoleName.ADMIN.value, RoleName.STAFF.value})
_LEADER_ACTIONS = frozenset(
    {
        Action.BROADCAST,
        Action.BROADCAST_CONTROL,
        Action.STATISTICS,
        Action.LINK,
        Action.ASSIST,
        Action.VIEW_ROLES,
        Action.EXPORT,
    }
)
_BRANCH_ACTIONS = frozenset(
    {
        Action.BROADCAST,
        Action.BROADCAST_CONTROL,
        Action.ASSIST,
        Action.INVITE,
        Action.REVOKE,
        Action.VIEW_ROLES,
        Action.REVIEW,
        Action.REPORT,
        Action.EXPORT,
        Action.EXPORT_FULL_NIK,
    }
)

ROLES: tuple[RoleSpec, ...] = (
    # Admins come from ADMIN_TELEGRAM_IDS, never from an invitation.
    RoleSpec(RoleName.ADMIN, ScopeKind.BRANCH, _BRANCH_ACTIONS),
    RoleSpec(RoleName.STAFF, ScopeKind.BRANCH, _BRANCH_ACTIONS, invited_by=_BRANCH),
    RoleSpec(
        RoleName.PERBEKEL,
        ScopeKind.VILLAGE,
        _LEADER_ACTIONS,
        village_kinds=frozenset({"desa"}),
        invited_by=_BRANCH,
        kind_error="invite.error.kind_desa",
    ),
    RoleSpec(
        RoleName.LURAH,
        ScopeKind.VILLAGE,
        _LEADER_ACTIONS,
        village_kinds=frozenset({"kelurahan"}),
        invited_by=_BRANCH,
        kind_error="invite.error.kind_kelurahan",
    ),
    RoleSpec(RoleName.BENDESA_ADAT, ScopeKind.DESA_ADAT, _LEADER_ACTIONS, invited_by=_BRANCH),
)

_WIDTH = {ScopeKind.BRANCH: 0, ScopeKind.REGENCY: 1, ScopeKind.VILLAGE: 2, ScopeKind.DESA_ADAT: 2}


@dataclass(frozen=True)
class Policy:
    """The declared roles and the decisions that follow from them."""

    roles: Sequence[RoleSpec]
    _by_name: dict[str, RoleSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {r.name: r for r in self.roles})

    def with_role(self, spec: RoleSpec) -> Policy:
        """A copy of this policy with one more role."""
        return Policy((*self.roles, spec))

    def role(self, name: str) -> RoleSpec | None:
        """The declaration of a role, None for a name nobody declared."""
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        """Every declared role name, in declaration order."""
        return tuple(r.name for r in self.roles)

    def scope_of(self, grant: Grant) -> Scope | None:
        """The place a grant is for (None if the grant does not fit its role's declaration)."""
        spec = self.role(grant.role)
        if spec is None:
            return None
        if spec.scope is ScopeKind.BRANCH:
            return Scope.branch()
        if spec.scope is ScopeKind.DESA_ADAT:
            return (
                None if grant.desa_adat_id is None else Scope(spec.scope, str(grant.desa_adat_id))
            )
        return None if grant.village_code is None else Scope(spec.scope, grant.village_code)

    def permits(self, grants: Iterable[Grant], action: Action, scope: Scope | None = None) -> bool:
        """Whether some grant allows `action` on `scope` (any place when `scope` is None)."""
        return self.acting_scope(grants, action, scope) is not None

    def acting_scope(
        self, grants: Iterable[Grant], action: Action, scope: Scope | None = None
    ) -> Scope | None:
        """The widest place of a grant that allows `action` on `scope`, or None."""
        best: Scope | None = None
        for grant in grants:
            spec = self.role(grant.role)
            place = self.scope_of(grant)
            if spec is None or place is None or action not in spec.actions:
                continue
            if scope is not None and not place.contains(scope):
                continue
            if best is None or _WIDTH[place.kind] < _WIDTH[best.kind]:
                best = place
        return best

    def scopes_for(self, grants: Iterable[Grant], action: Action) -> list[Scope]:
        """The places of the grants that allow `action`, widest first, each once."""
        places: list[Scope] = []
        for grant in grants:
            spec = self.role(grant.role)
            place = self.scope_of(grant)
            if spec and place and action in spec.actions and place not in places:
                places.append(place)
        return sorted(places, key=lambda p: _WIDTH[p.kind])

    def sender_role(self, grants: Iterable[Grant], scope: Scope) -> str | None:
        """The role in whose name a broadcast to `scope` goes out (the widest that allows it)."""
        grants = list(grants)
        acting = self.acting_scope(grants, Action.BROADCAST, scope)
        for grant in grants:
            if self.scope_of(grant) == acting:
                spec = self.role(grant.role)
                if spec is not None and Action.BROADCAST in spec.actions:
                    return spec.name
        return None

    def is_branch_role(self, name: str) -> bool:
        """Whether a role covers the whole branch (its broadcasts come from the office)."""
        spec = self.role(name)
        return spec is not None and spec.scope is ScopeKind.BRANCH

    def invitable_roles(self, grants: Iterable[Grant]) -> list[RoleSpec]:
        """The roles these grants may invite someone to."""
        held = {g.role for g in grants}
        return [r for r in self.roles if r.invited_by & held]

    def may_invite(self, grants: Iterable[Grant], role: str, scope: Scope | None) -> bool:
        """Whether these grants may invite someone to `role` at `scope` (None: the branch)."""
        grants = list(grants)
        spec = self.role(role)
        if spec is None or spec not in self.invitable_roles(grants):
            return False
        return self.permits(grants, Action.INVITE, scope or Scope.branch())

    def fits(self, role: str, scope: Scope, village_kind: str | None = None) -> str | None:
        """Why `role` cannot be held at `scope` (a message id), or None when it can."""
        spec = self.role(role)
        if spec is None or not spec.invitable:
            return "invite.error.admin"
        if spec.scope is ScopeKind.BRANCH:
            return None if scope.kind is ScopeKind.BRANCH else "invite.error.staff_scope"
        if spec.scope is not scope.kind:
            return (
                "invite.error.desa_adat"
                if spec.scope is ScopeKind.DESA_ADAT
                else ("invite.error.village")
            )
        if spec.village_kinds and village_kind not in spec.village_kinds:
            return spec.kind_error
        return None


POLICY = Policy(ROLES)
# The roles an invitation can grant, for the command line's choices.
INVITABLE_ROLES: tuple[str, ...] = tuple(r.name for r in ROLES if r.invitable)


def permits(grants: Iterable[Grant], action: Action, scope: Scope | None = None) -> bool:
    """Whether `grants` allow `action` on `scope`, under the bot's policy."""
    return POLICY.permits(grants, action, scope)


def scopes_for(grants: Iterable[Grant], action: Action) -> list[Scope]:
    """The places `grants` may take `action` on, under the bot's policy."""
    return POLICY.scopes_for(grants, action)
