"""What only the DynamoDB store has: the email claim items, the table, the lazy import."""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from db import CustomerNotFound, EmailTaken, ListQuery, StoreUnavailable
from tests.dynamo import REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from customers.stores.dynamodb import DynamoStore

ROOT = Path(__file__).resolve().parents[2]


def claim(client: DynamoDBClient, table: str, key: str) -> dict[str, Any] | None:
    """The EMAIL# item for `key`, read strongly consistently."""
    answer = client.get_item(
        TableName=table, Key={"pk": {"S": f"EMAIL#{key}"}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = answer.get("Item")
    return item


def test_the_email_claim_lives_and_dies_with_the_customer(
    dynamo_store: DynamoStore, dynamo_client: DynamoDBClient, dynamo_table: str
) -> None:
    # GIVEN a customer
    record = dynamo_store.create(name="A", email="Ann@Example.com", phone=None, business_id=None)
    # THEN its address, in compared form, is claimed for it
    assert claim(dynamo_client, dynamo_table, "ann@example.com") == {
        "pk": {"S": "EMAIL#ann@example.com"},
        "customerId": {"S": record.id},
    }
    # WHEN the address changes, THEN the claim moves
    dynamo_store.update(record.id, changes={"email": "ann@example.org"})
    assert claim(dynamo_client, dynamo_table, "ann@example.com") is None
    assert claim(dynamo_client, dynamo_table, "ann@example.org") is not None
    # WHEN the customer is deleted, THEN the claim goes with it and the address is free
    dynamo_store.delete(record.id)
    assert claim(dynamo_client, dynamo_table, "ann@example.org") is None
    with pytest.raises(CustomerNotFound):
        dynamo_store.get(record.id)
    dynamo_store.create(name="B", email="ann@example.org", phone=None, business_id=None)


def test_optional_fields_left_out_are_absent_attributes(
    dynamo_store: DynamoStore, dynamo_client: DynamoDBClient, dynamo_table: str
) -> None:
    record = dynamo_store.create(name="A", email="a@example.com", phone="1", business_id="1-1")
    dynamo_store.update(record.id, changes={"phone": None, "business_id": None})
    item = dynamo_client.get_item(
        TableName=dynamo_table, Key={"pk": {"S": f"CUSTOMER#{record.id}"}}, ConsistentRead=True
    )["Item"]
    assert "phone" not in item
    assert "businessId" not in item
    assert item["listSk"] == {"S": f"{record.created_at}#{record.id}"}


def test_ten_threads_creating_one_email_make_one_customer(dynamo_store: DynamoStore) -> None:
    def create(n: int) -> str:
        try:
            dynamo_store.create(
                name=f"C{n}", email="Same@Example.com", phone=None, business_id=None
            )
        except EmailTaken:
            return "taken"
        return "created"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(create, range(10)))

    assert sorted(outcomes) == ["created"] + ["taken"] * 9
    page = dynamo_store.list_page(ListQuery(limit=10))
    assert [record.email for record in page.items] == ["Same@Example.com"]


def test_table_creation_is_idempotent(dynamo_store: DynamoStore) -> None:
    record = dynamo_store.create(name="A", email="a@example.com", phone=None, business_id=None)
    dynamo_store.create_table_if_missing()
    dynamo_store.create_table_if_missing()
    assert dynamo_store.get(record.id) == record


def test_from_settings_creates_its_table(
    moto_endpoint: str, dynamo_table_name: str, aws_environ: None
) -> None:
    from customers.stores.dynamodb import DynamoStore

    store = DynamoStore.from_settings(
        {
            "DYNAMODB_TABLE": dynamo_table_name,
            "DYNAMODB_CREATE_TABLE": True,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": moto_endpoint,
            "HISTORY_RETENTION_DAYS": 365,
            "EVENTS_RETENTION_DAYS": 30,
            "EVENTS_SETTLE_S": 30.0,
        }
    )
    try:
        store.ping()
        record = store.create(name="A", email="a@example.com", phone=None, business_id="1-1")
        assert store.list_page(ListQuery(limit=5, business_id="1-1")).items == [record]
    finally:
        store.close()


def test_ping_without_the_table_is_unavailable(
    moto_endpoint: str, dynamo_table_name: str, aws_environ: None
) -> None:
    from customers.stores.dynamodb import DynamoStore

    store = DynamoStore(dynamo_table_name, region=REGION, endpoint_url=moto_endpoint)
    try:
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()


def test_ping_against_a_closed_port_is_unavailable(aws_environ: None) -> None:
    from customers.stores.dynamodb import DynamoStore

    # GIVEN a loopback port nothing listens on (bound, then released)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = DynamoStore(region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()


def test_importing_the_app_does_not_import_boto3() -> None:
    subprocess.run(
        [sys.executable, "-c", "import app, db, sys; assert 'boto3' not in sys.modules"],
        cwd=ROOT,
        check=True,
        timeout=60,
    )
