"""What one `Idempotency-Key` record costs the sqlite store, and so what the bounds allow.

Records of the largest kind a client can leave: a 255-character key, and a 201's
answer (a customer with long fields, its Location and ETag), claimed and answered
through the store's interface as the service does. The database's pages before and
after give the bytes per record, indexes and counts included; times the default
IDEMPOTENCY_KEYS_TOTAL, the most the records of all clients can take.

Run from the repository root: `.venv/bin/python -m bench.idempotency_records`
(RECORDS sets how many are written, default 20,000).
"""

from __future__ import annotations

import json
from dataclasses import replace

from bench.run import env_number
from customers.config import DEFAULTS
from customers.idempotency import HOLD_SECONDS, KEEP_SECONDS
from customers.stores.sqlite import SqliteStore
from db import IdempotencyLimits, IdempotencyRecord

CUSTOMER_ID = "0194d1c2-7a3b-7cde-8f01-23456789abcd"
ANSWER = json.dumps(
    {
        "id": CUSTOMER_ID,
        "name": "N" * 100,
        "email": "e" * 60 + "@example.com",
        "phone": "+358 40 1234567",
        "businessId": "0112038-9",
        "createdAt": "2026-12-07T03:32:29.842566Z",
        "updatedAt": "2026-12-07T03:32:29.842566Z",
    }
).encode()
HEADERS = (
    ("Content-Type", "application/json"),
    ("Location", f"/customers/{CUSTOMER_ID}"),
    ("ETag", '"1"'),
)
CLIENT = "0123456789abcdef0123456789abcdef"  # an API key's client id


def database_bytes(store: SqliteStore) -> int:
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    (page_size,) = store._conn.execute("PRAGMA page_size").fetchone()
    return int(pages) * int(page_size)


def bytes_per_record(count: int) -> float:
    store = SqliteStore(":memory:")
    unbounded = IdempotencyLimits(per_client=count, total=count, lifetime=HOLD_SECONDS)
    before = database_bytes(store)
    for serial in range(count):
        claim = IdempotencyRecord(
            CLIENT, f"{serial:08d}".ljust(255, "k"), "f" * 64, "t" * 32, 1000, owner=CLIENT
        )
        store.claim_idempotency_key(claim, now=0, limits=unbounded)
        answered = replace(
            claim,
            status=201,
            headers=HEADERS,
            body=ANSWER,
            customer_id=CUSTOMER_ID,
            expires_at=KEEP_SECONDS,
        )
        store.complete_idempotency_key(answered)
    per_record = (database_bytes(store) - before) / count
    store.close()
    return per_record


def main() -> None:
    count = int(env_number("RECORDS", 20_000))
    per_record = bytes_per_record(count)
    total = DEFAULTS["IDEMPOTENCY_KEYS_TOTAL"]
    print(f"{per_record / 1024:.2f} KiB per record ({count} records, {len(ANSWER)}-byte answer)")
    print(f"IDEMPOTENCY_KEYS_TOTAL={total}: at most {per_record * total / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
