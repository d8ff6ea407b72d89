"""The conversation with a worker: the menu, the commands, status and the calculator.

Channel-free: it takes an `Incoming` and returns an `Outcome` of `Reply` objects. All state
is in the database (the user row and the draft application), so a restart, or another
process, continues exactly where the person stopped. The registration form itself is the
engine in `bot/services/registration.py`; the resident and leader side is `Community`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import areas as area_data
from bot.core.form import Form
from bot.core.messages import Button, Incoming, InputKind, Outcome, Reply
from bot.core.money import format_rupiah
from bot.core.questions import REGISTRATION, minimum_monthly
from bot.db.models import Application, User
from bot.i18n import translator
from bot.services.registration import Registration, active_application
from bot.services.routing import Router
from bot.services.turn import Services, Turn

# A first message people send before anything else: answered with the welcome.
GREETINGS = frozenset(
    {
        "halo",
        "hallo",
        "hai",
        "hi",
        "hello",
        "p",
        "permisi",
        "selamat pagi",
        "selamat siang",
        "selamat sore",
        "selamat malam",
        "pagi",
        "siang",
        "sore",
        "malam",
        "om swastiastu",
        "assalamualaikum",
        "salam",
        "good morning",
    }
)


class Conversation:
    """Handles every input of a person, whatever the channel."""

    def __init__(self, services: Services, form: Form = REGISTRATION) -> None:
        self.s = services
        self.registration = Registration(services, form, self._after_submit, self._menu)
        # Commands, buttons and typed steps are declared once, in the routing table.
        self.router = Router(self)
        # Submitting follows the domicile's village through the residents' feature.
        self.following = self.router.features.following

    # ------------------------------------------------------------------ entry point

    async def handle(self, session: AsyncSession, user: User, incoming: Incoming) -> Outcome:
        """Answer one input; the caller commits the session afterwards."""
        turn = Turn(session, user, self.s)
        # Writing to the bot again means they have not (or no longer) blocked it.
        user.blocked_at = None
        await self.registration.load(turn)
        if not await self.router.handle(turn, incoming):
            await self._registration_input(turn, incoming)
        self.registration.save(turn)
        return turn.outcome

    async def _registration_input(self, turn: Turn, incoming: Incoming) -> None:
        """What the routing table left: unknown commands, form buttons, the form itself."""
        if incoming.kind is InputKind.COMMAND:
            turn.text("command.unknown")
            await self._repeat_or_menu(turn)
        elif incoming.kind is InputKind.BUTTON:
            await self._button(turn, incoming.text)
        elif self.registration.in_progress(turn):
            await self.registration.typed(turn, incoming)
        elif incoming.kind is InputKind.MEDIA:
            turn.text("media.hint.idle")
            self._menu(turn)
        elif area_data.normalise_name(incoming.text) in GREETINGS:
            await self._cmd_start(turn, "")
        else:
            turn.text("idle.not_understood")
            self._menu(turn)

    async def _after_submit(self, session: AsyncSession, user: User, app: Application) -> None:
        await self.following.follow_application(session, user, app)

    async def _cmd_register(
        self, turn: Turn, _args: str = "", village_hint: str = "", assisted: bool = False
    ) -> None:
        if not assisted and await self._say_if_registered(turn):
            return
        await self.registration.start(turn, village_hint=village_hint, assisted=assisted)

    async def _say_if_registered(self, turn: Turn) -> bool:
        """A worker who already sent an application is told so instead of starting again."""
        if turn.draft is not None:
            return False
        application = await active_application(turn)
        if application is None:
            return False
        turn.say(
            Reply(
                turn.t(
                    "registered.already",
                    reference=application.reference or "-",
                    status=turn.t(f"status.{application.status}"),
                ),
                buttons=((Button(turn.t("menu.calculator"), "menu:iuran"),),),
            )
        )
        return True

    # ------------------------------------------------------------------ commands and menu

    def _menu(self, turn: Turn) -> None:
        t = turn.t
        register = "menu.continue" if turn.draft is not None else "menu.register"
        turn.say(
            Reply(
                t("menu.prompt"),
                buttons=(
                    (Button(t(register), "menu:register"),),
                    (
                        Button(t("menu.info"), "menu:info"),
                        Button(t("menu.calculator"), "menu:iuran"),
                    ),
                    (Button(t("menu.language"), "menu:language"),),
                ),
            )
        )

    async def _cmd_start(self, turn: Turn, _args: str) -> None:
        turn.user.mode = None
        turn.text("start.greeting", minimum=format_rupiah(self._minimum_monthly()))
        if await self._say_if_registered(turn):
            return
        if self.registration.in_progress(turn):
            turn.text("start.draft_waiting")
        self._menu(turn)

    async def _cmd_language(self, turn: Turn, _args: str) -> None:
        turn.say(
            Reply(
                turn.t("language.prompt"),
                buttons=((Button("Bahasa Indonesia", "lang:id"), Button("English", "lang:en")),),
            )
        )

    async def _cmd_cancel(self, turn: Turn, _args: str) -> None:
        turn.user.mode = None
        if turn.draft is None:
            turn.text("cancel.nothing")
            self._menu(turn)
            return
        self.registration.ask_cancel(turn)

    async def _cmd_help(self, turn: Turn, _args: str) -> None:
        key = self.registration.help_key(turn)
        if key is not None:
            turn.text(key)
            await self.registration.show(turn)
        else:
            turn.say(Reply(await self.router.help_text(turn)))

    async def _cmd_info(self, turn: Turn, _args: str) -> None:
        t = turn.t
        turn.say(
            Reply(
                t("info.text", minimum=format_rupiah(self._minimum_monthly())),
                buttons=(
                    (
                        Button(t("menu.register"), "menu:register"),
                        Button(t("menu.calculator"), "menu:iuran"),
                    ),
                ),
            )
        )

    async def _repeat_or_menu(self, turn: Turn) -> None:
        if self.registration.in_progress(turn):
            await self.registration.show(turn)
        else:
            self._menu(turn)

    # ------------------------------------------------------------------ buttons

    async def _button(self, turn: Turn, data: str) -> None:
        # Menu, language and calculator buttons are routed by the table (bot.services.routing).
        if turn.draft is None or not await self.registration.button(turn, data):
            await self._stale(turn)

    async def _stale(self, turn: Turn) -> None:
        """An old button, or one whose question has passed: say so and show where we are."""
        turn.outcome.stale_button = True
        turn.text("button.stale")
        await self._repeat_or_menu(turn)

    async def _menu_button(self, turn: Turn, action: str) -> None:
        """A main-menu button (routed here by the table)."""
        if action == "register":
            await self._cmd_register(turn, "")
        elif action == "info":
            await self._cmd_info(turn, "")
        elif action == "iuran":
            await self.router.features.calculator.cmd_calculator(turn)
        elif action == "language":
            await self._cmd_language(turn, "")
        else:
            await self._stale(turn)

    async def _set_language(self, turn: Turn, language: str) -> None:
        turn.user.language = language
        turn.t = translator(language)
        turn.outcome.language_changed = True
        turn.text("language.changed")
        await self._repeat_or_menu(turn)

    def _minimum_monthly(self) -> int:
        return minimum_monthly(self.s.settings.rates)
