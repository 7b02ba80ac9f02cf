"""After a delete and a clean stop, no byte of the person is left in the store, nor logged.

The real server (`python app.py`) on a file store, whose every file is then read byte for
byte, and on DynamoDB (moto's server), whose table is then scanned whole. A kept
customer's values are found the same way, which shows that the search can find them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.dynamo import REGION
from tests.served import ServerProcess

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Values found nowhere else: a search for them finds only this person.
ERASED = {"name": "Säde Unohdettava-Qx7", "email": "Sade.Unohdettava-Qx7@Example.com"}
ERASED_PHONES = ("+358 40 111 7733", "+358 50 999 8877")  # before and after a change
KEPT = {"name": "Pysyvä Muistettava-Kz3", "email": "Pysyva.Muistettava-Kz3@Example.com"}
KEPT_PHONE = "+358 44 222 3344"


def traces(person: dict[str, str], *phones: str) -> list[bytes]:
    """What of the person a store could hold: each value in UTF-8, the email lowercased too."""
    values = [person["name"], person["email"], person["email"].lower(), *phones]
    return [value.encode() for value in values]


def erase_one(
    settings: dict[str, str], output: Path, *, before_stop: Callable[[], object] = lambda: None
) -> None:
    """Serve with `settings`: create the kept and the erased person with keys, change the
    erased one's phone, delete them, call `before_stop`, and stop the server cleanly."""
    server = ServerProcess({**settings, "LOG_LEVEL": "INFO"}, output=output)
    try:
        with requests.Session() as session:
            url = f"{server.url}/customers"
            kept = {**KEPT, "phone": KEPT_PHONE}
            erased = {**ERASED, "phone": ERASED_PHONES[0]}
            made = {}
            for name, body in (("kept", kept), ("erased", erased)):
                answer = session.post(
                    url, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=30
                )
                assert answer.status_code == 201, answer.text
                made[name] = answer.json()["id"]
            changed = session.patch(
                f"{url}/{made['erased']}", json={"phone": ERASED_PHONES[1]}, timeout=30
            )
            assert changed.status_code == 200
            assert session.delete(f"{url}/{made['erased']}", timeout=30).status_code == 204
        before_stop()
    finally:
        assert server.stop() == 0


def found_in(data: bytes, values: list[bytes]) -> list[bytes]:
    return [value for value in values if value in data]


@pytest.mark.parametrize("reader", [False, True], ids=["alone", "with-another-connection"])
def test_a_file_store_keeps_no_byte_of_an_erased_person(tmp_path: Path, reader: bool) -> None:
    # GIVEN two workers on a file store in a directory of its own, and perhaps another
    # connection open on it (a backup, an operator's shell), which keeps SQLite from
    # checkpointing and removing the WAL by itself when the workers close
    store = tmp_path / "store"
    store.mkdir()
    database = store / "customers.db"
    settings = {"SQLITE_PATH": str(database), "WORKERS": "2"}
    with contextlib.ExitStack() as stack:
        if reader:
            other = stack.enter_context(contextlib.closing(sqlite3.connect(database)))
        # WHEN a person is created, changed and deleted, and the server stopped cleanly
        erase_one(
            settings,
            tmp_path / "server.log",
            before_stop=lambda: reader and other.execute("SELECT count(*) FROM customers"),
        )
        # THEN no file of the database holds any of their values; the kept person's are
        files = sorted(path for path in store.iterdir() if path.is_file())
        everything = b"".join(path.read_bytes() for path in files)
    assert database in files
    assert found_in(everything, traces(ERASED, *ERASED_PHONES)) == []
    assert found_in(everything, traces(KEPT, KEPT_PHONE)) == traces(KEPT, KEPT_PHONE)
    # and the server's own lines never held either person
    logged = (tmp_path / "server.log").read_bytes()
    assert b'"event":"request"' in logged
    assert found_in(logged, traces(ERASED, *ERASED_PHONES) + traces(KEPT, KEPT_PHONE)) == []


def raw(value: Any) -> bytes:
    """The bytes of an item's names and values: strings in UTF-8, binaries as they are."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        return b"\n".join(raw(name) + b"=" + raw(inner) for name, inner in value.items())
    if isinstance(value, list):
        return b"\n".join(raw(inner) for inner in value)
    return str(value).encode()


def scanned(client: DynamoDBClient, table: str) -> bytes:
    """Every item of the table, whole (a Scan read to its end), as bytes."""
    items: list[Any] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return raw(items)
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.mark.usefixtures("aws_environ")
def test_a_dynamodb_table_keeps_no_item_holding_an_erased_person(
    tmp_path: Path, dynamo_client: DynamoDBClient, dynamo_table: str, moto_endpoint: str
) -> None:
    settings = {
        "CUSTOMER_STORE": "dynamodb",
        "DYNAMODB_TABLE": dynamo_table,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
    }
    erase_one(settings, tmp_path / "server.log")
    everything = scanned(dynamo_client, dynamo_table)
    assert b"IDEMPOTENCY#" in everything  # the erased person's record is there, as a tombstone
    assert found_in(everything, traces(ERASED, *ERASED_PHONES)) == []
    assert found_in(everything, traces(KEPT, KEPT_PHONE)) == traces(KEPT, KEPT_PHONE)
