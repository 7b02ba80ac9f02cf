"""Bulk import and export: every row checked as a POST body is, written in batches.

An imported row goes through `CustomerImport`, which is `CustomerCreate` (the POST
body's model: the same field rules, trimming and business-ID check digit) plus the
three fields only an import may give: `id`, `createdAt` and `updatedAt`, kept as
given so that export, then import, moves customers between stores faithfully.
Rows are handled a batch at a time: validated, written by the store's
`insert_many` (which keeps ids and emails unique, against the store and within the
file), and the rejected ones reported in line order. Nothing is held beyond a batch
but the keys of the rows taken, in a temporary database on disk (`_FileKeys`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from customers.fields import columns_of
from customers.file_rows import SourceRow, UnreadableFile
from customers.schemas import CREATE_MEMBERS, Rule, customer_model, describe_errors
from db import (
    Conflict,
    CustomerRecord,
    CustomerStore,
    ListQuery,
    email_key,
    new_customer_id,
    utc_timestamp,
)

# Rows per batch: one transaction each on sqlite; DynamoDB splits it into transactions
# of its own size. Large enough to amortise a commit's fsync, small enough to stay flat.
BATCH_ROWS = 1000
EXPORT_PAGE = 500
TAKEN = "is already in use"
# Problems reported for one row at most: a row of a million unknown members is one
# rejected row, not a million lines (nor a million held until its batch is written).
MAX_ROW_ERRORS = 20
# Ids appear in URLs and in list cursors (at most 64 characters there): URL-safe only.
ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _timestamp(value: str) -> str:
    """An RFC 3339 timestamp in the service's own form: UTC, microseconds, fixed width.

    Lists are ordered by comparing these as text, which is time order only in that form.
    """
    match = _RFC3339.fullmatch(value)
    if not match:
        raise ValueError("must be an RFC 3339 timestamp, such as 2026-01-31T12:00:00.000000Z")
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    if match.group(2) == "Z" and len(match.group(1) or "") == 7:  # already that form
        return value
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ID_RULE = Rule("1 to 64 of letters, digits and . _ ~ -")
ImportedId = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN),
    ID_RULE,
    Field(description=f"Kept as given: {ID_RULE.words}"),
]
Timestamp = Annotated[str, AfterValidator(_timestamp)]


def _not_before_creation(value: str | None, info: ValidationInfo) -> str | None:
    if value is None or "createdAt" not in info.data:  # absent, or createdAt is bad
        return value
    created = info.data["createdAt"]
    if created is None:
        raise ValueError("needs createdAt")
    if value < created:
        raise ValueError("must not be before createdAt")
    return value


CustomerImport = customer_model(
    "CustomerImport",
    "One imported row: a POST body, plus the id and timestamps an export carries.",
    CREATE_MEMBERS
    | {
        "id": (ImportedId | None, None),
        "createdAt": (Timestamp | None, None),
        "updatedAt": (Timestamp | None, None),
    },
    config=ConfigDict(extra="forbid", strict=True),
    validators={"_not_before_creation": field_validator("updatedAt")(_not_before_creation)},
)


def to_record(row: BaseModel) -> CustomerRecord:
    """The record to store: the given id and timestamps, or new ones as a POST makes them."""
    given = row.model_dump()
    created = given["createdAt"] or utc_timestamp()
    given |= {
        "id": given["id"] or new_customer_id(),
        "createdAt": created,
        "updatedAt": given["updatedAt"] or created,
    }
    return CustomerRecord(**columns_of(given), version=1)


@dataclass(slots=True)
class Summary:
    """Rows read, imported (in a dry run: would be) and rejected so far.

    `through_line` is the last line of the rows handled (written or reported) so far;
    `stopped` is what made the file unreadable after them, if anything did.
    """

    read: int = 0
    imported: int = 0
    rejected: int = 0
    through_line: int = 0
    stopped: UnreadableFile | None = None


Report = Callable[[int, str, str], None]  # line, field, reason


class _FileKeys:
    """The ids and emails of the rows taken so far, each with its line.

    A row that repeats one is told which earlier line has it. A dry run writes
    nothing to the store, so it also finds such repeats here rather than there.
    Kept in a temporary database on disk, so memory stays flat however long the file.
    """

    def __init__(self) -> None:
        # "": a private temporary database, deleted when the connection closes.
        self._conn = sqlite3.connect("", isolation_level=None)
        self._conn.execute("CREATE TABLE taken (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    @staticmethod
    def keys(record: CustomerRecord) -> dict[str, str]:
        return {"id": f"id:{record.id}", "email": f"email:{email_key(record.email)}"}

    def add(self, line: int, record: CustomerRecord) -> None:
        rows = [(key, line) for key in self.keys(record).values()]
        self._conn.executemany("INSERT OR IGNORE INTO taken VALUES (?, ?)", rows)

    def lines(self, record: CustomerRecord) -> dict[str, int]:
        """The lines that took this record's id and email, by field, where a row did."""
        keys = self.keys(record)
        found = dict(
            self._conn.execute(
                "SELECT key, line FROM taken WHERE key IN (?, ?)", tuple(keys.values())
            ).fetchall()
        )
        return {name: found[key] for name, key in keys.items() if key in found}

    def close(self) -> None:
        self._conn.close()


