"""DynamoDB items and their keys: a record's item and back, and the keys and items of
email claims, idempotency records, history entries and events.

Pure mapping, no requests: it is what the request paths (dynamodb), the table's writes
(dynamodb_table), imports (dynamodb_batches) and the stream handler share, and it can be
read without any of them. The layout it writes is drawn in customers.stores.dynamodb's
docstring. Names starting with "_" are private to the DynamoDB store's modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson

from customers.fields import FIELDS, WRITABLE
from db import (
    Action,
    ChangeEvent,
    CustomerNotFound,
    CustomerRecord,
    HistoryEntry,
    IdempotencyRecord,
    email_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = Mapping[str, AttributeValueTypeDef]

LIST_PK = "CUSTOMERS"
FEED_PK = "EVENTS"
# Store column -> item attribute, for the writable fields.
ATTRIBUTE_OF = {field.column: field.api for field in WRITABLE}
WRITER_ATTRIBUTE = "writeToken"
ANSWERED_IN = "answeredIn"  # on a customer: the pk of its create's IDEMPOTENCY# record
MAX_KEY_BYTES = 2048  # DynamoDB's limit on a partition key value


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _attribute(value: Any) -> AttributeValueTypeDef:
    """A field's value as DynamoDB types it: text, number, boolean, map or list; a map
    leaves out its null members, as an item leaves out its null fields."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items() if v is not None}}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    return {"S": value}


def _value(attribute: AttributeValueTypeDef) -> Any:
    """The field's value from what `_attribute` made of it."""
    if "S" in attribute:
        return attribute["S"]
    if "N" in attribute:
        number = attribute["N"]
        return float(number) if any(c in number for c in ".eE") else int(number)
    if "BOOL" in attribute:
        return attribute["BOOL"]
    if "M" in attribute:
        return {name: _value(member) for name, member in attribute["M"].items()}
    if "L" in attribute:
        return [_value(member) for member in attribute["L"]]
    return None


def _record(item: Item) -> CustomerRecord:
    """The record from an item, by name: a field absent from the item is null."""
    values = {field.column: _value(item[field.api]) for field in FIELDS if field.api in item}
    return CustomerRecord(**values, version=int(item["version"]["N"]))


def _item(record: CustomerRecord) -> dict[str, AttributeValueTypeDef]:
    values = {field.api: getattr(record, field.column) for field in FIELDS}
    item = {name: _attribute(value) for name, value in values.items() if value is not None}
    return item | {
        "pk": _s(f"CUSTOMER#{record.id}"),
        "listPk": _s(LIST_PK),
        "listSk": _s(f"{record.created_at}#{record.id}"),
        "version": {"N": str(record.version)},
    }


def _history_pk(customer_id: str, version: int) -> str:
    return f"HISTORY#{customer_id}#{version}"


def _history_item(
    entry: HistoryEntry, customer_id: str, *, expires_at: int
) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": _s(_history_pk(customer_id, entry.version)),
        "historyOf": _s(customer_id),
        "version": {"N": str(entry.version)},
        "at": _s(entry.at),
        "action": _s(entry.action),
        "changes": _s(orjson.dumps(entry.changes).decode()),
        "expiresAt": {"N": str(expires_at)},
    }
    if entry.actor is not None:
        item["actor"] = _s(entry.actor)
    if entry.request_id is not None:
        item["requestId"] = _s(entry.request_id)
    return item


def _event_item(event: ChangeEvent, *, expires_at: int) -> dict[str, AttributeValueTypeDef]:
    return {
        "pk": _s(f"EVENT#{event.id}"),
        "feedPk": _s(FEED_PK),
        "feedSk": _s(event.id),
        "type": _s(event.type),
        "subject": _s(event.subject),
        "time": _s(event.time),
        "data": _s(orjson.dumps(event.data).decode()),
        "expiresAt": {"N": str(expires_at)},
    }


def event_from_item(item: Item) -> ChangeEvent:
    """The event an EVENT# item holds: read from a query, or from the table's stream
    (whose NewImage has the same form)."""
    return ChangeEvent(
        item["feedSk"]["S"],
        item["type"]["S"],
        item["subject"]["S"],
        item["time"]["S"],
        orjson.loads(item["data"]["S"]),
        item["feedSk"]["S"],
    )


def _history_entry(item: Item) -> HistoryEntry:
    return HistoryEntry(
        int(item["version"]["N"]),
        item["at"]["S"],
        cast("Action", item["action"]["S"]),
        item["actor"]["S"] if "actor" in item else None,
        item["requestId"]["S"] if "requestId" in item else None,
        orjson.loads(item["changes"]["S"]),
    )


def _customer_key(customer_id: str) -> dict[str, AttributeValueTypeDef]:
    """The key of CUSTOMER#<id>; an id too long to be in a key cannot exist."""
    pk = f"CUSTOMER#{customer_id}"
    if len(pk.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise CustomerNotFound(customer_id)
    return {"pk": _s(pk)}


def _email_claim_key(email: str) -> dict[str, AttributeValueTypeDef]:
    """The key of EMAIL#<key>, the item by which one customer claims an email address."""
    return {"pk": _s(f"EMAIL#{email_key(email)}")}


def _idempotency_key(scope: str, key: str) -> dict[str, AttributeValueTypeDef]:
    """The key of IDEMPOTENCY#<scope>#<key>; a scope has no '#', so the two never blur."""
    return {"pk": _s(f"IDEMPOTENCY#{scope}#{key}")}


def _idempotency_item(record: IdempotencyRecord) -> dict[str, AttributeValueTypeDef]:
    item = _idempotency_key(record.scope, record.key) | {
        "fingerprint": _s(record.fingerprint),
        "token": _s(record.token),
        "expiresAt": {"N": str(record.expires_at)},
    }
    if record.status is not None:
        item |= {
            "status": {"N": str(record.status)},
            "headers": _s(orjson.dumps(record.headers).decode()),
            "body": {"B": record.body},
        }
    if record.customer_id is not None:
        item["customerId"] = _s(record.customer_id)
    if record.owner:
        item["owner"] = _s(record.owner)
    return item


def _idempotency_record(item: Item, scope: str, key: str) -> IdempotencyRecord:
    answered = "status" in item
    return IdempotencyRecord(
        scope,
        key,
        item["fingerprint"]["S"],
        item["token"]["S"],
        int(item["expiresAt"]["N"]),
        int(item["status"]["N"]) if answered else None,
        tuple(
            (str(name), str(value))
            for name, value in (orjson.loads(item["headers"]["S"]) if answered else ())
        ),
        bytes(item["body"]["B"]) if answered else b"",
        item["customerId"]["S"] if "customerId" in item else None,
        item["owner"]["S"] if "owner" in item else "",
    )


def _email_claim_pk(record: CustomerRecord) -> str:
    """The `pk` of the customer's email claim (see `_email_claim_key`)."""
    return f"EMAIL#{email_key(record.email)}"


def _written_by(item: Item | None, token: str) -> bool:
    """Whether the item was last written by the write holding `token`."""
    return item is not None and item.get(WRITER_ATTRIBUTE, {}).get("S") == token
