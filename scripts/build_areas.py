"""Regenerate bot/data/areas/ from the CSV files of the idn-area-data package.

Usage::

    npm pack idn-area-data@4 && tar xzf idn-area-data-4.*.tgz
    python -m scripts.build_areas --source package/data

The output is a derivative database under the ODbL: four gzip-compressed CSV files with the
columns ``code,parent_code,name``, the licence text, and an attribution note. Running the script
twice on the same source gives identical bytes, so a diff of the folder shows real data changes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "bot" / "data" / "areas"
PACKAGE_NAME = "idn-area-data"
UPSTREAM_URL = "https://github.com/fityannugroho/idn-area-data"


@dataclass(frozen=True, slots=True)
class Level:
    """One level of the area tree as the source package lays it out."""

    name: str
    parent_column: str | None
    code_pattern: re.Pattern[str]


LEVELS = (
    Level("provinces", None, re.compile(r"\d{2}")),
    Level("regencies", "province_code", re.compile(r"\d{2}\.\d{2}")),
    Level("districts", "regency_code", re.compile(r"\d{2}\.\d{2}\.\d{2}")),
    Level("villages", "district_code", re.compile(r"\d{2}\.\d{2}\.\d{2}\.\d{4}")),
)

Row = tuple[str, str, str]

_ROMAN_NUMERAL = re.compile(r"(?=[IVX])X{0,3}(IX|IV|V?I{0,3})")
_LETTERS = re.compile(r"[^\W\d_]+")
_APOSTROPHES = "'’`ʼ"


class SourceError(ValueError):
    """The source folder is missing a file or holds data that does not fit together."""


def title_case(name: str) -> str:
    """Turn an all-caps name into display case, keeping Roman numerals such as ``II``."""

    def fix(match: re.Match[str]) -> str:
        word = match.group()
        after_apostrophe = match.start() > 0 and name[match.start() - 1] in _APOSTROPHES
        if after_apostrophe:
            # The tail of an elided word ("KI'E" -> "Ki'e") is never a word of its own.
            return word.lower()
        if _ROMAN_NUMERAL.fullmatch(word):
            return word
        return word[0].upper() + word[1:].lower()

    return _LETTERS.sub(fix, name)


def display_name(raw: str, *, shouting_source: bool) -> str:
    """Return the readable form of a source name, keeping its official spelling."""
    name = " ".join(raw.split())
    if shouting_source and name.isupper():
        return title_case(name)
    if name.islower():
        # A few names arrive in lower case; capitalise them like their neighbours.
        return title_case(name.upper())
    return name


def _is_shouting(names: Sequence[str]) -> bool:
    """Tell whether most names of a file are written in capitals (older Kemendagri style)."""
    lettered = [name for name in names if any(char.isalpha() for char in name)]
    return sum(name.isupper() for name in lettered) * 2 > len(lettered)


def read_level(source: Path, level: Level) -> list[Row]:
    """Read one source CSV file into sorted ``(code, parent_code, name)`` rows."""
    path = source / f"{level.name}.csv"
    if not path.is_file():
        raise SourceError(f"{path} is missing")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.DictReader(handle))
    columns = ["code", "name"] + ([level.parent_column] if level.parent_column else [])
    if records and not set(columns) <= records[0].keys():
        raise SourceError(f"{path} lacks one of the columns {', '.join(columns)}")
    shouting = _is_shouting([record["name"] for record in records])
    rows: list[Row] = []
    for record in records:
        code = record["code"].strip()
        parent = record[level.parent_column].strip() if level.parent_column else ""
        if not level.code_pattern.fullmatch(code):
            raise SourceError(f"{path}: code {code!r} does not look like a {level.name} code")
        if parent and code.rpartition(".")[0] != parent:
            raise SourceError(f"{path}: {code} is filed under {parent}")
        rows.append((code, parent, display_name(record["name"], shouting_source=shouting)))
    rows.sort()
    return rows


def check_tree(levels: Sequence[list[Row]]) -> None:
    """Refuse duplicate codes and areas whose parent is not in the level above."""
    known_parents: set[str] = {""}
    for level, rows in zip(LEVELS, levels, strict=True):
        codes = [code for code, _, _ in rows]
        if len(set(codes)) != len(codes):
            raise SourceError(f"{level.name}: duplicate codes")
        orphans = sorted({parent for _, parent, _ in rows} - known_parents)
        if orphans:
            raise SourceError(f"{level.name}: unknown parent codes {', '.join(orphans[:5])}")
        known_parents = set(codes)


def encode_rows(rows: Sequence[Row]) -> bytes:
    """Write rows as a gzip-compressed CSV file with fixed header bytes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("code", "parent_code", "name"))
    writer.writerows(rows)
    # mtime=0 and no file name in the header keep the bytes identical on every run.
    return gzip.compress(text.getvalue().encode("utf-8"), compresslevel=9, mtime=0)


