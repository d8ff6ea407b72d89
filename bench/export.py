"""Export benchmark: synthetic applications written as CSV and XLSX, rows/s and peak memory.

    python -m bench.export [--sizes 100000 1000000] [--formats csv xlsx] [--keep DIR]
                           [--workers N]

For each size a fresh SQLite database is filled by `demo-data`'s generator; then every format
is exported in a process of its own, so each peak resident memory (ru_maxrss) is that
export's alone. A "read" run per size reads and decrypts the rows without writing them, to
show what the read path costs by itself. The baseline, "plain", runs first and last: a few
lines of Python exporting the raw answers of the same rows (`plain_export`), so each result
can be read as a ratio to what this shared machine gives at that moment. CPU time counts the
export's worker processes too.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from bot.cli import cap_malloc_arenas
from bot.config import Settings, load_settings
from bot.runtime import open_runtime
from bot.security import generate_key
from bot.services.demo import add_demo_data
from bot.services.export import ExportRequest, export_cells, run_export
from bot.services.export_ahead import fill_export_cells

KEY_ENV = "BENCH_EXPORT_KEY"


def _settings(database: Path, key: str) -> Settings:
    return load_settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{database}", data_key=key
    )


async def fill(database: Path, key: str, size: int) -> float:
    """Fill a new database with `size` synthetic applications; return the seconds taken."""
    async with open_runtime(_settings(database, key)) as runtime:
        started = time.perf_counter()
        done = 0
        while done < size:
            # One transaction per 50 000 keeps the journal small.
            part = min(50_000, size - done)
            async with runtime.sessions() as session, session.begin():
                await add_demo_data(
                    session, runtime.cipher, runtime.areas, applications=part, seed=done
                )
                # As `demo-data` (and the bot) leave them: with their export cells made.
                await fill_export_cells(session, runtime.cipher, runtime.areas, runtime.settings)
            done += part
        return time.perf_counter() - started


def _cpu_seconds() -> float:
    # This process and its finished children (an export's worker processes).
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def plain_export(database: Path, key: str, output: Path) -> int:
    """The baseline: the export a few lines of Python make of the same rows, in one process.

    Fernet per token, the raw answers as they are (no computed columns, no neutralising),
    Python's csv writer: the speed of this machine at this moment for the same work, so the
    export's rows/s can be read as a ratio to it.
    """
    fernet = Fernet(key.encode())
    selected = (
        "SELECT answers_enc FROM applications WHERE status != 'draft' ORDER BY submitted_at, id"
    )
    rows = 0
    with sqlite3.connect(database) as connection, output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for (token,) in connection.execute(selected):
            answers = json.loads(fernet.decrypt(token.encode())) if token else {}
            writer.writerow(answers.values())
            rows += 1
    return rows


async def _export(
    database: Path, key: str, fmt: str, output: Path, workers: int | None
) -> tuple[int, float, float]:
    """One export (for fmt "read" only the read path): rows, wall and CPU seconds."""
    async with open_runtime(_settings(database, key)) as runtime, runtime.sessions() as session:
        started, cpu = time.perf_counter(), _cpu_seconds()
        if fmt == "read":
            rows = 0
            async for _cells in export_cells(
                session, runtime.cipher, runtime.areas, runtime.settings, ExportRequest()
            ):
                rows += 1
        else:
            result = await run_export(
                session,
                runtime.cipher,
                runtime.areas,
                runtime.settings,
                ExportRequest(),
                fmt,
                output,
                workers=workers,
            )
            rows = result.rows
        return rows, time.perf_counter() - started, _cpu_seconds() - cpu


async def one(
    database: Path, key: str, fmt: str, output: Path, workers: int | None
) -> dict[str, float]:
    """One export (for fmt "read" only the read path, for "plain" the baseline)."""
    if fmt == "plain":
        started, cpu = time.perf_counter(), _cpu_seconds()
        rows = plain_export(database, key, output)
        seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu
    else:
        rows, seconds, cpu_seconds = await _export(database, key, fmt, output, workers)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The largest worker process (0 without workers).
    worker_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": peak_kb / 1024,
        "worker_peak_mb": worker_kb / 1024,
    }


def _child(
    database: Path, key: str, fmt: str, output: Path, workers: int | None
) -> dict[str, float]:
    env = {**os.environ, KEY_ENV: key}
    chosen = [] if workers is None else ["--workers", str(workers)]
    done = subprocess.run(
        # Started with -c, as `python -m bot` is with its __main__: the export's spawned
        # workers then import only what they need, not this benchmark module again.
        [
            sys.executable,
            "-c",
            "from bench.export import main; raise SystemExit(main())",
            "--one",
            fmt,
            str(database),
            str(output),
            *chosen,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(prog="python -m bench.export")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx"])
    parser.add_argument("--keep", type=Path, help="keep databases and files in this folder")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: export databases kept by a former run"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes per export (default: EXPORT_WORKERS, else one per core)",
    )
    parser.add_argument(
        "--one", nargs=3, metavar=("FORMAT", "DB", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    if args.one:
        # As `python -m bot export` runs (see bot.cli.cap_malloc_arenas).
        cap_malloc_arenas()
        fmt, database, output = args.one
        found = asyncio.run(
            one(Path(database), os.environ[KEY_ENV], fmt, Path(output), args.workers)
        )
        written = Path(output)
        found["file_mb"] = written.stat().st_size / 2**20 if written.exists() else 0.0
        print(json.dumps(found))
        return 0
    print(
        f"Export benchmark on {platform.node()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "bench.key"
        reuse = args.reuse and args.keep is not None and key_file.exists()
        key = key_file.read_text() if reuse else generate_key()
        key_file.write_text(key)
        for size in args.sizes:
            database = folder / f"export-{size}.db"
            if not (reuse and database.exists()):
                database.unlink(missing_ok=True)
                seconds = asyncio.run(fill(database, key, size))
                print(f"{size:>9} rows  demo-data  {seconds:6.1f} s  {size / seconds:8.0f} rows/s")
            print(f"{'':>9}       load average {os.getloadavg()[0]:.1f}", flush=True)
            baseline = 0.0
            # The baseline first and last: the machine's speed may change during the run.
            for fmt in ["plain", "read", *args.formats, "plain"]:
                output = folder / f"export-{size}.{fmt}"
                found = _child(database, key, fmt, output, args.workers)
                rate = found["rows"] / found["seconds"]
                # CPU time (its worker processes' included) is what the export itself cost;
                # wall time also holds waiting for the CPU when other work shares the machine.
                cpu_rate = found["rows"] / max(found["cpu_seconds"], 1e-9)
                baseline = baseline or rate
                print(
                    f"{size:>9} rows  {fmt:<9}  {found['seconds']:6.1f} s  {rate:8.0f} rows/s  "
                    f"({rate / baseline:4.2f} × plain)  "
                    f"(CPU {found['cpu_seconds']:6.1f} s, {cpu_rate:8.0f} rows/s)  "
                    f"peak {found['peak_mb']:6.1f} MB (workers {found['worker_peak_mb']:5.1f} MB)  "
                    f"file {found['file_mb']:7.1f} MB  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                output.unlink(missing_ok=True)
            if args.keep is None:
                database.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
