"""The customer store: a narrow interface, a plain record, and its sqlite3 version.

Views see `CustomerStore` and the errors below, never SQL. The sqlite store owns
one connection and a lock: an in-memory database lives and dies with its
connection, so a connection per thread would give each thread its own empty
database. With a file (`SQLITE_PATH`), several processes may share it in WAL
mode, each with its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import orjson

if TYPE_CHECKING:
    from flask import Flask

# Fields a client may write, by their column name.
WRITABLE_COLUMNS = ("name", "email", "phone", "business_id")
SCHEMA_VERSION = 2
# Versions start at 1 and grow by one per change, so they stay far below SQLite's
# INTEGER limit; an expected version outside 1..MAX_VERSION belongs to no customer.
MAX_VERSION = 2**63 - 1


class StoreError(Exception):
    """Base of the errors a store raises."""


class CustomerNotFound(StoreError):
    """No customer has that id."""


class EmailTaken(StoreError):
    """Another customer already has that email (compared case-insensitively)."""


class VersionMismatch(StoreError):
    """The customer changed since the version the caller expected."""

    def __init__(self, current: CustomerRecord) -> None:
        super().__init__("version mismatch")
        self.current = current


class StoreUnavailable(StoreError):
    """The store did not answer."""


@dataclass(slots=True)
class CustomerRecord:
    """One customer as stored; `version` grows by one on every change."""

    id: str
    name: str
    email: str
    phone: str | None
    business_id: str | None
    created_at: str
    updated_at: str
    version: int

    def to_public(self) -> dict[str, Any]:
        """The customer as the API shows it (camelCase, every field present)."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "businessId": self.business_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass(slots=True, frozen=True)
class Page:
    """A slice of the list in (created_at, id) order, and whether more follow."""

    items: list[CustomerRecord]
    has_more: bool


@dataclass(slots=True, frozen=True)
class JsonPage:
    """A page as the API sends it: the JSON array, whether more follow, the last row's key."""

    body: bytes
    has_more: bool
    last: tuple[str, str] | None

    @classmethod
    def of(cls, page: Page) -> JsonPage:
        """The JSON form of `page`, for stores that build records first."""
        last = (page.items[-1].created_at, page.items[-1].id) if page.items else None
        body = orjson.dumps([record.to_public() for record in page.items])
        return cls(body=body, has_more=page.has_more, last=last)


