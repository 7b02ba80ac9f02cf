"""The customer store's interface: a narrow protocol, plain records and the store's errors.

Views see `CustomerStore` and the errors below, never SQL or DynamoDB. The
implementations live in `customers/stores/` (sqlite3 and DynamoDB) and import
this module; nothing here imports them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, make_dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import orjson

import customers.fields as fields

# The fields, their names in the API and in the stores: declared in customers.fields.
PUBLIC_FIELDS = fields.PUBLIC_FIELDS
WRITABLE_COLUMNS = fields.WRITABLE_COLUMNS
# What a change history entry compares: the public fields a write can change, by their
# API names, derived from the two declarations above.
HISTORY_FIELDS = tuple(name for name, column in PUBLIC_FIELDS.items() if column in WRITABLE_COLUMNS)
# Days a history entry is kept (HISTORY_RETENTION_DAYS unless set).
DEFAULT_HISTORY_RETENTION_DAYS = 365
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


class IdempotencyKeysExhausted(StoreError):
    """No room for another idempotency record: its client holds as many live ones as it
    may (`per_client`), or the store holds as many as it may in all.

    `retry_after`: seconds until the oldest record in the way expires.
    """

    def __init__(self, *, per_client: bool, retry_after: int) -> None:
        super().__init__("no room for another idempotency record")
        self.per_client = per_client
        self.retry_after = max(1, retry_after)


class ClaimLost(StoreError):
    """The request no longer holds its idempotency key: it was held too long and taken over.

    `current` is the record holding the key now (None if it was released meanwhile).
    """

    def __init__(self, current: IdempotencyRecord | None) -> None:
        super().__init__("idempotency key no longer held")
        self.current = current


def _to_public(record: Any) -> dict[str, Any]:
    """The customer as the API shows it (camelCase, every field present)."""
    return {name: getattr(record, column) for name, column in PUBLIC_FIELDS.items()}


def _from_row(cls: type[Any], row: Mapping[str, Any]) -> Any:
    """The record from anything that maps column names to values (a `sqlite3.Row`, a
    dict): by name, so the order of a query's columns does not matter."""
    return cls(**{name: row[name] for name in _RECORD_NAMES})


# Every column of a record: the declared fields', then the version.
_RECORD_NAMES = (*(field.column for field in fields.FIELDS), "version")

if TYPE_CHECKING:

    class CustomerRecord:
        """What the type checker sees of the record made below from the declaration: the
        members every store relies on; the declared fields are reached by name."""

        __dataclass_fields__: ClassVar[dict[str, Any]]
        id: str
        email: str
        created_at: str
        updated_at: str
        version: int

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, column: str) -> Any: ...
        def to_public(self) -> dict[str, Any]: ...
        @classmethod
        def from_row(cls, row: Mapping[str, Any]) -> CustomerRecord: ...

else:
    # One customer as stored; `version` grows by one on every change. Keyword-only, so a
    # record is always built by name: a new field cannot shift the others. A field that
    # is not required may be left out (None).
    CustomerRecord = make_dataclass(
        "CustomerRecord",
        [
            (field.column, field.value_type)
            if field.required
            else (field.column, field.value_type | None, None)
            for field in fields.FIELDS
        ]
        + [("version", int)],
        kw_only=True,
        slots=True,
        namespace={"to_public": _to_public, "from_row": classmethod(_from_row)},
    )
    CustomerRecord.__module__ = __name__


@dataclass(slots=True, frozen=True)
class WrittenBy:
    """Who made a change, for its history entry: `actor` names them without revealing a
    credential ("key:<fingerprint>", "cli", or None with API keys off); `request_id` is
    the X-Request-ID of the request that made it (None outside a request)."""

    actor: str | None = None
    request_id: str | None = None


# A change nobody is named for (keys off, outside a request); the bulk import's changes,
# made from the command line by no request.
UNATTRIBUTED = WrittenBy()
BULK_IMPORT = WrittenBy(actor="cli")
# What a history entry says a change was: a POST, a PATCH, a PUT, or a bulk import.
Action = Literal["created", "updated", "replaced", "imported"]


@dataclass(slots=True, frozen=True)
class HistoryEntry:
    """One change of a customer: its version after the change, when, how and by whom,
    and each field whose value changed, {"from": before, "to": after}."""

    version: int
    at: str
    action: Action
    actor: str | None
    request_id: str | None
    changes: dict[str, dict[str, Any]]

    def to_public(self) -> dict[str, Any]:
        """The entry as the API shows it; `requestId` only where a request made the change."""
        entry: dict[str, Any] = {
            "version": self.version,
            "at": self.at,
            "action": self.action,
            "actor": self.actor,
        }
        if self.request_id is not None:
            entry["requestId"] = self.request_id
        entry["changes"] = self.changes
        return entry


