"""The gettext catalogs: both languages complete, in step, and holding every key the code uses."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.core.areas import Village
from bot.core.contribution import DEFAULT_RATES, PAYMENT_PERIODS
from bot.core.form import Contact, FormContext
from bot.core.policy import ROLES
from bot.core.questions import OCCUPATIONS, QUESTIONS, RELATIONSHIPS
from bot.core.states import ApplicationStatus
from bot.db.models import ACTIVE_STATUSES
from bot.i18n import LANGUAGES, LOCALES_DIR, Translator
from bot.services.areas import AreaDirectory
from bot.services.broadcasts import AUDIENCES, TEMPLATES
from bot.services.export import COLUMNS
from bot.services.requests import KINDS
from bot.services.rights import SEEN_ACTIONS
from bot.services.routing import COMMANDS

BOT_DIR = Path(__file__).resolve().parent.parent / "bot"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
KEY_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
DOTTED_KEY = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
# Functions whose first argument is a message id: Translator calls, Turn.text, the terminal's
# say/text, the core's InvalidInput, TableError and Confirmation, and gettext's `_`.
KEY_TAKERS = frozenset({"t", "text", "say", "InvalidInput", "TableError", "Confirmation", "_"})
PLACEHOLDER_WORDS = re.compile(r"\b(TODO|FIXME|XXX|TBD|lorem ipsum)\b", re.IGNORECASE)
TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_COMMAND_LIMIT = 256
TELEGRAM_TOAST_LIMIT = 200


def families() -> dict[str, tuple[object, ...]]:
    """What each `t(f"prefix.{value}")` in the code can expand to, from the real constants."""
    kind = vars(Village)["kind"]
    assert isinstance(kind, property) and kind.fget is not None
    village_kinds = get_args(get_type_hints(kind.fget)["return"])
    # /status lists every application except drafts.
    listed_statuses = (*ACTIVE_STATUSES, "rejected", "cancelled")
    roles = tuple(r.name for r in ROLES)
    return {
        "occupation.": OCCUPATIONS,
        "relationship.": RELATIONSHIPS,
        "period.option.": PAYMENT_PERIODS,
        "period.label.": PAYMENT_PERIODS,
        # Village statistics list drafts too.
        "status.": (*listed_statuses, "draft"),
        "village.describe.": village_kinds,
        "village.kind.": village_kinds,
        "command.": tuple(c.name for c in COMMANDS if c.menu or c.helped),
        "role.": roles,
        # Invitations grant every role but admin.
        "invite.accepted.": tuple(r.name for r in ROLES if r.invitable),
        "template.name.": TEMPLATES,
        "template.": TEMPLATES,
        "audience.": AUDIENCES,
        "export.column.": COLUMNS,
        "workflow.name.": tuple(ApplicationStatus),
        "mydata.seen.": SEEN_ACTIONS,
        "review.request.closed.": KINDS,
    }


@dataclass(frozen=True)
class Use:
    """One place where the code asks for a text; `params` is None when they are not known."""

    key: str
    params: frozenset[str] | None
    where: str


@dataclass
class Found:
    """The message ids a piece of code uses, and the f-string families nobody explained."""

    uses: list[Use]
    unknown_families: list[str]

    @property
    def keys(self) -> set[str]:
        """Every message id used."""
        return {use.key for use in self.uses}


def _taker(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Call) and _taker(func.func) == "translator":
        return "t"  # translator(language)("key")
    return None


class _Collector:
    """Walks one module and records the message ids passed to the key-taking functions."""

    def __init__(self, tree: ast.Module, name: str, expansions: Mapping[str, Iterable[object]]):
        self.name = name
        self.expansions = expansions
        self.found = Found([], [])
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.tree = tree

    def run(self) -> Found:
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            taker = _taker(node.func)
            if taker not in KEY_TAKERS:
                continue
            names = {kw.arg for kw in node.keywords}
            params = None if None in names else frozenset(n for n in names if n is not None)
            where = f"{self.name}:{node.lineno}"
            for key in self._keys(node.args[0], taker, node, where):
                self.found.uses.append(Use(key, params, where))
        return self.found

    def _keys(self, arg: ast.expr, taker: str, at: ast.AST, where: str) -> list[str]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            # Other `text(...)` calls (SQL) pass sentences, not ids.
            return [arg.value] if taker == "_" or KEY_SHAPE.match(arg.value) else []
        if isinstance(arg, ast.IfExp):
            return self._keys(arg.body, taker, at, where) + self._keys(arg.orelse, taker, at, where)
        if isinstance(arg, ast.Name):
            return [
                k
                for value in self._assigned(arg.id, at)
                for k in self._keys(value, taker, at, where)
            ]
        if isinstance(arg, ast.JoinedStr):
            return self._expand(arg, where)
        # Attributes such as question.prompt_key or exc.key: checked through QUESTIONS and the
        # InvalidInput calls themselves.
        return []

    def _assigned(self, name: str, at: ast.AST) -> list[ast.expr]:
        """Values assigned to a local name in the function around `at` (none for parameters)."""
        scope: ast.AST | None = at
        while scope is not None and not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            scope = self.parents.get(scope)
        if scope is None:
            return []
        return [
            node.value
            for node in ast.walk(scope)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ]

    def _expand(self, fstring: ast.JoinedStr, where: str) -> list[str]:
        prefix = ""
        for part in fstring.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            prefix += part.value
        if prefix not in self.expansions or len(fstring.values) != 2:
            self.found.unknown_families.append(f"{where}: {ast.unparse(fstring)}")
            return []
        return [f"{prefix}{value}" for value in self.expansions[prefix]]


def collect(
    source: str, name: str, expansions: Mapping[str, Iterable[object]] | None = None
) -> Found:
    """The message ids one module's source uses."""
    tree = ast.parse(source)
    found = _Collector(tree, name, families() if expansions is None else expansions).run()
    # Ids kept in variables or tables before being looked up: any id-shaped literal of a
    # namespace the code already uses for texts.
    found.uses.extend(_dotted_literals(tree, {key.split(".")[0] for key in found.keys}, name))
    return found


