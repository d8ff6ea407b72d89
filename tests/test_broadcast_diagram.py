"""docs/broadcast.mmd draws exactly the broadcast lifecycle the code allows."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core.states import BROADCAST_TRANSITIONS, BroadcastState

DIAGRAM = Path(__file__).resolve().parent.parent / "docs" / "broadcast.mmd"
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")


def edges() -> set[tuple[str, str]]:
    """The arrows of the Mermaid state diagram."""
    lines = DIAGRAM.read_text(encoding="utf-8").splitlines()
    assert lines[0].strip() == "stateDiagram-v2"
    found = set()
    for line in lines[1:]:
        if not line.strip() or line.strip().startswith("%%"):
            continue
        match = ARROW.match(line)
        assert match, f"not an arrow: {line!r}"
        found.add((match[1], match[2]))
    return found


def test_the_diagram_has_exactly_the_states_of_the_enum() -> None:
    drawn = {name for edge in edges() for name in edge} - {"[*]"}
    assert drawn == {state.value for state in BroadcastState}


def test_the_diagram_has_exactly_the_transitions_of_the_code() -> None:
    drawn = {(a, b) for a, b in edges() if "[*]" not in (a, b)}
    allowed = {(a.value, b.value) for a, targets in BROADCAST_TRANSITIONS.items() for b in targets}
    assert drawn == allowed
    starts = {b for a, b in edges() if a == "[*]"}
    ends = {a for a, b in edges() if b == "[*]"}
    assert starts == {BroadcastState.COMPOSING.value}
    assert ends == {s.value for s, targets in BROADCAST_TRANSITIONS.items() if not targets}