@dataclass(slots=True, frozen=True)
class HistoryPage:
    """Entries in version order, and whether more follow."""

    items: list[HistoryEntry]
    has_more: bool


def changes_between(before: CustomerRecord | None, after: CustomerRecord) -> dict[str, Any]:
    """Every field whose public value differs, {"from": ..., "to": ...}; `before` None
    is a customer being made, whose fields were all null.

    Compared over the public shapes, so a field declared there is followed here too.
    """
    old = before.to_public() if before is not None else {}
    new = after.to_public()
    return {
        name: {"from": old.get(name), "to": new[name]}
        for name in HISTORY_FIELDS
        if old.get(name) != new[name]
    }


def with_changes(record: CustomerRecord, changes: Mapping[str, str | None]) -> CustomerRecord:
    """`record` with `changes` (writable columns -> values) applied, nothing else touched;
    raises ValueError for a column no client may write."""
    unknown = set(changes) - set(WRITABLE_COLUMNS)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    columns: dict[str, Any] = dict(changes)
    return replace(record, **columns)


def history_entry(
    record: CustomerRecord, action: Action, by: WrittenBy, changes: dict[str, Any], at: str
) -> HistoryEntry:
    """The entry recording that `record` (as it now is) was written at `at`."""
    return HistoryEntry(record.version, at, action, by.actor, by.request_id, changes)


def retention_cutoff(days: int, now: float | None = None) -> str:
    """The `at` before which entries are past their retention, as fixed-width text."""
    moment = datetime.fromtimestamp((time.time() if now is None else now) - days * 86400, UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


# What each history action tells the feed: the CloudEvents type, and whether the change
# came from a bulk import ("imported": true in the event's data).
EVENT_TYPES: dict[Action, str] = {
    "created": "customer.created",
    "imported": "customer.created",
    "updated": "customer.updated",
    "replaced": "customer.updated",
}
DELETED_EVENT_TYPE = "customer.deleted"
ALL_EVENT_TYPES = ("customer.created", "customer.updated", "customer.deleted")
EVENT_SOURCE = "/customers"
# Days an event is kept in the feed (EVENTS_RETENTION_DAYS unless set).
DEFAULT_EVENTS_RETENTION_DAYS = 30


@dataclass(slots=True, frozen=True)
class ChangeEvent:
    """One change as the feed and webhooks carry it: thin data (the id, the version after
    the change, the API names of the fields that changed), never a field's value, so no
    personal data travels in events and a deleted person is not kept in them.

    `position` is the store's own place of the event in the feed's one global order
    (sqlite: a sequence number; DynamoDB: the time-ordered id), opaque to others.
    """

    id: str
    type: str
    subject: str
    time: str
    data: dict[str, Any]
    position: str = ""

    def to_cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 JSON form."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": EVENT_SOURCE,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": self.data,
        }


def change_event(
    record: CustomerRecord, action: Action, changes: Mapping[str, Any], *, at: str | None = None
) -> ChangeEvent:
    """The event of a create, import or update that left `record` as it now is."""
    data: dict[str, Any] = {"id": record.id, "version": record.version, "changed": list(changes)}
    if action == "imported":
        data["imported"] = True
    return ChangeEvent(
        new_event_id(), EVENT_TYPES[action], record.id, at or record.updated_at, data
    )


def deletion_event(record: CustomerRecord) -> ChangeEvent:
    """The event of erasing `record`: its version one past the last, and the fields it had
    (all of them now gone)."""
    changed = [name for name in changes_between(None, record)]
    data = {"id": record.id, "version": record.version + 1, "changed": changed}
    return ChangeEvent(new_event_id(), DELETED_EVENT_TYPE, record.id, utc_timestamp(), data)


@dataclass(slots=True, frozen=True)
class EventQuery:
    """One page of the feed: at most `limit` events after `after` (a position the store
    gave out), only of this type and about this subject when given."""

    limit: int
    after: str | None = None
    type: str | None = None
    subject: str | None = None


@dataclass(slots=True, frozen=True)
class EventPage:
    """Events in feed order; whether more are already there; and where the next read
    resumes (`next`, with the time it stands for, `next_at`), also after the last page."""

    items: list[ChangeEvent]
    has_more: bool
    next: str
    next_at: str


@dataclass(slots=True, frozen=True)
class Conflict:
    """A record a batch write left out: its position in the batch and which keys are taken.

    `fields` names every taken key, "id" and/or "email", in that order.
    """

    index: int
    fields: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class ListQuery:
    """One page of the list: at most `limit` customers after the keyset position `after`
    (created_at, id), only those with this email (compared as `email_key`) and business ID.
    """

    limit: int
    after: tuple[str, str] | None = None
    email: str | None = None
    business_id: str | None = None


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


