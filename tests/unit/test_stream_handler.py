"""The stream function: DynamoDB stream records of the shape Lambda hands over, made from
the items the store wrote in moto, delivered to a receiver that verifies each with
`standardwebhooks`; a record that cannot be delivered is the batch's reported failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from customers.aws.stream_handler import Delivery
from customers.config import DEFAULTS
from db import EventQuery
from tests.dynamo import REGION
from tests.webhook_receiver import SECRET, Receiver

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from customers.stores.dynamodb import DynamoStore

STREAM_ARN = (
    f"arn:aws:dynamodb:{REGION}:123456789012:table/customers/stream/2026-12-07T00:00:00.000"
)


def stream_record(item: dict[str, Any], sequence: int, *, name: str = "INSERT") -> dict[str, Any]:
    """One record as DynamoDB Streams hands it to Lambda (StreamViewType NEW_IMAGE)."""
    return {
        "eventID": f"{sequence:032x}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {
            "ApproximateCreationDateTime": 1796617928,
            "Keys": {"pk": item["pk"]},
            "NewImage": item,
            "SequenceNumber": str(sequence).rjust(21, "0"),
            "SizeBytes": 256,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": STREAM_ARN,
    }


def records_of(client: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    """The table's items as the stream would hand them: events in the order written,
    with a customer's own record among them (which the function passes over)."""
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    events = sorted(
        (item for item in items if item["pk"]["S"].startswith("EVENT#")),
        key=lambda item: item["feedSk"]["S"],
    )
    customer = next(item for item in items if item["pk"]["S"].startswith("CUSTOMER#"))
    ordered = [customer, *events]
    return [
        stream_record(item, 100 + n, name="MODIFY" if item is customer else "INSERT")
        for n, item in enumerate(ordered)
    ]


def create_customers(store: DynamoStore, prefix: str, count: int) -> None:
    for serial in range(count):
        store.create(
            name=f"{prefix}{serial}",
            email=f"{prefix}{serial}@example.com",
            phone=None,
            business_id=None,
        )


@pytest.fixture
def stream(dynamo_client: DynamoDBClient, dynamo_table: str) -> Callable[[], list[dict[str, Any]]]:
    """The table's records as the stream would hand them over now."""
    return lambda: records_of(dynamo_client, dynamo_table)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def delivery(receiver: Receiver) -> Iterator[Delivery]:
    settings = {
        **DEFAULTS,
        "WEBHOOK_URL": (receiver.url,),
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": True,
    }
    made = Delivery(settings)
    yield made
    assert made.sender is not None
    made.sender.close()


def test_a_batch_is_delivered_signed_in_stream_order(
    dynamo_store: DynamoStore, stream: Any, delivery: Delivery, receiver: Receiver
) -> None:
    # GIVEN a customer made and changed, another made, as the store writes them
    made = dynamo_store.create(name="A", email="a@example.com", phone=None, business_id=None)
    dynamo_store.update(made.id, changes={"name": "B"})
    dynamo_store.create(name="C", email="c@example.com", phone=None, business_id=None)
    dynamo_store.events_settle_s = 0
    feed = dynamo_store.events_page(EventQuery(limit=10)).items

    # WHEN the stream hands the function their records
    answer = delivery.handle({"Records": stream()})

    # THEN every event arrives once, in order, verified, as the feed shows it
    assert answer == {"batchItemFailures": []}
    assert all(d.verified for d in receiver.deliveries)
    assert [d.webhook_id for d in receiver.deliveries] == [event.id for event in feed]
    assert [d.event for d in receiver.deliveries] == [event.to_cloudevent() for event in feed]


def test_a_record_that_fails_is_reported_and_the_rest_of_the_batch_waits(
    dynamo_store: DynamoStore, stream: Any, delivery: Delivery, receiver: Receiver
) -> None:
    create_customers(dynamo_store, "n", 3)
    records = stream()
    second = records[2]  # after the customer's own record and the first event
    failing_id = second["dynamodb"]["NewImage"]["feedSk"]["S"]
    receiver.answer = lambda number, event: 500 if event["id"] == failing_id else 200

    # WHEN the second event's endpoint fails
    answer = delivery.handle({"Records": records})

    # THEN that record is the batch's failure, and the third was not sent before it
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]
    }
    assert [d.answered for d in receiver.deliveries] == [200, 500]
    # AND Lambda's retry from that record delivers the rest, with the same webhook-id
    receiver.answer = lambda number, event: 200
    assert delivery.handle({"Records": records[2:]}) == {"batchItemFailures": []}
    assert [d.webhook_id for d in receiver.deliveries][1:3] == [failing_id] * 2
    assert len(receiver.delivered()) == 3


def test_an_endpoint_answering_410_is_left_out_from_then_on(
    dynamo_store: DynamoStore, stream: Any, delivery: Delivery, receiver: Receiver
) -> None:
    create_customers(dynamo_store, "g", 2)
    receiver.answer = lambda number, event: 410
    answer = delivery.handle({"Records": stream()})
    assert answer == {"batchItemFailures": []}
    assert len(receiver.deliveries) == 1 and delivery.gone == {receiver.url}
