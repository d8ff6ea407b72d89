"""The flood gate: a burst is admitted, the next update warned once, the rest dropped a while."""

from __future__ import annotations

import pytest

from bot.core.flood import FloodGate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_one_warning_then_silence() -> None:
    clock = Clock()
    gate = FloodGate(burst=5, per_minute=6, pause_seconds=30, clock=clock)
    verdicts = [gate.check(7) for _ in range(9)]
    assert verdicts == ["admit"] * 5 + ["warn"] + ["drop"] * 3


def test_the_pause_ends_and_the_bucket_has_refilled_meanwhile() -> None:
    clock = Clock()
    gate = FloodGate(burst=5, per_minute=6, pause_seconds=30, clock=clock)
    for _ in range(6):
        gate.check(7)
    clock.now += 29.9
    assert gate.check(7) == "drop"
    clock.now += 0.2
    # 30 s at 6 a minute is 3 tokens.
    assert [gate.check(7) for _ in range(4)] == ["admit"] * 3 + ["warn"]


def test_a_normal_pace_is_never_slowed() -> None:
    clock = Clock()
    gate = FloodGate(burst=5, per_minute=30, pause_seconds=60, clock=clock)
    for _ in range(500):
        assert gate.check(7) == "admit"
        clock.now += 2.0


def test_one_chat_does_not_spend_another_chats_budget() -> None:
    clock = Clock()
    gate = FloodGate(burst=3, per_minute=1, pause_seconds=60, clock=clock)
    for _ in range(10):
        gate.check(1)
    assert [gate.check(2) for _ in range(3)] == ["admit"] * 3
    assert gate.check(1) == "drop"


def test_memory_is_bounded_and_idle_chats_are_forgotten_first() -> None:
    clock = Clock()
    gate = FloodGate(burst=2, per_minute=60, pause_seconds=60, clock=clock, max_chats=100)
    for _ in range(3):
        gate.check(-1)  # silenced for a minute
    for chat_id in range(1, 100):
        gate.check(chat_id)
    assert len(gate) == 100
    clock.now += 5.0  # every bucket but the silenced one is full again: as good as new
    gate.check(500)
    assert len(gate) == 2
    # Forgetting the silenced chat would have lifted its pause.
    assert gate.check(-1) == "drop"
    for chat_id in range(1000, 1500):
        gate.check(chat_id)  # all busy at once: the oldest half goes, the bound holds
        assert len(gate) <= 100


@pytest.mark.parametrize("kwargs", [{"burst": 0}, {"per_minute": 0}, {"pause_seconds": -1}])
def test_nonsense_limits_are_refused(kwargs: dict[str, float]) -> None:
    values: dict[str, float] = {"burst": 5, "per_minute": 30, "pause_seconds": 60} | kwargs
    with pytest.raises(ValueError):
        FloodGate(
            burst=int(values["burst"]),
            per_minute=values["per_minute"],
            pause_seconds=values["pause_seconds"],
        )