@dataclass(slots=True, frozen=True)
class IdempotencyRecord:
    """A request made with an idempotency key: held while it runs, then its recorded answer.

    `token` is the holding request's own, so only it can answer or release the key.
    `expires_at` (epoch seconds) ends the hold of a request that never finished, and,
    once `status` is set, the time the answer is kept. An expired record counts as none.
    """

    scope: str
    key: str
    fingerprint: str
    token: str
    expires_at: int
    status: int | None = None  # None while the first request runs
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    customer_id: str | None = None  # the customer a 201 created
    owner: str = ""  # whom the record counts against (see IdempotencyLimits)

    @property
    def in_flight(self) -> bool:
        return self.status is None

    @property
    def erased(self) -> bool:
        """Whether the customer this record's answer created was deleted since (a tombstone)."""
        return self.status == ERASED_STATUS


@dataclass(slots=True, frozen=True)
class IdempotencyLimits:
    """The most live idempotency records a store keeps: per owner (a client) and in all.

    A claim of a new key past either raises IdempotencyKeysExhausted; a key already
    held or answered is found as always, so a retry is still answered. `lifetime` is
    the longest a record lives from its claim (its hold, then the kept answer): a store
    that counts records by when they expire counts with it.
    """

    per_client: int
    total: int
    lifetime: int


# The status a recorded answer takes when the customer it created is deleted: the answer
# (it named the person) is erased with the customer, in the same transaction, and the
# record stays until it expires as this tombstone: no headers, an empty body, no customer
# id. The key stays taken, and a retry with it learns that the customer is gone (410).
ERASED_STATUS = 410

# Builds the answered record of a create from the new customer, for the store to write
# in the same transaction as the customer.
AnswerOf = Callable[[CustomerRecord], IdempotencyRecord]


class CustomerStore(Protocol):
    """What the views need from a store; the sqlite and DynamoDB stores agree on it."""

    kind: str

    def create(
        self,
        *,
        idempotency: AnswerOf | None = None,
        by: WrittenBy = UNATTRIBUTED,
        **values: Any,
    ) -> CustomerRecord:
        """Insert a new customer with `values` by column (the writable ones; an optional
        one left out is empty), and its "created" history entry; raises EmailTaken.

        With `idempotency`, the record it makes answers the request's held key in the
        same transaction as the insert: both are written or neither. Raises ClaimLost,
        before EmailTaken, when the key is no longer held.
        """
        ...

    def get(self, customer_id: str) -> CustomerRecord: ...

    def history_page(self, customer_id: str, *, limit: int, after: int | None) -> HistoryPage:
        """The customer's history entries after version `after`, oldest first, at most
        `limit` of them, none past their retention; raises CustomerNotFound."""
        ...

    def list_page(self, query: ListQuery) -> Page: ...

    def list_json(self, query: ListQuery) -> JsonPage:
        """What `list_page` gives, as the JSON array the API answers with."""
        ...

    def update(
        self,
        customer_id: str,
        *,
        changes: Mapping[str, Any],
        expected_version: int | None = None,
        action: Action = "updated",
        by: WrittenBy = UNATTRIBUTED,
    ) -> CustomerRecord:
        """Set `changes` (writable columns; None clears) and write their history entry in
        one transaction; with `expected_version`, only while the customer has that
        version, else VersionMismatch: a compare-and-set, on which `merge_update` builds
        a read-merge-write.

        A write that changes no value changes nothing, the version included, and makes
        no entry; it still raises VersionMismatch when another version was expected.
        """
        ...

    def delete(self, customer_id: str, *, expected_version: int | None = None) -> None:
        """Erase the customer and its history; raises CustomerNotFound, VersionMismatch.

        In the same transaction, the recorded answer of the create that made it (which
        holds its personal data) becomes a tombstone (see ERASED_STATUS).
        """
        ...

    def claim_idempotency_key(
        self, claim: IdempotencyRecord, *, now: int, limits: IdempotencyLimits | None = None
    ) -> IdempotencyRecord | None:
        """Hold `claim`'s key for a request that starts now, unless a live record has it.

        Returns None when the key is now held, else the record that has it. Expired
        records go meanwhile. With `limits`, raises IdempotencyKeysExhausted instead of
        holding a new key for which there is no room (`claim.owner` is the client).
        """
        ...

    def complete_idempotency_key(self, answered: IdempotencyRecord) -> None:
        """Record the answer of a key this request holds (same token); raises ClaimLost."""
        ...

    def release_idempotency_key(self, claim: IdempotencyRecord) -> None:
        """Let go of a key this request holds, unanswered: the next request runs anew."""
        ...

    def insert_many(
        self, records: Sequence[CustomerRecord], *, by: WrittenBy = BULK_IMPORT
    ) -> list[Conflict]:
        """Write whole records as given (ids, timestamps, versions), in order, in batches,
        each with its "imported" history entry (stamped with the time of the import).

        A record whose id exists, or whose email is taken (also by an earlier record of
        the same call), is left out and comes back as a Conflict; the others are written.
        Each record is written whole or not at all.
        """
        ...

    def events_page(self, query: EventQuery) -> EventPage:
        """Change events after `query.after`, oldest first, none past their retention.

        Every write above writes its event in its own transaction (an outbox): a crash
        leaves both or neither. A reader that resumes from `next` gets exactly the events
        after it, none twice, whatever writers were doing meanwhile.
        """
        ...

    def find_conflicts(self, records: Sequence[CustomerRecord]) -> list[Conflict]:
        """What `insert_many` would reject because of customers already stored; writes nothing.

        Records are not compared with each other: that is the caller's to track.
        """
        ...

    def ping(self) -> None: ...

    def check_writable(self) -> None:
        """Make a small write that needs what a customer's write needs (disk space, a
        writable file, DynamoDB's consent); raises StoreUnavailable naming what refused."""
        ...

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
    return _uuid_text(value)


