"""PNG pictures for village leaders: a statistics chart and a printable QR poster.

Pure drawing with Pillow and segno: no Telegram, no database, and no words of our own. Every
sentence on a picture arrives already translated from the caller; the code only lays it out.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal, NamedTuple

import segno
from PIL import Image, ImageDraw, ImageFont

CHART_SIZE = (1000, 700)
# A4 portrait at 150 dpi: sharp enough for an office printer, small enough for a chat.
POSTER_SIZE = (1240, 1754)
POSTER_DPI = 150

_RGB = tuple[int, int, int]
_WHITE: _RGB = (255, 255, 255)
_INK: _RGB = (30, 41, 59)
_MUTED: _RGB = (100, 116, 139)
_AXIS: _RGB = (203, 213, 225)
_GRID: _RGB = (226, 232, 240)
_PANEL: _RGB = (246, 248, 251)
_GREEN: _RGB = (0, 120, 64)
_GREEN_PALE: _RGB = (231, 244, 236)
_GOLD: _RGB = (242, 169, 0)
_BLUE: _RGB = (29, 95, 166)
_BAR_COLOURS: tuple[_RGB, ...] = (
    (0, 120, 64),
    (29, 95, 166),
    (217, 119, 6),
    (13, 148, 136),
    (124, 58, 237),
    (190, 24, 93),
    (71, 85, 105),
    (202, 138, 4),
)

# Pillow's bundled Aileron has only these characters; anything else would print as a box.
_FONT_CHARS = frozenset("".join(chr(c) for c in range(0x20, 0x7F)) + "©«°±´·»‘’“”…‹›⁄™")
_SUBSTITUTES = {
    "–": "-",
    "—": "-",
    "•": "·",
    "ß": "ss",
    "Ł": "L",
    "ł": "l",
    "Ø": "O",
    "ø": "o",
    "Æ": "AE",
    "æ": "ae",
    "Đ": "D",
    "đ": "d",
    "ı": "i",
    "Ə": "E",
    "ə": "e",
    "Ŋ": "Ng",
    "ŋ": "ng",
}
_ELLIPSIS = "…"
# The occupation chart lists this many rows at most; the rest are summed in the last one.
_MAX_OCCUPATION_ROWS = 8
# No text on either picture can show more characters than this; longer ones end in an ellipsis.
_MAX_TEXT = 300
# The daily chart spans at least this many days, ending on the newest day it is given.
_DAILY_WINDOW = 30


def group_thousands(number: int) -> str:
    """Write a count the Indonesian way, with dots between thousands: 12.345."""
    return f"{number:,}".replace(",", ".")


@dataclass(frozen=True)
class VillageStats:
    """What the statistics chart shows for one village."""

    village_name: str
    followers: int
    by_status: Mapping[str, int]
    by_occupation: Mapping[str, int]
    daily: Sequence[tuple[date, int]]

    def __post_init__(self) -> None:
        counts = [
            self.followers,
            *self.by_status.values(),
            *self.by_occupation.values(),
            *(count for _, count in self.daily),
        ]
        if any(count < 0 for count in counts):
            raise ValueError("counts cannot be negative")


@dataclass(frozen=True)
class ChartLabels:
    """Translated texts of the statistics chart; `by_status` keys are shown as they are."""

    title: str
    status_title: str
    occupation_title: str
    daily_title: str
    followers_label: str
    no_data: str
    # Names the row that sums the occupations beyond the first few (e.g. "Lainnya").
    other: str = _ELLIPSIS
    format_number: Callable[[int], str] = group_thousands


@dataclass(frozen=True)
class PosterText:
    """Translated texts of the QR poster."""

    slogan: str
    steps: tuple[str, str, str]
    footer: str


class _Box(NamedTuple):
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


# --- text ------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; scalable text is unavailable")
    return font


def _printable(text: str) -> str:
    """Spell `text` with the font's characters: accents folded away, unknown letters as '?'."""
    out: list[str] = []
    for char in text[: 4 * _MAX_TEXT]:
        if char in _FONT_CHARS:
            out.append(char)
        elif char.isspace():
            out.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        else:
            spelled = _SUBSTITUTES.get(char) or "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append("".join(c if c in _FONT_CHARS else "?" for c in spelled) or "?")
    return " ".join("".join(out).split())[:_MAX_TEXT]


