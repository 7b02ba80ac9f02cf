"""The customer store's interface: a narrow protocol, plain records and the store's errors.

Views see `CustomerStore` and the errors below, never SQL or DynamoDB. The
implementations live in `customers/stores/` (sqlite3 and DynamoDB) and import
this module; nothing here imports them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    pass

# The public shape of a customer, in the API's order: its name there -> the record's
# attribute and the store's column. `to_public`, the sqlite store's JSON rendering and
# the DynamoDB items follow it; `customers.schemas.Customer` documents it.
PUBLIC_FIELDS = {
    "id": "id",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "businessId": "business_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
# Fields a client may write, by their column name.
WRITABLE_COLUMNS = ("name", "email", "phone", "business_id")
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
        return {name: getattr(self, column) for name, column in PUBLIC_FIELDS.items()}


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


# Builds the answered record of a create from the new customer, for the store to write
# in the same transaction as the customer.
AnswerOf = Callable[[CustomerRecord], IdempotencyRecord]


class CustomerStore(Protocol):
    """What the views need from a store; the sqlite and DynamoDB stores agree on it."""

    kind: str

    def create(
        self,
        *,
        name: str,
        email: str,
        phone: str | None,
        business_id: str | None,
        idempotency: AnswerOf | None = None,
    ) -> CustomerRecord:
        """Insert a new customer; raises EmailTaken.

        With `idempotency`, the record it makes answers the request's held key in the
        same transaction as the insert: both are written or neither. Raises ClaimLost,
        before EmailTaken, when the key is no longer held.
        """
        ...

    def get(self, customer_id: str) -> CustomerRecord: ...

    def list_page(self, query: ListQuery) -> Page: ...

    def list_json(self, query: ListQuery) -> JsonPage:
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

    def insert_many(self, records: Sequence[CustomerRecord]) -> list[Conflict]:
        """Write whole records as given (ids, timestamps, versions), in order, in batches.

        A record whose id exists, or whose email is taken (also by an earlier record of
        the same call), is left out and comes back as a Conflict; the others are written.
        Each record is written whole or not at all.
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
