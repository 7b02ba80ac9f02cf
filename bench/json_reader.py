"""The JSON array reader of customers.json_rows against ijson, the kept streaming parser.

Reads one export of ROWS customers (default 20,000, written by `write_json_array` as an
export is) through each reader, ROUNDS times (default 5), and prints the best rows per
second of each, their ratio and the peak memory each allocates (tracemalloc: Python's
allocator, which both readers' objects come from). Then feeds each the files that test
the reader's guarantees: a broken element among good ones (the row's line and the rest
of the file), a member given twice, an element over 1 MiB and a byte that is not UTF-8.
ijson is measured alone, and as "ijson+": its events built into rows by a builder that
refuses a member given twice.

ijson is not a requirement: the first run installs it into `bench/.ijson-lib` (pip
--target, beside the service's packages, never among them), the way bench.cold_start
keeps its own virtualenv. Run from the repository root:
`.venv/bin/python -m bench.json_reader`.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from bench.cold_start import ROOT
from bench.run import env_number
from customers.file_rows import CountingReader, ReadOptions, UnreadableFile
from customers.json_rows import read_json_array, write_json_array
from db import CustomerRecord

Reader = Callable[[bytes], Iterator[Any]]
IJSON = "ijson==3.6.0"
LIB = ROOT / "bench" / ".ijson-lib"


def load_ijson() -> ModuleType:
    """ijson, installed into LIB on first use; it is measured here, not depended on."""
    if not (LIB / "ijson").exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--target", str(LIB), IJSON], check=True)
    sys.path.insert(0, str(LIB))
    return importlib.import_module("ijson")


def export(rows: int) -> bytes:
    """An export of `rows` customers, as `GET /customers/export` writes one."""
    records = (
        CustomerRecord(
            id=f"c{serial:08d}",
            name=f"Customer {serial}",
            email=f"customer{serial}@example.com",
            phone="+44 20 7946 0958" if serial % 2 else None,
            business_id=f"B{serial % 97:05d}" if serial % 3 else None,
            created_at="2026-01-01T00:00:00.000000Z",
            updated_at="2026-01-02T00:00:00.000000Z",
            version=1 + serial % 4,
        )
        for serial in range(rows)
    )
    out = io.BytesIO()
    write_json_array(records, out)
    return out.getvalue()


def ours(data: bytes) -> Iterator[Any]:
    return read_json_array(CountingReader(io.BytesIO(data)), ReadOptions())


def checked_elements(events: Iterator[tuple[str, str, Any]]) -> Iterator[Any]:
    """The array's elements built from ijson's events by a builder that refuses a member
    given twice: the nearest ijson comes to the reader's checks (it has no positions, so
    still no lines, and it still stops at the first broken element)."""
    stack: list[Any] = []
    keys: list[str | None] = []
    for _prefix, event, value in events:
        if event in ("start_map", "start_array"):
            stack.append({} if event == "start_map" else [])
            keys.append(None)
            continue
        if event == "map_key":
            if value in stack[-1]:
                raise ValueError(f"{value} is given more than once")
            keys[-1] = value
            continue
        if event in ("end_map", "end_array"):
            keys.pop()
            value = stack.pop()
        if not stack:  # the top-level array has closed
            return
        if isinstance(stack[-1], list):
            if len(stack) == 1:
                yield value
            else:
                stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value


def rows_per_second(reader: Reader, data: bytes, rounds: int) -> tuple[float, int]:
    """The best rate over `rounds` reads, and how many rows a read yields."""
    best, count = 0.0, 0
    for _ in range(rounds):
        started = time.perf_counter()
        count = sum(1 for _ in reader(data))
        best = max(best, count / (time.perf_counter() - started))
    return best, count


def peak_bytes(reader: Reader, data: bytes) -> int:
    """The peak of Python allocations while reading every row (and dropping each)."""
    tracemalloc.start()
    try:
        for _ in reader(data):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def outcome(reader: Reader, data: bytes, stops: tuple[type[Exception], ...]) -> str:
    """What the reader makes of `data`: its rows (line and errors where it has them), or
    the error that stopped it."""
    seen = []
    try:
        for row in reader(data):
            if hasattr(row, "line"):
                seen.append(f"line {row.line}: {row.errors or 'ok'}")
            else:
                seen.append(f"{sorted(row)} (no line)")
    except (*stops, ValueError) as exc:
        seen.append(f"stopped: {type(exc).__name__}: {' '.join(str(exc).split())[:70]}")
    return "; ".join(seen)


GUARANTEES = {
    "broken element, then a good one": b'[\n{"name": "a"},\n{"name": },\n{"name": "c"}\n]',
    "member given twice": b'[\n{"name": "a",\n "name": "b"}\n]',
    "element of 2 MiB": b'[\n{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}\n]',
    "byte not UTF-8 on line 3": b'[\n{"name": "a"},\n{"name": "\xff"}\n]',
}


def main() -> None:
    rows = env_number("ROWS", 20_000)
    rounds = env_number("ROUNDS", 5)
    data = export(rows)
    ijson = load_ijson()

    def with_ijson(data: bytes) -> Iterator[Any]:
        return ijson.items(io.BytesIO(data), "item", use_float=True)

    def with_ijson_checked(data: bytes) -> Iterator[Any]:
        return checked_elements(ijson.parse(io.BytesIO(data), use_float=True))

    print(f"{rows} rows, {len(data) / 1e6:.1f} MB; ijson backend {ijson.backend}")
    rates = {}
    readers = (("json_rows", ours), ("ijson", with_ijson), ("ijson+", with_ijson_checked))
    for name, reader in readers:
        rate, count = rows_per_second(reader, data, rounds)
        assert count == rows, (name, count)
        rates[name] = rate
        print(f"{name:>9}: {rate:>9,.0f} rows/s, peak {peak_bytes(reader, data) / 1024:>7,.0f} KiB")
    for other in ("ijson", "ijson+"):
        print(f"json_rows / {other}: {rates['json_rows'] / rates[other]:.2f}")
    stops = (UnreadableFile, ijson.JSONError)
    for case, sample in GUARANTEES.items():
        print(f"\n{case}")
        for name, reader in readers:
            print(f"  {name:>9}: {outcome(reader, sample, stops)[:160]}")


if __name__ == "__main__":
    main()
