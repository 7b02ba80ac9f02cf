"""The store implementations, and the one place that picks among them.

`open_store` is what the app factory calls: sqlite3 unless `CUSTOMER_STORE` says
dynamodb, whose module (and boto3 with it) is imported only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from customers.stores.sqlite import SqliteStore
from db import CustomerStore


def open_store(settings: Mapping[str, Any]) -> CustomerStore:
    """The store `CUSTOMER_STORE` names; DynamoDB's module is imported only when chosen."""
    if settings["CUSTOMER_STORE"] == "dynamodb":
        from customers.stores.dynamodb import DynamoStore

        return DynamoStore.from_settings(settings)
    return SqliteStore(
        settings["SQLITE_PATH"], history_retention_days=settings["HISTORY_RETENTION_DAYS"]
    )
