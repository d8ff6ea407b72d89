"""Indonesia's official areas (province, regency, district, village) and fuzzy name search.

The data are the Kemendagri codes shipped in ``bot/data/areas`` (derived from idn-area-data
under the ODbL; see ATTRIBUTION.md there). Codes keep their dotted form: ``51`` Bali,
``51.02`` Kabupaten Tabanan, ``51.02.05`` Tabanan, ``51.02.05.2006`` Dajan Peken.
"""

from __future__ import annotations

import csv
import gzip
import io
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

from rapidfuzz.distance import OSA

MATCH_THRESHOLD = 0.75
# No place name is this long; a longer text is not a name, and matching it would only cost time.
MAX_NAME_LENGTH = 100
"""Lowest score :func:`match_names` returns; two typos in a ten-letter name still pass."""

_DATA = files("bot") / "data" / "areas"
_HEADER = ["code", "parent_code", "name"]
_APOSTROPHES = frozenset("'’`ʼ‘")


@dataclass(frozen=True, slots=True)
class Province:
    """A provinsi, such as ``51`` Bali."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Regency:
    """A kabupaten or kota, such as ``51.71`` Kota Denpasar."""

    code: str
    province_code: str
    name: str


@dataclass(frozen=True, slots=True)
class District:
    """A kecamatan, such as ``51.71.01`` Denpasar Selatan."""

    code: str
    regency_code: str
    name: str


@dataclass(frozen=True, slots=True)
class Village:
    """A desa or kelurahan, such as ``51.71.01.2007`` Sidakarya."""

    code: str
    district_code: str
    name: str

    @property
    def kind(self) -> Literal["kelurahan", "desa"]:
        """Return "kelurahan" for 1xxx codes; 2xxx are desa (3xxx, Papua's desa adat, too)."""
        return "kelurahan" if self.code.rsplit(".", 1)[-1].startswith("1") else "desa"


def _rows(level: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``(code, parent_code, name)`` from one packaged area file."""
    raw = (_DATA / f"{level}.csv.gz").read_bytes()
    reader = csv.reader(io.StringIO(gzip.decompress(raw).decode("utf-8"), newline=""))
    if next(reader) != _HEADER:
        raise ValueError(f"{level}.csv.gz does not start with the header {','.join(_HEADER)}")
    for row in reader:
        code, parent_code, name = row  # a row of any other width is a broken file
        yield code, parent_code, name


def _regency_filter(regency_codes: Collection[str] | None) -> frozenset[str] | None:
    """Return the wanted regency codes as a set, or None for all of Indonesia."""
    if regency_codes is None:
        return None
    if isinstance(regency_codes, str):
        # A bare "51.02" would otherwise be taken as the characters "5", "1", ".", ...
        raise TypeError("regency_codes must be a collection of codes, not one string")
    return frozenset(regency_codes)


def _regency_of(code: str) -> str:
    """Return the regency part (``51.02``) of a district or village code."""
    return ".".join(code.split(".", 2)[:2])


def read_provinces() -> list[Province]:
    """Return all provinces of Indonesia, sorted by code."""
    return [Province(code, name) for code, _, name in _rows("provinces")]


def read_regencies() -> list[Regency]:
    """Return all regencies and cities of Indonesia, sorted by code."""
    return [Regency(code, parent, name) for code, parent, name in _rows("regencies")]


def read_districts(regency_codes: Collection[str] | None = None) -> list[District]:
    """Return the districts of the given regencies (all when None), sorted by code."""
    wanted = _regency_filter(regency_codes)
    return [
        District(code, parent, name)
        for code, parent, name in _rows("districts")
        if wanted is None or _regency_of(code) in wanted
    ]


def read_villages(regency_codes: Collection[str] | None = None) -> list[Village]:
    """Return the villages of the given regencies (all when None), sorted by code."""
    wanted = _regency_filter(regency_codes)
    return [
        Village(code, parent, name)
        for code, parent, name in _rows("villages")
        if wanted is None or _regency_of(code) in wanted
    ]


def normalise_name(text: str) -> str:
    """Lower-case a name and drop accents and punctuation, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) or char in _APOSTROPHES:
            # Dropped without a gap: "Nuapu'u" is one word, spelt "nuapuu".
            continue
        kept.append(char if char.isalnum() else " ")
    return " ".join("".join(kept).split())


def _similarity(a: str, b: str, floor: float) -> float:
    """Score two strings from 0 to 1 (equal) by edit distance; 0 when surely below floor."""
    longest = max(len(a), len(b))
    if not longest:
        return 1.0
    if abs(len(a) - len(b)) > longest * (1 - floor):
        # The length difference alone keeps it below the floor; skip the quadratic work.
        return 0.0
    # Optimal string alignment: insert, delete, replace, or swap two neighbours, one edit each.
    return 1 - OSA.distance(a, b) / longest


@dataclass(frozen=True, slots=True)
class _Name:
    """A name prepared for comparison: its words and its letters without spaces."""

    words: tuple[str, ...]
    compact: str

    @classmethod
    def of(cls, text: str) -> _Name:
        words = tuple(normalise_name(text).split())
        return cls(words, "".join(words))


def _best_word_match(word: str, words: Sequence[str]) -> float:
    return max((_similarity(word, other, MATCH_THRESHOLD) for other in words), default=0.0)


def _score(query: _Name, candidate: _Name, floor: float) -> float:
    """Score how well a candidate name answers a query, from 0 to 1 (0 if below floor)."""
    if query.compact == candidate.compact:
        return 1.0
    whole = _similarity(query.compact, candidate.compact, floor)
    # Part of a name ("peken" for "Dajan Peken") or a name with extra words ("desa sidakarya"):
    # every word of the shorter side must be found, give or take a typo, in the longer side.
    fewer, more = sorted((query, candidate), key=lambda name: len(name.words))
    found = min((_best_word_match(word, more.words) for word in fewer.words), default=0.0)
    if found < MATCH_THRESHOLD:
        return whole
    coverage = min(len(query.compact), len(candidate.compact)) / max(
        len(query.compact), len(candidate.compact)
    )
    # At most 0.95, so a contained name never ties with an exact one, yet one whole word
    # of a long name still clears the threshold.
    return max(whole, found * (0.75 + 0.2 * coverage))


def match_names(
    query: str,
    candidates: Sequence[tuple[str, str]],
    limit: int = 5,
    *,
    min_score: float = MATCH_THRESHOLD,
) -> list[tuple[str, float]]:
    """Return the keys of the candidate names closest to the query, best first, with scores."""
    if len(query) > 4 * MAX_NAME_LENGTH:
        return []
    wanted = _Name.of(query)
    if not wanted.compact or limit <= 0 or len(wanted.compact) > MAX_NAME_LENGTH:
        return []
    spaced = " ".join(wanted.words)
    scored: list[tuple[float, bool, int, str]] = []
    for index, (key, display) in enumerate(candidates):
        name = _Name.of(display)
        score = _score(wanted, name, min_score)
        if score >= min_score:
            # Among equal scores the name typed with the same spacing wins, then input order.
            scored.append((-score, " ".join(name.words) != spaced, index, key))
    scored.sort()
    return [(key, -negative) for negative, _, _, key in scored[:limit]]
