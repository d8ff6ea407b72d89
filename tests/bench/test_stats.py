"""The benchmarks' arithmetic: percentiles, ratios and reading a py-spy profile."""

from __future__ import annotations

import math

from bench.stats import module_of, percentile, ratio, read_profile
from bench.workers import Screen
from bot.fakebot import BotMessage


def test_percentiles_interpolate_between_the_nearest_values() -> None:
    """The median of 1..4 is 2.5; p0 and p100 are the extremes; no values give nan."""
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0.5) == 2.5
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 4.0
    assert percentile([7.0], 0.95) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_a_ratio_to_a_missing_or_zero_baseline_is_unknown() -> None:
    """Dividing by a baseline that was not measured says nan, never infinity."""
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(3.0, 0.0))
    assert math.isnan(ratio(math.nan, 2.0))


def test_a_profile_is_summarised_by_innermost_function_and_by_module() -> None:
    """Samples are shared out by the innermost frame and by every module on the stack."""
    site = "/venv/lib/python3.11/site-packages"
    lines = [
        f"run (/repo/bot/cli.py:10);execute ({site}/sqlalchemy/engine/base.py:5) 3",
        f"run (/repo/bot/cli.py:10);send ({site}/httpx/_client.py:7) 1",
        "not a stack line",
    ]
    profile = read_profile(lines)
    assert profile.samples == 4
    assert profile.functions[0].name == "execute (sqlalchemy:5)"
    assert profile.functions[0].share == 0.75
    assert [m.name for m in profile.modules] == ["sqlalchemy", "httpx"]
    assert profile.stacks[0].name == "bot.cli" and profile.stacks[0].share == 1.0


def test_modules_are_named_by_package() -> None:
    """Installed packages by their top-level name, the project's files by their module."""
    assert module_of("/x/site-packages/aiosqlite/core.py") == "aiosqlite"
    assert module_of("/repo/bot/services/outbox.py") == "bot.services.outbox"
    assert module_of("/usr/lib/python3.11/asyncio/events.py") == "stdlib asyncio"


def test_a_screen_is_the_same_for_everyone_and_with_the_answer_split_off() -> None:
    """NIKs and reference numbers do not matter; a pressed answer may head the question."""
    alone = Screen.of(BotMessage(1, 1, text="✅ Setuju\n\nNIK 5102051708850003?"))
    loaded = Screen.of(BotMessage(2, 1, text="NIK 5102051708850104?"))
    assert loaded.shows(alone)
    assert alone.shows(loaded)
    other = Screen.of(BotMessage(3, 1, text="Nama?"))
    assert not other.shows(alone)
