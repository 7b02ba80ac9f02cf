"""What every store raises, as it raises it, against the `StoreErrors` metric's rule.

The store's answers about a request (a taken email, no such customer, a stale version,
an idempotency key taken over) are not the store failing, whatever driver error they
were raised from; a store that fails is. `tests/http/test_store_metric.py` checks the
same over HTTP for the answers a request can reach; a key taken over is reached here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from customers.web.metrics import is_store_error
from db import (
    ClaimLost,
    CustomerNotFound,
    CustomerStore,
    EmailTaken,
    IdempotencyRecord,
    StoreError,
    VersionMismatch,
)

NOW = 1_900_000_000


def raised(action: Callable[[], object]) -> StoreError:
    with pytest.raises(StoreError) as caught:
        action()
    return caught.value


def test_the_stores_answers_about_a_request_do_not_count(store: CustomerStore) -> None:
    first = store.create(name="A", email="a@example.com", phone=None, business_id=None)
    second = store.create(name="B", email="b@example.com", phone=None, business_id=None)
    claim = IdempotencyRecord("scope", "key", "fingerprint", "first", NOW + 30)
    store.claim_idempotency_key(claim, now=NOW)
    # held past its time and taken over by another request
    store.claim_idempotency_key(replace(claim, token="second", expires_at=NOW + 90), now=NOW + 60)
    answers = {
        "email taken on create": raised(
            lambda: store.create(name="C", email="A@example.com", phone=None, business_id=None)
        ),
        "email taken on update": raised(
            lambda: store.update(second.id, changes={"email": "a@example.com"})
        ),
        "no such customer (get)": raised(lambda: store.get("nobody")),
        "no such customer (update)": raised(lambda: store.update("nobody", changes={"name": "C"})),
        "no such customer (delete)": raised(lambda: store.delete("nobody")),
        "stale version (update)": raised(
            lambda: store.update(first.id, changes={"name": "C"}, expected_version=9)
        ),
        "stale version (delete)": raised(lambda: store.delete(first.id, expected_version=9)),
        "key taken over": raised(
            lambda: store.complete_idempotency_key(
                replace(claim, status=201, headers=(), body=b"{}", expires_at=NOW + 86400)
            )
        ),
    }
    kinds = {what: type(error) for what, error in answers.items()}
    assert kinds == {
        "email taken on create": EmailTaken,
        "email taken on update": EmailTaken,
        "no such customer (get)": CustomerNotFound,
        "no such customer (update)": CustomerNotFound,
        "no such customer (delete)": CustomerNotFound,
        "stale version (update)": VersionMismatch,
        "stale version (delete)": VersionMismatch,
        "key taken over": ClaimLost,
    }
    assert {what for what, error in answers.items() if is_store_error(error)} == set()
