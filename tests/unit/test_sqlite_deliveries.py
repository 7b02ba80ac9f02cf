"""The webhook relay's state in the sqlite store: deliveries whose event left the feed."""

from __future__ import annotations

from customers.stores.sqlite import SqliteStore
from customers.stores.sqlite_deliveries import SqliteDeliveries

URL = "https://receiver.example/hooks"


def test_deliveries_whose_event_left_the_feed_go_and_hold_no_line() -> None:
    store = SqliteStore()
    deliveries = SqliteDeliveries(store)
    deliveries.register(URL)
    first = store.create(name="A", email="a@example.fi", phone=None, business_id=None)
    other = store.create(name="B", email="b@example.fi", phone=None, business_id=None)
    assert deliveries.take_new(URL, now=0.0) == 2
    # GIVEN the first customer's event pending (retrying) and the other's failed
    deliveries.retry_at(URL, 1, next_at=1e12, error="timed out")
    deliveries.give_up(URL, 2, error="HTTP 500")
    assert [failure.subject for failure in deliveries.failures()] == [other.id]
    store.update(first.id, changes={"name": "A2"})
    # WHEN both events leave the feed (the retention purge deletes the oldest first)
    with store.writing() as conn:
        conn.execute("DELETE FROM events WHERE seq <= 2")
    deliveries.take_new(URL, now=0.0)
    # THEN their deliveries are gone, and the customer's next event is due at once
    with store.reading() as conn:
        left = conn.execute("SELECT seq, state FROM webhook_deliveries ORDER BY seq").fetchall()
    assert left == [(3, "pending")]
    assert [due.event.subject for due in deliveries.due(URL, now=0.0)] == [first.id]
    assert deliveries.failures() == []
    store.close()


def test_with_every_event_gone_no_delivery_is_left() -> None:
    store = SqliteStore()
    deliveries = SqliteDeliveries(store)
    deliveries.register(URL)
    store.create(name="A", email="a@example.fi", phone=None, business_id=None)
    deliveries.take_new(URL, now=0.0)
    deliveries.give_up(URL, 1, error="HTTP 500")
    with store.writing() as conn:
        conn.execute("DELETE FROM events")
    deliveries.take_new(URL, now=0.0)
    with store.reading() as conn:
        assert conn.execute("SELECT count(*) FROM webhook_deliveries").fetchone() == (0,)
    store.close()
