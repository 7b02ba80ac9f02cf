"""The sqlite schema: a new file gets the current layout, an older one is migrated in place."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from customers.stores import sqlite as db
from customers.stores.sqlite_migrations import SCHEMA_VERSION, STEPS
from db import (
    EmailTaken,
    EventQuery,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    ListQuery,
    retention_cutoff,
)

# The layout of schema version 1, as files made by earlier releases hold it.
SCHEMA_V1 = """
CREATE TABLE customers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, email_key TEXT NOT NULL,
    phone TEXT, business_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
PRAGMA user_version = 1;
"""

# Version 2: the same in a table without rowids, and no idempotency records yet.
SCHEMA_V2 = """
CREATE TABLE customers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, email_key TEXT NOT NULL,
    phone TEXT, business_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
PRAGMA user_version = 2;
"""


# Version 3: version 2 and the idempotency records, which name no owner yet.
SCHEMA_V3 = (
    SCHEMA_V2.replace("PRAGMA user_version = 2;", "")
    + """
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, token TEXT NOT NULL,
    expires_at INTEGER NOT NULL, status INTEGER, headers TEXT NOT NULL, body BLOB NOT NULL,
    customer_id TEXT, PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
PRAGMA user_version = 3;
"""
)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def has_rowid(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        try:
            conn.execute("SELECT rowid FROM customers").fetchall()
        except sqlite3.OperationalError:
            return False
    return True


def test_a_new_file_gets_the_current_schema_without_rowids(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db.SqliteStore(str(path)).close()
    assert user_version(path) == SCHEMA_VERSION
    assert not has_rowid(path)


def test_a_version_1_file_is_migrated_with_every_row_and_rule_kept(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V1)
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"id-{n}",
                    f"Customer {n}",
                    f"C{n}@Example.com",
                    f"c{n}@example.com",
                    None,
                    "0112038-9" if n % 2 else None,
                    f"2026-01-01T00:00:0{n}.000000Z",
                    f"2026-01-01T00:00:0{n}.000000Z",
                    1,
                )
                for n in range(5)
            ],
        )

    store = db.SqliteStore(str(path))
    try:
        page = store.list_page(ListQuery(limit=10))
        assert [record.id for record in page.items] == [f"id-{n}" for n in range(5)]
        assert store.get("id-3").email == "C3@Example.com"
        same_business = store.list_page(ListQuery(limit=10, business_id="0112038-9"))
        assert [record.id for record in same_business.items] == ["id-1", "id-3"]
        with pytest.raises(EmailTaken):
            store.create(name="Again", email="c2@EXAMPLE.com", phone=None, business_id=None)
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION
    assert not has_rowid(path)
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "customers_v1" not in tables
    assert {"customers_email_key", "customers_listing", "customers_business"} <= tables
    assert {"idempotency_keys", "idempotency_keys_expiry"} <= tables


def test_a_file_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        db.SqliteStore(str(path))
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_version_2_file_gains_the_idempotency_table_with_every_row_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V2)
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("id-1", "Kept", "Kept@x.io", "kept@x.io", None, None, "t", "t", 3),
        )
    conn.close()

    store = db.SqliteStore(str(path))
    try:
        assert store.get("id-1").version == 3
        with pytest.raises(EmailTaken):
            store.create(name="Again", email="KEPT@x.io", phone=None, business_id=None)
        claim = IdempotencyRecord("-", "key", "fingerprint", "token", 100)
        assert store.claim_idempotency_key(claim, now=1) is None
        assert store.claim_idempotency_key(claim, now=2) == claim
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION


def test_a_version_3_file_counts_its_records_against_their_scope(tmp_path: Path) -> None:
    # GIVEN a file whose client "c1" holds two live records and one expired
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V3)
        conn.executemany(
            "INSERT INTO idempotency_keys VALUES (?, ?, 'f', 't', ?, 201, '[]', x'', NULL)",
            [("c1", "k1", 1000), ("c1", "k2", 1000), ("c1", "gone", 10)],
        )
    conn.close()
    limits = IdempotencyLimits(per_client=2, total=3, lifetime=100)
    store = db.SqliteStore(str(path))
    try:
        # THEN they count against it as its own, and against the store's bound
        with pytest.raises(IdempotencyKeysExhausted) as refused:
            store.claim_idempotency_key(
                IdempotencyRecord("c1", "k3", "f", "t", 500, owner="c1"), now=20, limits=limits
            )
        assert refused.value.per_client and refused.value.retry_after == 980
        other = IdempotencyRecord("c2", "k1", "f", "t", 500, owner="c2")
        assert store.claim_idempotency_key(other, now=20, limits=limits) is None
        with pytest.raises(IdempotencyKeysExhausted) as full:
            store.claim_idempotency_key(replace(other, key="k2"), now=20, limits=limits)
        assert not full.value.per_client and full.value.retry_after == 480
        kept = store.claim_idempotency_key(replace(other, scope="c1"), now=20, limits=limits)
        assert kept is not None and kept.owner == "c1" and kept.status == 201
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION


def test_a_version_4_file_erases_the_answers_it_recorded_with_their_customer(
    tmp_path: Path,
) -> None:
    # GIVEN a version 4 file with a customer and the recorded answer of its create
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:
        for step in STEPS[:4]:
            for statement in step.statements:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("id-1", "Gone", "Gone@x.io", "gone@x.io", None, None, "t", "t", 1),
        )
        conn.execute(
            "INSERT INTO idempotency_keys VALUES"
            " ('-', 'k1', 'f', 't', 2000000000, 201, '[]', x'7b7d', 'id-1', '-')"
        )
    conn.close()
    # WHEN it is opened and the customer deleted
    store = db.SqliteStore(str(path))
    try:
        store.delete("id-1")
        record = store.claim_idempotency_key(IdempotencyRecord("-", "k1", "f", "u", 1), now=1)
    finally:
        store.close()
    # THEN the answer is a tombstone, found through the new index
    assert record == IdempotencyRecord("-", "k1", "f", "t", 2000000000, 410, (), b"", None, "-")
    assert user_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM idempotency_keys WHERE customer_id = 'id-1'"
        ).fetchall()
    conn.close()
    assert "idempotency_keys_customer" in str(plan)


def test_expired_idempotency_records_are_purged_as_keys_are_claimed(tmp_path: Path) -> None:
    path = tmp_path / "purge.db"
    store = db.SqliteStore(str(path))
    try:
        for n in range(5):  # held until 100 .. 104
            store.claim_idempotency_key(IdempotencyRecord("-", f"k{n}", "f", "t", 100 + n), now=0)
        store.claim_idempotency_key(IdempotencyRecord("-", "later", "f", "t", 1000), now=103)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        keys = {key for (key,) in conn.execute("SELECT key FROM idempotency_keys")}
    conn.close()
    assert keys == {"k4", "later"}


def test_ids_are_uuid7_in_canonical_form_and_time_ordered() -> None:
    made = [db.new_customer_id() for _ in range(2000)]
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case hex, hyphens where uuid puts them
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert len(set(made)) == len(made)
    # The first 48 bits are the millisecond clock: later ids never sort before earlier ones.
    assert [text[:13] for text in made] == sorted(text[:13] for text in made)


def test_timestamps_are_fixed_width_rfc3339_utc_with_microseconds() -> None:
    stamps = [db.utc_timestamp() for _ in range(1000)]
    for stamp in stamps:
        parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        assert parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == stamp
    assert stamps == sorted(stamps)


def test_a_version_5_file_gains_the_history_table(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    db.SqliteStore(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE customer_history")
        for table in ("events", "webhook_endpoints", "webhook_deliveries", "webhook_lease"):
            conn.execute(f"DROP TABLE {table}")  # step 7's, which a version 5 file lacks too
        conn.execute("PRAGMA user_version = 5")
    conn.close()
    store = db.SqliteStore(str(path))
    record = store.create(name="V", email="v@example.com", phone=None, business_id=None)
    assert [e.action for e in store.history_page(record.id, limit=5, after=None).items] == [
        "created"
    ]
    store.close()
    assert user_version(path) == SCHEMA_VERSION


def test_entries_past_their_retention_are_not_shown_and_purged_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = db.SqliteStore(str(path), history_retention_days=30)
    old = store.create(name="O", email="o@example.com", phone=None, business_id=None)
    store.update(old.id, changes={"name": "O2"})
    # GIVEN the first entry dated 31 days ago
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE customer_history SET at = ? WHERE version = 1", (retention_cutoff(31),)
        )
    conn.close()
    # THEN it is not shown, and a store's first write (of any customer) purges it, as
    # does one every PURGE_INTERVAL after
    assert [e.version for e in store.history_page(old.id, limit=5, after=None).items] == [2]
    store.close()
    store = db.SqliteStore(str(path), history_retention_days=30)
    store.create(name="N", email="n@example.com", phone=None, business_id=None)
    with sqlite3.connect(path) as conn:
        left = conn.execute(
            "SELECT version FROM customer_history WHERE customer_id = ?", (old.id,)
        ).fetchall()
    conn.close()
    store.close()
    assert left == [(2,)]


def test_events_past_their_retention_are_not_shown_and_purged_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = db.SqliteStore(str(path), events_retention_days=30)
    old = store.create(name="O", email="o@example.com", phone=None, business_id=None)
    store.update(old.id, changes={"name": "O2"})
    # GIVEN the first event dated 31 days ago
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET time = ? WHERE seq = 1", (retention_cutoff(31),))
    conn.close()
    # THEN it is not shown, and the store's first write purges it; the sequence goes on
    page = store.events_page(EventQuery(limit=5))
    assert [event.data["version"] for event in page.items] == [2]
    store.close()
    store = db.SqliteStore(str(path), events_retention_days=30)
    store.create(name="N", email="n@example.com", phone=None, business_id=None)
    with sqlite3.connect(path) as conn:
        left = conn.execute("SELECT seq FROM events ORDER BY seq").fetchall()
    conn.close()
    store.close()
    assert left == [(2,), (3,)]
