"""Official areas: the shipped Kemendagri data, village search, and the script that builds it."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from bot.core.areas import (
    MAX_NAME_LENGTH,
    Village,
    match_names,
    normalise_name,
    read_districts,
    read_provinces,
    read_regencies,
    read_villages,
)
from scripts.build_areas import SourceError, build, main, title_case

BRANCH_REGENCIES = {"51.71": 43, "51.03": 62, "51.08": 148, "51.01": 51, "51.02": 133}
BALI_REGENCIES = [*BRANCH_REGENCIES, "51.04", "51.05", "51.06", "51.07"]


@pytest.fixture(scope="module")
def bali_villages() -> list[Village]:
    return read_villages(BALI_REGENCIES)


@pytest.fixture(scope="module")
def branch_villages() -> list[Village]:
    return read_villages(BRANCH_REGENCIES)


def candidates(villages: list[Village], prefix: str) -> list[tuple[str, str]]:
    return [(village.code, village.name) for village in villages if village.code.startswith(prefix)]


# --- the shipped data ------------------------------------------------------------------------


def test_every_province_of_indonesia_is_known_for_nik_checks() -> None:
    provinces = {province.code: province.name for province in read_provinces()}
    assert len(provinces) == 38
    assert provinces["51"] == "Bali"
    assert provinces["11"] == "Aceh"
    assert provinces["31"] == "Daerah Khusus Ibukota Jakarta"


def test_bali_has_nine_regencies_with_readable_names() -> None:
    bali = {r.code: r.name for r in read_regencies() if r.province_code == "51"}
    assert bali == {
        "51.01": "Kabupaten Jembrana",
        "51.02": "Kabupaten Tabanan",
        "51.03": "Kabupaten Badung",
        "51.04": "Kabupaten Gianyar",
        "51.05": "Kabupaten Klungkung",
        "51.06": "Kabupaten Bangli",
        "51.07": "Kabupaten Karangasem",
        "51.08": "Kabupaten Buleleng",
        "51.71": "Kota Denpasar",
    }


def test_the_branch_regencies_have_437_villages(branch_villages: list[Village]) -> None:
    per_regency = Counter(village.code[:5] for village in branch_villages)
    assert per_regency == BRANCH_REGENCIES
    assert len(branch_villages) == 437


def test_bali_has_57_kecamatan_and_636_desa_plus_80_kelurahan(
    bali_villages: list[Village],
) -> None:
    districts = read_districts(BALI_REGENCIES)
    assert len(districts) == 57
    assert all(d.regency_code == d.code[:5] for d in districts)
    kinds = Counter(village.kind for village in bali_villages)
    assert kinds == {"desa": 636, "kelurahan": 80}


def test_dajan_peken_is_a_desa_in_tabanan(branch_villages: list[Village]) -> None:
    village = next(v for v in branch_villages if v.code == "51.02.05.2006")
    assert village == Village("51.02.05.2006", "51.02.05", "Dajan Peken")
    assert village.kind == "desa"
    (district,) = (d for d in read_districts(["51.02"]) if d.code == village.district_code)
    assert (district.name, district.regency_code) == ("Tabanan", "51.02")


def test_sidakarya_is_a_desa_in_denpasar_selatan(branch_villages: list[Village]) -> None:
    village = next(v for v in branch_villages if v.code == "51.71.01.2007")
    assert (village.name, village.kind) == ("Sidakarya", "desa")
    (district,) = (d for d in read_districts(["51.71"]) if d.code == "51.71.01")
    assert district.name == "Denpasar Selatan"


def test_denpasar_kelurahan_are_told_apart_from_desa(branch_villages: list[Village]) -> None:
    denpasar = [v for v in branch_villages if v.district_code.startswith("51.71.")]
    kelurahan = {v.name for v in denpasar if v.kind == "kelurahan"}
    assert len(kelurahan) == 16
    assert {"Sanur", "Serangan", "Renon", "Panjer", "Sesetan", "Pedungan"} <= kelurahan
    assert all(v.code.split(".")[3].startswith("1") for v in denpasar if v.kind == "kelurahan")
    assert {"Sidakarya", "Sanur Kaja", "Pemogan"}.isdisjoint(kelurahan)


def test_without_a_filter_all_of_indonesia_is_read() -> None:
    villages = read_villages()
    assert len(villages) > 80_000
    assert villages[0] == Village("11.01.01.2001", "11.01.01", "Keude Bakongan")
    assert [v.code for v in villages] == sorted(v.code for v in villages)
    assert len(read_districts()) > 7_000


def test_a_single_regency_code_must_come_in_a_collection() -> None:
    with pytest.raises(TypeError):
        read_villages("51.02")
    assert {v.code[:5] for v in read_villages(["51.02"])} == {"51.02"}


# --- matching what people type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("  Dajan-Peken ", "dajan peken"),
        ("DAJAN   PEKEN", "dajan peken"),
        ("Nuapu’u", "nuapuu"),
        ("Ki'e", "kie"),
        ("Mns. Timu (X)", "mns timu x"),
        ("Séséten", "seseten"),
    ],
)
def test_names_are_normalised_for_comparison(typed: str, expected: str) -> None:
    assert normalise_name(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["Dajan Peken", "dajan peken", "DajanPeken", "dajanpeken", "  dajan-peken ", "dajan pekan"],
)
def test_a_worker_finds_dajan_peken_however_it_is_typed(
    typed: str, branch_villages: list[Village]
) -> None:
    matches = match_names(typed, candidates(branch_villages, "51.02."))
    assert matches[0][0] == "51.02.05.2006"


@pytest.mark.parametrize("typed", ["sidakarya", "Sidakarya", "sidakaria", "desa sidakarya"])
def test_a_worker_finds_sidakarya_despite_a_typo(
    typed: str, branch_villages: list[Village]
) -> None:
    matches = match_names(typed, candidates(branch_villages, "51.71.01."))
    assert matches[0][0] == "51.71.01.2007"
    assert all(0 < score <= 1 for _, score in matches)


def test_an_exact_name_ranks_first_with_full_score(branch_villages: list[Village]) -> None:
    matches = match_names("sanur", candidates(branch_villages, "51.71."))
    assert matches[0] == ("51.71.01.1006", 1.0)
    # Sanur Kaja and Sanur Kauh are offered too, below the exact match.
    assert {key for key, _ in matches[1:]} == {"51.71.01.2009", "51.71.01.2010"}
    assert all(score < 1 for _, score in matches[1:])


def test_a_typo_scores_below_an_exact_match(branch_villages: list[Village]) -> None:
    tabanan = candidates(branch_villages, "51.02.")
    ((_, exact),) = match_names("dajan peken", tabanan)
    ((_, typo),) = match_names("dajan pekan", tabanan)
    assert exact == 1.0
    assert 0.75 <= typo < 1.0


def test_a_name_from_elsewhere_matches_nothing(branch_villages: list[Village]) -> None:
    denpasar = candidates(branch_villages, "51.71.")
    assert match_names("Jakarta Pusat", denpasar) == []
    assert match_names("xyz", denpasar) == []
    assert match_names(" - ", denpasar) == []


def test_at_most_limit_matches_come_back_best_first(branch_villages: list[Village]) -> None:
    matches = match_names("dangin puri", candidates(branch_villages, "51.71."), limit=3)
    assert len(matches) == 3
    assert matches[0] == ("51.71.02.1010", 1.0)
    scores = [score for _, score in matches]
    assert scores == sorted(scores, reverse=True)


def test_matching_keeps_the_callers_keys() -> None:
    options = [("a", "Sanur Kaja"), ("b", "Sanur Kauh"), ("c", "Sanur")]
    assert match_names("Sanur Kauh", options, limit=1) == [("b", 1.0)]


# --- the build script ------------------------------------------------------------------------


# Unsorted, with stray spaces, one all-lower-case name and a quote, as the real files have.
DEFAULT_VILLAGES = (
    "code,district_code,name\n"
    "51.71.01.2007,51.71.01, Sidakarya \n"
    "51.02.05.2006,51.02.05,Dajan Peken\n"
    "51.71.01.1006,51.71.01,sanur\n"
    '51.71.01.2009,51.71.01,"Sanur Kaja, ""Utara"""\n'
)


