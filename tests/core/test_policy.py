"""The permission policy: roles declared once, one decision for role × action × place."""

from __future__ import annotations

from bot.core.policy import (
    INVITABLE_ROLES,
    POLICY,
    Action,
    Grant,
    RoleName,
    RoleSpec,
    Scope,
    ScopeKind,
)
from bot.i18n import add_texts, remove_texts, translator
from bot.services.routing import menu_for

DAJAN_PEKEN = Scope(ScopeKind.VILLAGE, "51.02.05.2006")
DELOD_PEKEN = Scope(ScopeKind.VILLAGE, "51.02.05.2004")
TABANAN = Scope(ScopeKind.REGENCY, "51.02")
ADAT = Scope(ScopeKind.DESA_ADAT, "7")
PERBEKEL = Grant(RoleName.PERBEKEL, village_code="51.02.05.2006")
STAFF = Grant(RoleName.STAFF)


def test_a_perbekel_acts_on_their_own_village_only() -> None:
    assert POLICY.permits([PERBEKEL], Action.BROADCAST, DAJAN_PEKEN)
    assert not POLICY.permits([PERBEKEL], Action.BROADCAST, DELOD_PEKEN)
    assert not POLICY.permits([PERBEKEL], Action.BROADCAST, TABANAN)
    assert not POLICY.permits([PERBEKEL], Action.INVITE)
    assert POLICY.scopes_for([PERBEKEL], Action.BROADCAST) == [DAJAN_PEKEN]


def test_staff_cover_the_branch_but_have_no_village_tools() -> None:
    for place in (DAJAN_PEKEN, TABANAN, ADAT, Scope.branch()):
        assert POLICY.permits([STAFF], Action.BROADCAST, place)
    assert not POLICY.permits([STAFF], Action.STATISTICS)
    assert POLICY.acting_scope([PERBEKEL, STAFF], Action.BROADCAST, DAJAN_PEKEN) == Scope.branch()


def test_nobody_and_unknown_roles_may_do_nothing() -> None:
    for action in Action:
        assert not POLICY.permits([], action)
        assert not POLICY.permits([Grant("kepala_dusun", "51.02.05.2006")], action)


def test_invitations_follow_the_declarations() -> None:
    assert set(INVITABLE_ROLES) == {"staff", "perbekel", "lurah", "bendesa_adat"}
    assert POLICY.may_invite([STAFF], RoleName.PERBEKEL, DAJAN_PEKEN)
    assert not POLICY.may_invite([PERBEKEL], RoleName.PERBEKEL, DAJAN_PEKEN)
    assert not POLICY.may_invite([STAFF], RoleName.ADMIN, None)
    assert POLICY.fits(RoleName.PERBEKEL, DAJAN_PEKEN, "kelurahan") == "invite.error.kind_desa"
    assert POLICY.fits(RoleName.LURAH, DAJAN_PEKEN, "desa") == "invite.error.kind_kelurahan"
    assert POLICY.fits(RoleName.STAFF, DAJAN_PEKEN) == "invite.error.staff_scope"
    assert POLICY.fits(RoleName.BENDESA_ADAT, ADAT) is None


def test_a_new_role_is_one_declaration_plus_its_texts() -> None:
    """A kelian banjar added to a copy of the policy gets its menu and permissions from it."""
    kelian = RoleSpec(
        "kelian_banjar",
        ScopeKind.VILLAGE,
        frozenset({Action.BROADCAST, Action.STATISTICS, Action.VIEW_ROLES}),
        village_kinds=frozenset({"desa"}),
        invited_by=frozenset({RoleName.STAFF.value, RoleName.ADMIN.value}),
    )
    policy = POLICY.with_role(kelian)
    texts = {"role.kelian_banjar": "Kelian Banjar", "invite.accepted.kelian_banjar": "Selamat"}
    add_texts("id", texts)
    t = translator("id")
    grant = Grant("kelian_banjar", village_code=DAJAN_PEKEN.code)
    assert t(policy.role("kelian_banjar").label) == "Kelian Banjar"  # type: ignore[union-attr]
    assert policy.permits([grant], Action.BROADCAST, DAJAN_PEKEN)
    assert not policy.permits([grant], Action.BROADCAST, DELOD_PEKEN)
    assert not policy.permits([grant], Action.LINK)
    assert kelian in policy.invitable_roles([STAFF])
    assert policy.fits("kelian_banjar", DAJAN_PEKEN, "kelurahan") == "invite.error.village"
    names = [name for name, _ in menu_for([grant], "id", policy)]
    assert {"siaran", "statistik", "peran"} <= set(names)
    assert not {"tautan", "undang", "cabut", "daftarkan"} & set(names)
    english = [name for name, _ in menu_for([grant], "en", policy)]
    assert "broadcast" in english and "siaran" not in english
    # The bot's own policy is untouched.
    assert POLICY.role("kelian_banjar") is None
    assert not POLICY.permits([grant], Action.BROADCAST, DAJAN_PEKEN)
    remove_texts("id", list(texts))
