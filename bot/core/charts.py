"""Charts: the branch's coverage report and a village's statistics, drawn with matplotlib.

Agg renders without a display; matplotlib is imported only when a chart is drawn, since it
takes a fifth of a second to load. Text is measured with Pillow in the same DejaVu Sans
(bot.core.images) and shortened to fit before matplotlib places it, so nothing runs off the
picture. No Telegram, no database, no words of our own. Drawing takes a CPU-heavy moment:
callers in the bot run these functions off the event loop.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from bot.core.images import (
    AXIS,
    BLUE,
    ELLIPSIS,
    GOLD,
    GREEN,
    GRID,
    INK,
    MUTED,
    RGB,
    ellipsize,
    font_path,
    group_thousands,
    load_font,
    printable,
    text_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

# Portrait 4:5: fills a phone screen in a chat without zooming.
CHART_SIZE = (1080, 1350)
_CHART_DPI = 100
_BAR_COLOURS: tuple[RGB, ...] = (
    (0, 120, 64),
    (29, 95, 166),
    (217, 119, 6),
    (13, 148, 136),
    (124, 58, 237),
    (190, 24, 93),
    (71, 85, 105),
    (202, 138, 4),
)

# The occupation chart lists this many rows at most; the rest are summed in the last one.
_MAX_OCCUPATION_ROWS = 8
# The report ranks at most this many villages: more bars would not read on a phone.
MAX_RANKED_VILLAGES = 15


@dataclass(frozen=True)
class VillageStats:
    """What the statistics chart shows for one village or desa adat."""

    village_name: str
    followers: int
    by_status: Mapping[str, int]
    by_occupation: Mapping[str, int]
    # Applications sent per week (the Monday it starts), oldest first.
    weekly: Sequence[tuple[date, int]]

    def __post_init__(self) -> None:
        counts = [
            self.followers,
            *self.by_status.values(),
            *self.by_occupation.values(),
            *(count for _, count in self.weekly),
        ]
        if any(count < 0 for count in counts):
            raise ValueError("counts cannot be negative")


@dataclass(frozen=True)
class ChartLabels:
    """Translated texts of the statistics chart; `by_status` keys are shown as they are."""

    title: str
    status_title: str
    occupation_title: str
    trend_title: str
    followers_label: str
    no_data: str
    # Names the row that sums the occupations beyond the first few (e.g. "Lainnya").
    other: str = ELLIPSIS
    # A finished sentence about the place's coverage, shown under its name when known.
    coverage: str = ""
    format_number: Callable[[int], str] = group_thousands


@dataclass(frozen=True)
class RankedBar:
    """One village in the coverage ranking: its bar length and the words at the bar's end."""

    name: str
    value: float
    text: str


@dataclass(frozen=True)
class ReportChart:
    """What the report picture shows, every word already translated."""

    title: str
    subtitle: str
    bars_title: str
    bars: Sequence[RankedBar]
    trend_title: str
    weeks: Sequence[date]
    # (legend label, one count per week), drawn as lines.
    series: Sequence[tuple[str, Sequence[int]]]
    no_data: str
    format_number: Callable[[int], str] = group_thousands


# --- charts ----------------------------------------------------------------------------------
# Sizes are in points; at 100 dpi a point is 100/72 pixels. Text is measured with Pillow in
# the same font, so labels are shortened to fit before matplotlib places them.


def _colour(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _px(points: float) -> int:
    return round(points * _CHART_DPI / 72)


def _fit_line(text: str, points: float, width_px: float, bold: bool = False) -> str:
    """One line of `text` shortened with an ellipsis to `width_px` at `points`."""
    return ellipsize(printable(text), load_font(_px(points), bold), width_px)


def _largest_fitting(text: str, sizes: Sequence[float], width_px: float, bold: bool) -> float:
    """The largest of `sizes` (points) at which `text` fits on one line, else the smallest."""
    for points in sizes:
        if text_width(printable(text), load_font(_px(points), bold)) <= width_px:
            return points
    return sizes[-1]


def _figure() -> Figure:
    from matplotlib.figure import Figure

    width, height = CHART_SIZE
    return Figure(figsize=(width / _CHART_DPI, height / _CHART_DPI), dpi=_CHART_DPI)


@lru_cache(maxsize=32)
def _props(points: float, bold: bool = False) -> FontProperties:
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=str(font_path(bold)), size=points)


def _text(
    figure: Figure,
    x: float,
    y: float,
    text: str,
    points: float,
    *,
    bold: bool = False,
    colour: RGB = INK,
) -> None:
    """Put one line on the figure at (x, y) in figure fractions, top-left anchored."""
    figure.text(
        x,
        y,
        text,
        fontproperties=_props(points, bold),
        color=_colour(colour),
        ha="left",
        va="top",
        parse_math=False,
    )


