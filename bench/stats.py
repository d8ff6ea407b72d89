"""Pure arithmetic of the benchmarks: percentiles, ratios, and reading a py-spy profile."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which `share` (0..1) of `values` lie, interpolated linearly; nan if none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(value: float, baseline: float) -> float:
    """`value` / `baseline`, nan when either is unknown or the baseline is zero."""
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return math.nan
    return value / baseline


# A frame of py-spy's raw (collapsed) output: "function (path/to/file.py:123)".
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Share:
    """A function or module and the share of samples it accounts for."""

    name: str
    share: float


@dataclass(frozen=True)
class Profile:
    """Where a process spent its samples.

    `functions` and `modules` count the innermost frame (where the CPU was), `stacks` every
    module anywhere on the stack (what the time was spent for).
    """

    samples: int
    functions: list[Share]
    modules: list[Share]
    stacks: list[Share]


def module_of(path: str) -> str:
    """A short module name for a source path: the package after site-packages, else the file."""
    path = path.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker in ("/bot/", "/bench/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            parts = rest.removesuffix(".py").split("/")
            return marker.strip("/") + "." + ".".join(parts[:2])
    if "/lib/python" in path:
        rest = path.split("/lib/python", 1)[1].split("/", 1)[-1]
        return "stdlib " + rest.split("/", 1)[0].removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def read_profile(lines: Iterable[str], top: int = 20) -> Profile:
    """Summarise py-spy ``--format raw`` output (one ``frame;frame;... count`` per stack)."""
    leaves: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    stacks: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        named = [(m["function"], m["file"], m["line"]) for m in frames if m is not None]
        if not named:
            continue
        function, file, number = named[-1]
        leaves[f"{function} ({module_of(file)}:{number})"] += count
        modules[module_of(file)] += count
        for module in {module_of(file) for _, file, _ in named}:
            stacks[module] += count

    def shares(counter: Counter[str]) -> list[Share]:
        return [Share(name, n / total) for name, n in counter.most_common(top)]

    if total == 0:
        return Profile(0, [], [], [])
    return Profile(total, shares(leaves), shares(modules), shares(stacks))