def _width(text: str, font: ImageFont.FreeTypeFont, bold: bool = False) -> float:
    return font.getlength(text) + 2 * _stroke(font, bold)


def _stroke(font: ImageFont.FreeTypeFont, bold: bool) -> int:
    # The bundled font has no bold face; an outline in the text colour stands in for one, but
    # only on large text, where a pixel of outline thickens strokes instead of smudging them.
    return int(font.size // 28) if bold else 0


def _ellipsize(text: str, font: ImageFont.FreeTypeFont, width: float, bold: bool = False) -> str:
    if _width(text, font, bold) <= width:
        return text
    # Binary search for the longest prefix that fits together with the ellipsis.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _width(text[:middle].rstrip() + _ELLIPSIS, font, bold) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + _ELLIPSIS


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float, bold: bool = False) -> list[str]:
    """Break `text` into lines no wider than `width`; a word too long alone keeps its own line."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if not line or _width(candidate, font, bold) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    return round(font.size * 1.22)


def _fit(
    texts: Sequence[str],
    box_width: float,
    box_height: float,
    sizes: tuple[int, int],
    max_lines: int,
    bold: bool = False,
) -> tuple[ImageFont.FreeTypeFont, list[list[str]]]:
    """Wrap every text at the largest common size that fits; at the smallest, ellipsize."""
    largest, smallest = sizes
    for size in range(largest, smallest - 1, -1):
        font = _font(size)
        wrapped = [_wrap(text, font, box_width, bold) for text in texts]
        tallest = max((len(lines) for lines in wrapped), default=0)
        if (
            tallest <= max_lines
            and tallest * _line_height(font) <= box_height
            and all(_width(line, font, bold) <= box_width for lines in wrapped for line in lines)
        ):
            return font, wrapped
    font = _font(smallest)
    fitting = max(1, min(max_lines, int(box_height // _line_height(font))))
    clipped: list[list[str]] = []
    for text in texts:
        lines = _wrap(text, font, box_width, bold)
        if len(lines) > fitting:
            lines = [*lines[: fitting - 1], " ".join(lines[fitting - 1 :])]
        clipped.append([_ellipsize(line, font, box_width, bold) for line in lines])
    return font, clipped


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    font: ImageFont.FreeTypeFont,
    box: _Box,
    fill: _RGB,
    align: Literal["left", "center"] = "center",
    bold: bool = False,
) -> None:
    """Draw lines as a block centred vertically in `box`."""
    step = _line_height(font)
    top = box.top + (box.height - step * len(lines)) / 2
    for index, line in enumerate(lines):
        middle = top + step * (index + 0.5)
        if align == "center":
            xy, anchor = ((box.left + box.right) / 2, middle), "mm"
        else:
            xy, anchor = (box.left, middle), "lm"
        stroke = _stroke(font, bold)
        draw.text(
            xy, line, font=font, fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill
        )


def _png(image: Image.Image, dpi: int | None = None) -> bytes:
    buffer = io.BytesIO()
    if dpi is None:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


# --- statistics chart ------------------------------------------------------------------------


def render_statistics_chart(data: VillageStats, *, labels: ChartLabels) -> bytes:
    """Draw a village's followers, applications by status and occupation, and daily sign-ups."""
    width, height = CHART_SIZE
    image = Image.new("RGB", CHART_SIZE, _WHITE)
    draw = ImageDraw.Draw(image)
    margin, gap = 32, 20
    header_bottom = _draw_chart_header(draw, data, labels, margin)
    middle = (width - 2 * margin - gap) / 2
    upper_bottom = header_bottom + 290
    _draw_status_panel(
        draw,
        _Box(margin, header_bottom, margin + middle, upper_bottom),
        data.by_status,
        labels,
    )
    _draw_occupation_panel(
        draw,
        _Box(width - margin - middle, header_bottom, width - margin, upper_bottom),
        data.by_occupation,
        labels,
    )
    _draw_daily_panel(
        draw,
        _Box(margin, upper_bottom + gap, width - margin, height - margin),
        data.daily,
        labels,
    )
    return _png(image)


