"""Staff's coverage report and a leader's statistics as charts: clean PNGs of the agreed
size, readable on a phone, with names kept whole (accents included) and inside the picture."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, timedelta

import pytest
from PIL import Image

from bot.core.charts import (
    CHART_SIZE,
    ChartLabels,
    RankedBar,
    ReportChart,
    VillageStats,
    render_report_chart,
    render_statistics_chart,
)
from bot.core.images import printable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WHITE = ((255, 255), (255, 255), (255, 255))
LONG_NAME = (
    "Desa Adat Kedonganan Kecamatan Kuta Selatan Kabupaten Badung Provinsi Bali "
    "Pulau Dewata Indonesia Raya Yang Sangat Panjang Sekali Namanya"
)

LABELS = ChartLabels(
    title="Statistik desa",
    status_title="Pendaftaran menurut status",
    occupation_title="Pendaftaran menurut jenis pekerjaan",
    trend_title="Pendaftaran baru per minggu",
    followers_label="pengikut berita desa",
    no_data="Belum ada data",
    other="Lainnya",
)


def stats(**changes: object) -> VillageStats:
    """A busy village's month, with any field replaced."""
    base = VillageStats(
        village_name="Desa Dauh Puri Kelod",
        followers=1284,
        by_status={"Draf": 14, "Dikirim": 37, "Diverifikasi": 22, "Terdaftar": 58, "Ditolak": 3},
        by_occupation={"Petani": 31, "Pedagang": 24, "Nelayan": 9, "Tukang ojek": 12},
        weekly=[(date(2026, 5, 4) + timedelta(weeks=i), i % 6) for i in range(12)],
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def opened(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


# --- statistics chart --------------------------------------------------------------------------


def test_a_leader_gets_a_chart_png_of_the_agreed_size() -> None:
    image = opened(render_statistics_chart(stats(), labels=LABELS))

    assert image.size == CHART_SIZE


def test_a_village_with_nothing_yet_gets_a_chart_saying_there_is_no_data() -> None:
    empty = stats(followers=0, by_status={}, by_occupation={}, weekly=[])

    with_words = render_statistics_chart(empty, labels=LABELS)
    without_words = render_statistics_chart(empty, labels=replace(LABELS, no_data=""))

    assert opened(with_words).size == CHART_SIZE
    assert with_words != without_words


def test_counts_that_are_all_zero_are_shown_as_no_data() -> None:
    empty = stats(by_status={}, by_occupation={}, weekly=[])
    zeros = stats(
        by_status={"Draf": 0, "Terdaftar": 0},
        by_occupation={"Petani": 0},
        weekly=[(date(2026, 5, 4), 0), (date(2026, 5, 11), 0)],
    )

    assert render_statistics_chart(zeros, labels=LABELS) == render_statistics_chart(
        empty, labels=LABELS
    )


def test_the_chart_changes_with_the_numbers() -> None:
    before = render_statistics_chart(stats(), labels=LABELS)

    assert render_statistics_chart(stats(followers=1285), labels=LABELS) != before
    assert render_statistics_chart(stats(by_status={"Draf": 15}), labels=LABELS) != before
    assert render_statistics_chart(stats(weekly=[(date(2026, 7, 20), 4)]), labels=LABELS) != before
    covered = replace(LABELS, coverage="Cakupan 12,5 persen: 58 terdaftar dari 464 potensi pekerja")
    assert render_statistics_chart(stats(), labels=covered) != before


def test_the_caller_chooses_how_numbers_are_written() -> None:
    dotted = render_statistics_chart(stats(), labels=LABELS)
    commas = render_statistics_chart(stats(), labels=replace(LABELS, format_number="{:,}".format))

    assert dotted != commas


def test_occupations_beyond_the_first_few_are_summed_under_the_callers_word_for_other() -> None:
    many = stats(by_occupation={f"Pekerjaan {i}": i + 1 for i in range(12)})
    few = stats()

    def differs_by_other_word(data: VillageStats) -> bool:
        lainnya = render_statistics_chart(data, labels=LABELS)
        others = render_statistics_chart(data, labels=replace(LABELS, other="Others"))
        return lainnya != others

    assert differs_by_other_word(many)
    assert not differs_by_other_word(few)


def test_long_and_non_ascii_names_stay_inside_the_chart_margins() -> None:
    data = stats(
        village_name=LONG_NAME + " — Désa Pënida Ñusa ᬩᬮᬶ 巴厘",
        followers=12_345_678,
        by_status={f"Menunggu pemeriksaan dokumen nomor {i}": i for i in range(9)},
        by_occupation={
            "Prajuru adat (bendesa, penyarikan, patengen) yang sangat panjang": 1200,
            "Pemangku / sulinggih (rohaniawan)": 5,
        },
    )

    image = opened(render_statistics_chart(data, labels=replace(LABELS, title=LONG_NAME)))

    width, height = CHART_SIZE
    for margin in ((0, 0, 30, height), (width - 30, 0, width, height), (0, 0, width, 20)):
        assert image.crop(margin).getextrema() == WHITE


def test_accented_names_keep_their_accents() -> None:
    plain = render_statistics_chart(stats(village_name="Desa Penida"), labels=LABELS)
    accented = render_statistics_chart(stats(village_name="Désa Pënida"), labels=LABELS)

    assert accented != plain
    assert printable("Désa Pënida") == "Désa Pënida"


def test_letters_the_font_cannot_draw_become_question_marks_without_a_warning() -> None:
    # Balinese script and Chinese are outside DejaVu Sans; matplotlib would warn (an error
    # under this test run's settings) and draw empty boxes.
    assert printable("Bali ᬩᬮᬶ 巴厘") == "Bali ??? ??"
    with_script = render_statistics_chart(stats(village_name="Bali ᬩᬮᬶ"), labels=LABELS)
    assert opened(with_script).size == CHART_SIZE


def test_the_same_statistics_give_the_same_bytes() -> None:
    assert render_statistics_chart(stats(), labels=LABELS) == render_statistics_chart(
        stats(), labels=LABELS
    )


def test_negative_counts_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        stats(followers=-1)
    with pytest.raises(ValueError):
        stats(weekly=[(date(2026, 5, 4), -3)])


# --- report chart ------------------------------------------------------------------------------


def report_chart(**changes: object) -> ReportChart:
    """Staff's branch report with twenty villages, one a desa adat name with accents."""
    names = [f"Desa Nomor {i}" for i in range(19)] + ["Désa Adat Pënida"]
    base = ReportChart(
        title="Cakupan BPU Kantor Cabang Bali Denpasar",
        subtitle="Per 4 Desember 2026 · 1.234 pendaftaran · 567 terdaftar",
        bars_title="Desa menurut cakupan",
        bars=[RankedBar(name, 40 - i, f"{40 - i} persen") for i, name in enumerate(names)],
        trend_title="Per minggu",
        weeks=[date(2026, 9, 7) + timedelta(weeks=i) for i in range(12)],
        series=[("Pendaftaran", [i % 5 for i in range(12)]), ("Terdaftar", [1] * 12)],
        no_data="Belum ada data",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_staff_get_a_report_png_of_the_agreed_size_and_a_few_dozen_kilobytes() -> None:
    png = render_report_chart(report_chart())

    assert opened(png).size == CHART_SIZE
    assert 20_000 < len(png) < 600_000


def test_the_report_ranks_at_most_fifteen_villages() -> None:
    twenty = render_report_chart(report_chart())
    fifteen = render_report_chart(report_chart(bars=report_chart().bars[:15]))

    assert twenty == fifteen


def test_an_accented_village_name_changes_the_report_picture() -> None:
    def first_named(name: str) -> bytes:
        return render_report_chart(report_chart(bars=[RankedBar(name, 10, "10 persen")]))

    assert first_named("Désa Adat Pënida") != first_named("Desa Adat Penida")


def test_a_report_with_nothing_yet_says_so() -> None:
    empty = report_chart(bars=[], series=[("Pendaftaran", [0] * 12)])

    with_words = render_report_chart(empty)
    without_words = render_report_chart(replace(empty, no_data=""))

    assert opened(with_words).size == CHART_SIZE
    assert with_words != without_words


def test_long_report_names_stay_inside_the_margins() -> None:
    data = report_chart(
        title=LONG_NAME,
        subtitle=LONG_NAME,
        bars_title=LONG_NAME,
        bars=[RankedBar(LONG_NAME, 12_345, LONG_NAME[:30])],
    )

    image = opened(render_report_chart(data))

    width, height = CHART_SIZE
    for margin in ((0, 0, 30, height), (width - 30, 0, width, height), (0, 0, width, 20)):
        assert image.crop(margin).getextrema() == WHITE
