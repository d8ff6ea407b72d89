"""The buttons of a broadcast's progress message follow its state machine, nothing else.

For every state a person can find a broadcast in and every button of the progress message:
a change the state machine allows happens, is said and audited; any other press is refused
with one sentence naming the state, changes nothing and writes no audit row.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from bot.core.callbacks import BroadcastControl, encode
from bot.core.states import CONTROL_TARGETS, BroadcastState, control_sources
from bot.db.models import AuditEntry, Broadcast
from bot.services.roles import RoleName
from tests.conftest import RunningBot
from tests.e2e.chat import texts
from tests.e2e.test_leader_corrections import _schedule
from tests.e2e.test_leaders import DAJAN_PEKEN, follower, leader

# The states a progress message can show (a composition has none yet).
SHOWN = (
    BroadcastState.SCHEDULED,
    BroadcastState.PAUSED,
    BroadcastState.CANCELLED,
    BroadcastState.DONE,
)
SAID = {
    "pause": "broadcast.paused",
    "resume": "broadcast.resumed",
    "cancel_yes": "broadcast.cancelled",
}


async def _audit_rows(bot: RunningBot) -> int:
    async with bot.runtime.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.like("broadcast_%"))
        )
    return int(count or 0)


async def _state(bot: RunningBot) -> str:
    async with bot.runtime.sessions() as session:
        return str(await session.scalar(select(Broadcast.state)))


async def _set_state(bot: RunningBot, state: BroadcastState) -> None:
    async with bot.runtime.sessions() as session, session.begin():
        await session.execute(update(Broadcast).values(state=state.value))


@pytest.mark.parametrize("state", SHOWN)
async def test_progress_buttons_follow_the_state_machine(
    bot: RunningBot, state: BroadcastState
) -> None:
    perbekel = await leader(bot, 9801, RoleName.PERBEKEL, DAJAN_PEKEN)
    await follower(bot, 9802, DAJAN_PEKEN)
    progress = (await _schedule(perbekel, "besok jam 9"))[-1]
    async with bot.runtime.sessions() as session:
        number = int(await session.scalar(select(Broadcast.id)) or 0)
    t = perbekel.t
    for action, target in CONTROL_TARGETS.items():
        await _set_state(bot, state)
        audited = await _audit_rows(bot)
        await perbekel.user.press_data(
            encode(BroadcastControl(action, number)), message_id=progress.message_id
        )
        shown = texts(await perbekel.user.replies())
        asked = action.removesuffix("_yes")
        refusal = t(f"broadcast.refused.{asked}", state=t(f"broadcast.progress.{state}"))
        if state in control_sources(target):
            assert refusal not in shown, (state, action, shown)
            if action == "cancel":
                assert t("broadcast.cancel_confirm") in shown
                assert await _audit_rows(bot) == audited
            else:
                assert t(SAID[action]) in shown, (state, action, shown)
                assert await _audit_rows(bot) == audited + 1
                assert await _state(bot) != state
        else:
            assert refusal in shown, (state, action, shown)
            assert not any(t(said) in shown for said in SAID.values()), (state, action, shown)
            assert await _audit_rows(bot) == audited, (state, action)
            assert await _state(bot) == state
