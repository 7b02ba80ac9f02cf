"""`make bench`, bulk step: `flask customers import` of a CSV file into a sqlite file.

Run from the repository root: `.venv/bin/python -m bench.bulk_import`. Environment:
BENCH_BULK_ROWS (default 100000), BENCH_BULK_RUNS (default 3).

The yardstick is a bare `executemany` of the same rows, read from the same file with
`csv.reader`, into the same schema (the store's, WAL, synchronous=FULL), in one
transaction: no validation, no batching, no reporting. The import runs the real
command in-process (Flask's CLI runner) on a fresh database each run; runs alternate
with the yardstick's, and the best of each is kept, since the machine is shared.
The ratio is the figure to track. Last, the peak memory of the command in a fresh
process for a tenth of the rows and for all of them shows whether it stays flat.
The report is printed and written to bench/results/bulk_import.md.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import create_app
from business_client import is_valid_business_id
from customers.file_rows import FIELDS
from customers.stores.sqlite import INSERT, SqliteStore
from db import email_key

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "bulk_import.md"
TARGET_RATIO = 0.5


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def business_ids() -> list[str]:
    """A few hundred valid business IDs, as a real customer list would have."""
    found = []
    for number in range(1_000_000, 1_200_000, 97):
        for check in range(10):
            candidate = f"{number:07d}-{check}"
            if is_valid_business_id(candidate):
                found.append(candidate)
                break
    return found[:500]


def write_csv(path: Path, rows: int) -> None:
    """An export-shaped file: every field, ids and timestamps included, as a migration has."""
    ids = business_ids()
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for n in range(rows):
            stamp = f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00.{n:06d}Z"
            writer.writerow(
                [
                    f"imp-{n:08d}",
                    f"Asiakas Nro {n} Meikäläinen",
                    f"asiakas.{n}@example{n % 50}.fi",
                    f"+358 40 {n % 1000:03d} {n % 10000:04d}" if n % 3 else "",
                    ids[n % len(ids)] if n % 2 else "",
                    stamp,
                    stamp,
                ]
            )


def yardstick(source: Path, database: Path) -> float:
    """Seconds for a bare executemany of the file's rows into the store's schema."""
    SqliteStore(str(database)).close()  # the schema, exactly as the service makes it
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    started = time.perf_counter()
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.execute("BEGIN IMMEDIATE")
        # By column name: INSERT names its parameters, so a new column cannot shift them.
        conn.executemany(
            INSERT,
            (
                {
                    "id": i,
                    "name": name,
                    "email": email,
                    "email_key": email_key(email),
                    "phone": phone or None,
                    "business_id": bid or None,
                    "created_at": c,
                    "updated_at": u,
                    "version": 1,
                }
                for i, name, email, phone, bid, c, u in reader
            ),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def service(source: Path, database: Path, rows: int) -> float:
    """Seconds for `flask customers import` of the file, in-process, on a fresh database."""
    app = create_app({"SQLITE_PATH": str(database), "LOG_LEVEL": "WARNING"})
    try:
        started = time.perf_counter()
        result = app.test_cli_runner().invoke(args=["customers", "import", str(source)])
        elapsed = time.perf_counter() - started
    finally:
        app.extensions["customer_store"].close()
        app.extensions["business_client"].close()
    expected = f"read {rows}, imported {rows}, rejected 0"
    if result.exit_code != 0 or result.stderr.splitlines()[-1] != expected:
        raise SystemExit(f"the import did not take every row: {result.stderr[-500:]}")
    return elapsed


def peak_rss_mib(source: Path, database: Path) -> float:
    """Peak resident memory of the import command run in a fresh process."""
    code = (
        "import resource, sys\n"
        "from flask.cli import main\n"
        "sys.argv = ['flask', '--app', 'app', 'customers', 'import', sys.argv[1]]\n"
        "try:\n    main()\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = {**os.environ, "SQLITE_PATH": str(database), "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(source)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the import failed: {done.stderr[-500:]}")
    return int(done.stderr.splitlines()[-1]) / 1024  # Linux reports KiB


def main() -> None:
    rows = env_int("BENCH_BULK_ROWS", 100_000)
    runs = env_int("BENCH_BULK_RUNS", 3)
    with tempfile.TemporaryDirectory(prefix="bulk-bench-") as scratch:
        work = Path(scratch)
        source = work / "customers.csv"
        write_csv(source, rows)
        size_mib = source.stat().st_size / 2**20
        print(f"bulk import: {rows:,} CSV rows ({size_mib:.1f} MiB), best of {runs} runs")
        service_times, yardstick_times = [], []
        for run in range(runs):
            yardstick_times.append(yardstick(source, work / f"yardstick-{run}.db"))
            service_times.append(service(source, work / f"service-{run}.db", rows))
            print(
                f"  run {run + 1}: import {rows / service_times[-1]:,.0f} rows/s, "
                f"executemany {rows / yardstick_times[-1]:,.0f} rows/s"
            )
        small = work / "small.csv"
        write_csv(small, rows // 10)
        memory_small = peak_rss_mib(small, work / "memory-small.db")
        memory_full = peak_rss_mib(source, work / "memory-full.db")
    service_rate = rows / min(service_times)
    yardstick_rate = rows / min(yardstick_times)
    ratio = service_rate / yardstick_rate
    verdict = "met" if ratio >= TARGET_RATIO else "MISS"
    report = "\n".join(
        [
            f"# Bulk import, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"{rows:,} CSV rows ({size_mib:.1f} MiB) into a sqlite file, best of {runs} runs; "
            f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} cores.",
            "",
            "| | rows/s | ratio | target |",
            "|---|---:|---:|---|",
            f"| `flask customers import` | {service_rate:,.0f} | {ratio:.2f} | "
            f"≥ {TARGET_RATIO:.2f}: {verdict} |",
            f"| yardstick: bare `executemany` | {yardstick_rate:,.0f} | 1.00 | |",
            "",
            f"Peak memory of the command: {memory_small:.1f} MiB for {rows // 10:,} rows, "
            f"{memory_full:.1f} MiB for {rows:,} rows.",
            "",
        ]
    )
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
