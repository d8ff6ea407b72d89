"""Residents following a village's news, opting out and back in, and village QR links."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import areas as area_data
from bot.core.callbacks import FollowPick, encode
from bot.core.messages import Button, Reply, button_rows
from bot.core.numbers import row_id
from bot.db.models import Application, DesaAdat, Follow, User, utcnow
from bot.services import audit
from bot.services.common import StartRegistration, follow, follow_application, village_label
from bot.services.registration import active_application
from bot.services.turn import Turn

STOP_WORDS = frozenset({"berhenti", "stop", "berhenti langganan", "unsubscribe"})
VILLAGE_LINK_PREFIX = "desa_"
ADAT_LINK_PREFIX = "adat_"


def is_stop_word(text: str) -> bool:
    """Whether a message is only a request to stop the news ("STOP", "berhenti")."""
    return area_data.normalise_name(text) in STOP_WORDS


class Following:
    """/ikuti, /berhenti, /mulai and the village links printed on posters."""

    def __init__(self, start_registration: StartRegistration) -> None:
        # The registration conversation's entry, for village links that start it.
        self.start_registration = start_registration

    async def follow_application(
        self, session: AsyncSession, user: User, application: Application
    ) -> None:
        """A registered worker follows the desa of their domicile and their desa adat."""
        await follow_application(session, user, application)

    async def cmd_follow(self, turn: Turn, _args: str) -> None:
        """Offer the regencies, then districts, then villages to follow."""
        buttons = [
            Button(r.name, encode(FollowPick("r", r.code))) for r in turn.services.areas.regencies
        ]
        turn.say(Reply(turn.t("follow.regency"), buttons=button_rows(buttons, 2)))

    async def follow_button(self, turn: Turn, pick: FollowPick) -> None:
        """One step down the area list, or follow the village picked."""
        areas = turn.services.areas
        code = pick.code
        if pick.level == "r" and code in areas.regency_by_code:
            buttons = [
                Button(d.name, encode(FollowPick("d", d.code)))
                for d in areas.districts.get(code, [])
            ]
            turn.say(Reply(turn.t("follow.district"), buttons=button_rows(buttons, 2)))
        elif pick.level == "d" and code in areas.district_by_code:
            villages = areas.villages.get(code, [])
            buttons = [Button(v.name, encode(FollowPick("v", v.code))) for v in villages]
            turn.say(Reply(turn.t("follow.village"), buttons=button_rows(buttons, 2)))
        elif pick.level == "v" and code in areas.village_by_code:
            added = await follow(turn.session, turn.user, village_code=code)
            key = "follow.done" if added else "follow.already"
            if not added:
                registered = await active_application(turn)
                if registered is not None and registered.village_code == code:
                    # Registering made her follow it; say so, and how to stop.
                    key = "follow.since_registered"
            turn.text(key, village=village_label(turn, code))
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")

    async def cmd_opt_out(self, turn: Turn, _args: str) -> None:
        """Stop all news (the person's follows stay, for /mulai)."""
        turn.user.opted_out_at = utcnow()
        turn.text("optout.done")
        await audit.record(turn.session, "optout", actor=turn.user)

    async def cmd_opt_in(self, turn: Turn, _args: str) -> None:
        """Receive news again."""
        turn.user.opted_out_at = None
        follows = await turn.session.scalar(
            select(func.count()).select_from(Follow).where(Follow.user_id == turn.user.id)
        )
        turn.text("optin.done" if follows else "optin.done_no_village")
        await audit.record(turn.session, "optin", actor=turn.user)

    async def start_link(self, turn: Turn, payload: str) -> bool:
        """A village or desa adat QR link: follow it and start registration; False if not one."""
        if payload.startswith(VILLAGE_LINK_PREFIX):
            code = payload.removeprefix(VILLAGE_LINK_PREFIX).replace("_", ".")
            if code not in turn.services.areas.village_by_code:
                turn.text("link.unknown_village")
                return False
            await follow(turn.session, turn.user, village_code=code)
            turn.text("link.welcome", village=village_label(turn, code))
            await self.start_registration(turn, "", village_hint=code)
            return True
        if payload.startswith(ADAT_LINK_PREFIX):
            number = row_id(payload.removeprefix(ADAT_LINK_PREFIX))
            adat = await turn.session.get(DesaAdat, number) if number is not None else None
            if adat is None:
                turn.text("link.unknown_village")
                return False
            await follow(turn.session, turn.user, desa_adat_id=adat.id)
            turn.text("link.welcome", village=adat.name)
            await self.start_registration(turn, "", village_hint=adat.village_code or "")
            return True
        return False
