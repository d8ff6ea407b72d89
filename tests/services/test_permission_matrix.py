"""Role × action × place, generated from the routing table and the policy, through the real
conversation on a real database: what the policy allows works, the rest is refused and logged."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.core.callbacks import (
    BroadcastControl,
    ComposeChoice,
    ComposeScope,
    ExportChoice,
    InvitePlace,
    InviteRole,
    Payload,
    ReviewAction,
    ReviewCover,
    ReviewReason,
    ReviewRequest,
    RevokePick,
    StatisticsChart,
    encode,
)
from bot.core.messages import Incoming, InputKind
from bot.core.policy import POLICY, ROLES, Action, Grant, RoleSpec, Scope, ScopeKind
from bot.core.states import BroadcastState
from bot.db.models import AuditEntry, Broadcast, DesaAdat, User
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.broadcasts import target_for
from bot.services.exporting import area_of
from bot.services.roles import add_role, grants_of
from bot.services.routing import BUTTONS, COMMANDS, TYPED
from bot.services.users import user_for_telegram

PERSON = 7000
OTHER = 7001
DENIED = translator("id")("role.denied")


@dataclass(frozen=True)
class Places:
    """The person's own place and a place of the same kind that is not theirs."""

    own: Scope
    other: Scope


async def _places(runtime: Runtime, spec: RoleSpec | None) -> Places:
    kind = spec.scope if spec is not None else ScopeKind.VILLAGE
    if kind is ScopeKind.DESA_ADAT:
        async with runtime.sessions() as session, session.begin():
            adat = [DesaAdat(name=f"Desa Adat Uji {n}") for n in (1, 2)]
            session.add_all(adat)
            await session.flush()
            return Places(*(Scope(kind, str(a.id)) for a in adat))
    kinds = spec.village_kinds if spec is not None and spec.village_kinds else {"desa"}
    villages = [v for vs in runtime.areas.villages.values() for v in vs if v.kind in kinds]
    return Places(
        Scope(ScopeKind.VILLAGE, villages[0].code), Scope(ScopeKind.VILLAGE, villages[1].code)
    )


async def _grants(runtime: Runtime, spec: RoleSpec | None, places: Places) -> list[Grant]:
    async with runtime.sessions() as session, session.begin():
        user = await user_for_telegram(session, PERSON, "id")
        other = await user_for_telegram(session, OTHER, "id")
        desa = next(v for vs in runtime.areas.villages.values() for v in vs if v.kind == "desa")
        await add_role(session, other, Grant("perbekel", desa.code))
        if spec is not None and spec.invitable:
            own = places.own
            grant = Grant(
                spec.name,
                own.code
                if own.kind is ScopeKind.VILLAGE and spec.scope is not ScopeKind.BRANCH
                else None,
                int(own.code or 0) if spec.scope is ScopeKind.DESA_ADAT else None,
            )
            await add_role(session, user, grant)
        elif spec is not None:
            # Roles given outside invitations (admin) come from the settings.
            runtime.settings.admin_telegram_ids.append(PERSON)
        return await grants_of(session, user, runtime.settings.admin_telegram_ids)


async def _act(runtime: Runtime, incoming: Incoming) -> str:
    async with runtime.sessions() as session, session.begin():
        user = await user_for_telegram(session, PERSON, "id")
        outcome = await runtime.conversation.handle(session, user, incoming)
    return "\n".join(reply.text for reply in outcome.replies)


async def _broadcast_in(runtime: Runtime, scope: Scope) -> int:
    target = target_for(scope)
    async with runtime.sessions() as session, session.begin():
        broadcast = Broadcast(
            scope_kind=target.scope_kind,
            scope_code=target.scope_code,
            state=BroadcastState.SENDING.value,
        )
        session.add(broadcast)
        await session.flush()
        return broadcast.id


def _scoped_payload(action: Action, scope: Scope, broadcast_id: int) -> Payload:
    target = target_for(scope)
    if action is Action.BROADCAST:
        return ComposeScope(target.scope_kind, target.scope_code)
    if action is Action.STATISTICS:
        return StatisticsChart(scope.kind.value, scope.code or "")
    if action is Action.EXPORT:
        return ExportChoice("go", "", area_of(scope), "", 0, "csv")
    return BroadcastControl("pause", broadcast_id)