def _draw_chart_header(
    draw: ImageDraw.ImageDraw, data: VillageStats, labels: ChartLabels, margin: int
) -> int:
    """Draw the title, the village name and the followers card; return where panels start."""
    width = CHART_SIZE[0]
    top, bottom = 24, 104
    number_font, caption_font = _font(34), _font(16)
    number = _printable(labels.format_number(data.followers))
    caption = _printable(labels.followers_label)
    padding = 20
    card_width = min(
        300,
        max(
            180, max(_width(number, number_font, True), _width(caption, caption_font)) + 2 * padding
        ),
    )
    card = _Box(width - margin - card_width, top, width - margin, bottom)
    draw.rounded_rectangle(card, radius=12, fill=_GREEN_PALE)
    draw.text(
        (card.left + padding, card.top + 12),
        number,
        font=number_font,
        fill=_GREEN,
        anchor="la",
        stroke_width=_stroke(number_font, True),
        stroke_fill=_GREEN,
    )
    draw.text(
        (card.left + padding, card.bottom - 14),
        _ellipsize(caption, caption_font, card.width - 2 * padding),
        font=caption_font,
        fill=_MUTED,
        anchor="ls",
    )

    text_width = card.left - margin - 24
    title_font = _font(18)
    draw.text(
        (margin, top + 4),
        _ellipsize(_printable(labels.title), title_font, text_width),
        font=title_font,
        fill=_MUTED,
        anchor="la",
    )
    name_font, name_lines = _fit(
        [_printable(data.village_name)], text_width, 48, (38, 22), max_lines=1, bold=True
    )
    _draw_lines(
        draw, name_lines[0], name_font, _Box(margin, 50, card.left - 24, 98), _INK, "left", True
    )
    return bottom + 20


def _draw_panel(draw: ImageDraw.ImageDraw, box: _Box, title: str) -> _Box:
    """Draw a panel with its title; return the area left for the plot."""
    draw.rounded_rectangle(box, radius=14, fill=_PANEL)
    font = _font(18)
    padding = 20
    draw.text(
        (box.left + padding, box.top + 16),
        _ellipsize(_printable(title), font, box.width - 2 * padding, True),
        font=font,
        fill=_INK,
        anchor="la",
        stroke_width=_stroke(font, True),
        stroke_fill=_INK,
    )
    return _Box(box.left + padding, box.top + 52, box.right - padding, box.bottom - 16)


def _draw_no_data(draw: ImageDraw.ImageDraw, plot: _Box, labels: ChartLabels) -> None:
    font, wrapped = _fit([_printable(labels.no_data)], plot.width, plot.height, (20, 14), 2)
    _draw_lines(draw, wrapped[0], font, plot, _MUTED)


def _bar(
    draw: ImageDraw.ImageDraw, box: _Box, fill: _RGB, round_end: Literal["top", "right"]
) -> None:
    """Draw one bar with its free end rounded, so short bars stay rectangles rather than blobs."""
    radius = int(min(6, box.width / 2, box.height / 2))
    corners = (True, True, False, False) if round_end == "top" else (False, True, True, False)
    if radius < 2:
        draw.rectangle(box, fill=fill)
    else:
        draw.rounded_rectangle(box, radius=radius, fill=fill, corners=corners)


def _draw_status_panel(
    draw: ImageDraw.ImageDraw, box: _Box, by_status: Mapping[str, int], labels: ChartLabels
) -> None:
    plot = _draw_panel(draw, box, labels.status_title)
    items = list(by_status.items())
    peak = max((count for _, count in items), default=0)
    if peak == 0:
        _draw_no_data(draw, plot, labels)
        return
    value_font, label_font = _font(16), _font(14)
    label_lines = 2
    label_height = label_lines * _line_height(label_font)
    baseline = plot.bottom - label_height - 8
    top = plot.top + 26
    slot = plot.width / len(items)
    bar_width = min(56.0, slot * 0.6)
    draw.line([(plot.left, baseline), (plot.right, baseline)], fill=_AXIS, width=2)
    for index, (name, count) in enumerate(items):
        centre = plot.left + slot * (index + 0.5)
        height = (baseline - top) * count / peak
        if count and height < 3:
            height = 3
        if height:
            _bar(
                draw,
                _Box(
                    centre - bar_width / 2, baseline - height, centre + bar_width / 2, baseline - 1
                ),
                _BAR_COLOURS[index % len(_BAR_COLOURS)],
                "top",
            )
        draw.text(
            (centre, baseline - height - 6),
            _printable(labels.format_number(count)),
            font=value_font,
            fill=_INK,
            anchor="ms",
        )
        font, wrapped = _fit([_printable(name)], slot - 6, label_height, (14, 11), label_lines)
        for row, line in enumerate(wrapped[0]):
            draw.text(
                (centre, baseline + 8 + row * _line_height(font)),
                line,
                font=font,
                fill=_MUTED,
                anchor="ma",
            )


