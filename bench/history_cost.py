"""What a create costs at the sqlite store, history entry included: run it on two trees.

    .venv/bin/python -m bench.history_cost

Times `SqliteStore.create` alone (no HTTP, no validation), in memory and on a file
(synchronous=FULL, so one fsync a create), best of five runs; run it on a checkout
before and after a change to the write path and compare.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from customers.stores.sqlite import SqliteStore


def microseconds_per_create(path: str, creates: int) -> float:
    """The best of five runs of `creates` creates, in µs each."""
    store = SqliteStore(path)
    best = float("inf")
    try:
        for run in range(5):
            started = time.perf_counter()
            for serial in range(creates):
                store.create(
                    name="Bench Person",
                    email=f"r{run}-{serial}@example.com",
                    phone="+358 40 123 4567",
                    business_id=None,
                )
            best = min(best, (time.perf_counter() - started) / creates * 1e6)
    finally:
        store.close()
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        memory = microseconds_per_create(":memory:", 3000)
        on_file = microseconds_per_create(str(Path(directory) / "bench.db"), 300)
    print(f"create at the store: memory {memory:.1f} µs, file {on_file:.1f} µs")


if __name__ == "__main__":
    main()
