"""The store on sqlite3: in memory (the default) or a file in WAL mode.

The store owns one connection and a lock: an in-memory database lives and dies
with its connection, so a connection per thread would give each thread its own
empty database. With a file (`SQLITE_PATH`), several processes may share it in
WAL mode, each with its own connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote

import orjson

from db import (
    PUBLIC_FIELDS,
    WRITABLE_COLUMNS,
    AnswerOf,
    ClaimLost,
    Conflict,
    CustomerNotFound,
    CustomerRecord,
    EmailTaken,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    JsonPage,
    ListQuery,
    Page,
    StoreUnavailable,
    VersionMismatch,
    comparable_version,
    email_key,
    new_customer_id,
    utc_timestamp,
)

SCHEMA_VERSION = 4

# WITHOUT ROWID: the table is the B-tree on `id`, so no separate index maps ids to
# rows. The ids are time-ordered, so rows are appended, and a customer costs about
# a sixth less memory than in a rowid table (see README, Performance).
SCHEMA = """
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    phone       TEXT,
    business_id TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
"""

# Version 1 kept the same columns and indexes in a rowid table: move its rows over.
MIGRATE_1_TO_2 = f"""
DROP INDEX customers_email_key;
DROP INDEX customers_listing;
DROP INDEX customers_business;
ALTER TABLE customers RENAME TO customers_v1;
{SCHEMA}
INSERT INTO customers (id, name, email, email_key, phone, business_id, created_at,
    updated_at, version)
