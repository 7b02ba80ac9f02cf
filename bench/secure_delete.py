"""What `PRAGMA secure_delete = ON` costs the file store on a create and on a delete.

Creates, then deletes, CUSTOMERS customers (default 2,000) on a fresh file through the
store's interface, each with an `Idempotency-Key` answer as a retried create leaves, so
a delete also turns the answer into a tombstone. Run with secure_delete off and on, in
turns, ROUNDS times (default 3), once as the store runs (`synchronous = FULL`: an fsync
per write) and once without the fsync, which shows the work secure_delete itself adds.

Run from the repository root: `.venv/bin/python -m bench.secure_delete`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.run import env_number
from customers.stores.sqlite import SqliteStore
from db import CustomerRecord, IdempotencyRecord

KEEP_UNTIL = 4_000_000_000  # epoch seconds: far ahead, so no record expires meanwhile


def microseconds_per_write(count: int, *, secure: bool, synchronous: str) -> tuple[float, float]:
    """Mean µs per create and per delete of `count` customers on a new file."""
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(str(Path(directory) / "customers.db"))
        store._conn.execute(f"PRAGMA secure_delete = {'ON' if secure else 'OFF'}")
        store._conn.execute(f"PRAGMA synchronous = {synchronous}")
        ids = []
        started = time.perf_counter()
        for serial in range(count):
            claim = IdempotencyRecord("-", f"key-{serial}", "f" * 64, "t" * 32, KEEP_UNTIL)
            store.claim_idempotency_key(claim, now=0)

            def answer(
                customer: CustomerRecord, claim: IdempotencyRecord = claim
            ) -> IdempotencyRecord:
                body = f'{{"id": "{customer.id}", "name": "{customer.name}"}}'.encode()
                return replace(claim, status=201, body=body, customer_id=customer.id)

            created = store.create(
                name=f"Name {serial}",
                email=f"person-{serial}@example.com",
                phone="+358 40 123 4567",
                business_id=None,
                idempotency=answer,
            )
            ids.append(created.id)
        creating = time.perf_counter() - started
        started = time.perf_counter()
        for customer_id in ids:
            store.delete(customer_id)
        deleting = time.perf_counter() - started
        store.close()
    return creating / count * 1e6, deleting / count * 1e6


def main() -> None:
    count, rounds = int(env_number("CUSTOMERS", 2000)), int(env_number("ROUNDS", 3))
    for synchronous in ("FULL", "OFF"):
        for secure in (False, True):
            runs = [
                microseconds_per_write(count, secure=secure, synchronous=synchronous)
                for _ in range(rounds)
            ]
            create = statistics.median(run[0] for run in runs)
            delete = statistics.median(run[1] for run in runs)
            print(
                f"synchronous={synchronous} secure_delete={'ON ' if secure else 'OFF'}:"
                f" create {create:.0f} µs, delete {delete:.0f} µs (median of {rounds})"
            )


if __name__ == "__main__":
    main()