def _style(axes: Axes, title: str, width_px: float, title_x: float = 0.0) -> None:
    """A panel's title (at `title_x` in axes fractions) and quiet frame."""
    axes.set_title(
        _fit_line(title, 17, width_px, bold=True),
        loc="left",
        fontproperties=_props(17, bold=True),
        color=_colour(INK),
        pad=14,
        x=title_x,
        parse_math=False,
    )
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color(_colour(AXIS))
    axes.tick_params(colors=_colour(MUTED), length=0, labelsize=13)


def _tick_fonts(axes: Axes, points: float = 13) -> None:
    for label in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        label.set_fontproperties(_props(points))


def _no_data(axes: Axes, text: str, width_px: float) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.text(
        0.5,
        0.5,
        _fit_line(text, 16, width_px),
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontproperties=_props(16),
        color=_colour(MUTED),
        parse_math=False,
    )


def _count_axis(axes: Axes, which: Literal["x", "y"], fmt: Callable[[int], str]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis = axes.yaxis if which == "y" else axes.xaxis
    axis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=2))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: printable(fmt(int(value)))))
    axes.grid(axis=which, color=_colour(GRID), linewidth=1)
    axes.set_axisbelow(True)


def _hbars(
    axes: Axes,
    names: Sequence[str],
    values: Sequence[float],
    texts: Sequence[str],
    label_px: float,
    colour: RGB,
) -> None:
    """Horizontal bars, first on top, each with its words at its end."""
    positions = list(range(len(names)))[::-1]
    axes.barh(positions, values, height=0.62, color=_colour(colour))
    axes.set_yticks(positions, [_fit_line(name, 13, label_px) for name in names])
    bars_px = axes.get_position().width * CHART_SIZE[0]
    gap_px = 8
    words = [_fit_line(text, 12, bars_px * 0.45) for text in texts]
    font = load_font(_px(12))
    # The axis is long enough that every bar's words end inside the picture.
    peak = max(values, default=0) or 1
    limit = max(
        peak * 1.05,
        *(
            value * bars_px / (bars_px - gap_px - text_width(text, font) - 4)
            for value, text in zip(values, words, strict=True)
        ),
    )
    axes.set_xlim(0, limit)
    for position, value, text in zip(positions, values, words, strict=True):
        axes.annotate(
            text,
            (value, position),
            xytext=(gap_px * 72 / _CHART_DPI, 0),
            textcoords="offset points",
            va="center",
            fontproperties=_props(12),
            color=_colour(INK),
            parse_math=False,
        )
    axes.set_xticks([])
    axes.spines["bottom"].set_visible(False)


