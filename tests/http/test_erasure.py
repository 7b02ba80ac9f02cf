"""A delete erases the person from the create's recorded answer: a replay is a 410.

Every test here also runs on DynamoDB (`--store=dynamodb`, moto's server). What a delete
leaves in the store's files and items is checked in tests/process/test_erasure.py.
"""

from __future__ import annotations

import uuid

from tests.conftest import LiveServer
from tests.http.test_idempotency import listed, post, problem_of

PERSON = {
    "name": "Eerika Poistettava",
    "email": "Eerika.P@Example.com",
    "phone": "+358 40 765 4321",
}


def test_a_replay_after_delete_is_a_410_without_personal_data(live_server: LiveServer) -> None:
    # GIVEN a customer created with a key, then deleted
    key = f"erase-{uuid.uuid4()}"
    created = post(live_server, PERSON, key)
    assert created.status_code == 201
    customer_id = created.json()["id"]
    deleted = live_server.session.delete(f"{live_server.url}/customers/{customer_id}", timeout=30)
    assert deleted.status_code == 204
    # WHEN the create is sent again with its key
    replay = post(live_server, PERSON, key)
    # THEN a 410 problem that holds nothing of the person, and nothing is created
    problem_of(replay, 410, "customer-deleted")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Location" not in replay.headers and "ETag" not in replay.headers
    answer = replay.text + "".join(f"{name}: {value}\n" for name, value in replay.headers.items())
    for value in (*PERSON.values(), PERSON["email"].lower(), customer_id):
        assert value not in answer
    assert listed(live_server) == []
    # and the key stays taken: the same again is a 410, another body with it a 422
    assert post(live_server, PERSON, key).status_code == 410
    problem_of(
        post(live_server, {**PERSON, "name": "Joku Muu"}, key), 422, "idempotency-key-reused"
    )
    assert listed(live_server) == []


def test_a_delete_erases_only_its_own_customer_s_answer(live_server: LiveServer) -> None:
    # GIVEN two customers created with keys, and one created without
    keys = [f"keep-{uuid.uuid4()}", f"erase-{uuid.uuid4()}"]
    bodies = [{**PERSON, "email": f"{n}-{PERSON['email']}"} for n in range(3)]
    first, second = (post(live_server, bodies[n], keys[n]) for n in range(2))
    keyless = post(live_server, bodies[2], None)
    assert first.status_code == second.status_code == keyless.status_code == 201
    # WHEN the second and the keyless one are deleted
    for gone in (second, keyless):
        url = f"{live_server.url}/customers/{gone.json()['id']}"
        assert live_server.session.delete(url, timeout=30).status_code == 204
    # THEN the first's answer is replayed as it was, the second's is a 410
    again = post(live_server, bodies[0], keys[0])
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    problem_of(post(live_server, bodies[1], keys[1]), 410, "customer-deleted")
    # and a new key makes the deleted person anew
    assert post(live_server, bodies[1], f"new-{uuid.uuid4()}").status_code == 201
