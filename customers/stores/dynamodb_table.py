"""The table: its clients, its set-up (create_table_if_missing: indexes and TTL), and
the Puts every kind of write builds (a customer, its email claim, history entry, event).

The base of the store: DynamoBatches (imports) and DynamoStore (requests) both write
through it, so a Put is built in one place. Set-up is here because it declares what the
writes rely on: the key attributes, the indexes that read them and the TTL attribute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from customers.stores.dynamodb_items import _email_claim_key, _event_item, _history_item, _s
from customers.stores.dynamodb_retries import _code, _write_token
from db import (
    DEFAULT_EVENTS_RETENTION_DAYS,
    DEFAULT_HISTORY_RETENTION_DAYS,
    Action,
    ChangeEvent,
    CustomerRecord,
    HistoryEntry,
    WrittenBy,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = Mapping[str, AttributeValueTypeDef]

SECONDS_PER_DAY = 86_400
# The attributes the table and its indexes are keyed by, and their types.
KEY_ATTRIBUTES: dict[str, Literal["S", "N"]] = {
    "pk": "S",
    "listPk": "S",
    "listSk": "S",
    "businessId": "S",
    "historyOf": "S",
    "version": "N",
    "feedPk": "S",
    "feedSk": "S",
}
# An import waits longer for an answer than a request does: nobody is waiting on a page,
# and a local endpoint (moto) takes seconds for a transaction once the table is large.
BULK_READ_TIMEOUT = 60
# A boto3 session loads the service model (~0.1 s) and is not thread-safe: share one per
# region and build clients from it under a lock.
_sessions: dict[str | None, boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def _make_client(
    region: str | None, endpoint_url: str | None, *, read_timeout: float = 5
) -> DynamoDBClient:
    config = Config(
        connect_timeout=2,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=50,  # one per concurrent request thread
    )
    with _sessions_lock:
        session = _sessions.get(region)
        if session is None:
            session = _sessions[region] = boto3.session.Session(region_name=region)
        return session.client("dynamodb", endpoint_url=endpoint_url, config=config)


class DynamoTable:
    """One DynamoDB table, its clients, and the Puts the store's writes are made of."""

    def __init__(
        self,
        table_name: str = "customers",
        *,
        client: DynamoDBClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS,
        events_retention_days: int = DEFAULT_EVENTS_RETENTION_DAYS,
        events_settle_s: float = 30.0,
    ) -> None:
        """Use `client` if given (the caller closes it), else build one from region/endpoint.

        An import uses a second client, built on first use, that waits BULK_READ_TIMEOUT
        for an answer; with a client given, it uses that one.
        """
        self.table_name = table_name
        self.history_retention_days = history_retention_days
        self.events_retention_days = events_retention_days
        self.events_settle_s = events_settle_s
        self._owns_client = client is None
        self._client = client or _make_client(region, endpoint_url)
        self._where = (region, endpoint_url)
        self._bulk_client: DynamoDBClient | None = client

    @property
    def _bulk(self) -> DynamoDBClient:
        if self._bulk_client is None:
            region, endpoint_url = self._where
            self._bulk_client = _make_client(region, endpoint_url, read_timeout=BULK_READ_TIMEOUT)
        return self._bulk_client

    def create_table_if_missing(self) -> None:
        """Create the table, its indexes and its TTL unless it exists; return once ACTIVE."""
        # index -> its hash and range keys
        indexes = {
            "listing": ("listPk", "listSk"),
            "business": ("businessId", "listSk"),
            "history": ("historyOf", "version"),
            "feed": ("feedPk", "feedSk"),
        }
        created = False
        try:
            self._client.create_table(
                TableName=self.table_name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": kind}
                    for name, kind in KEY_ATTRIBUTES.items()
                ],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": index,
                        "KeySchema": [
                            {"AttributeName": hash_key, "KeyType": "HASH"},
                            {"AttributeName": range_key, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for index, (hash_key, range_key) in indexes.items()
                ],
            )
            created = True
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":  # it exists, or is being created
                raise
        self._client.get_waiter("table_exists").wait(
            TableName=self.table_name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
        if created:  # as template.yaml declares it: expired records and history entries go
            self._client.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
            )

    def close(self) -> None:
        """Close the clients' connections, if this store built them."""
        if self._owns_client:
            self._client.close()
            if self._bulk_client is not None:
                self._bulk_client.close()

    def _transact(
        self,
        *items: TransactWriteItemTypeDef,
        token: str | None = None,
        client: DynamoDBClient | None = None,
    ) -> None:
        """One transaction, with a ClientRequestToken (a new one unless given), which
        every attempt botocore sends carries: DynamoDB applies it once."""
        (client or self._client).transact_write_items(
            TransactItems=list(items), ClientRequestToken=token or _write_token()
        )

    def _put(self, item: dict[str, AttributeValueTypeDef], condition: str) -> PutTypeDef:
        return {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#pk": "pk"},
        }

    def _history(
        self,
        record: CustomerRecord,
        action: Action,
        by: WrittenBy,
        changes: dict[str, Any],
        *,
        at: str | None = None,
    ) -> PutTypeDef:
        """The Put of the entry recording that `record` (as it now is) was written, at its
        `updatedAt` unless `at` is given; only where no entry has its version."""
        entry = HistoryEntry(
            record.version, at or record.updated_at, action, by.actor, by.request_id, changes
        )
        expires_at = int(time.time()) + self.history_retention_days * SECONDS_PER_DAY
        return self._put(
            _history_item(entry, record.id, expires_at=expires_at), "attribute_not_exists(#pk)"
        )

    def _event(self, event: ChangeEvent) -> PutTypeDef:
        """The unconditioned Put of an event: its id is new, and it is written exactly
        when the change it records is."""
        expires_at = int(time.time()) + self.events_retention_days * SECONDS_PER_DAY
        return {"TableName": self.table_name, "Item": _event_item(event, expires_at=expires_at)}

    def _claim_email(self, email: str, customer_id: str) -> PutTypeDef:
        """The Put of EMAIL#<key>: its condition is the uniqueness check itself."""
        item = _email_claim_key(email) | {"customerId": _s(customer_id)}
        return self._put(item, "attribute_not_exists(#pk)")