def _draw_occupation_panel(
    draw: ImageDraw.ImageDraw, box: _Box, by_occupation: Mapping[str, int], labels: ChartLabels
) -> None:
    plot = _draw_panel(draw, box, labels.occupation_title)
    items = sorted(
        ((name, count) for name, count in by_occupation.items() if count > 0),
        key=lambda item: (-item[1], item[0]),
    )
    if not items:
        _draw_no_data(draw, plot, labels)
        return
    if len(items) > _MAX_OCCUPATION_ROWS:
        kept = items[: _MAX_OCCUPATION_ROWS - 1]
        items = [*kept, (labels.other, sum(count for _, count in items[len(kept) :]))]
    font = _font(15)
    values = [_printable(labels.format_number(count)) for _, count in items]
    value_width = max(_width(value, font) for value in values) + 10
    label_width = plot.width * 0.36
    bars_left = plot.left + label_width + 12
    bars_width = plot.right - value_width - bars_left
    row = min(34.0, plot.height / len(items))
    thickness = row * 0.62
    peak = max(count for _, count in items)
    for index, ((name, count), value) in enumerate(zip(items, values, strict=True)):
        middle = plot.top + row * (index + 0.5)
        draw.text(
            (plot.left, middle),
            _ellipsize(_printable(name), font, label_width),
            font=font,
            fill=_INK,
            anchor="lm",
        )
        length = max(3.0, bars_width * count / peak)
        _bar(
            draw,
            _Box(bars_left, middle - thickness / 2, bars_left + length, middle + thickness / 2),
            _BLUE,
            "right",
        )
        draw.text((bars_left + length + 8, middle), value, font=font, fill=_INK, anchor="lm")


def _consecutive_days(daily: Sequence[tuple[date, int]]) -> list[tuple[date, int]]:
    """Spread the counts over consecutive days, at least a month up to the newest day given."""
    counts: dict[date, int] = {}
    for day, count in daily:
        counts[day] = counts.get(day, 0) + count
    if not counts:
        return []
    last = max(counts)
    first = min(min(counts), last - timedelta(days=_DAILY_WINDOW - 1))
    days = (first + timedelta(days=offset) for offset in range((last - first).days + 1))
    return [(day, counts.get(day, 0)) for day in days]


def _draw_daily_panel(
    draw: ImageDraw.ImageDraw, box: _Box, daily: Sequence[tuple[date, int]], labels: ChartLabels
) -> None:
    plot = _draw_panel(draw, box, labels.daily_title)
    days = _consecutive_days(daily)
    peak = max((count for _, count in days), default=0)
    if peak == 0:
        _draw_no_data(draw, plot, labels)
        return
    font = _font(13)
    peak_text = _printable(labels.format_number(peak))
    axis_width = max(_width(peak_text, font), _width("0", font)) + 10
    left, right = plot.left + axis_width, plot.right
    top, baseline = plot.top + 8, plot.bottom - 22
    for value, y in ((peak, top), (0, baseline)):
        draw.line([(left, y), (right, y)], fill=_GRID if value else _AXIS, width=1 if value else 2)
        draw.text(
            (left - 8, y),
            _printable(labels.format_number(value)),
            font=font,
            fill=_MUTED,
            anchor="rm",
        )
    slot = (right - left) / len(days)
    bar_width = min(28.0, max(2.0, slot * 0.68))
    day_width = _width("30/12", font)
    step = 1
    while step * slot < day_width + 16 or len(days) / step > 10:
        step = {1: 2, 2: 7}.get(step, step * 2)
    last = len(days) - 1
    for index, (day, count) in enumerate(days):
        centre = left + slot * (index + 0.5)
        if count:
            height = max(3.0, (baseline - top) * count / peak)
            _bar(
                draw,
                _Box(
                    centre - bar_width / 2, baseline - height, centre + bar_width / 2, baseline - 1
                ),
                _GREEN,
                "top",
            )
        # Count back from the newest day, so the most recent one always has its date.
        if (last - index) % step == 0:
            draw.text(
                (centre, baseline + 6),
                f"{day.day}/{day.month}",
                font=font,
                fill=_MUTED,
                anchor="ma",
            )


