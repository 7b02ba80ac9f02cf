"""Bulk imports on DynamoDB: customers written in transactions of up to 25, the keys
an import would collide on found beforehand, and a batch whose answer was lost read back
by its tokens so that only what was not written is sent again.

Apart from the request paths because an import has its own limits (a transaction's 100
items, BatchGetItem's 100 keys), its own client with a longer read timeout, and its own
way of finding out what happened; nothing a single request does goes through it.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from customers.stores.dynamodb_items import (
    WRITER_ATTRIBUTE,
    _email_claim_pk,
    _item,
    _s,
    _written_by,
)
from customers.stores.dynamodb_retries import (
    ATTEMPTS,
    THROTTLED,
    _code,
    _failed,
    _outcome_unknown,
    _reasons,
    _Retry,
    _retrying,
    _write_token,
)
from customers.stores.dynamodb_table import DynamoTable
from db import (
    BULK_IMPORT,
    Conflict,
    CustomerRecord,
    WrittenBy,
    change_event,
    changes_between,
    email_key,
    utc_timestamp,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

    Item = Mapping[str, AttributeValueTypeDef]

# TransactWriteItems takes up to 100 items: a customer, its email claim, its history
# entry and its event each.
ITEMS_PER_IMPORT = 4
TRANSACTION_CUSTOMERS = 100 // ITEMS_PER_IMPORT
BATCH_GET_KEYS = 100  # BatchGetItem's limit


class DynamoBatches(DynamoTable):
    """Bulk imports and the reads they need, on top of the table's writes."""

    def insert_many(
        self, records: Sequence[CustomerRecord], *, by: WrittenBy = BULK_IMPORT
    ) -> list[Conflict]:
        """Up to 33 customers per transaction, each with its email claim and history entry.

        A transaction may not touch one item twice, so a chunk ends before a record
        whose id or email an earlier record of the chunk has. A transaction cancelled
        by taken keys is sent again without the records that caused it. Each customer
        carries a token of its own, so one found stored with it was written here.
        """
        conflicts: list[Conflict] = []
        tokens = [_write_token() for _ in records]
        at = utc_timestamp()
        start = 0
        while start < len(records):
            chunk: list[int] = []
            keys: set[str] = set()
            for index in range(start, min(start + TRANSACTION_CUSTOMERS, len(records))):
                record = records[index]
                own = {f"CUSTOMER#{record.id}", f"EMAIL#{email_key(record.email)}"}
                if keys & own:
                    break
                keys |= own
                chunk.append(index)
            start = chunk[-1] + 1
            while chunk:
                left_out = self._insert_chunk(
                    [records[index] for index in chunk],
                    [tokens[index] for index in chunk],
                    by=by,
                    at=at,
                )
                if not left_out:
                    break
                for position, fields in left_out.items():
                    if fields:  # refused; () is written by an attempt whose answer was lost
                        index = chunk[position]
                        conflicts.append(Conflict(index, self._taken(records[index]) or fields))
                chunk = [index for position, index in enumerate(chunk) if position not in left_out]
        return sorted(conflicts, key=lambda conflict: conflict.index)

    @_retrying
    def _insert_chunk(
        self, records: Sequence[CustomerRecord], tokens: Sequence[str], *, by: WrittenBy, at: str
    ) -> dict[int, tuple[str, ...]]:
        """Write the records in one transaction; which it left out, by position: the
        fields refused, or () for a record found already written by this very write.

        When the outcome is unknown (no answer after botocore's own tries), the records
        are read back: those bearing their tokens were written, and the transaction is
        sent again, with the same ClientRequestToken, only if none were.
        """
        items: list[TransactWriteItemTypeDef] = []
        for record, token in zip(records, tokens, strict=True):
            put = self._put(
                _item(record) | {WRITER_ATTRIBUTE: _s(token)}, "attribute_not_exists(#pk)"
            )
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            # The entry is unconditioned: it is written exactly when its customer is.
            changed = changes_between(None, record)
            entry = self._history(record, "imported", by, changed, at=at)
            del entry["ConditionExpression"], entry["ExpressionAttributeNames"]
            items += [
                {"Put": put},
                {"Put": self._claim_email(record.email, record.id)},
                {"Put": entry},
                {"Put": self._event(change_event(record, "imported", changed, at=at))},
            ]
        request_token = _write_token()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._transact(*items, token=request_token, client=self._bulk)
                return {}
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    return self._left_out(records, tokens, exc)
                if not _outcome_unknown(exc):
                    raise
                unknown: Exception = exc
            except BotoCoreError as exc:  # a timeout, a connection lost: no answer at all
                unknown = exc
            written = self._written(records, tokens)
            if written:
                return dict.fromkeys(written, ())
            time.sleep(random.uniform(0, 0.5 * attempt))
        raise unknown

    def _left_out(
        self, records: Sequence[CustomerRecord], tokens: Sequence[str], exc: ClientError
    ) -> dict[int, tuple[str, ...]]:
        """Which records a cancelled transaction refused, and on what; () for one found
        written by an earlier attempt of the same transaction."""
        reasons = _reasons(exc)
        if any(reason.get("Code") in THROTTLED for reason in reasons):
            raise _Retry from exc  # a burst above the table's or index's rate: again
        left_out: dict[int, tuple[str, ...]] = {}
        for position, token in enumerate(tokens):
            start = ITEMS_PER_IMPORT * position
            customer, claim = reasons[start : start + 2]
            if _failed(customer) and _written_by(customer.get("Item"), token):
                left_out[position] = ()
                continue
            fields = ("id",) * _failed(customer) + ("email",) * _failed(claim)
            if fields:
                left_out[position] = fields
        if not left_out:
            raise exc
        return left_out

    def _written(self, records: Sequence[CustomerRecord], tokens: Sequence[str]) -> list[int]:
        """The positions of the records stored with their own tokens."""
        found = self._items(
            [f"CUSTOMER#{record.id}" for record in records], attributes=("pk", WRITER_ATTRIBUTE)
        )
        return [
            position
            for position, (record, token) in enumerate(zip(records, tokens, strict=True))
            if _written_by(found.get(f"CUSTOMER#{record.id}"), token)
        ]

    def find_conflicts(self, records: Sequence[CustomerRecord]) -> list[Conflict]:
        found = self._existing(
            [
                key
                for record in records
                for key in (f"CUSTOMER#{record.id}", _email_claim_pk(record))
            ]
        )
        conflicts = []
        for index, record in enumerate(records):
            id_taken = f"CUSTOMER#{record.id}" in found
            email_taken = _email_claim_pk(record) in found
            if id_taken or email_taken:
                conflicts.append(Conflict(index, ("id",) * id_taken + ("email",) * email_taken))
        return conflicts

    def _taken(self, record: CustomerRecord) -> tuple[str, ...]:
        """Which of the record's keys are stored, read strongly consistently."""
        found = self._existing([f"CUSTOMER#{record.id}", _email_claim_pk(record)])
        return ("id",) * (f"CUSTOMER#{record.id}" in found) + ("email",) * (
            _email_claim_pk(record) in found
        )

    def _existing(self, pks: Sequence[str]) -> set[str]:
        """Which of these partition keys have an item (BatchGetItem, consistent reads)."""
        return set(self._items(pks, attributes=("pk",)))

    def _items(
        self, pks: Sequence[str], *, attributes: Sequence[str] | None = None
    ) -> dict[str, Item]:
        """The items with these partition keys, by key (BatchGetItem, consistent reads):
        whole, or with just `attributes` (which hold "pk")."""
        found: dict[str, Item] = {}
        unique = list(dict.fromkeys(pks))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            keys: Any = {
                "Keys": [{"pk": _s(pk)} for pk in unique[start : start + BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
            if attributes is not None:
                keys |= {
                    "ProjectionExpression": ", ".join(f"#a{n}" for n in range(len(attributes))),
                    "ExpressionAttributeNames": {
                        f"#a{n}": name for n, name in enumerate(attributes)
                    },
                }
            request: Any = {self.table_name: keys}
            for attempt in itertools.count():
                answer = self._bulk.batch_get_item(RequestItems=request)
                found |= {item["pk"]["S"]: item for item in answer["Responses"][self.table_name]}
                request = answer.get("UnprocessedKeys")
                if not request:
                    break
                # Throttled keys come back unprocessed: back off before asking again.
                time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))
        return found
