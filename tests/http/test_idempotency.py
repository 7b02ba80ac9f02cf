"""`Idempotency-Key` on POST /customers over real HTTP: replays, mismatches, holds, races.

Every test here also runs on DynamoDB (`--store=dynamodb`, moto's server). The crash test
(kill -9 of the file store mid-burst) is in test_durability.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests
from flask import Flask, Response
from werkzeug.exceptions import BadRequest

from customers.idempotency import idempotent, request_fingerprint
from customers.web.security import client_id
from db import ClaimLost, CustomerStore, IdempotencyRecord
from tests.conftest import LiveServer

PROBLEM = "application/problem+json"
KEY_PREFIX = "urn:customer-api:problem:"
SECRET_KEY = "retry-7c1f09d2-key"  # an idempotency key: must never reach the logs
API_KEY, OTHER_API_KEY = "s3cret-client-one", "s3cret-client-two"


def body_of(serial: int, **fields: Any) -> dict[str, Any]:
    return {"name": f"Retried {serial}", "email": f"retried-{serial}@example.com", **fields}


def post(
    server: LiveServer,
    body: Any,
    key: str | None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST /customers with `body` (or `raw` JSON bytes) and the key, if any."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Idempotency-Key"] = key
    data = raw if raw is not None else json.dumps(body).encode()
    return (session or server.session).post(
        f"{server.url}/customers", data=data, headers=sent, timeout=30
    )


def listed(server: LiveServer, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = server.session.get(
        f"{server.url}/customers?limit=500", headers=headers or {}, timeout=30
    )
    assert response.status_code == 200
    customers: list[dict[str, Any]] = response.json()
    return customers


def problem_of(response: requests.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"] == KEY_PREFIX + slug
    assert problem["status"] == status
    return problem


def store_of(app: Flask) -> CustomerStore:
    store: CustomerStore = app.extensions["customer_store"]
    return store


# --- the replay -------------------------------------------------------------------------


def test_a_retry_gets_the_first_answer_replayed_and_creates_nothing(
    live_server: LiveServer,
) -> None:
    # GIVEN a create made with a key
    first = post(live_server, body_of(1, phone="+358 1"), "create-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    # WHEN it is sent again, serialised differently (member order, whitespace)
    again = post(
        live_server,
        None,
        "create-1",
        raw=b'{ "phone" : "+358 1",\n  "email": "retried-1@example.com", "name": "Retried 1" }',
    )

    # THEN the first answer comes back, marked as replayed, and there is one customer
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    for header in ("Location", "ETag", "Content-Type"):
        assert again.headers[header] == first.headers[header]
    assert [customer["id"] for customer in listed(live_server)] == [first.json()["id"]]


def test_the_replay_is_the_recorded_answer_even_after_the_customer_changed(
    live_server: LiveServer,
) -> None:
    first = post(live_server, body_of(2), "create-2")
    changed = live_server.session.patch(
        f"{live_server.url}{first.headers['Location']}", json={"name": "Renamed"}, timeout=10
    )
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    replay = post(live_server, body_of(2), "create-2")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["name"] == "Retried 2" and replay.headers["ETag"] == '"1"'


def test_a_taken_email_is_replayed_without_running_again(live_server: LiveServer) -> None:
    # GIVEN a create refused by the store: the email is in use
    owner = post(live_server, {"name": "Owner", "email": "taken@example.com"}, None)
    body = {"name": "Taken", "email": "TAKEN@example.com"}
    first = post(live_server, body, "problem-key")
    problem_of(first, 409, "email-taken")
    # WHEN what caused it goes away (the owner of the email is deleted)
    deleted = live_server.session.delete(
        f"{live_server.url}/customers/{owner.json()['id']}", timeout=10
    )
    assert deleted.status_code == 204
    # THEN a retry still gets the recorded problem: the create does not run again
    replay = post(live_server, body, "problem-key")
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert listed(live_server) == []


def test_an_invalid_body_is_not_recorded_and_leaves_the_key_free(live_server: LiveServer) -> None:
    # GIVEN a create refused before the store was asked: the body is invalid
    invalid = {"name": "No email"}
    first = post(live_server, invalid, "fix-and-retry")
    problem_of(first, 400, "validation-error")
    # WHEN it is retried as it was, THEN it runs again, to the same refusal
    again = post(live_server, invalid, "fix-and-retry")
    problem_of(again, 400, "validation-error")
    assert "Idempotent-Replayed" not in again.headers and again.content == first.content
    # AND the key is free for the corrected request, which is then recorded as usual
    fixed = post(live_server, body_of(19), "fix-and-retry")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert post(live_server, body_of(19), "fix-and-retry").headers["Idempotent-Replayed"] == "true"
    assert [customer["id"] for customer in listed(live_server)] == [fixed.json()["id"]]


def test_a_400_from_werkzeug_itself_is_not_recorded_either(app: Flask) -> None:
    # A view that fails with Werkzeug's own BadRequest, as request parsing may.
    def refuse() -> Response:
        raise BadRequest

    app.add_url_rule("/refusing", view_func=idempotent(refuse), methods=["POST"])
    with LiveServer(app) as server:
        url = f"{server.url}/refusing"
        first = server.session.post(url, json={}, headers={"Idempotency-Key": "wz"}, timeout=10)
        again = server.session.post(url, json={}, headers={"Idempotency-Key": "wz"}, timeout=10)
    assert first.status_code == again.status_code == 400
    assert first.headers["Content-Type"] == again.headers["Content-Type"] == PROBLEM
    assert "Idempotent-Replayed" not in again.headers


# --- what is not recorded ----------------------------------------------------------------


@pytest.fixture
def failing_once(app_settings: dict[str, Any]) -> Iterator[Flask]:
    """An app whose first create fails as a bug would (a 500); later ones work."""
    from app import create_app

    application = create_app({**app_settings, "PROPAGATE_EXCEPTIONS": False, "TESTING": False})
    store = application.extensions["customer_store"]
    real_create = store.create
    calls: list[int] = []

    def create_failing_once(**fields: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the store broke")
        return real_create(**fields)

    store.create = create_failing_once
    yield application
    store.close()
    application.extensions["business_client"].close()


def test_a_5xx_is_not_recorded_so_a_retry_runs_again(failing_once: Flask) -> None:
    with LiveServer(failing_once) as server:
        failed = post(server, body_of(3), "after-500")
        assert failed.status_code == 500
        retried = post(server, body_of(3), "after-500")
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers
        replayed = post(server, body_of(3), "after-500")
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json()["id"] == retried.json()["id"]
        assert len(listed(server)) == 1


def test_a_415_is_not_recorded(live_server: LiveServer) -> None:
    as_text = post(live_server, body_of(4), "after-415", headers={"Content-Type": "text/plain"})
    problem_of(as_text, 415, "unsupported-media-type")
    created = post(live_server, body_of(4), "after-415")
    assert created.status_code == 201 and "Idempotent-Replayed" not in created.headers


# --- a mismatch, a malformed key -----------------------------------------------------------


def test_the_same_key_with_another_body_is_a_422_and_creates_nothing(
    live_server: LiveServer,
) -> None:
    first = post(live_server, body_of(5), "reused")
    assert first.status_code == 201
    other = post(live_server, body_of(6), "reused")
    problem = problem_of(other, 422, "idempotency-key-reused")
    assert "another request" in problem["detail"]
    assert "Idempotent-Replayed" not in other.headers
    assert [customer["email"] for customer in listed(live_server)] == ["retried-5@example.com"]
    # A body with a member twice is refused as invalid before the key is looked at: it is
    # not taken for the one with the member once, whose answer it never gets.
    twice = b'{"name": "Retried 5", "name": "Retried 5", "email": "retried-5@example.com"}'
    refused = post(live_server, None, "reused", raw=twice)
    problem_of(refused, 400, "validation-error")
    assert "Idempotent-Replayed" not in refused.headers


@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "ä-key", "tab\tinside", "del\x7f", "\x1bescape"],
    ids=["empty", "256 characters", "not ASCII", "tab", "DEL", "ESC"],
)
def test_a_malformed_key_is_a_400_naming_the_header(live_server: LiveServer, key: str) -> None:
    response = post(live_server, body_of(7), key)
    problem = problem_of(response, 400, "validation-error")
    assert "Idempotency-Key" in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == ["Idempotency-Key"]
    assert listed(live_server) == []


@pytest.mark.parametrize("key", ["k" * 255, "a", "with spaces & punctuation: ~!#{}"])
def test_keys_of_every_allowed_shape_work(live_server: LiveServer, key: str) -> None:
    assert post(live_server, body_of(8), key).status_code == 201
    assert post(live_server, body_of(8), key).headers["Idempotent-Replayed"] == "true"


# --- per client ----------------------------------------------------------------------------


@pytest.fixture
def keyed_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["API_KEYS"] = (API_KEY, OTHER_API_KEY)
    return app_settings


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_belong_to_one_client(keyed_settings: dict[str, Any], app: Flask) -> None:
    with LiveServer(app) as server:
        # GIVEN client one created a customer with a key
        first = post(server, body_of(9), "shared-key", headers=bearer(API_KEY))
        assert first.status_code == 201
        # WHEN client two sends the same key and body, the create runs for it (the email
        # is taken) instead of replaying client one's answer
        same = post(server, body_of(9), "shared-key", headers=bearer(OTHER_API_KEY))
        problem_of(same, 409, "email-taken")
        assert "Idempotent-Replayed" not in same.headers
        # and a key client one used with another body is no mismatch for client two
        ones = post(server, body_of(10), "second-key", headers=bearer(API_KEY))
        twos = post(server, body_of(11), "second-key", headers=bearer(OTHER_API_KEY))
        assert ones.status_code == 201 and twos.status_code == 201
        # THEN client one still gets its own answer replayed
        replay = post(server, body_of(9), "shared-key", headers=bearer(API_KEY))
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == first.json()["id"]
        assert len(listed(server, bearer(API_KEY))) == 3

    # The records are scoped by a digest of the API key (client_id), never by the key itself.
    store = store_of(app)
    now = int(time.time())
    probe = IdempotencyRecord("", "shared-key", "probe", "probe-token", now + 60)
    held = store.claim_idempotency_key(replace(probe, scope=client_id(API_KEY)), now=now)
    assert held is not None and held.status == 201 and held.customer_id == first.json()["id"]
    assert store.claim_idempotency_key(replace(probe, scope=API_KEY), now=now) is None


# --- a request in flight -------------------------------------------------------------------


def test_while_a_request_holds_the_key_others_get_409_with_retry_after(
    live_server: LiveServer, app: Flask
) -> None:
    # GIVEN a request with the key is running (it holds the key, as one in another
    # worker would), its hold ending in two seconds
    raw = json.dumps(body_of(11)).encode()
    now = int(time.time())
    running = IdempotencyRecord(
        scope="-",
        key="in-flight",
        fingerprint=request_fingerprint("application/json", b"", raw),
        token="the-first-request",
        expires_at=now + 2,
    )
    assert store_of(app).claim_idempotency_key(running, now=now) is None

    # WHEN a retry arrives meanwhile, THEN it is told to come back, and nothing is made
    busy = post(live_server, None, "in-flight", raw=raw)
    problem_of(busy, 409, "idempotency-key-in-use")
    assert busy.headers["Retry-After"] == "1"
    assert listed(live_server) == []
    # (another body is a mismatch, running or not)
    problem_of(post(live_server, body_of(12), "in-flight"), 422, "idempotency-key-reused")

    # WHEN the hold ends without an answer (its request died), THEN a retry runs
    time.sleep(max(0.0, running.expires_at - time.time()) + 0.1)
    created = post(live_server, None, "in-flight", raw=raw)
    assert created.status_code == 201 and "Idempotent-Replayed" not in created.headers
    # and the first request, should it come back, cannot answer over it
    late = replace(running, status=201, expires_at=now + 60)
    with pytest.raises(ClaimLost) as lost:
        store_of(app).complete_idempotency_key(late)
    assert lost.value.current is not None
    assert lost.value.current.customer_id == created.json()["id"]
    assert post(live_server, None, "in-flight", raw=raw).json() == created.json()


@pytest.fixture
def rate_limited_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["RATE_LIMIT"] = "100/minute"
    return app_settings


def test_with_rate_limits_on_the_409_keeps_its_retry_after(
    rate_limited_settings: dict[str, Any], app: Flask
) -> None:
    raw = json.dumps(body_of(18)).encode()
    now = int(time.time())
    running = IdempotencyRecord(
        "-", "limited", request_fingerprint("application/json", b"", raw), "first", now + 30
    )
    store_of(app).claim_idempotency_key(running, now=now)
    with LiveServer(app) as server:
        busy = post(server, None, "limited", raw=raw)
    problem_of(busy, 409, "idempotency-key-in-use")
    assert busy.headers["RateLimit-Limit"] == "100"
    assert busy.headers["Retry-After"] == "1"


def test_24_simultaneous_requests_with_one_key_make_one_customer(
    live_server: LiveServer,
) -> None:
    workers = 24
    barrier = threading.Barrier(workers)
    body = body_of(13)

    def send(_: int) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return post(live_server, body, "burst", session=session)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(send, range(workers)))

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = [answer for answer in answers if answer.status_code == 201]
    assert created, statuses
    assert {answer.json()["id"] for answer in created} == {created[0].json()["id"]}
    assert [answer.headers.get("Idempotent-Replayed") for answer in created].count(None) == 1
    for answer in answers:
        if answer.status_code == 409:
            problem_of(answer, 409, "idempotency-key-in-use")
            assert answer.headers["Retry-After"] == "1"
    customers = listed(live_server)
    assert len(customers) == 1
    later = post(live_server, body, "burst")
    assert later.status_code == 201 and later.headers["Idempotent-Replayed"] == "true"
    assert later.json() == customers[0]


# --- logs ---------------------------------------------------------------------------------


def test_the_access_line_shows_the_outcome_and_never_the_key(
    live_server: LiveServer, app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.dumps(body_of(14)).encode()
    now = int(time.time())
    held = IdempotencyRecord(
        "-", "held-" + SECRET_KEY, request_fingerprint("application/json", b"", raw), "t", now + 60
    )
    store_of(app).claim_idempotency_key(held, now=now)
    capsys.readouterr()

    post(live_server, None, SECRET_KEY, raw=raw)  # new
    post(live_server, None, SECRET_KEY, raw=raw)  # replayed
    post(live_server, body_of(15), SECRET_KEY)  # mismatch
    post(live_server, None, "held-" + SECRET_KEY, raw=raw)  # conflict
    post(live_server, body_of(16), None)  # no key

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    creates = [
        line for line in lines if line.get("event") == "request" and line["method"] == "POST"
    ]
    assert [line["idempotency"] for line in creates] == [
        "new",
        "replayed",
        "mismatch",
        "conflict",
        None,
    ]
    assert all(line["request_id"] for line in creates)
    assert SECRET_KEY not in out


# --- browsers ------------------------------------------------------------------------------


@pytest.fixture
def cors_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["CORS_ORIGINS"] = ("https://app.example.com",)
    return app_settings


def test_browsers_may_send_the_key_and_read_the_replay_header(
    cors_settings: dict[str, Any], app: Flask
) -> None:
    origin = {"Origin": "https://app.example.com"}
    with LiveServer(app) as server:
        preflight = server.session.options(
            f"{server.url}/customers",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, idempotency-key",
            },
            timeout=10,
        )
        assert preflight.status_code == 204
        allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
        assert "idempotency-key" in allowed
        post(server, body_of(17), "browser-key", headers=origin)
        replay = post(server, body_of(17), "browser-key", headers=origin)
    assert replay.headers["Idempotent-Replayed"] == "true"
    exposed = replay.headers["Access-Control-Expose-Headers"].lower()
    assert "idempotent-replayed" in exposed