def _lines(
    axes: Axes,
    weeks: Sequence[date],
    series: Sequence[tuple[str, Sequence[int]]],
    fmt: Callable[[int], str],
) -> None:
    """One line per series over the weeks, labelled day/month, the newest always labelled."""
    positions = list(range(len(weeks)))
    colours = (GREEN, BLUE, GOLD)
    for index, (label, values) in enumerate(series):
        colour = _colour(colours[index % len(colours)])
        axes.plot(
            positions, list(values), marker="o", linewidth=2.5, color=colour, label=printable(label)
        )
    step = max(1, -(-len(weeks) // 6))
    shown = positions[::-1][::step][::-1]
    axes.set_xticks(shown, [f"{weeks[i].day}/{weeks[i].month}" for i in shown])
    axes.set_ylim(bottom=0)
    axes.set_xlim(-0.4, len(weeks) - 0.6)
    _count_axis(axes, "y", fmt)
    if len(series) > 1:
        legend = axes.legend(loc="upper left", frameon=False, prop=_props(12))
        for text in legend.get_texts():
            text.set_color(_colour(INK))


def _save(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No software version in the file: the same numbers give the same bytes.
    figure.savefig(
        buffer, format="png", dpi=_CHART_DPI, facecolor="white", metadata={"Software": None}
    )
    return buffer.getvalue()


def render_statistics_chart(data: VillageStats, *, labels: ChartLabels) -> bytes:
    """Draw a place's followers and coverage, applications by status and occupation, and trend."""
    figure = _figure()
    width, height = CHART_SIZE
    left_px, inner_px = 60, width - 120
    left = left_px / width
    _text(figure, left, 1 - 36 / height, _fit_line(labels.title, 16, inner_px), 16, colour=MUTED)
    name = printable(data.village_name)
    name_points = _largest_fitting(name, (34, 30, 26, 22), inner_px, bold=True)
    _text(
        figure,
        left,
        1 - 66 / height,
        _fit_line(name, name_points, inner_px, True),
        name_points,
        bold=True,
    )
    followers = f"{labels.format_number(data.followers)} {labels.followers_label}"
    _text(
        figure,
        left,
        1 - 122 / height,
        _fit_line(followers, 18, inner_px, True),
        18,
        bold=True,
        colour=GREEN,
    )
    if labels.coverage:
        _text(
            figure,
            left,
            1 - 156 / height,
            _fit_line(labels.coverage, 15, inner_px),
            15,
            colour=INK,
        )

    plot_left, plot_width = 0.30, 0.64
    plot_px = plot_width * width
    status = figure.add_axes((0.09, 0.59, 0.85, 0.22))
    _style(status, labels.status_title, inner_px, title_x=-(0.09 - left) / 0.85)
    items = [(name, count) for name, count in data.by_status.items()]
    if not any(count for _, count in items):
        _no_data(status, labels.no_data, inner_px)
    else:
        slot_px = 0.85 * width / len(items)
        positions = list(range(len(items)))
        colours = [_colour(_BAR_COLOURS[i % len(_BAR_COLOURS)]) for i in positions]
        bars = status.bar(positions, [count for _, count in items], width=0.6, color=colours)
        status.bar_label(
            bars,
            labels=[printable(labels.format_number(count)) for _, count in items],
            padding=4,
            fontproperties=_props(13),
            color=_colour(INK),
        )
        status.set_xticks(positions, [_fit_line(n, 12, slot_px - 8) for n, _ in items])
        _count_axis(status, "y", labels.format_number)
        status.set_ylim(0, max(count for _, count in items) * 1.2)

    occupations = figure.add_axes((plot_left, 0.31, plot_width, 0.2))
    _style(occupations, labels.occupation_title, inner_px, title_x=-(plot_left - 0.09) / plot_width)
    jobs = sorted(
        ((name, count) for name, count in data.by_occupation.items() if count > 0),
        key=lambda item: (-item[1], item[0]),
    )
    if not jobs:
        _no_data(occupations, labels.no_data, plot_px)
    else:
        if len(jobs) > _MAX_OCCUPATION_ROWS:
            kept = jobs[: _MAX_OCCUPATION_ROWS - 1]
            jobs = [*kept, (labels.other, sum(count for _, count in jobs[len(kept) :]))]
        _hbars(
            occupations,
            [name for name, _ in jobs],
            [count for _, count in jobs],
            [labels.format_number(count) for _, count in jobs],
            (plot_left - 0.02) * width - left_px,
            BLUE,
        )

    trend = figure.add_axes((0.09, 0.06, 0.85, 0.17))
    _style(trend, labels.trend_title, inner_px, title_x=-(0.09 - left) / 0.85)
    if not any(count for _, count in data.weekly):
        _no_data(trend, labels.no_data, inner_px)
    else:
        _lines(
            trend,
            [week for week, _ in data.weekly],
            [(labels.trend_title, [count for _, count in data.weekly])],
            labels.format_number,
        )
    for axes in figure.axes:
        _tick_fonts(axes)
    return _save(figure)


def render_report_chart(data: ReportChart) -> bytes:
    """Draw the branch report: villages ranked by coverage as bars, and the weekly trend."""
    figure = _figure()
    width, height = CHART_SIZE
    left_px, inner_px = 60, width - 120
    left = left_px / width
    title_points = _largest_fitting(data.title, (30, 26, 22), inner_px, bold=True)
    _text(
        figure,
        left,
        1 - 36 / height,
        _fit_line(data.title, title_points, inner_px, True),
        title_points,
        bold=True,
    )
    _text(figure, left, 1 - 84 / height, _fit_line(data.subtitle, 16, inner_px), 16, colour=MUTED)

    label_share = 0.30
    position = (label_share + 0.02, 0.41, 0.94 - label_share - 0.02, 0.46)
    bars = figure.add_axes(position)
    # The title starts at the picture's margin, over the names, not over the bars.
    _style(bars, data.bars_title, inner_px, title_x=-(position[0] - left) / position[2])
    ranked = list(data.bars)[:MAX_RANKED_VILLAGES]
    if not ranked:
        _no_data(bars, data.no_data, inner_px)
    else:
        _hbars(
            bars,
            [bar.name for bar in ranked],
            [bar.value for bar in ranked],
            [bar.text for bar in ranked],
            label_share * width - left_px,
            GREEN,
        )

    trend = figure.add_axes((0.09, 0.06, 0.85, 0.25))
    _style(trend, data.trend_title, inner_px, title_x=-(0.09 - left) / 0.85)
    if not any(any(values) for _, values in data.series):
        _no_data(trend, data.no_data, inner_px)
    else:
        _lines(trend, data.weeks, data.series, data.format_number)
    for axes in figure.axes:
        _tick_fonts(axes)
    return _save(figure)
