"""The state diagrams in docs/ draw exactly the states and transitions the code allows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.form import STAGE_TRANSITIONS, Stage
from bot.core.states import (
    APPLICATION_TRANSITIONS,
    BROADCAST_TRANSITIONS,
    ApplicationStatus,
    BroadcastState,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")
Edge = tuple[str | None, str | None]


def transitions(diagram: Path) -> set[Edge]:
    """The arrows of a Mermaid state diagram; `[*]` (start or end) becomes None."""
    lines = diagram.read_text(encoding="utf-8").splitlines()
    assert lines[0].strip() == "stateDiagram-v2", diagram.name
    found: set[Edge] = set()
    for line in lines[1:]:
        if not line.strip() or line.strip().startswith("%%"):
            continue
        match = ARROW.match(line)
        assert match, f"{diagram.name}: not an arrow: {line!r}"
        source, target = (None if s == "[*]" else s for s in match.groups())
        found.add((source, target))
    return found


def states(edges: set[Edge]) -> set[str]:
    """Every state an arrow touches."""
    return {s for edge in edges for s in edge if s is not None}


def test_the_registration_diagram_draws_the_stages_and_their_transitions() -> None:
    drawn = transitions(DOCS / "registration.mmd")
    assert states(drawn) == {stage.value for stage in Stage}
    allowed = {(a.value if a else None, b.value if b else None) for a, b in STAGE_TRANSITIONS}
    assert drawn == allowed


def test_the_broadcast_diagram_draws_the_lifecycle() -> None:
    drawn = transitions(DOCS / "broadcast.mmd")
    assert states(drawn) == {state.value for state in BroadcastState}
    inner = {(a, b) for a, b in drawn if a is not None and b is not None}
    allowed = {(a.value, b.value) for a, targets in BROADCAST_TRANSITIONS.items() for b in targets}
    assert inner == allowed
    assert {b for a, b in drawn if a is None} == {BroadcastState.COMPOSING.value}
    ends = {a for a, b in drawn if b is None}
    assert ends == {s.value for s, targets in BROADCAST_TRANSITIONS.items() if not targets}


def test_the_arrow_reader_sees_starts_ends_and_labels(tmp_path: Path) -> None:
    diagram = tmp_path / "x.mmd"
    diagram.write_text(
        "stateDiagram-v2\n    %% a note\n    [*] --> a\n    a --> b: label: with colon\n"
        "    b --> [*]\n",
        encoding="utf-8",
    )
    assert transitions(diagram) == {(None, "a"), ("a", "b"), ("b", None)}
    diagram.write_text("stateDiagram-v2\n    a -> b\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="not an arrow"):
        transitions(diagram)


def test_the_application_status_diagram_draws_the_workflow() -> None:
    drawn = transitions(DOCS / "application-status.mmd")
    sent = {s for s in ApplicationStatus if s is not ApplicationStatus.DRAFT}
    assert states(drawn) == {s.value for s in sent}
    inner = {(a, b) for a, b in drawn if a is not None and b is not None}
    allowed = {
        (a.value, b.value) for a, targets in APPLICATION_TRANSITIONS.items() for b in targets
    }
    assert inner == allowed
    assert {b for a, b in drawn if a is None} == {ApplicationStatus.SUBMITTED.value}
    ends = {a for a, b in drawn if b is None}
    assert ends == {s.value for s, targets in APPLICATION_TRANSITIONS.items() if not targets}
