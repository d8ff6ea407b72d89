"""Question keys are compared only where they are declared (role names: test_architecture).

A feature module that asks `if key == "village"` is the kind of code that makes adding a
question a hunt through the whole package; the form declaration (`bot/core/questions.py`)
is the only place allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bot
from bot.core.questions import QUESTIONS

PACKAGE = Path(bot.__file__).parent
CHECKED = sorted(
    [
        *(PACKAGE / "services").rglob("*.py"),
        *(PACKAGE / "channels").rglob("*.py"),
        PACKAGE / "cli.py",
        PACKAGE / "admin_cli.py",
    ]
)
DICT_LOOKUPS = frozenset({"get", "pop", "setdefault"})


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for element in node.elts for s in _strings(element)]
    return []


def literal_uses(source: str, words: frozenset[str]) -> list[tuple[int, str]]:
    """Where `words` appear as literals compared with something or used to look an answer up."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        candidates: list[str] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                candidates.extend(_strings(operand))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DICT_LOOKUPS
            and node.args
        ):
            candidates.extend(_strings(node.args[0]))
        elif isinstance(node, ast.Subscript):
            candidates.extend(_strings(node.slice))
        found.extend((getattr(node, "lineno", 0), w) for w in candidates if w in words)
    return found


def offenders(words: frozenset[str]) -> list[str]:
    """Each checked module's literal uses of `words`, as path:line word."""
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line} {word!r}"
        for path in CHECKED
        for line, word in literal_uses(path.read_text(encoding="utf-8"), words)
    ]


def test_no_feature_module_compares_a_question_key() -> None:
    keys = frozenset(q.key for q in QUESTIONS)
    assert not offenders(keys)


def test_the_checker_sees_comparisons_lookups_and_membership() -> None:
    source = (
        "if key == 'nik': pass\n"
        "answers.get('village')\n"
        "answers['phone']\n"
        "if role in ('staff', 'lurah'): pass\n"
        "label = 'nik'\n"
    )
    words = frozenset({"nik", "village", "phone", "staff", "lurah"})
    assert literal_uses(source, words) == [
        (1, "nik"),
        (2, "village"),
        (3, "phone"),
        (4, "staff"),
        (4, "lurah"),
    ]