def _write(
    store: CustomerStore,
    batch: list[tuple[int, CustomerRecord]],
    keys: _FileKeys,
    *,
    dry_run: bool,
) -> list[tuple[int, list[tuple[str, str]]]]:
    """Write (or in a dry run, check) the batch; the rejected rows' lines and problems."""
    records = [record for _, record in batch]
    if dry_run:
        stored = {conflict.index: conflict.fields for conflict in store.find_conflicts(records)}
        conflicts = []
        for index, (line, record) in enumerate(batch):
            fields = set(stored.get(index, ())) | set(keys.lines(record))
            if fields:
                conflicts.append(Conflict(index, tuple(f for f in ("id", "email") if f in fields)))
            else:
                keys.add(line, record)
    else:
        conflicts = store.insert_many(records) if records else []
        refused = {conflict.index for conflict in conflicts}
        for index, (line, record) in enumerate(batch):
            if index not in refused:
                keys.add(line, record)
    rejected = []
    for conflict in conflicts:
        line, record = batch[conflict.index]
        earlier = keys.lines(record)
        rejected.append(
            (
                line,
                [
                    (name, f"{TAKEN} by line {earlier[name]}" if name in earlier else TAKEN)
                    for name in conflict.fields
                ],
            )
        )
    return rejected


def _bounded(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if len(errors) <= MAX_ROW_ERRORS:
        return errors
    more = len(errors) - MAX_ROW_ERRORS
    return [*errors[:MAX_ROW_ERRORS], ("row", f"has {more} more problems, not listed")]


def import_rows(
    store: CustomerStore,
    rows: Iterable[SourceRow],
    *,
    report: Report,
    dry_run: bool = False,
    progress: Callable[[Summary], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    summary: Summary | None = None,
) -> Summary:
    """Check every row and write the good ones; `report` hears of each bad field.

    Rejections are reported a batch at a time, in line order. When the file turns
    unreadable, the rows before that point are written and the summary says where
    it stopped. `summary` (else a new one) is kept up to date as batches are written,
    so a caller still has it when the store fails.
    """
    summary = summary or Summary()
    keys = _FileKeys()
    batch: list[tuple[int, CustomerRecord]] = []
    rejections: list[tuple[int, list[tuple[str, str]]]] = []
    last_line = summary.through_line

    def flush() -> None:
        refused = _write(store, batch, keys, dry_run=dry_run)
        summary.imported += len(batch) - len(refused)
        rejections.extend(refused)
        summary.rejected += len(rejections)
        summary.through_line = last_line
        for line, errors in sorted(rejections, key=lambda rejection: rejection[0]):
            for name, reason in errors:
                report(line, name, reason)
        batch.clear()
        rejections.clear()
        if progress is not None:
            progress(summary)

    try:
        for row in rows:
            summary.read += 1
            last_line = row.line
            errors = row.errors
            if not errors:
                try:
                    batch.append((row.line, to_record(CustomerImport.model_validate(row.fields))))
                except ValidationError as exc:
                    errors = describe_errors(exc, row.fields)
            if errors:
                rejections.append((row.line, _bounded(errors)))
            if len(batch) + len(rejections) >= batch_rows:
                flush()
        flush()
    except UnreadableFile as exc:
        flush()
        summary.stopped = exc
    finally:
        keys.close()
    return summary


def all_customers(
    store: CustomerStore, *, page_size: int = EXPORT_PAGE
) -> Iterator[CustomerRecord]:
    """Every customer in list order (createdAt, id), a page at a time."""
    after = None
    while True:
        page = store.list_page(ListQuery(limit=page_size, after=after))
        yield from page.items
        if not page.has_more or not page.items:
            return
        after = (page.items[-1].created_at, page.items[-1].id)