def package_version(source: Path) -> str:
    """Read the source package's version from the package.json beside its data folder."""
    manifest = source.parent / "package.json"
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceError(f"{manifest} is missing; point --source at the package's data") from exc
    if meta.get("name") != PACKAGE_NAME or not isinstance(meta.get("version"), str):
        raise SourceError(f"{manifest} does not describe {PACKAGE_NAME}")
    version: str = meta["version"]
    return version


def attribution(version: str, counts: Sequence[int]) -> str:
    """Compose ATTRIBUTION.md for the generated files."""
    listing = "\n".join(
        f"- `{level.name}.csv.gz` — {count} rows"
        for level, count in zip(LEVELS, counts, strict=True)
    )
    return f"""# Indonesian administrative areas: source and licence

The files in this folder are a derivative database of **{PACKAGE_NAME} {version}**
(Indonesian Area Data, *Data Wilayah Indonesia*) by Fityan (fityannugroho):
<{UPSTREAM_URL}>.
Upstream compiles the official area codes and names of the Ministry of Home Affairs
(Kementerian Dalam Negeri); its `docs/references.md` lists the Keputusan Menteri Dalam
Negeri it follows.

The data are made available under the **Open Database License (ODbL) v1.0**; the full text,
as shipped by the package, is in `LICENSE-ODbL.txt`. This derivative database is offered
under the same licence. The project's own code is licensed separately.

{listing}

Each file is UTF-8 CSV with the columns `code,parent_code,name`, sorted by code. Codes keep
the dotted Kemendagri form (`51`, `51.02`, `51.02.05`, `51.02.05.2006`). Changes from the
source: the four levels share one column layout, whitespace in names is collapsed, names
written wholly in lower case (or in capitals, when a source file is in capitals) are put in
display case, and the files are gzip-compressed. Islands are left out.

## Regenerating

These files are produced by `scripts/build_areas.py`; do not edit them by hand.
From the repository root:

```sh
npm pack {PACKAGE_NAME}@{version}
tar xzf {PACKAGE_NAME}-{version}.tgz
python -m scripts.build_areas --source package/data
rm -r package {PACKAGE_NAME}-{version}.tgz
```

The script is deterministic: the same source gives the same bytes.

## Notice for what the bot shows

Area names and codes the bot shows or exports come from {PACKAGE_NAME}
(<{UPSTREAM_URL}>) and are available under the ODbL; keep a notice saying so
wherever the bot presents them to the public (ODbL section 4.3).
"""


def build(source: Path, output: Path) -> list[int]:
    """Regenerate every file of the output folder from the source data folder."""
    version = package_version(source)
    licence = source / "LICENSE.md"
    if not licence.is_file():
        raise SourceError(f"{licence} is missing")
    levels = [read_level(source, level) for level in LEVELS]
    check_tree(levels)
    counts = [len(rows) for rows in levels]
    output.mkdir(parents=True, exist_ok=True)
    for level, rows in zip(LEVELS, levels, strict=True):
        (output / f"{level.name}.csv.gz").write_bytes(encode_rows(rows))
    (output / "LICENSE-ODbL.txt").write_bytes(licence.read_bytes())
    (output / "ATTRIBUTION.md").write_text(attribution(version, counts), encoding="utf-8")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and rebuild the area files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help=f"the data folder of the unpacked {PACKAGE_NAME} package (holds provinces.csv)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder to write (default: bot/data/areas of this repository)",
    )
    args = parser.parse_args(argv)
    try:
        counts = build(args.source, args.output)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for level, count in zip(LEVELS, counts, strict=True):
        print(f"{level.name}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
