"""One input being handled (`Turn`) and the long-lived parts every feature needs (`Services`).

Every feature module works on a `Turn`: the session of the update's one transaction, the
person, their draft application, and the replies queued so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.errors import InvalidInput
from bot.core.form import FormContext, FormState
from bot.core.messages import Outcome, Reply
from bot.db.models import Application, User
from bot.i18n import Translator, translator
from bot.security import Cipher
from bot.services.areas import AreaDirectory


@dataclass
class Services:
    """What the conversation needs, built once at start-up."""

    settings: Settings
    cipher: Cipher
    areas: AreaDirectory
    today: Callable[[], date]
    # The bot's username for t.me links; the channel fills it in at start-up.
    bot_username: str = "BebasCemasBot"


class Turn:
    """One input being handled: the session, the person, their draft and the replies."""

    def __init__(self, session: AsyncSession, user: User, services: Services) -> None:
        self.session = session
        self.user = user
        self.services = services
        self.t: Translator = translator(user.language or services.settings.default_language)
        self.outcome = Outcome()
        self.draft: Application | None = None
        self.answers: dict[str, Any] = {}
        self.state = FormState()

    def say(self, reply: Reply) -> None:
        """Queue a reply."""
        self.outcome.replies.append(reply)

    def text(self, key: str, **params: Any) -> None:
        """Queue a plain text reply."""
        self.say(Reply(self.t(key, **params)))

    def error(self, exc: InvalidInput) -> None:
        """Queue the one-sentence explanation of a bad answer."""
        self.text(exc.key, **exc.params)

    def answers_of(self, app: Application) -> tuple[dict[str, Any], FormContext]:
        """A sent application's answers, and the context to show them whole (the person's
        own screen, or staff checking them against the KTP)."""
        s = self.services
        answers: dict[str, Any] = s.cipher.decrypt(app.answers_enc) if app.answers_enc else {}
        ctx = FormContext(
            answers=answers,
            t=self.t,
            areas=s.areas,
            rates=s.settings.rates,
            today=s.today(),
            own_screen=True,
        )
        return answers, ctx