def write_source(root: Path, *, villages: str | None = None) -> Path:
    """Write a tiny idn-area-data package (two regencies of Bali) and return its data folder."""
    data = root / "package" / "data"
    data.mkdir(parents=True)
    (root / "package" / "package.json").write_text(
        json.dumps({"name": "idn-area-data", "version": "4.0.1", "license": "MIT"})
    )
    (data / "LICENSE.md").write_text("# Open Database License (ODbL)\n\nThe full text.\n")
    (data / "provinces.csv").write_text("code,name\n52,Nusa Tenggara Barat\n51,Bali\n")
    # An older, all-caps style file: it is put into display case.
    (data / "regencies.csv").write_text(
        "code,province_code,name\n51.71,51,KOTA DENPASAR\n51.02,51,KABUPATEN TABANAN\n"
        "52.01,52,KABUPATEN LOMBOK BARAT\n"
    )
    (data / "districts.csv").write_text(
        "code,regency_code,name\n51.02.05,51.02,Tabanan\n51.71.01,51.71,Denpasar  Selatan\n"
    )
    (data / "villages.csv").write_text(villages if villages is not None else DEFAULT_VILLAGES)
    (data / "islands.csv").write_text("code,regency_code,coordinate,name\n51.02.40001,51.02,x,P\n")
    return data


