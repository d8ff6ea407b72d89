"""The one routing table: every command, button and typed step, who may use it, its handler.

Command menus per role and language, and /bantuan, are derived from `COMMANDS`; buttons are
dispatched by their payload type (bot.core.callbacks); typed steps by the person's mode. The
policy is asked here before any handler runs, at the moment the person acts, so a role
revoked in the middle of a dialogue stops it at the next step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.callbacks import (
    BroadcastControl,
    CalculatorAmount,
    ComposeChoice,
    ComposeScope,
    Correct,
    Erase,
    ExportChoice,
    FollowPick,
    InvitePlace,
    InviteRole,
    LanguagePick,
    MenuAction,
    Payload,
    PeriodChange,
    ReviewAction,
    ReviewCover,
    ReviewReason,
    ReviewRequest,
    RevokePick,
    Stale,
    StatisticsChart,
    Withdraw,
    decode,
)
from bot.core.messages import Incoming, InputKind
from bot.core.policy import POLICY, Action, Grant, Policy
from bot.core.states import UserMode
from bot.i18n import LANGUAGES
from bot.services.assisted import Assisted
from bot.services.calculator import Calculator
from bot.services.common import allowed, grants, set_mode
from bot.services.composing import Composing
from bot.services.exporting import Exports
from bot.services.following import Following, is_stop_word
from bot.services.invitations import Invitations
from bot.services.leader_tools import LeaderTools
from bot.services.registration import Registration
from bot.services.review import Review
from bot.services.rights import Rights
from bot.services.staff_reports import StaffReports
from bot.services.status import Status
from bot.services.turn import Turn

Handler = Callable[[Turn, str], Awaitable[None]]


class RegistrationSide(Protocol):
    """The parts of the registration conversation the table routes to."""

    registration: Registration

    async def _cmd_start(self, turn: Turn, args: str) -> None: ...
    async def _cmd_register(
        self, turn: Turn, args: str = "", village_hint: str = "", assisted: bool = False
    ) -> None: ...
    async def _cmd_info(self, turn: Turn, args: str) -> None: ...
    async def _cmd_language(self, turn: Turn, args: str) -> None: ...
    async def _cmd_cancel(self, turn: Turn, args: str) -> None: ...
    async def _cmd_help(self, turn: Turn, args: str) -> None: ...
    async def _menu_button(self, turn: Turn, action: str) -> None: ...
    async def _set_language(self, turn: Turn, language: str) -> None: ...


@dataclass(frozen=True)
class Features:
    """Every feature the table routes to, built once."""

    registration: RegistrationSide
    calculator: Calculator
    status: Status
    following: Following
    invitations: Invitations
    composing: Composing
    leader_tools: LeaderTools
    assisted: Assisted
    review: Review
    reports: StaffReports
    exports: Exports
    rights: Rights


@dataclass(frozen=True)
class Command:
    """One command: its Indonesian name (also its text id) and English alias, and its rules."""

    name: str
    english: str
    # None: everyone; otherwise the policy action it needs.
    access: Action | None
    handler: Callable[[Features], Handler]
    # In the Telegram command menu.
    menu: bool = True
    # Listed in menus and /bantuan only for those the policy allows this (default: access).
    listed_for: Action | None = None
    # Listed in /bantuan.
    helped: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the command answers to."""
        return (self.name, self.english)

    @property
    def help(self) -> str:
        """Message id of the one-line description (menu and /bantuan)."""
        return f"command.{self.name}"

    def name_in(self, language: str) -> str:
        """The name people of `language` are shown."""
        return self.english if language == "en" else self.name

    def listed(self, held: Iterable[Grant], policy: Policy = POLICY) -> bool:
        """Whether a person with these grants is shown this command."""
        gate = self.listed_for or self.access
        return gate is None or policy.permits(held, gate)


@dataclass(frozen=True)
class ButtonRoute:
    """One kind of button: its payload type, who may press it, and its handler."""

    payload: type[Payload]
    access: Action | None
    handler: Callable[[Features], Callable[[Turn, Any], Awaitable[None]]]


@dataclass(frozen=True)
class TypedStep:
    """Typed text while a person is in a dialogue (`User.mode`)."""

    mode: UserMode
    access: Action | None
    handler: Callable[[Features], Handler]


def _reg(f: Features) -> RegistrationSide:
    return f.registration


def _menu(f: Features) -> Callable[[Turn, MenuAction], Awaitable[None]]:
    async def press(turn: Turn, pick: MenuAction) -> None:
        await f.registration._menu_button(turn, pick.action)

    return press


