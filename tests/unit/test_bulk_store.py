"""Batch writes of whole records, the same tests on every store: in-memory, file, DynamoDB."""

from __future__ import annotations

from db import Conflict, CustomerRecord, CustomerStore, ListQuery


def record(number: int, *, email: str | None = None, customer_id: str | None = None):
    return CustomerRecord(
        id=customer_id or f"id-{number:04d}",
        name=f"Customer {number}",
        email=email or f"c{number}@example.com",
        phone="+358 1" if number % 2 else None,
        business_id="0112038-9" if number % 3 == 0 else None,
        created_at=f"2024-01-01T00:00:{number % 60:02d}.{number:06d}Z",
        updated_at=f"2024-06-01T00:00:00.{number:06d}Z",
        version=1,
    )


def everything(store: CustomerStore) -> list[CustomerRecord]:
    return store.list_page(ListQuery(limit=500)).items


def test_insert_many_keeps_ids_timestamps_and_every_field(store: CustomerStore) -> None:
    records = [record(number) for number in range(1, 121)]  # several DynamoDB transactions

    assert store.insert_many(records) == []

    assert everything(store) == sorted(records, key=lambda r: (r.created_at, r.id))
    assert store.get("id-0007") == records[6]


def test_taken_ids_and_emails_are_left_out_and_the_rest_written(store: CustomerStore) -> None:
    # GIVEN a stored customer
    store.create(name="Stored", email="Stored@Example.com", phone=None, business_id=None)
    store.insert_many([record(1)])
    batch = [
        record(2),
        record(3, email="stored@example.COM"),  # taken by the stored customer
        record(4, customer_id="id-0001"),  # id taken
        record(5, customer_id="id-0001", email="c1@example.com"),  # both
        record(6),
        record(7, email="C6@example.com"),  # taken by an earlier record of the batch
        record(8, customer_id="id-0006"),  # likewise, by id
    ]

    # WHEN the batch is written
    conflicts = store.insert_many(batch)

    # THEN only the free records are stored, whole
    assert conflicts == [
        Conflict(1, ("email",)),
        Conflict(2, ("id",)),
        Conflict(3, ("id", "email")),
        Conflict(5, ("email",)),
        Conflict(6, ("id",)),
    ]
    stored = {customer.id: customer for customer in everything(store)}
    assert stored["id-0001"] == record(1)
    assert stored["id-0002"] == record(2)
    assert stored["id-0006"] == record(6)
    assert len(stored) == 4


def test_a_record_refused_earlier_in_the_batch_frees_nothing(store: CustomerStore) -> None:
    store.insert_many([record(1)])
    # The first claim on c9@ fails for its id, so the second may have the address.
    conflicts = store.insert_many(
        [record(9, customer_id="id-0001"), record(10, email="c9@example.com")]
    )
    assert conflicts == [Conflict(0, ("id",))]
    assert store.get("id-0010").email == "c9@example.com"


def test_find_conflicts_reports_what_insert_many_would_and_writes_nothing(
    store: CustomerStore,
) -> None:
    store.insert_many([record(1), record(2)])
    batch = [record(3), record(4, email="C1@example.com"), record(2), record(5)]

    found = store.find_conflicts(batch)

    assert found == [Conflict(1, ("email",)), Conflict(2, ("id", "email"))]
    assert len(everything(store)) == 2
    assert store.insert_many(batch) == found
