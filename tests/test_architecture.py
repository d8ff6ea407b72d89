"""The `bot` package has no import cycles, counting every import: lazy ones inside functions
and `TYPE_CHECKING` ones included, since each still ties the two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

import bot

PACKAGE = Path(bot.__file__).parent


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The modules of the package that the module at `path` imports, wherever the import is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # `from bot.services import audit` imports the module bot.services.audit.
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    """Each module of the `bot` package with the package modules it imports."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    modules = set(paths)
    return {name: imports_of(path, name, modules) for name, path in paths.items()}


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    """Each group of modules that import each other (Tarjan's SCCs), as one of its cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [describe(cycle_within(graph, group), group) for group in groups]


def describe(cycle: list[str], group: set[str]) -> str:
    """The cycle as arrows, and the other modules caught in the same knot."""
    others = sorted(group - set(cycle))
    return " -> ".join(cycle) + (f"  (also tied in: {', '.join(others)})" if others else "")


def cycle_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a cycle")


def test_the_cycle_finder_finds_and_prints_a_cycle() -> None:
    """A made-up graph with a -> b -> c -> a and a harmless tail is reported as that cycle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}

    assert cycles_in(graph) == ["a -> b -> c -> a"]
    assert cycles_in({**graph, "e": {"b"}, "c": {"a", "e"}}) == [
        "a -> b -> c -> a  (also tied in: e)"
    ]


def test_imports_are_read_everywhere_in_a_module(tmp_path: Path) -> None:
    """Function-level, TYPE_CHECKING and relative imports all count; other packages do not."""
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import bot.config\n"
        "from bot.services import audit\n"
        "from . import runtime\n"
        "if TYPE_CHECKING:\n"
        "    from bot.runtime import Runtime\n"
        "def later() -> None:\n"
        "    from bot.services.roles import grants_of\n",
        encoding="utf-8",
    )
    modules = {"bot", "bot.config", "bot.runtime", "bot.services", "bot.services.audit"}
    modules |= {"bot.services.roles", "bot.chat"}

    found = imports_of(source, "bot.chat", modules)

    assert found == {"bot.config", "bot.services.audit", "bot.runtime", "bot.services.roles"}


def test_the_bot_package_has_no_import_cycle() -> None:
    """Every module can be understood (and replaced) without the ones that import it."""
    graph = import_graph()
    assert "bot.channels.telegram" in graph, "the graph covers the package"

    cycles = cycles_in(graph)

    assert not cycles, "import cycles:\n" + "\n".join(cycles)


FEATURES = ("following", "invitations", "composing", "leader_tools", "assisted")
ROLE_NAMES = {"admin", "staff", "perbekel", "lurah", "bendesa_adat"}


def _from_imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every `from bot... import names` of a module, lazy ones included."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot"):
            found.append((node.module, [a.name for a in node.names]))
    return found


def test_features_use_only_each_others_public_names() -> None:
    for feature in FEATURES:
        for module, names in _from_imports(PACKAGE / "services" / f"{feature}.py"):
            if module.removeprefix("bot.services.") in FEATURES:
                assert not [n for n in names if n.startswith("_")], (feature, module, names)
            assert module not in ("bot.services.conversation", "bot.services.routing"), feature


def test_role_names_are_written_only_in_the_policy() -> None:
    places = [*(PACKAGE / "services").glob("*.py"), *(PACKAGE / "channels").glob("*.py")]
    places += [PACKAGE / "cli.py", PACKAGE / "admin_cli.py"]
    for path in places:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in ROLE_NAMES:
                raise AssertionError(f"{path.name}:{node.lineno} names role {node.value!r}")