def _language(f: Features) -> Callable[[Turn, LanguagePick], Awaitable[None]]:
    async def press(turn: Turn, pick: LanguagePick) -> None:
        if pick.language in LANGUAGES:
            await f.registration._set_language(turn, pick.language)
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")

    return press


COMMANDS: tuple[Command, ...] = (
    Command("start", "start", None, lambda f: _reg(f)._cmd_start, menu=False, helped=False),
    Command("daftar", "register", None, lambda f: _reg(f)._cmd_register),
    Command("status", "status", None, lambda f: f.status.cmd_status),
    Command("iuran", "contribution", None, lambda f: f.calculator.cmd_calculator),
    Command("info", "info", None, lambda f: _reg(f)._cmd_info),
    Command("ikuti", "follow", None, lambda f: f.following.cmd_follow),
    Command("berhenti", "stop", None, lambda f: f.following.cmd_opt_out),
    Command("mulai", "resume", None, lambda f: f.following.cmd_opt_in, menu=False),
    Command("klaim", "claim", None, lambda f: f.assisted.cmd_claim, menu=False),
    Command("bahasa", "language", None, lambda f: _reg(f)._cmd_language),
    Command("bantuan", "help", None, lambda f: _reg(f)._cmd_help),
    Command("batal", "cancel", None, lambda f: _reg(f)._cmd_cancel),
    Command("dataku", "mydata", None, lambda f: f.rights.cmd_my_data),
    Command("hapus", "erase", None, lambda f: f.rights.cmd_erase),
    Command("siaran", "broadcast", Action.BROADCAST, lambda f: f.composing.cmd_compose),
    Command("statistik", "statistics", Action.STATISTICS, lambda f: f.leader_tools.cmd_statistics),
    Command("tautan", "link", Action.LINK, lambda f: f.leader_tools.cmd_link),
    Command("daftarkan", "assist", Action.ASSIST, lambda f: f.assisted.cmd_assist),
    Command("ekspor", "export", Action.EXPORT, lambda f: f.exports.cmd_export),
    Command(
        "peran",
        "roles",
        None,
        lambda f: f.invitations.cmd_roles,
        listed_for=Action.VIEW_ROLES,
    ),
    Command("undang", "invite", Action.INVITE, lambda f: f.invitations.cmd_invite),
    Command("cabut", "revoke", Action.REVOKE, lambda f: f.invitations.cmd_revoke),
    Command("tinjau", "review", Action.REVIEW, lambda f: f.review.cmd_review),
    Command("laporan", "report", Action.REPORT, lambda f: f.reports.cmd_report),
)

BUTTONS: tuple[ButtonRoute, ...] = (
    ButtonRoute(MenuAction, None, _menu),
    ButtonRoute(LanguagePick, None, _language),
    ButtonRoute(CalculatorAmount, None, lambda f: f.calculator.amount_button),
    ButtonRoute(FollowPick, None, lambda f: f.following.follow_button),
    ButtonRoute(InviteRole, Action.INVITE, lambda f: f.invitations.role_button),
    ButtonRoute(InvitePlace, Action.INVITE, lambda f: f.invitations.place_button),
    ButtonRoute(RevokePick, Action.REVOKE, lambda f: f.invitations.revoke_button),
    ButtonRoute(ComposeScope, Action.BROADCAST, lambda f: f.composing.scope_button),
    ButtonRoute(ComposeChoice, Action.BROADCAST, lambda f: f.composing.choice_button),
    ButtonRoute(BroadcastControl, Action.BROADCAST_CONTROL, lambda f: f.composing.control_button),
    ButtonRoute(StatisticsChart, Action.STATISTICS, lambda f: f.leader_tools.chart_button),
    ButtonRoute(ReviewAction, Action.REVIEW, lambda f: f.review.action_button),
    ButtonRoute(ReviewReason, Action.REVIEW, lambda f: f.review.reason_button),
    ButtonRoute(ReviewCover, Action.REVIEW, lambda f: f.review.cover_button),
    ButtonRoute(ReviewRequest, Action.REVIEW, lambda f: f.review.request_button),
    ButtonRoute(Withdraw, None, lambda f: f.status.withdraw_button),
    ButtonRoute(Erase, None, lambda f: f.rights.erase_button),
    ButtonRoute(Correct, None, lambda f: f.rights.correct_button),
    ButtonRoute(PeriodChange, None, lambda f: f.status.period_button),
    ButtonRoute(ExportChoice, Action.EXPORT, lambda f: f.exports.button),
)

