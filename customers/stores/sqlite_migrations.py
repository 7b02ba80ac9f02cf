"""The sqlite store's schema, built by frozen, numbered steps.

Step N takes a database from schema version N - 1 to N. A new database runs every step
from 1, so a new file and one made by any earlier release are built by the same
statements, and `PRAGMA user_version` records how many steps a file has had. `migrate`
runs the steps a file lacks, all in one transaction.

To change the schema, add a step, as sqlite-migrate and Alembic add one per change:

1. Append a `Step` to `STEPS` numbered one past the last. Write its statements as
   literal SQL that names every table, column and index itself: never build a step
   from the store's current SQL or from another step. The current schema moves on, and
   a step must do, on a file at the version before it, exactly what it did when it was
   released.
2. Released steps are frozen: never edit, reorder or remove one. Files out there were
   migrated by the released text, so a fix is a new step too.
   tests/unit/test_sqlite_migrations.py keeps a hash of every released step and fails
   when one changes; record the new step's hash there.
3. Make a fixture of the version the new step starts from, with the code of its last
   release (tests/data/make_schema_fixture.py says how). The migration test opens every
   fixture with the current store and compares it with a new file, schema and rows.
4. Bring the store's own SQL (customers/stores/sqlite.py) to the new layout.

Steps are lists of statements, not scripts: a trigger's body holds semicolons, and
`executescript` would commit before running, where a half-done migration must roll back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """The statements that take a database from schema version `version - 1` to `version`."""

    version: int
    statements: tuple[str, ...]


STEPS: tuple[Step, ...] = (
    # 1: customers, unique by a case-folded email, listed by (created_at, id), also
    # within one business.
    Step(
        1,
        (
            """CREATE TABLE IF NOT EXISTS customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    phone       TEXT,
    business_id TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS customers_email_key ON customers (email_key)",
            "CREATE INDEX IF NOT EXISTS customers_listing ON customers (created_at, id)",
            "CREATE INDEX IF NOT EXISTS customers_business"
            " ON customers (business_id, created_at, id)",
        ),
    ),
    # 2: the same columns and indexes in a WITHOUT ROWID table, the rows moved over. The
    # table is then the B-tree on `id`, so no separate index maps ids to rows; ids are
    # time-ordered, so rows are appended, and a customer costs about a sixth less memory
    # (see bench/results/history.md).
    Step(
        2,
        (
            "DROP INDEX customers_email_key",
            "DROP INDEX customers_listing",
            "DROP INDEX customers_business",
            "ALTER TABLE customers RENAME TO customers_v1",
            """CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    phone       TEXT,
    business_id TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
) WITHOUT ROWID""",
            "CREATE UNIQUE INDEX customers_email_key ON customers (email_key)",
            "CREATE INDEX customers_listing ON customers (created_at, id)",
            "CREATE INDEX customers_business ON customers (business_id, created_at, id)",
            """INSERT INTO customers (id, name, email, email_key, phone, business_id, created_at,
    updated_at, version)
SELECT id, name, email, email_key, phone, business_id, created_at, updated_at, version
FROM customers_v1""",
            "DROP TABLE customers_v1",
        ),
    ),
    # 3: requests made with an idempotency key, by client scope and key; the expiry index
    # makes purging as we go a short range scan.
    Step(
        3,
        (
            """CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    token       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL,
    customer_id TEXT,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID""",
            "CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)",
        ),
    ),
    # 4: each record names the client it counts against (`owner`, until now its scope),
    # and triggers keep the live records of each owner, and of all ('*', which no owner
    # is; the store's ALL_OWNERS), counted in `idempotency_counts`, so a claim checks its
    # bounds with one indexed read. A count that drops to 0 goes, so the table holds one
    # row per client with live records.
    Step(
        4,
        (
            "ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
            "UPDATE idempotency_keys SET owner = scope",
            "CREATE INDEX idempotency_keys_owner ON idempotency_keys (owner, expires_at)",
            """CREATE TABLE idempotency_counts (
        owner TEXT PRIMARY KEY,
        live  INTEGER NOT NULL
    ) WITHOUT ROWID""",
            """INSERT INTO idempotency_counts (owner, live)
        SELECT owner, count(*) FROM idempotency_keys GROUP BY owner
        UNION ALL SELECT '*', count(*) FROM idempotency_keys HAVING count(*) > 0""",
            """CREATE TRIGGER idempotency_keys_counted AFTER INSERT ON idempotency_keys BEGIN
        INSERT INTO idempotency_counts (owner, live) VALUES (NEW.owner, 1), ('*', 1)
            ON CONFLICT (owner) DO UPDATE SET live = live + 1;
    END""",
            """CREATE TRIGGER idempotency_keys_uncounted AFTER DELETE ON idempotency_keys BEGIN
        UPDATE idempotency_counts SET live = live - 1 WHERE owner IN (OLD.owner, '*');
        DELETE FROM idempotency_counts WHERE owner IN (OLD.owner, '*') AND live <= 0;
    END""",
        ),
    ),
    # 5: the records that name a customer (the answers of creates that made one), by that
    # customer, so a delete finds the answer to erase with one indexed read. Partial:
    # other records name none.
    Step(
        5,
        (
            "CREATE INDEX idempotency_keys_customer ON idempotency_keys (customer_id)"
            " WHERE customer_id IS NOT NULL",
        ),
    ),
    # 6: each customer's change history, keyed by customer and version, the order it pages
    # in (and no version recorded twice); the `at` index makes purging the entries past
    # their retention a short range scan. `changes` is the entry's JSON object.
    Step(
        6,
        (
            """CREATE TABLE customer_history (
        customer_id TEXT NOT NULL,
        version     INTEGER NOT NULL,
        at          TEXT NOT NULL,
        action      TEXT NOT NULL,
        actor       TEXT,
        request_id  TEXT,
        changes     TEXT NOT NULL,
        PRIMARY KEY (customer_id, version)
    ) WITHOUT ROWID""",
            "CREATE INDEX customer_history_at ON customer_history (at)",
        ),
    ),
    # 7: the change events, the outbox the feed and webhooks read, and the webhooks'
    # state. `seq` is the one global order: writers hold the write lock (BEGIN IMMEDIATE)
    # while they insert, so sequence order is commit order, and AUTOINCREMENT never hands
    # a number out twice, even once the newest events are purged. The `time` index makes
    # purging a range scan; the `subject` index serves the feed filtered to one customer.
    Step(
        7,
        (
            """CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL UNIQUE,
        type    TEXT NOT NULL,
        subject TEXT NOT NULL,
        time    TEXT NOT NULL,
        data    TEXT NOT NULL
    )""",
            "CREATE INDEX events_time ON events (time)",
            "CREATE INDEX events_subject ON events (subject, seq)",
            # Webhooks: each endpoint's place in the events (the relay copies what comes
            # after it into deliveries, in one transaction), and whether a 410 turned it off.
            """CREATE TABLE webhook_endpoints (
        url         TEXT PRIMARY KEY,
        after_seq   INTEGER NOT NULL,
        disabled_at TEXT
    ) WITHOUT ROWID""",
            # An event to deliver to an endpoint: pending (due at `next_at`, epoch seconds),
            # or failed once its retries ran out; a delivered one is deleted.
            """CREATE TABLE webhook_deliveries (
        url        TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        subject    TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        first_at   REAL NOT NULL,
        next_at    REAL NOT NULL,
        last_error TEXT,
        PRIMARY KEY (url, seq)
    ) WITHOUT ROWID""",
            # A customer's deliveries to an endpoint in order: the head of each line.
            "CREATE INDEX webhook_deliveries_line ON webhook_deliveries (url, subject, seq)",
            # The one relay that delivers, among all processes sharing the file.
            """CREATE TABLE webhook_lease (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
        ),
    ),
    # 8: the events table without its two cheapest-to-lose indexes, each a b-tree every
    # write paid for: `id`'s UNIQUE (ids are UUIDv7s the writer makes, and nothing but an
    # operator's redelivery looks one up) and `time` (purging walks `seq` from the oldest
    # event instead, since sequence order is time order). SQLite drops a UNIQUE only with
    # its table, so the table is copied; the sequence's high-water mark comes along, so a
    # number handed out before the copy, even one purged since, is never handed out again.
    Step(
        8,
        (
            """CREATE TABLE events_v8 (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL,
        type    TEXT NOT NULL,
        subject TEXT NOT NULL,
        time    TEXT NOT NULL,
        data    TEXT NOT NULL
    )""",
            "INSERT INTO events_v8 (seq, id, type, subject, time, data)"
            " SELECT seq, id, type, subject, time, data FROM events ORDER BY seq",
            "DELETE FROM sqlite_sequence WHERE name = 'events_v8'",
            "INSERT INTO sqlite_sequence (name, seq)"
            " SELECT 'events_v8', seq FROM sqlite_sequence WHERE name = 'events'",
            "DROP TABLE events",
            "ALTER TABLE events_v8 RENAME TO events",
            "CREATE INDEX events_subject ON events (subject, seq)",
        ),
    ),
)

SCHEMA_VERSION = len(STEPS)


def migrate(conn: sqlite3.Connection, *, name: str, steps: Sequence[Step] = STEPS) -> None:
    """Run the steps the database on `conn` lacks, up to the last of `steps`, in one
    transaction; safe to run by every process that opens the file at start.

    BEGIN IMMEDIATE takes the write lock before the version is read, so of several
    processes starting at once one runs the steps and the others wait for it (the busy
    timeout) and find nothing left to do. `conn` must be in autocommit mode
    (`isolation_level=None`) and outside a transaction. A failing statement rolls back
    every step and is raised; a database at a version newer than `steps` know is left
    untouched and raises RuntimeError (`name` says which database).
    """
    target = len(steps)
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > target:
            raise RuntimeError(
                f"{name} has schema version {version}; this service knows up to {target}"
            )
        for step in steps[version:]:
            for statement in step.statements:
                conn.execute(statement)
        if version < target:
            conn.execute(f"PRAGMA user_version = {target:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