class CustomerStore(Protocol):
    """What the views need from a store; the sqlite and DynamoDB stores agree on it."""

    kind: str

    def create(
        self, *, name: str, email: str, phone: str | None, business_id: str | None
    ) -> CustomerRecord: ...

    def get(self, customer_id: str) -> CustomerRecord: ...

    def list_page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        email: str | None = None,
        business_id: str | None = None,
    ) -> Page: ...

    def list_json(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        email: str | None = None,
        business_id: str | None = None,
    ) -> JsonPage:
        """What `list_page` gives, as the JSON array the API answers with."""
        ...

    def update(
        self,
        customer_id: str,
        *,
        changes: Mapping[str, str | None],
        expected_version: int | None = None,
    ) -> CustomerRecord: ...

    def delete(self, customer_id: str, *, expected_version: int | None = None) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def utc_timestamp() -> str:
    """Now as RFC 3339 UTC with microseconds; fixed width, so text order is time order.

    `isoformat` spells the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") at half the
    cost (its offset is always +00:00 here, swapped for Z).
    """
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def new_customer_id() -> str:
    """An opaque, unguessable id: a UUIDv7 (RFC 9562), 74 random bits behind a ms clock.

    Time-ordered ids are appended at the end of the primary-key index instead of
    landing at random pages, which keeps index pages full: less memory per
    customer in the in-memory store and fewer page splits on every insert.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    # str(uuid.UUID(int=value)), without building the UUID object.
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def comparable_version(expected_version: int) -> int:
    """`expected_version`, or 0 (nobody's version) when no customer can have it.

    A store puts the result in its condition, which then fails as it must, where a huge
    int would raise instead (OverflowError binding it in sqlite3, ValueError from `str`).
    """
    return expected_version if 0 < expected_version <= MAX_VERSION else 0


def email_key(email: str) -> str:
    """The form in which emails are compared: uniqueness, filters and 409s."""
    return email.lower()


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

COLUMNS = "id, name, email, phone, business_id, created_at, updated_at, version"
# A row as CustomerRecord.to_public() shows it, rendered by SQLite, then its keyset position.
PUBLIC_JSON_COLUMNS = (
    "json_object('id', id, 'name', name, 'email', email, 'phone', phone,"
    " 'businessId', business_id, 'createdAt', created_at, 'updatedAt', updated_at),"
    " created_at, id"
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


class SqliteStore:
    """The store on sqlite3: `:memory:` (the default) or a file in WAL mode."""

    kind = "sqlite"

    def __init__(self, path: str = ":memory:", *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.in_memory = is_in_memory(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path,
            check_same_thread=False,  # shared by threads, always under self._lock
            isolation_level=None,  # autocommit; multi-statement writes BEGIN IMMEDIATE
            timeout=busy_timeout_ms / 1000,
            uri=path.startswith("file:"),
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
                    self._run_script(SCHEMA if version == 0 else MIGRATE_1_TO_2)
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

    def create(
        self, *, name: str, email: str, phone: str | None, business_id: str | None
    ) -> CustomerRecord:
        now = utc_timestamp()
        record = CustomerRecord(new_customer_id(), name, email, phone, business_id, now, now, 1)
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO customers (id, name, email, email_key, phone, business_id,"
                    " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        name,
                        email,
                        email_key(email),
                        phone,
                        business_id,
                        now,
                        now,
                        1,
                    ),
                )
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
    def _page_query(
        select: str,
        limit: int,
        after: tuple[str, str] | None,
        email: str | None,
        business_id: str | None,
    ) -> tuple[str, list[Any]]:
        """The keyset query for one page plus one row (which tells whether more follow)."""
        where: list[str] = []
        params: list[Any] = []
        if email is not None:
            where.append("email_key = ?")
            params.append(email_key(email))
        if business_id is not None:
            where.append("business_id = ?")
            params.append(business_id)
        if after is not None:
            where.append("(created_at, id) > (?, ?)")
            params.extend(after)
        sql = f"SELECT {select} FROM customers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id LIMIT ?"
        params.append(limit + 1)
        return sql, params

    def list_page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        email: str | None = None,
        business_id: str | None = None,
    ) -> Page:
        sql, params = self._page_query(COLUMNS, limit, after, email, business_id)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        has_more = len(rows) > limit
        return Page(items=[CustomerRecord(*row) for row in rows[:limit]], has_more=has_more)

    def list_json(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        email: str | None = None,
        business_id: str | None = None,
    ) -> JsonPage:
        # SQLite renders each row's JSON object itself: no per-row Python objects.
        sql, params = self._page_query(PUBLIC_JSON_COLUMNS, limit, after, email, business_id)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
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

    def ping(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def integrity_check(self) -> str:
        """`PRAGMA integrity_check`'s verdict: 'ok' for a sound database."""
        with self._lock:
            (verdict,) = self._conn.execute("PRAGMA integrity_check").fetchone() or ("",)
        return str(verdict)


def open_store(settings: Mapping[str, Any]) -> CustomerStore:
    """The store `CUSTOMER_STORE` names; DynamoDB's module is imported only when chosen."""
    if settings["CUSTOMER_STORE"] == "dynamodb":
        from dynamo_store import DynamoStore

        return DynamoStore.from_settings(settings)
    return SqliteStore(settings["SQLITE_PATH"])


def init_app(app: Flask) -> CustomerStore:
    """Open the store for `app`, keep it in `app.extensions`, and add `flask init-db`."""
    store = open_store(app.config)
    app.extensions["customer_store"] = store

    @app.cli.command("init-db")
    def init_db_command() -> None:
        """Create the schema (idempotent; it is also created at start)."""
        print(f"store ready: {store.kind}")

    return store
