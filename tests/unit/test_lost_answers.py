"""Writes whose answer is lost: applied on DynamoDB, then sent again by botocore.

moto's server stands behind a proxy (tests/lossy_proxy.py) that passes each write on
and, for the ones a test picks, drops the answer: the write is applied, the client hears
nothing, and botocore sends it again. moto ignores ClientRequestToken, so the second
sending runs again and its conditions fail on the first one's work: the store must
recognise its own write there and report success, never a taken email, a mismatched
version, a missing customer or a lost idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from db import CustomerNotFound, CustomerRecord, IdempotencyRecord, ListQuery
from tests.dynamo import make_client
from tests.lossy_proxy import LossyProxy

if TYPE_CHECKING:
    from customers.stores.dynamodb import DynamoStore

NOW = 1_900_000_000


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[LossyProxy]:
    with LossyProxy(moto_endpoint) as lossy:
        yield lossy


@pytest.fixture
def store(proxy: LossyProxy, dynamo_table: str) -> Iterator[DynamoStore]:
    """The store on a fresh table, reached through the proxy."""
    from customers.stores.dynamodb import DynamoStore

    client = make_client(proxy.url)
    store = DynamoStore(dynamo_table, client=client)
    yield store
    client.close()


def everyone(store: DynamoStore) -> list[CustomerRecord]:
    return store.list_page(ListQuery(limit=500)).items


def create(store: DynamoStore, email: str = "maija@example.com") -> CustomerRecord:
    return store.create(name="Maija", email=email, phone=None, business_id=None)


def test_a_create_whose_answer_is_lost(store: DynamoStore, proxy: LossyProxy):
    proxy.lose("TransactWriteItems")
    created = create(store)
    assert proxy.lost == ["TransactWriteItems"]
    assert everyone(store) == [created]


def test_a_create_with_an_idempotency_answer_whose_answer_is_lost(
    store: DynamoStore, proxy: LossyProxy
):
    claim = IdempotencyRecord("scope", "key", "fingerprint", "token", NOW + 30)
    assert store.claim_idempotency_key(claim, now=NOW) is None

    def answer_of(customer: CustomerRecord) -> IdempotencyRecord:
        return replace(claim, status=201, body=b"{}", customer_id=customer.id)

    proxy.lose("TransactWriteItems")
    created = store.create(
        name="Maija", email="m@example.com", phone=None, business_id=None, idempotency=answer_of
    )
    assert proxy.lost == ["TransactWriteItems"]
    assert store.claim_idempotency_key(replace(claim, token="other"), now=NOW) == answer_of(created)


@pytest.mark.parametrize("pinned", [False, True])
@pytest.mark.parametrize(
    "changes", [{"name": "Liisa"}, {"email": "liisa@example.com", "phone": "+358 1"}]
)
def test_an_update_whose_answer_is_lost(store: DynamoStore, proxy: LossyProxy, changes, pinned):
    created = create(store)
    # Every update is a transaction: the change, its history entry and its event.
    operation = "TransactWriteItems"
    proxy.lose(operation)
    updated = store.update(created.id, changes=changes, expected_version=1 if pinned else None)
    assert proxy.lost == [operation]
    assert updated.version == 2  # applied once, not twice
    assert store.get(created.id) == updated
    if "email" in changes:  # the old address is free again, the new one taken
        create(store, "maija@example.com")


@pytest.mark.parametrize("pinned", [False, True])
def test_a_delete_whose_answer_is_lost(store: DynamoStore, proxy: LossyProxy, pinned):
    created = create(store)
    proxy.lose("TransactWriteItems")
    store.delete(created.id, expected_version=1 if pinned else None)
    assert proxy.lost == ["TransactWriteItems"]
    with pytest.raises(CustomerNotFound):
        store.get(created.id)
    create(store)  # the address is free again


def test_idempotency_writes_whose_answers_are_lost(store: DynamoStore, proxy: LossyProxy):
    claim = IdempotencyRecord("scope", "key", "fingerprint", "token", NOW + 30)
    proxy.lose("PutItem", times=2)
    assert store.claim_idempotency_key(claim, now=NOW) is None  # held, not "in flight"
    done = replace(claim, status=400, body=b"{}", expires_at=NOW + 86400)
    store.complete_idempotency_key(done)  # answered, not "lost to another"
    assert proxy.lost == ["PutItem", "PutItem"]
    assert store.claim_idempotency_key(replace(claim, token="other"), now=NOW) == done


def records(count: int, *, first: int = 0) -> list[CustomerRecord]:
    return [
        CustomerRecord(
            id=f"id-{number:04d}",
            name=f"Customer {number}",
            email=f"c{number}@example.com",
            created_at=f"2024-01-01T00:00:00.{number:06d}Z",
            updated_at=f"2024-01-01T00:00:00.{number:06d}Z",
            version=1,
        )
        for number in range(first, first + count)
    ]


def test_an_import_whose_every_first_answer_is_lost(store: DynamoStore, proxy: LossyProxy):
    # GIVEN a stored customer, and a batch that repeats its id and one of its own emails
    store.insert_many(records(1, first=500))
    batch = records(120)
    batch[70] = replace(batch[70], id="id-0500")
    batch[90] = replace(batch[90], email="C3@example.com")
    proxy.lose_every_first("TransactWriteItems")

    # WHEN the batch is written, every transaction applied once before its answer is lost
    conflicts = store.insert_many(batch)

    # THEN only the true conflicts are reported, and everything else is stored
    assert len(proxy.lost) >= 3
    assert [(c.index, c.fields) for c in conflicts] == [(70, ("id",)), (90, ("email",))]
    stored = {record.id: record for record in everyone(store)}
    assert len(stored) == 119
    assert all(stored[record.id] == record for i, record in enumerate(batch) if i not in (70, 90))


def test_an_import_whose_outcome_stays_unknown_is_checked(store: DynamoStore, proxy: LossyProxy):
    # Every answer botocore waits for is lost: it gives up, and the store reads back what
    # was written before it decides anything.
    proxy.lose("TransactWriteItems", times=3)
    assert store.insert_many(records(10)) == []
    assert proxy.lost == ["TransactWriteItems"] * 3
    assert everyone(store) == records(10)
