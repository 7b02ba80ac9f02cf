"""The store interface, the same tests on every store: in-memory, file and DynamoDB."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import orjson
import pytest

from db import (
    ERASED_STATUS,
    ClaimLost,
    CustomerNotFound,
    CustomerRecord,
    CustomerStore,
    EmailTaken,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    ListQuery,
    VersionMismatch,
)


def test_create_then_get_round_trips(store: CustomerStore) -> None:
    created = store.create(
        name="Ada", email="Ada@Example.com", phone="+358 1", business_id="0112038-9"
    )
    assert created.version == 1
    assert created.created_at == created.updated_at
    assert created.created_at.endswith("Z")
    fetched = store.get(created.id)
    assert fetched == created
    assert fetched.to_public() == {
        "id": created.id,
        "name": "Ada",
        "email": "Ada@Example.com",
        "phone": "+358 1",
        "businessId": "0112038-9",
        "createdAt": created.created_at,
        "updatedAt": created.updated_at,
    }


def test_ids_are_unique_and_opaque(store: CustomerStore) -> None:
    ids = {
        store.create(name="A", email=f"{i}@x.io", phone=None, business_id=None).id
        for i in range(20)
    }
    assert len(ids) == 20


def test_get_of_a_missing_id_raises(store: CustomerStore) -> None:
    with pytest.raises(CustomerNotFound):
        store.get("missing")


def test_email_is_unique_case_insensitively(store: CustomerStore) -> None:
    store.create(name="A", email="Same@Example.com", phone=None, business_id=None)
    with pytest.raises(EmailTaken):
        store.create(name="B", email="same@EXAMPLE.com", phone=None, business_id=None)
    assert len(store.list_page(ListQuery(limit=10)).items) == 1


def test_update_changes_fields_and_bumps_the_version(store: CustomerStore) -> None:
    created = store.create(name="A", email="a@x.io", phone="1", business_id=None)
    updated = store.update(created.id, changes={"name": "B", "phone": None})
    assert (updated.name, updated.phone, updated.email) == ("B", None, "a@x.io")
    assert updated.version == 2
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert store.get(created.id) == updated


def test_update_with_the_expected_version(store: CustomerStore) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    store.update(created.id, changes={"name": "B"}, expected_version=1)
    with pytest.raises(VersionMismatch) as raised:
        store.update(created.id, changes={"name": "C"}, expected_version=1)
    assert raised.value.current.version == 2 and raised.value.current.name == "B"
    assert store.get(created.id).name == "B"


def test_update_of_a_missing_id_raises_not_found(store: CustomerStore) -> None:
    with pytest.raises(CustomerNotFound):
        store.update("missing", changes={"name": "B"})
    with pytest.raises(CustomerNotFound):
        store.update("missing", changes={"name": "B"}, expected_version=1)


def test_update_to_a_taken_email_raises_and_changes_nothing(store: CustomerStore) -> None:
    store.create(name="A", email="a@x.io", phone=None, business_id=None)
    other = store.create(name="B", email="b@x.io", phone=None, business_id=None)
    with pytest.raises(EmailTaken):
        store.update(other.id, changes={"email": "A@X.IO", "name": "Changed"})
    assert store.get(other.id) == other


def test_a_customer_may_change_the_case_of_its_email(store: CustomerStore) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    assert store.update(created.id, changes={"email": "A@x.io"}).email == "A@x.io"
    with pytest.raises(EmailTaken):
        store.create(name="B", email="a@X.io", phone=None, business_id=None)


def test_a_changed_email_frees_the_old_one(store: CustomerStore) -> None:
    created = store.create(name="A", email="old@x.io", phone=None, business_id=None)
    store.update(created.id, changes={"email": "new@x.io"})
    store.create(name="B", email="old@x.io", phone=None, business_id=None)
    with pytest.raises(EmailTaken):
        store.create(name="C", email="new@x.io", phone=None, business_id=None)


def test_delete_removes_and_frees_the_email(store: CustomerStore) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    store.delete(created.id)
    with pytest.raises(CustomerNotFound):
        store.get(created.id)
    with pytest.raises(CustomerNotFound):
        store.delete(created.id)
    store.create(name="B", email="a@x.io", phone=None, business_id=None)


def test_delete_with_the_expected_version(store: CustomerStore) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    changed = store.update(created.id, changes={"name": "B"})
    with pytest.raises(VersionMismatch) as raised:
        store.delete(created.id, expected_version=1)
    assert raised.value.current == changed
    assert store.get(created.id) == changed
    with pytest.raises(EmailTaken):
        store.create(name="C", email="a@x.io", phone=None, business_id=None)
    store.delete(created.id, expected_version=2)
    with pytest.raises(CustomerNotFound):
        store.delete(created.id, expected_version=2)
    store.create(name="C", email="a@x.io", phone=None, business_id=None)


@pytest.mark.parametrize("version", [0, -1, 2**63, 10**5000], ids=["0", "-1", "2^63", "10^5000"])
@pytest.mark.parametrize("email", [None, "new@x.io"])
def test_a_version_no_customer_can_have_is_a_mismatch(
    store: CustomerStore, version: int, email: str | None
) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    changes = {"name": "B"} | ({"email": email} if email else {})
    with pytest.raises(VersionMismatch):
        store.update(created.id, changes=changes, expected_version=version)
    with pytest.raises(VersionMismatch):
        store.delete(created.id, expected_version=version)
    assert store.get(created.id) == created


def test_list_pages_in_creation_order_without_gaps(store: CustomerStore) -> None:
    made = [
        store.create(name=f"N{i}", email=f"{i}@x.io", phone=None, business_id=None)
        for i in range(7)
    ]
    seen = []
    after = None
    while True:
        page = store.list_page(ListQuery(limit=3, after=after))
        seen.extend(page.items)
        if not page.has_more:
            break
        after = (page.items[-1].created_at, page.items[-1].id)
    assert seen == made
    assert [(r.created_at, r.id) for r in seen] == sorted((r.created_at, r.id) for r in seen)


def test_has_more_is_exact_at_the_boundary(store: CustomerStore) -> None:
    for i in range(4):
        store.create(name="A", email=f"{i}@x.io", phone=None, business_id=None)
    assert store.list_page(ListQuery(limit=4)).has_more is False
    assert store.list_page(ListQuery(limit=3)).has_more is True
    assert store.list_page(ListQuery(limit=10)).items[0].email == "0@x.io"


def test_list_filters(store: CustomerStore) -> None:
    a = store.create(name="A", email="Find@X.io", phone=None, business_id="0112038-9")
    b = store.create(name="B", email="b@x.io", phone=None, business_id="0112038-9")
    store.create(name="C", email="c@x.io", phone=None, business_id="2331972-7")
    assert store.list_page(ListQuery(limit=10, email="find@x.IO")).items == [a]
    assert store.list_page(ListQuery(limit=10, email="nobody@x.io")).items == []
    assert store.list_page(ListQuery(limit=10, business_id="0112038-9")).items == [a, b]
    assert store.list_page(ListQuery(limit=10, email="b@x.io", business_id="0112038-9")).items == [
        b
    ]
    assert store.list_page(ListQuery(limit=10, email="b@x.io", business_id="2331972-7")).items == []
    first = store.list_page(ListQuery(limit=1, business_id="0112038-9"))
    assert first.items == [a] and first.has_more
    after = (a.created_at, a.id)
    rest = store.list_page(ListQuery(limit=1, after=after, business_id="0112038-9"))
    assert rest.items == [b] and not rest.has_more


def test_sql_and_expression_metacharacters_are_data(store: CustomerStore) -> None:
    hostile = "x'); DROP TABLE customers; -- :v #n"
    created = store.create(name=hostile, email="q@x.io", phone=None, business_id=None)
    assert store.get(created.id).name == hostile
    assert store.list_page(ListQuery(limit=10, email=hostile)).items == []
    with pytest.raises(CustomerNotFound):
        store.get(hostile)


def test_ping_answers(store: CustomerStore) -> None:
    store.ping()
    assert store.kind in {"sqlite", "dynamodb"}


def test_a_store_that_takes_writes_is_writable_and_keeps_nothing_of_the_check(
    store: CustomerStore,
) -> None:
    created = store.create(name="A", email="a@x.io", phone=None, business_id=None)
    for _ in range(3):
        store.check_writable()
    assert store.list_page(ListQuery(limit=10)).items == [created]


def test_list_json_is_list_page_as_the_api_shows_it(store: CustomerStore) -> None:
    store.create(name='Quote " and \\ and ünïcode', email="q@x.io", phone="1", business_id=None)
    store.create(name="Ctl\u2028", email="b@x.io", phone=None, business_id="0112038-9")
    store.create(name="C", email="c@x.io", phone=None, business_id=None)
    queries: list[dict[str, str]] = [
        {},
        {"email": "B@x.io"},
        {"business_id": "0112038-9"},
        {"email": "none@x.io"},
    ]
    for kwargs in queries:
        page = store.list_page(ListQuery(limit=2, **kwargs))
        as_json = store.list_json(ListQuery(limit=2, **kwargs))
        assert orjson.loads(as_json.body) == [record.to_public() for record in page.items]
        assert as_json.has_more == page.has_more
        last = page.items[-1] if page.items else None
        assert as_json.last == ((last.created_at, last.id) if last else None)


# --- idempotency keys -------------------------------------------------------------------

NOW = 1_900_000_000


def held(holder: str = "first", *, key: str = "key-1", until: int = NOW + 30) -> IdempotencyRecord:
    """A claim of `key` by the request `holder` (its token), held until `until`."""
    return IdempotencyRecord("scope-a", key, "fingerprint-1", holder, until)


def answered(claim: IdempotencyRecord, status: int = 201) -> IdempotencyRecord:
    return replace(
        claim,
        status=status,
        headers=(("Content-Type", "application/json"), ("ETag", '"1"')),
        body=b'{"answer": "\xc3\xa4"}',
        expires_at=NOW + 86400,
    )


def test_a_held_key_is_answered_once_and_then_kept(store: CustomerStore) -> None:
    first = held()
    assert store.claim_idempotency_key(first, now=NOW) is None
    assert store.claim_idempotency_key(held("second"), now=NOW + 1) == first
    with pytest.raises(ClaimLost) as lost:
        store.complete_idempotency_key(answered(held("second"), 400))
    assert lost.value.current == first
    store.complete_idempotency_key(answered(first, 400))
    assert store.claim_idempotency_key(held("third"), now=NOW + 2) == answered(first, 400)
    with pytest.raises(ClaimLost):  # an answer is never overwritten, not even by its holder
        store.complete_idempotency_key(answered(first, 409))


def test_keys_are_told_apart_by_scope_and_key(store: CustomerStore) -> None:
    assert store.claim_idempotency_key(held(), now=NOW) is None
    assert store.claim_idempotency_key(held(key="key-2"), now=NOW) is None
    assert store.claim_idempotency_key(replace(held(), scope="scope-b"), now=NOW) is None
    # a key may hold the separator of the DynamoDB key; the scope never does
    assert store.claim_idempotency_key(held(key="#key-1"), now=NOW) is None


def test_a_released_key_is_free_and_only_its_holder_releases_it(store: CustomerStore) -> None:
    first = held()
    store.claim_idempotency_key(first, now=NOW)
    store.release_idempotency_key(held("someone-else"))
    assert store.claim_idempotency_key(held("second"), now=NOW) == first
    store.release_idempotency_key(first)
    assert store.claim_idempotency_key(held("second"), now=NOW) is None
    store.complete_idempotency_key(answered(held("second")))
    store.release_idempotency_key(held("second"))  # answered: kept
    kept = store.claim_idempotency_key(held("third"), now=NOW)
    assert kept is not None and kept.status == 201


def test_an_expired_record_counts_as_none(store: CustomerStore) -> None:
    store.claim_idempotency_key(held(until=NOW + 30), now=NOW)
    assert store.claim_idempotency_key(held("second"), now=NOW + 29) is not None
    assert store.claim_idempotency_key(held("late", until=NOW + 60), now=NOW + 30) is None
    store.complete_idempotency_key(replace(answered(held("late")), expires_at=NOW + 100))
    assert store.claim_idempotency_key(held("next"), now=NOW + 99) is not None
    assert store.claim_idempotency_key(held("next", until=NOW + 200), now=NOW + 100) is None


def answer_of(claim: IdempotencyRecord) -> Callable[[CustomerRecord], IdempotencyRecord]:
    def build(customer: CustomerRecord) -> IdempotencyRecord:
        return replace(answered(claim), customer_id=customer.id)

    return build


def test_create_writes_the_customer_and_the_answer_together(store: CustomerStore) -> None:
    claim = held()
    store.claim_idempotency_key(claim, now=NOW)
    created = store.create(
        name="A", email="a@x.io", phone=None, business_id=None, idempotency=answer_of(claim)
    )
    record = store.claim_idempotency_key(held("retry"), now=NOW + 1)
    assert record == replace(answered(claim), customer_id=created.id)
    assert store.get(created.id) == created


def test_a_delete_leaves_its_create_s_answer_as_a_tombstone(store: CustomerStore) -> None:
    # GIVEN two customers created with keys
    claims = [held(), held(key="key-2")]
    made = []
    for n, claim in enumerate(claims):
        store.claim_idempotency_key(claim, now=NOW)
        made.append(
            store.create(
                name=f"N{n}",
                email=f"n{n}@x.io",
                phone="+358 1",
                business_id=None,
                idempotency=answer_of(claim),
            )
        )
    # WHEN the first is deleted
    store.delete(made[0].id)
    # THEN its answer is gone, the key still taken until its expiry; the other's is intact
    tombstone = store.claim_idempotency_key(held("retry"), now=NOW + 1)
    assert tombstone == replace(claims[0], status=ERASED_STATUS, expires_at=NOW + 86400)
    assert tombstone is not None and tombstone.erased
    kept = store.claim_idempotency_key(held("retry", key="key-2"), now=NOW + 1)
    assert kept == replace(answered(claims[1]), customer_id=made[1].id)


def test_a_delete_after_its_key_was_taken_anew_leaves_the_new_record(store: CustomerStore) -> None:
    # GIVEN a customer whose create's answer expired, its key held by a later request
    claim = held()
    store.claim_idempotency_key(claim, now=NOW)
    created = store.create(
        name="A",
        email="a@x.io",
        phone=None,
        business_id=None,
        idempotency=lambda customer: replace(answer_of(claim)(customer), expires_at=NOW + 100),
    )
    later = held("later", until=NOW + 300)
    assert store.claim_idempotency_key(later, now=NOW + 100) is None
    # WHEN the customer is deleted, THEN it goes, and the later request's record stays
    store.delete(created.id)
    with pytest.raises(CustomerNotFound):
        store.get(created.id)
    assert store.claim_idempotency_key(held("retry"), now=NOW + 101) == later


def test_a_create_whose_key_was_taken_over_writes_nothing(store: CustomerStore) -> None:
    # GIVEN a request held the key too long and another took it over and created
    slow = held(until=NOW + 30)
    store.claim_idempotency_key(slow, now=NOW)
    fast = held("fast", until=NOW + 90)
    assert store.claim_idempotency_key(fast, now=NOW + 30) is None
    made = store.create(
        name="F", email="same@x.io", phone=None, business_id=None, idempotency=answer_of(fast)
    )
    # WHEN the slow one creates the same customer, THEN it learns of the other's answer
    # (not of a taken email), and nothing of its own is written
    with pytest.raises(ClaimLost) as lost:
        store.create(
            name="S", email="same@x.io", phone=None, business_id=None, idempotency=answer_of(slow)
        )
    assert lost.value.current is not None and lost.value.current.customer_id == made.id
    with pytest.raises(ClaimLost):
        store.create(
            name="S", email="other@x.io", phone=None, business_id=None, idempotency=answer_of(slow)
        )
    assert [c.id for c in store.list_page(ListQuery(limit=10)).items] == [made.id]


def test_a_create_refused_for_its_email_leaves_the_key_held(store: CustomerStore) -> None:
    store.create(name="A", email="a@x.io", phone=None, business_id=None)
    claim = held()
    store.claim_idempotency_key(claim, now=NOW)
    with pytest.raises(EmailTaken):
        store.create(
            name="B", email="A@x.io", phone=None, business_id=None, idempotency=answer_of(claim)
        )
    assert store.claim_idempotency_key(held("retry"), now=NOW + 1) == claim
    assert len(store.list_page(ListQuery(limit=10)).items) == 1
    store.complete_idempotency_key(answered(claim, 409))  # the 409 is then recorded


# --- bounds on live idempotency records ---------------------------------------------------

LIFETIME = 86400 + 30  # a hold, then a day
LIMITS = IdempotencyLimits(per_client=2, total=3, lifetime=LIFETIME)
# DynamoDB counts a record until the end of the hour its lifetime ends in.
LONGEST_WAIT = LIFETIME + 3600


def owned(owner: str, key: str, *, now: int = NOW) -> IdempotencyRecord:
    """A claim of `key` made at `now` by a request of client `owner`."""
    return IdempotencyRecord(
        "scope-a", key, "fingerprint-1", f"{owner}:{key}", now + 30, owner=owner
    )


def kept(claim: IdempotencyRecord) -> IdempotencyRecord:
    """`claim` answered, its answer kept a day from its claim."""
    return replace(answered(claim), expires_at=claim.expires_at - 30 + 86400)


def test_a_client_past_its_bound_gets_no_new_key_but_its_known_keys(store: CustomerStore) -> None:
    # GIVEN client a holds two live records, one answered and one in flight
    first, second = owned("a", "k1"), owned("a", "k2")
    assert store.claim_idempotency_key(first, now=NOW, limits=LIMITS) is None
    store.complete_idempotency_key(kept(first))
    assert store.claim_idempotency_key(second, now=NOW, limits=LIMITS) is None
    # WHEN it claims a third key, THEN it is refused, naming the client, with a wait
    with pytest.raises(IdempotencyKeysExhausted) as refused:
        store.claim_idempotency_key(owned("a", "k3"), now=NOW + 1, limits=LIMITS)
    assert refused.value.per_client
    assert 0 < refused.value.retry_after <= LONGEST_WAIT
    # AND its known keys are still found, answered or in flight
    retry = replace(owned("a", "k1"), token="retry")
    assert store.claim_idempotency_key(retry, now=NOW + 1, limits=LIMITS) == kept(first)
    retry = replace(owned("a", "k2"), token="retry")
    assert store.claim_idempotency_key(retry, now=NOW + 1, limits=LIMITS) == second
    # AND another client has room of its own
    assert store.claim_idempotency_key(owned("b", "k3"), now=NOW + 1, limits=LIMITS) is None


def test_a_full_store_refuses_every_client_a_new_key(store: CustomerStore) -> None:
    for owner, key in (("a", "k1"), ("a", "k2"), ("b", "k3")):
        assert store.claim_idempotency_key(owned(owner, key), now=NOW, limits=LIMITS) is None
    for owner in ("b", "c"):
        with pytest.raises(IdempotencyKeysExhausted) as refused:
            store.claim_idempotency_key(owned(owner, "k4"), now=NOW, limits=LIMITS)
        assert not refused.value.per_client
        assert 0 < refused.value.retry_after <= LONGEST_WAIT
    # a client at its own bound hears of that first
    with pytest.raises(IdempotencyKeysExhausted) as refused:
        store.claim_idempotency_key(owned("a", "k4"), now=NOW, limits=LIMITS)
    assert refused.value.per_client


def test_letting_go_of_a_key_makes_room_at_once(store: CustomerStore) -> None:
    first = owned("a", "k1")
    for claim in (first, owned("a", "k2")):
        assert store.claim_idempotency_key(claim, now=NOW, limits=LIMITS) is None
    store.release_idempotency_key(first)
    assert store.claim_idempotency_key(owned("a", "k3"), now=NOW, limits=LIMITS) is None
    with pytest.raises(IdempotencyKeysExhausted):
        store.claim_idempotency_key(owned("a", "k4"), now=NOW, limits=LIMITS)


def test_expired_records_make_room(store: CustomerStore) -> None:
    for key in ("k1", "k2"):
        claim = owned("a", key)
        assert store.claim_idempotency_key(claim, now=NOW, limits=LIMITS) is None
        store.complete_idempotency_key(kept(claim))
    later = NOW + LONGEST_WAIT
    for key in ("k3", "k4"):
        claim = owned("a", key, now=later)
        assert store.claim_idempotency_key(claim, now=later, limits=LIMITS) is None
    with pytest.raises(IdempotencyKeysExhausted):
        store.claim_idempotency_key(owned("a", "k5", now=later), now=later, limits=LIMITS)


def test_a_delete_takes_the_customers_history_with_it(store: CustomerStore) -> None:
    # GIVEN a customer with three entries
    record = store.create(name="H", email="h@example.com", phone=None, business_id=None)
    store.update(record.id, changes={"name": "H2"})
    store.update(record.id, changes={"phone": "+358 1"}, action="replaced")
    assert [e.version for e in store.history_page(record.id, limit=10, after=None).items] == [
        1,
        2,
        3,
    ]
    # WHEN it is deleted, and a customer with the same id imported again
    store.delete(record.id)
    with pytest.raises(CustomerNotFound):
        store.history_page(record.id, limit=10, after=None)
    assert store.insert_many([record]) == []
    # THEN only the import is in its history: the old entries went with the delete
    (entry,) = store.history_page(record.id, limit=10, after=None).items
    assert (entry.version, entry.action, entry.actor) == (1, "imported", "cli")