SELECT id, name, email, email_key, phone, business_id, created_at, updated_at, version
FROM customers_v1;
DROP TABLE customers_v1;
"""

# Requests made with an idempotency key, by client scope and key; the expiry index makes
# purging as we go a short range scan.
IDEMPOTENCY_SCHEMA = """
CREATE TABLE idempotency_keys (
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
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
"""

# Version 4: each record names the client it counts against (`owner`), and triggers keep
# the live records of each owner, and of all ('*', which no owner is), counted in
# `idempotency_counts`, so a claim checks its bounds with one indexed read. A count that
# drops to 0 goes, so the table holds one row per client with live records. Statements,
# not a script: a trigger's body holds semicolons.
MIGRATE_3_TO_4 = (
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
)
ALL_OWNERS = "*"
# The readiness probe's table (see SqliteStore.check_writable): empty between probes.
HEALTH_PROBE_TABLE = "CREATE TABLE IF NOT EXISTS health_probe (written_at INTEGER NOT NULL)"

COLUMNS = "id, name, email, phone, business_id, created_at, updated_at, version"
INSERT = (
    "INSERT INTO customers (id, name, email, email_key, phone, business_id, created_at,"
    " updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
IDEMPOTENCY_COLUMNS = (
    "scope, key, fingerprint, token, expires_at, status, headers, body, customer_id, owner"
)
# A row as CustomerRecord.to_public() shows it, rendered by SQLite, then its keyset position.
PUBLIC_JSON_COLUMNS = (
    "json_object("
    + ", ".join(f"'{name}', {column}" for name, column in PUBLIC_FIELDS.items())
    + "), created_at, id"
)


def is_in_memory(path: str) -> bool:
    """Whether sqlite keeps the database `path` names inside the process that opens it.

    The one definition of "in-memory" the service uses: such a database belongs to
    one process (a second process, or a second granian worker, sees a different,
    empty one), and it has no file to put in WAL mode. It reads `path` as
    `SqliteStore` opens it, a URI when it starts with `file:`, and the way sqlite
    does: `:memory:`; the empty name (a private temporary database); URIs whose path
    is `:memory:` or empty (percent escapes decoded); `mode=memory` (the last `mode`
    wins); and the `memdb` VFS.
    """
    if not path.startswith("file:"):
        return path in ("", ":memory:")
    location, _, query = path.removeprefix("file:").partition("#")[0].partition("?")
    if location.startswith("//"):  # an authority ("" or "localhost"), then the path
        _, slash, rest = location[2:].partition("/")
        location = slash + rest
    parameters: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        parameters[unquote(name)] = unquote(value)
    return (
        unquote(location) in ("", ":memory:")
        or parameters.get("mode") == "memory"
        or parameters.get("vfs") == "memdb"
    )


def existing_only(path: str) -> str:
    """`path` as a URI that sqlite opens only when the database is already there (mode=rw).

    The last `mode` of a URI wins, so it goes after whatever the path already says.
    """
    if not path.startswith("file:"):
        return f"file:{quote(path)}?mode=rw"
    location, hash_mark, fragment = path.partition("#")
    return f"{location}{'&' if '?' in location else '?'}mode=rw{hash_mark}{fragment}"


class SqliteStore:
    """The store on sqlite3: `:memory:` (the default) or a file in WAL mode."""

    kind = "sqlite"

    def __init__(
        self, path: str = ":memory:", *, busy_timeout_ms: int = 5000, create: bool = True
    ) -> None:
        """Open (and migrate) the database at `path`; without `create`, only one that exists.

        Raises sqlite3.Error when it cannot be opened, RuntimeError for a newer schema.
        """
        self.path = path
        self.in_memory = is_in_memory(path)
        self._lock = threading.Lock()
        target = path if create or self.in_memory else existing_only(path)
        self._conn = sqlite3.connect(
            target,
            check_same_thread=False,  # shared by threads, always under self._lock
            isolation_level=None,  # autocommit; multi-statement writes BEGIN IMMEDIATE
            timeout=busy_timeout_ms / 1000,
            uri=target.startswith("file:"),
        )
        if not self.in_memory:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a write is on disk before it is acknowledged, so it survives a crash
            # of the process and of the machine.
            self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION; safe to run by every process at start."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = self._conn.execute("PRAGMA user_version").fetchone() or (0,)
                if version > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.path} has schema version {version}; this service knows "
                        f"up to {SCHEMA_VERSION}"
                    )
                if version < SCHEMA_VERSION:
                    if version < 2:
                        self._run_script(SCHEMA if version == 0 else MIGRATE_1_TO_2)
                    if version < 3:
                        self._run_script(IDEMPOTENCY_SCHEMA)
                    for statement in MIGRATE_3_TO_4:
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _run_script(self, script: str) -> None:
        """Run `;`-separated statements inside the caller's transaction.

        `executescript` would commit first, and a half-done migration must roll back.
        """
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    @contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; the caller holds the lock."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def create(
        self,
        *,
        name: str,
        email: str,
        phone: str | None,
        business_id: str | None,
        idempotency: AnswerOf | None = None,
    ) -> CustomerRecord:
        now = utc_timestamp()
        record = CustomerRecord(new_customer_id(), name, email, phone, business_id, now, now, 1)
        insert = (
            "INSERT INTO customers (id, name, email, email_key, phone, business_id,"
            " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        values = (record.id, name, email, email_key(email), phone, business_id, now, now, 1)
        answered = idempotency(record) if idempotency is not None else None
        try:
            with self._lock:
                if answered is None:
                    self._conn.execute(insert, values)
                else:
                    # One transaction: a crash leaves both the customer and the answer
                    # that names it, or neither.
                    with self._write_transaction():
                        self._complete_idempotency_key(answered)
                        self._conn.execute(insert, values)
        except sqlite3.IntegrityError as exc:
            raise EmailTaken(email) from exc
        return record

    def get(self, customer_id: str) -> CustomerRecord:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {COLUMNS} FROM customers WHERE id = ?", (customer_id,)
            ).fetchone()
        if row is None:
            raise CustomerNotFound(customer_id)
        return CustomerRecord(*row)

    @staticmethod
    def _page_query(select: str, query: ListQuery) -> tuple[str, list[Any]]:
        """The keyset query for one page plus one row (which tells whether more follow)."""
        where: list[str] = []
        params: list[Any] = []
        if query.email is not None:
            where.append("email_key = ?")
            params.append(email_key(query.email))
        if query.business_id is not None:
            where.append("business_id = ?")
            params.append(query.business_id)
        if query.after is not None:
            where.append("(created_at, id) > (?, ?)")
            params.extend(query.after)
        sql = f"SELECT {select} FROM customers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id LIMIT ?"
        params.append(query.limit + 1)
        return sql, params

    def _page_rows(self, select: str, query: ListQuery) -> tuple[list[Any], bool]:
        """The page's rows of `select`, and whether more follow."""
        sql, params = self._page_query(select, query)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return rows[: query.limit], len(rows) > query.limit

    def list_page(self, query: ListQuery) -> Page:
        rows, has_more = self._page_rows(COLUMNS, query)
        return Page(items=[CustomerRecord(*row) for row in rows], has_more=has_more)

    def list_json(self, query: ListQuery) -> JsonPage:
        # SQLite renders each row's JSON object itself: no per-row Python objects.
        rows, has_more = self._page_rows(PUBLIC_JSON_COLUMNS, query)
        body = ("[" + ",".join(row[0] for row in rows) + "]").encode()
        last = (rows[-1][1], rows[-1][2]) if rows else None
        return JsonPage(body=body, has_more=has_more, last=last)

    def update(
        self,
        customer_id: str,
        *,
        changes: Mapping[str, str | None],
        expected_version: int | None = None,
    ) -> CustomerRecord:
        unknown = set(changes) - set(WRITABLE_COLUMNS)
        if unknown:
            raise ValueError(f"not writable: {sorted(unknown)}")
        assignments = [f"{column} = ?" for column in changes]
        params: list[Any] = list(changes.values())
        if "email" in changes:
            assignments.append("email_key = ?")
            params.append(email_key(str(changes["email"])))
        assignments += ["updated_at = ?", "version = version + 1"]
        params.append(utc_timestamp())
        sql = f"UPDATE customers SET {', '.join(assignments)} WHERE id = ?"
        params.append(customer_id)
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(comparable_version(expected_version))
        sql += f" RETURNING {COLUMNS}"
        with self._lock:
            try:
                row = self._conn.execute(sql, params).fetchone()
            except sqlite3.IntegrityError as exc:
                raise EmailTaken(str(changes.get("email"))) from exc
            if row is not None:
                return CustomerRecord(*row)
            current = self._conn.execute(
                f"SELECT {COLUMNS} FROM customers WHERE id = ?", (customer_id,)
            ).fetchone()
        if current is None:
            raise CustomerNotFound(customer_id)
        raise VersionMismatch(CustomerRecord(*current))

    def delete(self, customer_id: str, *, expected_version: int | None = None) -> None:
        sql = "DELETE FROM customers WHERE id = ?"
        params: list[Any] = [customer_id]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(comparable_version(expected_version))
        with self._lock:
            if self._conn.execute(sql, params).rowcount:
                return
            current = self._conn.execute(
                f"SELECT {COLUMNS} FROM customers WHERE id = ?", (customer_id,)
            ).fetchone()
        if current is None:
            raise CustomerNotFound(customer_id)
        raise VersionMismatch(CustomerRecord(*current))

    def claim_idempotency_key(
        self, claim: IdempotencyRecord, *, now: int, limits: IdempotencyLimits | None = None
    ) -> IdempotencyRecord | None:
        with self._lock, self._write_transaction():
            # Purged as we go, so the table holds about a day of keys, and the counts
            # (kept by the triggers) are of live records only.
            self._conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
            holder = self._idempotency_record(claim.scope, claim.key)
            if holder is not None:
                return holder
            if limits is not None:
                self._check_room(claim.owner, limits, now=now)
            self._conn.execute(
                f"INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _idempotency_row(claim),
            )
        return None

    def _check_room(self, owner: str, limits: IdempotencyLimits, *, now: int) -> None:
        """Raise IdempotencyKeysExhausted unless `owner` and the store may hold one more
        record; the caller holds the lock, inside the claim's transaction."""
        live = dict(
            self._conn.execute(
                "SELECT owner, live FROM idempotency_counts WHERE owner IN (?, ?)",
                (owner, ALL_OWNERS),
            ).fetchall()
        )
        if live.get(owner, 0) >= limits.per_client:
            (oldest,) = self._conn.execute(
                "SELECT min(expires_at) FROM idempotency_keys WHERE owner = ?", (owner,)
            ).fetchone()
            raise IdempotencyKeysExhausted(per_client=True, retry_after=oldest - now)
        if live.get(ALL_OWNERS, 0) >= limits.total:
            (oldest,) = self._conn.execute(
                "SELECT min(expires_at) FROM idempotency_keys"
            ).fetchone()
            raise IdempotencyKeysExhausted(per_client=False, retry_after=oldest - now)

    def complete_idempotency_key(self, answered: IdempotencyRecord) -> None:
        with self._lock:
            self._complete_idempotency_key(answered)

    def release_idempotency_key(self, claim: IdempotencyRecord) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM idempotency_keys"
                " WHERE scope = ? AND key = ? AND token = ? AND status IS NULL",
                (claim.scope, claim.key, claim.token),
            )

    def _complete_idempotency_key(self, answered: IdempotencyRecord) -> None:
        """Answer the held key; raises ClaimLost. The caller holds the lock."""
        changed = self._conn.execute(
            "UPDATE idempotency_keys SET expires_at = ?, status = ?, headers = ?, body = ?,"
            " customer_id = ? WHERE scope = ? AND key = ? AND token = ? AND status IS NULL",
            (
                *_idempotency_row(answered)[4:9],  # expires_at .. customer_id
                answered.scope,
                answered.key,
                answered.token,
            ),
        ).rowcount
        if not changed:
            raise ClaimLost(self._idempotency_record(answered.scope, answered.key))

    def _idempotency_record(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(
            f"SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        if row is None:
            return None
        scope, key, fingerprint, token, expires_at, status, headers, body, customer_id, owner = row
        return IdempotencyRecord(
            scope,
            key,
            fingerprint,
            token,
            expires_at,
            status,
            tuple((str(name), str(value)) for name, value in orjson.loads(headers)),
            body,
            customer_id,
            owner,
        )

    def insert_many(self, records: Sequence[CustomerRecord]) -> list[Conflict]:
        """All records in one transaction; `executemany` first, row by row after a conflict.

        A failed INSERT undoes only itself (SQLite's ABORT), so the row-by-row pass
        keeps every other record of the batch.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                try:
                    self._conn.executemany(INSERT, map(_row, records))
                    self._conn.execute("COMMIT")
                    return []
                except sqlite3.IntegrityError:
                    self._conn.execute("ROLLBACK")
                self._conn.execute("BEGIN IMMEDIATE")
                conflicts = []
                for index, record in enumerate(records):
                    try:
                        self._conn.execute(INSERT, _row(record))
                    except sqlite3.IntegrityError:
                        conflicts.append(Conflict(index, self._taken(record)))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return conflicts

    def find_conflicts(self, records: Sequence[CustomerRecord]) -> list[Conflict]:
        with self._lock:
            found = [(index, self._taken(record)) for index, record in enumerate(records)]
        return [Conflict(index, fields) for index, fields in found if fields]

    def _taken(self, record: CustomerRecord) -> tuple[str, ...]:
        """Which of the record's keys a stored customer holds; call under the lock."""
        id_taken = self._conn.execute(
            "SELECT 1 FROM customers WHERE id = ?", (record.id,)
        ).fetchone()
        email_taken = self._conn.execute(
            "SELECT 1 FROM customers WHERE email_key = ?", (email_key(record.email),)
        ).fetchone()
        return ("id",) * bool(id_taken) + ("email",) * bool(email_taken)

    def ping(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc

    def check_writable(self) -> None:
        """Commit a write that needs a page, as a customer's write does; raises StoreUnavailable.

        `SELECT 1` answers on a full disk or a read-only file while every write fails.
        A write that is rolled back may never reach the disk, so this one commits: a row
        written and deleted again in a table of its own, which holds no row in between.
        The commit appends its changed pages to the WAL (or the journal), the same
        allocation a customer's write needs, and fails as it would: SQLITE_FULL on a full
        disk, SQLITE_READONLY on a read-only file. The message is SQLite's error name,
        nothing more. The table is no part of the customers' schema and needs no
        migration: it is made on first use, and dropping it loses nothing.
        """
        try:
            with self._lock, self._write_transaction():
                self._conn.execute(HEALTH_PROBE_TABLE)
                self._conn.execute("INSERT INTO health_probe (written_at) VALUES (?)", (0,))
                self._conn.execute("DELETE FROM health_probe")
        except sqlite3.Error as exc:
            raise StoreUnavailable(getattr(exc, "sqlite_errorname", type(exc).__name__)) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def integrity_check(self) -> str:
        """`PRAGMA integrity_check`'s verdict: 'ok' for a sound database."""
        with self._lock:
            (verdict,) = self._conn.execute("PRAGMA integrity_check").fetchone() or ("",)
        return str(verdict)


def _idempotency_row(record: IdempotencyRecord) -> tuple[Any, ...]:
    """The record as the values of IDEMPOTENCY_COLUMNS, headers as a JSON array of pairs."""
    return (
        record.scope,
        record.key,
        record.fingerprint,
        record.token,
        record.expires_at,
        record.status,
        orjson.dumps(record.headers).decode(),
        record.body,
        record.customer_id,
        record.owner,
    )


def _row(record: CustomerRecord) -> tuple[Any, ...]:
    """The INSERT parameters of a record, in INSERT's column order."""
    return (
        record.id,
        record.name,
        record.email,
        email_key(record.email),
        record.phone,
        record.business_id,
        record.created_at,
        record.updated_at,
        record.version,
    )