def _dotted_literals(tree: ast.Module, namespaces: set[str], name: str) -> list[Use]:
    """Id-shaped string literals of the given namespaces, wherever they stand."""
    return [
        Use(node.value, None, f"{name}:{node.lineno}")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and DOTTED_KEY.match(node.value)
        and node.value.split(".")[0] in namespaces
    ]


def collect_code() -> Found:
    """Every message id used anywhere in the bot package, plus those of the declared form."""
    total = Found([], [])
    for path in sorted(BOT_DIR.rglob("*.py")):
        found = collect(path.read_text(encoding="utf-8"), str(path.relative_to(BOT_DIR.parent)))
        total.uses.extend(found.uses)
        total.unknown_families.extend(found.unknown_families)
    # Ids kept in declarations (the policy's roles, the routing table): any id-shaped literal
    # of a namespace some module uses for texts.
    namespaces = {key.split(".")[0] for key in total.keys}
    for path in (BOT_DIR / "core" / "policy.py", BOT_DIR / "services" / "routing.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        total.uses.extend(_dotted_literals(tree, namespaces, path.name))
    for role in ROLES:
        where = f"bot/core/policy.py ROLES[{role.name}]"
        total.uses.append(Use(role.label, frozenset(), where))
        if role.invitable:
            total.uses.append(Use(role.accepted, frozenset({"place"}), where))
    for command in COMMANDS:
        if command.menu or command.helped:
            where = f"bot/services/routing.py COMMANDS[{command.name}]"
            total.uses.append(Use(command.help, frozenset(), where))
    prompt_params = _prompt_params()
    for question in QUESTIONS:
        where = f"bot/core/questions.py QUESTIONS[{question.key}]"
        total.uses.append(Use(question.prompt_key, prompt_params[question.key], where))
        total.uses.append(Use(question.help_key, frozenset(), where))
        total.uses.append(Use(question.label_key, frozenset(), where))
        if question.contact is Contact.OWN:
            total.uses.append(Use(question.saved_key, frozenset({"value"}), where))
        if question.skippable_when_assisted:
            total.uses.append(Use(question.assisted_hint_key, frozenset(), where))
        if question.indexed is not None and question.indexed.unique:
            own, other = question.duplicate_keys
            total.uses.append(Use(own, frozenset({"reference"}), where))
            total.uses.append(Use(other, frozenset(), where))
    return total


def _prompt_params() -> dict[str, frozenset[str]]:
    """The parameters the engine fills into each question's prompt, from its declaration."""
    # Working out the parameters reads only the answers and the settings, never the database.
    ctx = FormContext(
        answers={},
        t=Translator("id"),
        areas=AreaDirectory(province_codes=frozenset(), regencies=[]),
        rates=DEFAULT_RATES,
        today=date.today(),
    )
    return {q.key: frozenset(q.params(ctx)) for q in QUESTIONS}


def load(language: str) -> Catalog:
    """One language's catalog as Babel reads it."""
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def texts(language: str) -> dict[str, str]:
    """Message id to text, for one language."""
    return {str(m.id): str(m.string) for m in load(language) if m.id}


def placeholders(text: str) -> set[str]:
    """The %(name)s placeholders of a text."""
    return set(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    """Both languages' texts."""
    return {language: texts(language) for language in LANGUAGES}


@pytest.fixture(scope="module")
def code() -> Found:
    """What the code asks for."""
    return collect_code()


def test_both_catalogs_parse_and_hold_the_same_filled_in_keys() -> None:
    plural_forms = {"id": "nplurals=1; plural=0;", "en": "nplurals=2; plural=(n != 1);"}
    keys = {}
    for language in LANGUAGES:
        catalog = load(language)
        assert str(catalog.locale) == language
        assert catalog.plural_forms == plural_forms[language]
        assert not catalog.fuzzy, f"{language}: the header is marked fuzzy"
        messages = [m for m in catalog if m.id]
        fuzzy = [m.id for m in messages if m.fuzzy]
        empty = [m.id for m in messages if not m.string]
        # Fuzzy texts are left out when the catalog is compiled, so the person would see the id.
        assert not fuzzy, f"{language}: fuzzy texts {fuzzy}"
        assert not empty, f"{language}: empty texts {empty}"
        keys[language] = {str(m.id) for m in messages}
    assert keys["id"] == keys["en"], (
        f"only in id: {sorted(keys['id'] - keys['en'])}; "
        f"only in en: {sorted(keys['en'] - keys['id'])}"
    )


def test_every_key_the_code_uses_has_a_text_in_both_languages(
    catalogs: dict[str, dict[str, str]], code: Found
) -> None:
    assert not code.unknown_families, (
        "t(f'...') families this test cannot expand; add them to families(): "
        f"{code.unknown_families}"
    )
    for language, found in catalogs.items():
        missing = sorted({f"{u.key} ({u.where})" for u in code.uses if u.key not in found})
        assert not missing, f"{language}: texts missing for {missing}"


def test_the_key_collection_sees_every_way_the_code_names_a_text(code: Found) -> None:
    # One id for each way of naming a text, so a collector that finds nothing cannot pass.
    expected = {
        "start.greeting",  # turn.text("...")
        "menu.prompt",  # t("...")
        "progress",  # an id without a dot
        "menu.continue",  # t(name) with the name assigned a conditional
        "unit.banjar",  # t(a if ... else b)
        "nik.error.length",  # InvalidInput("...", ...)
        "contribution.error.income_too_low",  # InvalidInput over several lines
        "error.internal",  # translator(language)("...")
        "occupation.pemangku",  # t(f"occupation.{o}")
        "command.batal",  # the routing table's COMMANDS
        "village.describe.kelurahan",
        "status.registered",
        "period.label.12",
        "q.heir_phone.help",  # QUESTIONS
        "terminal.bye",  # the terminal simulator's own texts
    }
    assert expected <= code.keys, sorted(expected - code.keys)


def test_every_text_in_the_catalogs_is_still_used(
    catalogs: dict[str, dict[str, str]], code: Found
) -> None:
    # A text the code no longer shows tends to describe behaviour that is gone.
    unused = sorted(set(catalogs["id"]) - code.keys)
    assert not unused, f"texts no code uses: {unused}"


def test_a_key_missing_from_the_catalogs_is_noticed(catalogs: dict[str, dict[str, str]]) -> None:
    source = (
        "def reply(turn, t, kind):\n"
        "    turn.text('menu.prompt')\n"
        "    label = 'gender.male' if kind else 'gender.nobody'\n"
        "    t(label)\n"
        "    t(f'mystery.{kind}')\n"
        "    raise InvalidInput('nik.error.typo', count=3)\n"
    )
    found = collect(source, "example.py")
    assert found.keys - set(catalogs["id"]) == {"gender.nobody", "nik.error.typo"}
    assert found.unknown_families == ["example.py:5: f'mystery.{kind}'"]


def test_both_languages_use_the_same_placeholders(catalogs: dict[str, dict[str, str]]) -> None:
    differ = {
        key: (sorted(placeholders(text)), sorted(placeholders(catalogs["en"].get(key, ""))))
        for key, text in catalogs["id"].items()
        if placeholders(text) != placeholders(catalogs["en"].get(key, ""))
    }
    assert not differ, differ


def test_texts_use_only_the_params_the_code_gives(
    catalogs: dict[str, dict[str, str]], code: Found
) -> None:
    wrong = []
    for use in code.uses:
        if use.params is None:
            continue
        for language, found in catalogs.items():
            extra = placeholders(found.get(use.key, "")) - use.params
            if extra:
                wrong.append(f"{language} {use.key} at {use.where}: {sorted(extra)}")
    assert not wrong, wrong


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_renders_and_has_no_stray_percent_sign(
    language: str, catalogs: dict[str, dict[str, str]]
) -> None:
    translate = Translator(language)
    for key, text in catalogs[language].items():
        # A text is used as it is without params and with `%` formatting with them, so a bare
        # percent sign would be wrong one way or the other.
        assert "%" not in PLACEHOLDER.sub("", text), f"{key}: write persen/percent, not %"
        params = {name: "Rp16.800" for name in placeholders(text)}
        rendered = translate(key, **params)
        assert rendered.strip(), key
        assert "%(" not in rendered, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_are_finished_and_fit_telegram(
    language: str, catalogs: dict[str, dict[str, str]]
) -> None:
    for key, text in catalogs[language].items():
        assert not PLACEHOLDER_WORDS.search(text), f"{key}: {text!r}"
        assert text != key, f"{key} has no real text"
        assert text == text.strip(), f"{key} starts or ends with white space"
        assert len(text) <= TELEGRAM_MESSAGE_LIMIT, key
        if key.startswith("command."):
            assert len(text) <= TELEGRAM_COMMAND_LIMIT, key
    assert len(catalogs[language]["button.stale"]) <= TELEGRAM_TOAST_LIMIT
