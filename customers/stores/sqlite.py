"""The store on sqlite3: in memory (the default) or a file in WAL mode.

The store owns one connection and a lock: an in-memory database lives and dies
with its connection, so a connection per thread would give each thread its own
empty database. With a file (`SQLITE_PATH`), several processes may share it in
WAL mode, each with its own connection.

The schema is built by the frozen, numbered steps of `sqlite_migrations`: on opening,
a new database runs them all and a file from an earlier release the ones it lacks, in
one transaction; `PRAGMA user_version` records the version. The SQL below is written
for the layout the last step leaves.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote

import orjson

from customers.stores.sqlite_migrations import migrate
from db import (
    BULK_IMPORT,
    DEFAULT_EVENTS_RETENTION_DAYS,
    DEFAULT_HISTORY_RETENTION_DAYS,
    ERASED_STATUS,
    PUBLIC_FIELDS,
    UNATTRIBUTED,
    Action,
    AnswerOf,
    ChangeEvent,
    ClaimLost,
    Conflict,
    CustomerNotFound,
    CustomerRecord,
    EmailTaken,
    EventPage,
    EventQuery,
    HistoryEntry,
    HistoryPage,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    JsonPage,
    ListQuery,
    Page,
    StoreUnavailable,
    VersionMismatch,
    WrittenBy,
    change_event,
    changes_between,
    comparable_version,
    deletion_event,
    email_key,
    new_customer_id,
    new_record_values,
    retention_cutoff,
    utc_timestamp,
    with_changes,
)

# The owner no client is: its row in idempotency_counts counts the live records of all
# (the triggers of schema step 4 write it as the literal '*').
ALL_OWNERS = "*"
# Seconds between purges of history entries past their retention, per store.
PURGE_INTERVAL = 60.0
# The readiness probe's table (see SqliteStore.check_writable): empty between probes.
HEALTH_PROBE_TABLE = "CREATE TABLE IF NOT EXISTS health_probe (written_at INTEGER NOT NULL)"

# Derived from the field declaration: a record's columns, and the INSERT of a whole row
# (with `email_key`, the form in which emails are compared), by name.
RECORD_COLUMNS = (*PUBLIC_FIELDS.values(), "version")
COLUMNS = ", ".join(RECORD_COLUMNS)
_INSERTED = (*RECORD_COLUMNS, "email_key")
INSERT = (
    f"INSERT INTO customers ({', '.join(_INSERTED)})"
    f" VALUES ({', '.join(':' + column for column in _INSERTED)})"
)
HISTORY_COLUMNS = "version, at, action, actor, request_id, changes"
INSERT_HISTORY = (
    "INSERT INTO customer_history (customer_id, version, at, action, actor, request_id,"
    " changes) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT = "INSERT INTO events (id, type, subject, time, data) VALUES (?, ?, ?, ?, ?)"
EVENT_COLUMNS = "seq, id, type, subject, time, data"
# The events past their retention: those before the oldest one still within it, found by
# walking `seq` from the oldest event (sequence order is time order), or all of them.
PURGE_EVENTS = (
    "DELETE FROM events WHERE seq < coalesce("
    "(SELECT seq FROM events WHERE time >= ?1 ORDER BY seq LIMIT 1),"
    " (SELECT max(seq) + 1 FROM events))"
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
        self,
        path: str = ":memory:",
        *,
        busy_timeout_ms: int = 5000,
        create: bool = True,
        history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS,
        events_retention_days: int = DEFAULT_EVENTS_RETENTION_DAYS,
    ) -> None:
        """Open (and migrate) the database at `path`; without `create`, only one that exists.

        Raises sqlite3.Error when it cannot be opened, RuntimeError for a newer schema.
        """
        self.path = path
        self.history_retention_days = history_retention_days
        self.events_retention_days = events_retention_days
        self._next_purge = 0.0  # time.monotonic() of the next purge of old history
        self.in_memory = is_in_memory(path)
        self._lock = threading.Lock()
        target = path if create or self.in_memory else existing_only(path)
        self._closed = False
        self._conn = sqlite3.connect(
            target,
            check_same_thread=False,  # shared by threads, always under self._lock
            isolation_level=None,  # autocommit; multi-statement writes BEGIN IMMEDIATE
            timeout=busy_timeout_ms / 1000,
            uri=target.startswith("file:"),
        )
        try:
            if not self.in_memory:
                _switch_to_wal(self._conn, timeout_s=busy_timeout_ms / 1000)
                # FULL: a write is on disk before it is acknowledged, so it survives a
                # crash of the process and of the machine.
                self._conn.execute("PRAGMA synchronous = FULL")
                # Deleted content (a row, an index entry, a freed page) is overwritten with
                # zeros, so an erased customer leaves no bytes behind in the file's free space.
                self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Raises RuntimeError for a file from a newer release, which stays untouched.
            migrate(self._conn, name=path)
        except BaseException:
            self._conn.close()  # a store that failed to open holds no file open
            raise

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

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The connection inside a write transaction, under the lock: for a module that
        keeps tables of its own in this database (the webhook relay's state)."""
        with self._lock, self._write_transaction():
            yield self._conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, for reads."""
        with self._lock:
            yield self._conn

    def create(
        self,
        *,
        idempotency: AnswerOf | None = None,
        by: WrittenBy = UNATTRIBUTED,
        **values: Any,
    ) -> CustomerRecord:
        now = utc_timestamp()
        record = CustomerRecord(
            **new_record_values(values),
            id=new_customer_id(),
            created_at=now,
            updated_at=now,
            version=1,
        )
        insert, row = INSERT, _row(record)
        answered = idempotency(record) if idempotency is not None else None
        try:
            # One transaction: a crash leaves the customer, its history entry, its event
            # and the answer that names it, or none of them.
            with self._lock, self._write_transaction():
                if answered is not None:
                    self._complete_idempotency_key(answered)
                self._conn.execute(insert, row)
                self._record_changes([(record, changes_between(None, record))], "created", by)
        except sqlite3.IntegrityError as exc:
            raise EmailTaken(record.email) from exc
        return record

    def get(self, customer_id: str) -> CustomerRecord:
        with self._lock:
            record = self._record(customer_id)
        if record is None:
            raise CustomerNotFound(customer_id)
        return record

    def _record(self, customer_id: str) -> CustomerRecord | None:
        """The customer with that id, or None; the caller holds the lock."""
        cursor = self._conn.execute(f"SELECT {COLUMNS} FROM customers WHERE id = ?", (customer_id,))
        row = _by_name(cursor).fetchone()
        return None if row is None else CustomerRecord.from_row(row)

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

    def _page_rows(
        self, select: str, query: ListQuery, *, by_name: bool = False
    ) -> tuple[list[Any], bool]:
        """The page's rows of `select` (as `sqlite3.Row`s when `by_name`), and whether
        more follow."""
        sql, params = self._page_query(select, query)
        with self._lock:
            cursor = self._conn.execute(sql, params)
            rows = (_by_name(cursor) if by_name else cursor).fetchall()
        return rows[: query.limit], len(rows) > query.limit

    def list_page(self, query: ListQuery) -> Page:
        rows, has_more = self._page_rows(COLUMNS, query, by_name=True)
        return Page(items=[CustomerRecord.from_row(row) for row in rows], has_more=has_more)

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
        changes: Mapping[str, Any],
        expected_version: int | None = None,
        action: Action = "updated",
        by: WrittenBy = UNATTRIBUTED,
    ) -> CustomerRecord:
        with self._lock, self._write_transaction():
            # Read, compare and write under the write lock (BEGIN IMMEDIATE): no other
            # writer, in this process or another, comes between, so each version gets
            # exactly one entry.
            old = self._record(customer_id)
            if old is None:
                raise CustomerNotFound(customer_id)
            if expected_version is not None and expected_version != old.version:
                raise VersionMismatch(old)
            new = with_changes(old, changes)
            changed = changes_between(old, new)
            if not changed:
                return old
            new = replace(new, updated_at=utc_timestamp(), version=old.version + 1)
            assignments = [f"{column} = ?" for column in changes]
            params: list[Any] = list(changes.values())
            if "email" in changes:
                assignments.append("email_key = ?")
                params.append(email_key(new.email))
            assignments += ["updated_at = ?", "version = ?"]
            params += [new.updated_at, new.version, customer_id]
            try:
                self._conn.execute(
                    f"UPDATE customers SET {', '.join(assignments)} WHERE id = ?", params
                )
            except sqlite3.IntegrityError as exc:
                raise EmailTaken(new.email) from exc
            self._record_changes([(new, changed)], action, by)
        return new

    def _record_changes(
        self,
        changed: Sequence[tuple[CustomerRecord, dict[str, Any]]],
        action: Action,
        by: WrittenBy,
        *,
        at: str | None = None,
    ) -> None:
        """Write the history entries and change events of these records (as they now
        are), at their `updated_at` unless `at` is given, and purge the entries and events
        past their retention.

        The caller holds the lock, inside the transaction that writes the changes.
        """
        now = time.monotonic()
        if now >= self._next_purge:
            # At most once a PURGE_INTERVAL: reads leave out what is past its retention
            # anyway, and a DELETE per write would cost every create more than the entry.
            self._next_purge = now + PURGE_INTERVAL
            cutoff = retention_cutoff(self.history_retention_days)
            self._conn.execute("DELETE FROM customer_history WHERE at < ?", (cutoff,))
            cutoff = retention_cutoff(self.events_retention_days)
            self._conn.execute(PURGE_EVENTS, (cutoff,))
        rows = [
            (
                record.id,
                record.version,
                at or record.updated_at,
                action,
                by.actor,
                by.request_id,
                orjson.dumps(fields).decode(),
            )
            for record, fields in changed
        ]
        events = [
            _event_row(change_event(record, action, fields, at=at)) for record, fields in changed
        ]
        if len(rows) == 1:
            self._conn.execute(INSERT_HISTORY, rows[0])  # a third of executemany's cost
            self._conn.execute(INSERT_EVENT, events[0])
        else:
            self._conn.executemany(INSERT_HISTORY, rows)
            self._conn.executemany(INSERT_EVENT, events)

    def events_page(self, query: EventQuery) -> EventPage:
        """One read transaction, so the page and the feed's end are of the same moment:
        `next` after the last page is the newest sequence number then, past every event
        the page's filters left out."""
        where, params = (
            ["seq > ?", "time >= ?"],
            [int(query.after or 0), retention_cutoff(self.events_retention_days)],
        )
        if query.type is not None:
            where.append("type = ?")
            params.append(query.type)
        if query.subject is not None:
            where.append("subject = ?")
            params.append(query.subject)
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
                    " ORDER BY seq LIMIT ?",
                    (*params, query.limit + 1),
                ).fetchall()
                # The sequence's high-water mark: sqlite_sequence keeps it past purges.
                end = self._conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
                ).fetchone()
                now = utc_timestamp()
            finally:
                self._conn.execute("COMMIT")
        items = [
            ChangeEvent(event_id, kind, subject, time, orjson.loads(data), str(seq))
            for seq, event_id, kind, subject, time, data in rows[: query.limit]
        ]
        if len(rows) > query.limit:
            return EventPage(items, True, items[-1].position, items[-1].time)
        last = max(int(query.after or 0), end[0] if end else 0)
        return EventPage(items, False, str(last), now)

    def history_page(self, customer_id: str, *, limit: int, after: int | None) -> HistoryPage:
        cutoff = retention_cutoff(self.history_retention_days)
        with self._lock:
            if (
                self._conn.execute(
                    "SELECT 1 FROM customers WHERE id = ?", (customer_id,)
                ).fetchone()
                is None
            ):
                raise CustomerNotFound(customer_id)
            rows = self._conn.execute(
                f"SELECT {HISTORY_COLUMNS} FROM customer_history"
                " WHERE customer_id = ? AND version > ? AND at >= ? ORDER BY version LIMIT ?",
                (customer_id, after or 0, cutoff, limit + 1),
            ).fetchall()
        entries = [
            HistoryEntry(version, at, action, actor, request_id, orjson.loads(changes))
            for version, at, action, actor, request_id, changes in rows[:limit]
        ]
        return HistoryPage(items=entries, has_more=len(rows) > limit)

    def delete(self, customer_id: str, *, expected_version: int | None = None) -> None:
        sql = "DELETE FROM customers WHERE id = ?"
        params: list[Any] = [customer_id]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(comparable_version(expected_version))
        with self._lock:
            with self._write_transaction():
                row = _by_name(self._conn.execute(f"{sql} RETURNING {COLUMNS}", params)).fetchone()
                deleted = row is not None
                if row is not None:
                    # The create's recorded answer named the person: it becomes a tombstone.
                    self._conn.execute(
                        "UPDATE idempotency_keys SET status = ?, headers = '[]', body = X'',"
                        " customer_id = NULL WHERE customer_id = ?",
                        (ERASED_STATUS, customer_id),
                    )
                    # Its history goes with it, in the same transaction, and its event is written.
                    self._conn.execute(
                        "DELETE FROM customer_history WHERE customer_id = ?", (customer_id,)
                    )
                    event = deletion_event(CustomerRecord.from_row(row))
                    self._conn.execute(INSERT_EVENT, _event_row(event))
            if deleted:
                return
            current = self._record(customer_id)
        if current is None:
            raise CustomerNotFound(customer_id)
        raise VersionMismatch(current)

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

    def insert_many(
        self, records: Sequence[CustomerRecord], *, by: WrittenBy = BULK_IMPORT
    ) -> list[Conflict]:
        """All records in one transaction; `executemany` first, row by row after a conflict.

        A failed INSERT undoes only itself (SQLite's ABORT), so the row-by-row pass
        keeps every other record of the batch. The history entries of the records
        written go in the same transaction.
        """
        at = utc_timestamp()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                try:
                    self._conn.executemany(INSERT, map(_row, records))
                    self._record_imports(records, by, at=at)
                    self._conn.execute("COMMIT")
                    return []
                except sqlite3.IntegrityError:
                    self._conn.execute("ROLLBACK")
                self._conn.execute("BEGIN IMMEDIATE")
                conflicts = []
                written = []
                for index, record in enumerate(records):
                    try:
                        self._conn.execute(INSERT, _row(record))
                        written.append(record)
                    except sqlite3.IntegrityError:
                        conflicts.append(Conflict(index, self._taken(record)))
                self._record_imports(written, by, at=at)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return conflicts

    def _record_imports(self, records: Sequence[CustomerRecord], by: WrittenBy, *, at: str) -> None:
        self._record_changes(
            [(record, changes_between(None, record)) for record in records], "imported", by, at=at
        )

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
        """Close the connection; a file's WAL is checkpointed into it and truncated first.

        The WAL holds every page as written, an erased customer's too, until a checkpoint
        copies the last version of each page into the file: truncated, it holds nothing.
        Safe to call twice (at_exit may).
        """
        with self._lock:
            if self._closed:
                return
            if not self.in_memory:
                # Busy while another process writes: the last process to close truncates it.
                with suppress(sqlite3.OperationalError):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self._conn.close()
            self._closed = True

    def integrity_check(self) -> str:
        """`PRAGMA integrity_check`'s verdict: 'ok' for a sound database."""
        with self._lock:
            (verdict,) = self._conn.execute("PRAGMA integrity_check").fetchone() or ("",)
        return str(verdict)


def _switch_to_wal(conn: sqlite3.Connection, *, timeout_s: float) -> None:
    """Put the file in WAL mode, waiting up to `timeout_s` for other connections' writes.

    A file not yet in WAL mode (a new one, or one made by other tools) must be had alone
    to switch, and sqlite answers SQLITE_BUSY at once, without the busy handler, while
    another connection writes to it: say a second process starting while the first
    builds the schema. So the switch is retried as the busy timeout waits elsewhere.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(0.005)


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


def _event_row(event: ChangeEvent) -> tuple[str, str, str, str, str]:
    """The values of INSERT_EVENT."""
    return (event.id, event.type, event.subject, event.time, orjson.dumps(event.data).decode())


def _by_name(cursor: sqlite3.Cursor) -> sqlite3.Cursor:
    """`cursor` giving `sqlite3.Row`s, which a record is built from by column name."""
    cursor.row_factory = sqlite3.Row
    return cursor


def _row(record: CustomerRecord) -> dict[str, Any]:
    """The INSERT parameters of a record, by column name."""
    row = {column: getattr(record, column) for column in RECORD_COLUMNS}
    row["email_key"] = email_key(record.email)
    return row
