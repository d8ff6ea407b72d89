"""Assisted registration: a leader fills the form for a resident (/daftarkan), who claims it."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.policy import POLICY, Action, ScopeKind
from bot.db.models import Application
from bot.services import audit
from bot.services.common import StartRegistration, follow_application, grants
from bot.services.guesses import CLAIM_REFUSED, claim_tries_left
from bot.services.turn import Turn


class Assisted:
    """/daftarkan and /klaim."""

    def __init__(self, start_registration: StartRegistration) -> None:
        self.start_registration = start_registration

    async def cmd_assist(self, turn: Turn, _args: str) -> None:
        """A leader fills the form for a resident who has no phone of their own."""
        if turn.draft is not None:
            turn.text("assist.busy")
            return
        places = POLICY.scopes_for(await grants(turn), Action.ASSIST)
        village = next((s.code for s in places if s.kind is ScopeKind.VILLAGE), None)
        turn.text("assist.start")
        await self.start_registration(turn, "", village_hint=village or "", assisted=True)

    async def cmd_claim(self, turn: Turn, args: str) -> None:
        """A resident's own account takes over the application a leader registered for them."""
        code = "".join(args.split()).upper()
        if not code:
            turn.text("claim.usage")
            return
        cipher = turn.services.cipher
        limit = turn.services.settings.claim_tries_per_day
        if not await claim_tries_left(turn.session, turn.user, limit):
            turn.text("claim.limit")
            return
        application = await turn.session.scalar(
            select(Application).where(
                Application.claim_code_hash.in_(cipher.keyed_hashes(code)),
                Application.status != "draft",
            )
        )
        if application is None:
            await audit.record(turn.session, CLAIM_REFUSED, actor=turn.user)
            turn.text("claim.unknown")
            return
        application.user_id = turn.user.id
        application.claim_code_hash = None
        application.flow_state = "{}"
        await follow_application(turn.session, turn.user, application)
        await audit.record(
            turn.session, "claim", actor=turn.user, target=f"application:{application.id}"
        )
        turn.text("claim.done", reference=application.reference or "-")