# --- poster ----------------------------------------------------------------------------------


def render_poster(*, village_name: str, link: str, lines: PosterText) -> bytes:
    """Draw a printable A4 poster whose QR code opens `link` (ValueError if no QR can hold it)."""
    width, height = POSTER_SIZE
    margin = 96
    image = Image.new("RGB", POSTER_SIZE, _WHITE)
    draw = ImageDraw.Draw(image)

    band = _Box(0, 0, width, 270)
    draw.rectangle(band, fill=_GREEN)
    draw.rectangle(_Box(0, band.bottom, width, band.bottom + 12), fill=_GOLD)
    slogan_box = _Box(margin, 40, width - margin, band.bottom - 40)
    font, wrapped = _fit(
        [_printable(lines.slogan)], slogan_box.width, slogan_box.height, (92, 44), 2, bold=True
    )
    _draw_lines(draw, wrapped[0], font, slogan_box, _WHITE, bold=True)

    name_box = _Box(margin, 310, width - margin, 460)
    font, wrapped = _fit(
        [_printable(village_name)], name_box.width, name_box.height, (76, 36), 2, bold=True
    )
    _draw_lines(draw, wrapped[0], font, name_box, _INK, bold=True)

    qr_box = _Box((width - 720) / 2, 490, (width + 720) / 2, 1210)
    _draw_qr(image, draw, link, qr_box)
    link_font = _font(26)
    draw.text(
        (width / 2, qr_box.bottom + 22),
        _ellipsize(_printable(link), link_font, width - 2 * margin),
        font=link_font,
        fill=_MUTED,
        anchor="ma",
    )

    circle, row_height, steps_top = 76, 112, 1300
    text_left = margin + circle + 32
    font, wrapped = _fit(
        [_printable(step) for step in lines.steps],
        width - margin - text_left,
        row_height - 8,
        (40, 26),
        2,
    )
    number_font = _font(40)
    for index, step_lines in enumerate(wrapped):
        middle = steps_top + row_height * (index + 0.5)
        draw.ellipse(
            _Box(margin, middle - circle / 2, margin + circle, middle + circle / 2), fill=_GREEN
        )
        draw.text(
            (margin + circle / 2, middle),
            str(index + 1),
            font=number_font,
            fill=_WHITE,
            anchor="mm",
            stroke_width=_stroke(number_font, True),
            stroke_fill=_WHITE,
        )
        row = _Box(text_left, middle - row_height / 2, width - margin, middle + row_height / 2)
        _draw_lines(draw, step_lines, font, row, _INK, "left")

    footer_top = steps_top + 3 * row_height + 28
    draw.line([(margin, footer_top), (width - margin, footer_top)], fill=_GRID, width=2)
    footer_box = _Box(margin, footer_top + 12, width - margin, height - 36)
    font, wrapped = _fit(
        [_printable(lines.footer)], footer_box.width, footer_box.height, (26, 18), 2
    )
    _draw_lines(draw, wrapped[0], font, footer_box, _MUTED)
    draw.rectangle(_Box(0, height - 16, width, height), fill=_GREEN)
    return _png(image, dpi=POSTER_DPI)


def _draw_qr(image: Image.Image, draw: ImageDraw.ImageDraw, link: str, box: _Box) -> None:
    """Draw `link` as a QR code filling `box`, quiet zone included, on a framed white card."""
    # Level Q survives a quarter of the symbol torn or stained, which a wall poster will be.
    code = segno.make(link, error="q", micro=False)
    border = 4
    modules = [bytes(255 * (not dark) for dark in row) for row in code.matrix_iter(border=border)]
    count = len(modules)
    # Inset the symbol so that its white quiet zone does not paint over the card's frame.
    scale = int((min(box.width, box.height) - 16) // count)
    symbol = Image.frombytes("L", (count, count), b"".join(modules))
    symbol = symbol.resize((count * scale, count * scale), Image.Resampling.NEAREST)
    draw.rounded_rectangle(box, radius=24, fill=_WHITE, outline=_AXIS, width=3)
    left = int(box.left + (box.width - symbol.width) / 2)
    top = int(box.top + (box.height - symbol.height) / 2)
    image.paste(symbol.convert("RGB"), (left, top))