def _uuid_text(value: int) -> str:
    """str(uuid.UUID(int=value)), without building the UUID object."""
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def new_event_id() -> str:
    """An event's id: a UUIDv7 whose 12 bits after the millisecond count up within the
    millisecond (RFC 9562's method 1), so the ids one process makes sort in the order
    made, the events of one import batch too, and the feed's order on DynamoDB is that."""
    with _event_clock_lock:
        now_ms = time.time_ns() // 1_000_000
        last_ms, last_count = _event_clock
        ms, count = (last_ms, last_count + 1) if now_ms <= last_ms else (now_ms, 0)
        if count > 0xFFF:  # 4096 in one millisecond: borrow the next one
            ms, count = ms + 1, 0
        _event_clock[:] = [ms, count]
    value = ms << 80 | 0x7 << 76 | count << 64 | 0x2 << 62
    return _uuid_text(value | int.from_bytes(os.urandom(8)) >> 2)


# The last (millisecond, count) an event id was made with, per process.
_event_clock = [0, 0]
_event_clock_lock = threading.Lock()


def event_id_floor(epoch_ms: int) -> str:
    """A position in the order of event ids: the text every UUIDv7 of the millisecond
    `epoch_ms` begins with. As a prefix it sorts below each of them (and above every id
    made earlier), so "ids after it" are exactly those made at `epoch_ms` or later."""
    digits = f"{epoch_ms:012x}"
    return f"{digits[:8]}-{digits[8:12]}-7"


def comparable_version(expected_version: int) -> int:
    """`expected_version`, or 0 (nobody's version) when no customer can have it.

    A store puts the result in its condition, which then fails as it must, where a huge
    int would raise instead (OverflowError binding it in sqlite3, ValueError from `str`).
    """
    return expected_version if 0 < expected_version <= MAX_VERSION else 0


def email_key(email: str) -> str:
    """The form in which emails are compared: uniqueness, filters and 409s."""
    return email.lower()


def new_record_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A create's `values` (writable columns) checked, the optional ones left out filled
    with None: every writable column, ready for a new record."""
    unknown = set(values) - set(WRITABLE_COLUMNS)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    return {column: values.get(column) for column in WRITABLE_COLUMNS}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: `patch` applied to `target`, neither changed.

    An object merges member by member (null removes one, an object merges into one);
    anything else replaces the target whole.
    """
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


# Attempts of a merge that another writer keeps overtaking, before it gives up with the
# last VersionMismatch: each attempt lost means another write succeeded meanwhile.
MERGE_ATTEMPTS = 5


def merge_update(
    store: CustomerStore,
    customer_id: str,
    patch: Mapping[str, Any],
    *,
    expected_version: int | None = None,
    by: WrittenBy = UNATTRIBUTED,
) -> CustomerRecord:
    """Apply a merge patch (`patch`: writable columns -> the patch of each) to a customer.

    A value that is not an object replaces the stored one, so a patch of scalars is a
    plain update. An object is merged into the stored object (RFC 7396): read, merge,
    then a compare-and-set write pinned to the version read, tried again when another
    write came in between. With `expected_version` the caller pinned the version
    itself, and a change in between is its VersionMismatch.
    """
    nested = [column for column, value in patch.items() if isinstance(value, Mapping)]
    if not nested:
        return store.update(customer_id, changes=patch, expected_version=expected_version, by=by)
    attempt = 1
    while True:
        current = store.get(customer_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionMismatch(current)
        changes = {
            column: merge_patch(getattr(current, column), value) if column in nested else value
            for column, value in patch.items()
        }
        try:
            return store.update(
                customer_id, changes=changes, expected_version=current.version, by=by
            )
        except VersionMismatch:
            if expected_version is not None or attempt == MERGE_ATTEMPTS:
                raise
            attempt += 1
