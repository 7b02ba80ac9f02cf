"""The store implementations, and the one place that picks among them.

`open_store` is what the app factory calls: sqlite3 unless `CUSTOMER_STORE` says
dynamodb, whose module (and boto3 with it) is imported only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customers.stores.sqlite import SqliteStore
from db import CustomerStore


def open_store(settings: Mapping[str, Any], *, create: bool = True) -> CustomerStore:
    """The store `CUSTOMER_STORE` names; DynamoDB's module is imported only when chosen.

    Without `create`, a sqlite file is opened only if it exists (DynamoDB tables are
    created only when DYNAMODB_CREATE_TABLE says so, either way).
    """
    if settings["CUSTOMER_STORE"] == "dynamodb":
        from customers.stores.dynamodb import DynamoStore

        return DynamoStore.from_settings(settings)
    return SqliteStore(
        settings["SQLITE_PATH"],
        create=create,
        history_retention_days=settings["HISTORY_RETENTION_DAYS"],
        events_retention_days=settings["EVENTS_RETENTION_DAYS"],
    )
