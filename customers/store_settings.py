"""The store the settings name, opened; a store that cannot be opened is its setting's error.

Every entry point opens the store through here (the app factory, `python app.py`
before its workers start, the `flask customers` commands), so a path sqlite cannot
open, or a table that is not there, stops each of them with the same one line naming
the variable, not a driver's traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from customers.config import ConfigError
from customers.stores import open_store
from db import CustomerStore, StoreUnavailable


def open_configured_store(settings: Mapping[str, Any], *, create: bool = True) -> CustomerStore:
    """The store CUSTOMER_STORE names; without `create`, only one that already exists.

    A command that only reads (an export, a dry run) passes `create=False`: a mistyped
    SQLITE_PATH must not leave an empty database behind and report no customers, and
    DYNAMODB_CREATE_TABLE then creates no table. Raises ConfigError naming the setting.
    """
    if settings["CUSTOMER_STORE"] == "dynamodb":
        return _open_dynamodb(settings, create=create)
    path = settings["SQLITE_PATH"]
    try:
        return open_store(settings, create=create)
    except (sqlite3.Error, RuntimeError) as exc:
        if create:
            raise ConfigError(f"SQLITE_PATH={path!r}: cannot open the database: {exc}") from None
        raise ConfigError(
            f"SQLITE_PATH={path!r}: no database there to read ({exc}); this command "
            "creates none: check the path"
        ) from None


def _open_dynamodb(settings: Mapping[str, Any], *, create: bool) -> CustomerStore:
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    table = settings["DYNAMODB_TABLE"]
    create_table = create and bool(settings["DYNAMODB_CREATE_TABLE"])
    try:
        return open_store({**settings, "DYNAMODB_CREATE_TABLE": create_table})
    except NoRegionError:
        raise ConfigError(
            "AWS_REGION: not set, and the SDK finds no region of its own "
            "(AWS_DEFAULT_REGION, ~/.aws/config): set AWS_REGION=eu-north-1 or the like"
        ) from None
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"DYNAMODB_TABLE={table!r}: cannot open the table: {exc}") from None


def check_store_answers(store: CustomerStore, settings: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the setting when the store is not there; StoreUnavailable
    when it is there but does not answer (a failure of the store, not of a setting).

    For DynamoDB this is the check that the table exists; a sqlite database answers
    once it is open.
    """
    try:
        store.ping()
    except StoreUnavailable as exc:
        if not _is_missing(exc):
            raise
        name = "DYNAMODB_TABLE" if settings["CUSTOMER_STORE"] == "dynamodb" else "SQLITE_PATH"
        raise ConfigError(f"{name}={settings[name]!r}: the store does not answer: {exc}") from None


def _is_missing(exc: StoreUnavailable) -> bool:
    """Whether the store said that what it was asked for does not exist (no such table)."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    return isinstance(cause, ClientError) and (
        cause.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    )
