"""A village leader asks for a printable QR poster and gets a clean PNG that scans."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import zxingcpp
from PIL import Image

from bot.core.images import POSTER_SIZE, PosterText, printable, render_poster

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINK = "https://t.me/BebasCemasBot?start=v_5171012007"
WHITE = ((255, 255), (255, 255), (255, 255))
LONG_NAME = (
    "Desa Adat Kedonganan Kecamatan Kuta Selatan Kabupaten Badung Provinsi Bali "
    "Pulau Dewata Indonesia Raya Yang Sangat Panjang Sekali Namanya"
)

POSTER_TEXT = PosterText(
    slogan="Kerja Keras Bebas Cemas",
    steps=(
        "Pindai kode QR ini dengan kamera ponsel Anda.",
        "Buka Telegram dan tekan tombol Mulai.",
        "Jawab pertanyaan singkat. Iuran mulai Rp16.800 per bulan.",
    ),
    footer="BPJS Ketenagakerjaan Kantor Cabang Bali Denpasar",
)


def opened(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def decoded_qr_texts(png: bytes) -> list[str]:
    found = zxingcpp.read_barcodes(opened(png))
    return [code.text for code in found if code.format == zxingcpp.BarcodeFormat.QRCode]


# --- poster ------------------------------------------------------------------------------------


def test_a_poster_is_an_a4_portrait_png_for_printing() -> None:
    png = render_poster(village_name="Desa Adat Kuta", link=LINK, lines=POSTER_TEXT)

    image = Image.open(io.BytesIO(png))
    assert png.startswith(PNG_SIGNATURE)
    assert image.size == POSTER_SIZE
    assert image.size[1] / image.size[0] == pytest.approx(297 / 210, rel=0.01)
    assert image.info["dpi"] == pytest.approx((150, 150), rel=1e-3)


@pytest.mark.parametrize(
    "link",
    [
        LINK,
        "https://t.me/BebasCemasBot?start=" + "v_51.71.01.2007_" + "x" * 48,
        "https://t.me/b?start=a",
    ],
)
def test_scanning_the_poster_opens_the_village_link(link: str) -> None:
    png = render_poster(village_name="Desa Adat Kuta", link=link, lines=POSTER_TEXT)

    assert decoded_qr_texts(png) == [link]


def test_a_long_non_ascii_village_name_stays_inside_the_margins_and_the_qr_still_scans() -> None:
    long_text = replace(
        POSTER_TEXT,
        slogan="Kerja Keras Bebas Cemas — " + LONG_NAME,
        steps=(LONG_NAME, "Buka Telegram — tekan “Mulai”.", LONG_NAME * 3),
        footer=LONG_NAME * 4,
    )

    png = render_poster(village_name=LONG_NAME + " Désa Pënida ᬩᬮᬶ", link=LINK, lines=long_text)

    image = opened(png)
    width, height = POSTER_SIZE
    below_band, above_footer_band = 300, height - 20
    for margin in (
        (0, below_band, 90, above_footer_band),
        (width - 90, below_band, width, above_footer_band),
    ):
        assert image.crop(margin).getextrema() == WHITE
    assert decoded_qr_texts(png) == [LINK]


def test_the_same_poster_gives_the_same_bytes() -> None:
    first = render_poster(village_name="Desa Adat Kuta", link=LINK, lines=POSTER_TEXT)
    second = render_poster(village_name="Desa Adat Kuta", link=LINK, lines=POSTER_TEXT)
    other_village = render_poster(village_name="Desa Adat Tuban", link=LINK, lines=POSTER_TEXT)

    assert first == second
    assert first != other_village


def test_a_link_too_long_for_any_qr_code_is_refused() -> None:
    with pytest.raises(ValueError):
        render_poster(village_name="Desa Adat Kuta", link="x" * 5000, lines=POSTER_TEXT)


def test_poster_letters_keep_their_accents_and_unknown_scripts_become_question_marks() -> None:
    assert printable("Désa Pënida") == "Désa Pënida"
    assert printable("Bali ᬩᬮᬶ 巴厘") == "Bali ??? ??"
    accented = render_poster(village_name="Désa Adat Pënida", link=LINK, lines=POSTER_TEXT)
    plain = render_poster(village_name="Desa Adat Penida", link=LINK, lines=POSTER_TEXT)
    assert accented != plain
