"""Pictures in one font: the printable QR poster, and the lettering every picture shares.

Everything is drawn in the DejaVu Sans that matplotlib ships, so names keep their accents
(Désa, Pënida); letters the font lacks become '?' instead of empty boxes. Pure drawing with
Pillow and segno: no Telegram, no database, and no words of our own — every sentence arrives
already translated from the caller. The charts (bot.core.charts) measure their text here too.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import segno
from PIL import Image, ImageDraw, ImageFont

# A4 portrait at 150 dpi: sharp enough for an office printer, small enough for a chat.
POSTER_SIZE = (1240, 1754)
POSTER_DPI = 150


@cache
def font_path(bold: bool = False) -> Path:
    """The DejaVu Sans file matplotlib ships (imported only when a picture is drawn: matplotlib
    takes a fifth of a second to load, which every start of the bot would otherwise pay)."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
INK: RGB = (30, 41, 59)
MUTED: RGB = (100, 116, 139)
AXIS: RGB = (203, 213, 225)
GRID: RGB = (226, 232, 240)
GREEN: RGB = (0, 120, 64)
GOLD: RGB = (242, 169, 0)
BLUE: RGB = (29, 95, 166)
ELLIPSIS = "…"
# No text on any picture can show more characters than this; longer ones end in an ellipsis.
MAX_TEXT = 300


def group_thousands(number: int) -> str:
    """Write a count the Indonesian way, with dots between thousands: 12.345."""
    return f"{number:,}".replace(",", ".")


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


@cache
def _covered() -> frozenset[int]:
    """The characters both faces of the font can draw."""
    from matplotlib.ft2font import FT2Font

    regular = FT2Font(str(font_path())).get_charmap()
    bold = FT2Font(str(font_path(bold=True))).get_charmap()
    return frozenset(regular) & frozenset(bold)


def printable(text: str) -> str:
    """`text` as the font can draw it: accents kept, letters it lacks as '?', one line."""
    covered = _covered()
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text[: 4 * MAX_TEXT]):
        if char.isspace():
            out.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        else:
            out.append(char if ord(char) in covered else "?")
    return " ".join("".join(out).split())[:MAX_TEXT]


@lru_cache(maxsize=64)
def load_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at `size` pixels, regular or bold."""
    return ImageFont.truetype(str(font_path(bold)), size)


def text_width(text: str, font: ImageFont.FreeTypeFont) -> float:
    """How many pixels `text` takes in `font`."""
    return font.getlength(text)


def ellipsize(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """`text` cut to `width` pixels, ending in an ellipsis when it had to be cut."""
    if text_width(text, font) <= width:
        return text
    # Binary search for the longest prefix that fits together with the ellipsis.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(text[:middle].rstrip() + ELLIPSIS, font) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Break `text` into lines no wider than `width`; a word too long alone keeps its own line."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if not line or text_width(candidate, font) <= width:
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
        font = load_font(size, bold)
        wrapped = [_wrap(text, font, box_width) for text in texts]
        tallest = max((len(lines) for lines in wrapped), default=0)
        if (
            tallest <= max_lines
            and tallest * _line_height(font) <= box_height
            and all(text_width(line, font) <= box_width for lines in wrapped for line in lines)
        ):
            return font, wrapped
    font = load_font(smallest, bold)
    fitting = max(1, min(max_lines, int(box_height // _line_height(font))))
    clipped: list[list[str]] = []
    for text in texts:
        lines = _wrap(text, font, box_width)
        if len(lines) > fitting:
            lines = [*lines[: fitting - 1], " ".join(lines[fitting - 1 :])]
        clipped.append([ellipsize(line, font, box_width) for line in lines])
    return font, clipped


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    font: ImageFont.FreeTypeFont,
    box: _Box,
    fill: RGB,
    align: Literal["left", "center"] = "center",
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
        draw.text(xy, line, font=font, fill=fill, anchor=anchor)


def _png(image: Image.Image, dpi: int | None = None) -> bytes:
    buffer = io.BytesIO()
    if dpi is None:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


# --- poster ----------------------------------------------------------------------------------


def render_poster(*, village_name: str, link: str, lines: PosterText) -> bytes:
    """Draw a printable A4 poster whose QR code opens `link` (ValueError if no QR can hold it)."""
    width, height = POSTER_SIZE
    margin = 96
    image = Image.new("RGB", POSTER_SIZE, WHITE)
    draw = ImageDraw.Draw(image)

    band = _Box(0, 0, width, 270)
    draw.rectangle(band, fill=GREEN)
    draw.rectangle(_Box(0, band.bottom, width, band.bottom + 12), fill=GOLD)
    slogan_box = _Box(margin, 40, width - margin, band.bottom - 40)
    font, wrapped = _fit(
        [printable(lines.slogan)], slogan_box.width, slogan_box.height, (92, 44), 2, bold=True
    )
    _draw_lines(draw, wrapped[0], font, slogan_box, WHITE)

    name_box = _Box(margin, 310, width - margin, 460)
    font, wrapped = _fit(
        [printable(village_name)], name_box.width, name_box.height, (76, 36), 2, bold=True
    )
    _draw_lines(draw, wrapped[0], font, name_box, INK)

    qr_box = _Box((width - 720) / 2, 490, (width + 720) / 2, 1210)
    _draw_qr(image, draw, link, qr_box)
    link_font = load_font(26)
    draw.text(
        (width / 2, qr_box.bottom + 22),
        ellipsize(printable(link), link_font, width - 2 * margin),
        font=link_font,
        fill=MUTED,
        anchor="ma",
    )

    circle, row_height, steps_top = 76, 112, 1300
    text_left = margin + circle + 32
    font, wrapped = _fit(
        [printable(step) for step in lines.steps],
        width - margin - text_left,
        row_height - 8,
        (40, 26),
        2,
    )
    number_font = load_font(40, bold=True)
    for index, step_lines in enumerate(wrapped):
        middle = steps_top + row_height * (index + 0.5)
        draw.ellipse(
            _Box(margin, middle - circle / 2, margin + circle, middle + circle / 2), fill=GREEN
        )
        draw.text(
            (margin + circle / 2, middle),
            str(index + 1),
            font=number_font,
            fill=WHITE,
            anchor="mm",
        )
        row = _Box(text_left, middle - row_height / 2, width - margin, middle + row_height / 2)
        _draw_lines(draw, step_lines, font, row, INK, "left")

    footer_top = steps_top + 3 * row_height + 28
    draw.line([(margin, footer_top), (width - margin, footer_top)], fill=GRID, width=2)
    footer_box = _Box(margin, footer_top + 12, width - margin, height - 36)
    font, wrapped = _fit(
        [printable(lines.footer)], footer_box.width, footer_box.height, (26, 18), 2
    )
    _draw_lines(draw, wrapped[0], font, footer_box, MUTED)
    draw.rectangle(_Box(0, height - 16, width, height), fill=GREEN)
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
    draw.rounded_rectangle(box, radius=24, fill=WHITE, outline=AXIS, width=3)
    left = int(box.left + (box.width - symbol.width) / 2)
    top = int(box.top + (box.height - symbol.height) / 2)
    image.paste(symbol.convert("RGB"), (left, top))