TYPED: tuple[TypedStep, ...] = (
    TypedStep(UserMode.IURAN, None, lambda f: f.calculator.typed),
    TypedStep(UserMode.INVITE, Action.INVITE, lambda f: f.invitations.place_text),
    TypedStep(UserMode.COMPOSE, Action.BROADCAST, lambda f: f.composing.typed),
    TypedStep(UserMode.REVIEW, Action.REVIEW, lambda f: f.review.typed),
    TypedStep(UserMode.CORRECTION, None, lambda f: f.rights.correction_typed),
)

_BY_NAME = {name: command for command in COMMANDS for name in command.names}
_BY_PAYLOAD = {route.payload: route for route in BUTTONS}
_BY_MODE = {step.mode: step for step in TYPED}


def command_named(name: str) -> Command | None:
    """The command a typed /name means, in either language."""
    return _BY_NAME.get(name.lower())


def menu_for(
    held: Iterable[Grant], language: str, policy: Policy = POLICY
) -> tuple[tuple[str, str], ...]:
    """The command menu of a person: (name in their language, description id), in order."""
    held = list(held)
    return tuple(
        (c.name_in(language), c.help) for c in COMMANDS if c.menu and c.listed(held, policy)
    )


class Router:
    """Dispatches an input through the table; says whether it was handled."""

    def __init__(self, registration: RegistrationSide) -> None:
        start = registration._cmd_register
        self.features = Features(
            registration=registration,
            calculator=Calculator(),
            status=Status(registration.registration),
            following=Following(start),
            invitations=Invitations(),
            composing=Composing(),
            leader_tools=LeaderTools(),
            assisted=Assisted(start),
            review=Review(),
            reports=StaffReports(),
            exports=Exports(),
            rights=Rights(registration.registration),
        )

    async def handle(self, turn: Turn, incoming: Incoming) -> bool:
        """Handle a command, a routed button or a typed dialogue step; False for the rest."""
        if incoming.kind is InputKind.COMMAND:
            return await self._command(turn, incoming.text, incoming.args)
        if incoming.kind is InputKind.BUTTON:
            return await self._button(turn, decode(incoming.text))
        if incoming.kind is InputKind.MEDIA and turn.user.mode == UserMode.COMPOSE:
            return await self.features.composing.photo(turn, incoming)
        if incoming.kind is InputKind.TEXT:
            if is_stop_word(incoming.text):
                await self.features.following.cmd_opt_out(turn, "")
                return True
            step = _BY_MODE.get(UserMode(turn.user.mode)) if turn.user.mode in _MODES else None
            if step is not None:
                if step.access is None or await allowed(turn, step.access):
                    await step.handler(self.features)(turn, incoming.text)
                return True
        return False

    async def _command(self, turn: Turn, name: str, args: str) -> bool:
        command = command_named(name)
        if command is None:
            return False
        if command.name == "start" and args:
            for link in (self.features.invitations.start_link, self.features.following.start_link):
                if await link(turn, args):
                    return True
        # A command leaves whatever dialogue the person was in.
        set_mode(turn, None)
        if command.access is None or await allowed(turn, command.access):
            await command.handler(self.features)(turn, args)
        return True

    async def _button(self, turn: Turn, payload: Payload) -> bool:
        if isinstance(payload, Stale) and payload.tag in _OWN_TAGS:
            # An old button of a leader feature: nothing to resume, just say so.
            turn.outcome.stale_button = True
            turn.text("button.stale")
        elif (route := _BY_PAYLOAD.get(type(payload))) is not None:
            if route.access is None or await allowed(turn, route.access):
                await route.handler(self.features)(turn, payload)
        else:
            return False
        return True

    def listed(self, held: Iterable[Grant]) -> list[Command]:
        """The commands a person with these grants may use and is told about."""
        held = list(held)
        return [c for c in COMMANDS if c.helped and c.listed(held)]

    async def help_text(self, turn: Turn) -> str:
        """/bantuan: every command the person may use, then how to reach a human."""
        t = turn.t
        lines = [t("help.header")]
        for command in self.listed(await grants(turn)):
            lines.append(f"/{command.name_in(t.language)} – {t(command.help)}")
        settings = turn.services.settings
        lines += [
            "",
            t("help.form_hint"),
            "",
            t("help.contact", address=settings.branch_address, call_centre=settings.call_centre),
        ]
        return "\n".join(lines)


_MODES = frozenset(m.value for m in UserMode)
_OWN_TAGS = frozenset({"sc", *(r.payload.TAG for r in BUTTONS)})
