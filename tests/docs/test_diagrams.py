"""The state diagrams in docs/ say exactly what the code allows."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core.form import STAGE_TRANSITIONS, Stage

DOCS = Path(__file__).resolve().parents[2] / "docs"
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")


def transitions(diagram: Path) -> set[tuple[str | None, str | None]]:
    """The arrows of a Mermaid state diagram; `[*]` (start or end) becomes None."""
    found: set[tuple[str | None, str | None]] = set()
    for line in diagram.read_text(encoding="utf-8").splitlines():
        match = ARROW.match(line)
        if match:
            source, target = (None if s == "[*]" else s for s in match.groups())
            found.add((source, target))
    return found


def test_the_registration_diagram_draws_the_stages_and_their_transitions() -> None:
    drawn = transitions(DOCS / "registration.mmd")
    states = {s for pair in drawn for s in pair if s is not None}
    assert states == {stage.value for stage in Stage}
    allowed = {(a.value if a else None, b.value if b else None) for a, b in STAGE_TRANSITIONS}
    assert drawn == allowed


def test_the_arrow_reader_sees_starts_ends_and_labels(tmp_path: Path) -> None:
    diagram = tmp_path / "x.mmd"
    diagram.write_text(
        "stateDiagram-v2\n    [*] --> a\n    a --> b: label: with colon\n    b --> [*]\n",
        encoding="utf-8",
    )
    assert transitions(diagram) == {(None, "a"), ("a", "b"), ("b", None)}
