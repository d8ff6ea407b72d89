"""The buttons of a broadcast's progress message move it only along its state machine."""

from __future__ import annotations

import pytest

from bot.core.states import CONTROL_TARGETS, BroadcastState, control_sources, sources_of


@pytest.mark.parametrize("target", sorted(set(CONTROL_TARGETS.values())))
def test_a_button_moves_a_broadcast_only_where_the_state_machine_goes(
    target: BroadcastState,
) -> None:
    assert set(control_sources(target)) <= set(sources_of(target))


@pytest.mark.parametrize("state", list(BroadcastState))
def test_only_a_paused_broadcast_is_resumed_and_a_finished_one_is_left_alone(
    state: BroadcastState,
) -> None:
    allowed = {a for a, target in CONTROL_TARGETS.items() if state in control_sources(target)}
    if state is BroadcastState.PAUSED:
        assert allowed == {"resume", "cancel", "cancel_yes"}
    elif state in (BroadcastState.SCHEDULED, BroadcastState.SENDING):
        assert allowed == {"pause", "cancel", "cancel_yes"}
    elif state in (BroadcastState.CANCELLED, BroadcastState.DONE):
        assert allowed == set()