def unpack(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def test_the_build_script_writes_sorted_display_case_csv_files(tmp_path: Path) -> None:
    source = write_source(tmp_path)
    output = tmp_path / "areas"
    assert build(source, output) == [2, 3, 2, 4]

    assert unpack(output / "provinces.csv.gz") == (
        "code,parent_code,name\n51,,Bali\n52,,Nusa Tenggara Barat\n"
    )
    assert unpack(output / "regencies.csv.gz") == (
        "code,parent_code,name\n"
        "51.02,51,Kabupaten Tabanan\n51.71,51,Kota Denpasar\n52.01,52,Kabupaten Lombok Barat\n"
    )
    assert unpack(output / "districts.csv.gz") == (
        "code,parent_code,name\n51.02.05,51.02,Tabanan\n51.71.01,51.71,Denpasar Selatan\n"
    )
    assert unpack(output / "villages.csv.gz") == (
        "code,parent_code,name\n"
        "51.02.05.2006,51.02.05,Dajan Peken\n"
        "51.71.01.1006,51.71.01,Sanur\n"
        "51.71.01.2007,51.71.01,Sidakarya\n"
        '51.71.01.2009,51.71.01,"Sanur Kaja, ""Utara"""\n'
    )
    rows = list(csv.reader(io.StringIO(unpack(output / "villages.csv.gz"))))
    assert rows[-1] == ["51.71.01.2009", "51.71.01", 'Sanur Kaja, "Utara"']
    assert sorted(path.name for path in output.iterdir()) == [
        "ATTRIBUTION.md",
        "LICENSE-ODbL.txt",
        "districts.csv.gz",
        "provinces.csv.gz",
        "regencies.csv.gz",
        "villages.csv.gz",
    ]


def test_rebuilding_gives_identical_bytes(tmp_path: Path) -> None:
    source = write_source(tmp_path)
    build(source, tmp_path / "first")
    build(source, tmp_path / "second")
    for first in (tmp_path / "first").iterdir():
        assert first.read_bytes() == (tmp_path / "second" / first.name).read_bytes(), first.name
        if first.suffix == ".gz":
            # No timestamp and no file name in the gzip header.
            assert first.read_bytes()[3:8] == b"\x00\x00\x00\x00\x00"


def test_the_licence_and_attribution_travel_with_the_data(tmp_path: Path) -> None:
    source = write_source(tmp_path)
    build(source, tmp_path / "areas")
    licence = (tmp_path / "areas" / "LICENSE-ODbL.txt").read_bytes()
    assert licence == (source / "LICENSE.md").read_bytes()
    attribution = (tmp_path / "areas" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "idn-area-data 4.0.1" in attribution
    assert "Open Database License" in attribution
    assert "scripts/build_areas.py" in attribution


def test_a_village_of_an_unknown_district_stops_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_source(
        tmp_path, villages="code,district_code,name\n51.02.09.2001,51.02.09,Nowhere\n"
    )
    with pytest.raises(SourceError, match=r"51\.02\.09"):
        build(source, tmp_path / "areas")
    assert main(["--source", str(source), "--output", str(tmp_path / "areas")]) == 1
    assert "51.02.09" in capsys.readouterr().err
    assert not (tmp_path / "areas").exists()


def test_the_command_line_rebuilds_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_source(tmp_path)
    assert main(["--source", str(source), "--output", str(tmp_path / "areas")]) == 0
    assert "villages: 4" in capsys.readouterr().out
    assert (tmp_path / "areas" / "villages.csv.gz").is_file()


@pytest.mark.parametrize(
    ("capitals", "display"),
    [
        ("KABUPATEN TABANAN", "Kabupaten Tabanan"),
        ("KI'E", "Ki'e"),
        ("SIMPANG IV TANJUNG", "Simpang IV Tanjung"),
        ("LUBUK PAKAM I,II", "Lubuk Pakam I,II"),
        ("LAWE PETANDUK-II", "Lawe Petanduk-II"),
    ],
)
def test_all_caps_names_get_display_case(capitals: str, display: str) -> None:
    assert title_case(capitals) == display


def test_a_text_longer_than_any_name_matches_nothing() -> None:
    """A pasted paragraph is not a village name: no fuzzy matching is tried on it."""
    candidates = [("1", "Dajan Peken"), ("2", "Sidakarya")]
    assert match_names("Dajan Peken " * 400, candidates) == []
    assert match_names("x" * (MAX_NAME_LENGTH + 1), candidates) == []
    assert match_names("dajan peken", candidates)[0][0] == "1"