# Buttons that carry a place; the others are checked for the action alone.
SCOPED: dict[type[Payload], Action] = {
    ComposeScope: Action.BROADCAST,
    StatisticsChart: Action.STATISTICS,
    ExportChoice: Action.EXPORT,
    BroadcastControl: Action.BROADCAST_CONTROL,
}
UNSCOPED: dict[type[Payload], Payload] = {
    InviteRole: InviteRole("perbekel"),
    RevokePick: RevokePick(1, "perbekel"),
    ReviewAction: ReviewAction(1, "verify"),
    ReviewReason: ReviewReason(1, "nik"),
    ReviewCover: ReviewCover(1, "2026-12-04"),
    ReviewRequest: ReviewRequest(1, "close"),
    InvitePlace: InvitePlace("51.02.05.2006"),
    ComposeChoice: ComposeChoice(1, "audience", "au", "followers"),
}


@pytest.mark.parametrize("role", [*(r.name for r in ROLES), "stranger"])
async def test_every_routed_action_follows_the_policy(runtime: Runtime, role: str) -> None:
    spec = POLICY.role(role)
    places = await _places(runtime, spec)
    grants = await _grants(runtime, spec, places)
    refusals = 0
    checked: list[str] = []

    async def check(label: str, incoming: Incoming, expected: bool) -> None:
        nonlocal refusals
        said = await _act(runtime, incoming)
        refused = DENIED in said
        assert refused == (not expected), (role, label, said)
        refusals += refused
        checked.append(label)

    for command in COMMANDS:
        if command.access is not None:
            expected = POLICY.permits(grants, command.access)
            await check(
                f"/{command.name}", Incoming(InputKind.COMMAND, text=command.name), expected
            )
            # The English name is the same command.
            english = Incoming(InputKind.COMMAND, text=command.english)
            await check(f"/{command.english}", english, expected)
    for route in BUTTONS:
        if route.access is None:
            continue
        if route.payload in SCOPED:
            action = SCOPED[route.payload]
            for where, scope in (("own", places.own), ("other", places.other)):
                payload = _scoped_payload(action, scope, await _broadcast_in(runtime, scope))
                expected = POLICY.permits(grants, action, scope)
                data = Incoming(InputKind.BUTTON, text=encode(payload))
                await check(f"{route.payload.__name__} {where}", data, expected)
        else:
            # Every guarded button is checked: a new one must be added to UNSCOPED or SCOPED.
            assert route.payload in UNSCOPED, route.payload.__name__
            data = Incoming(InputKind.BUTTON, text=encode(UNSCOPED[route.payload]))
            await check(route.payload.__name__, data, POLICY.permits(grants, route.access))
    for typed in TYPED:
        if typed.access is None:
            continue
        # A dialogue left open (a stored mode, e.g. from before a revocation): its next typed
        # step is refused unless the policy allows it now.
        async with runtime.sessions() as session, session.begin():
            user = await user_for_telegram(session, PERSON, "id")
            user.mode, user.mode_state = typed.mode.value, "{}"
        text = Incoming(InputKind.TEXT, text="Dajan Peken")
        await check(f"typed {typed.mode.value}", text, POLICY.permits(grants, typed.access))
        async with runtime.sessions() as session, session.begin():
            user = await user_for_telegram(session, PERSON, "id")
            user.mode, user.mode_state = None, None
    assert {
        "/siaran",
        "/undang",
        "/tinjau",
        "/ekspor",
        "ReviewAction",
        "ReviewRequest",
        "typed review",
        "ExportChoice other",
        "BroadcastControl other",
    } <= set(checked)
    async with runtime.sessions() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))
        ).all()
        person = await session.scalar(select(User).where(User.telegram_id == PERSON))
    assert len(entries) == refusals
    assert person is not None and all(e.actor_user_id == person.id for e in entries)
    assert all(json.loads(e.details)["what"] for e in entries)
    if role == "stranger":
        assert refusals == len(checked)
