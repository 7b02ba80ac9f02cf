"""What a client can make the service keep under `Idempotency-Key`, over real HTTP.

A request refused before the store keeps nothing, however many fresh keys arrive; live
records are bounded per client (its API key, or its address without keys) and in all.
Every test also runs on DynamoDB (`--store=dynamodb`, moto's server).
"""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from app import create_app
from customers.idempotency import HOLD_SECONDS, KEEP_SECONDS
from tests.conftest import LiveServer
from tests.dynamo import file_or_table
from tests.served import ServerProcess

PROBLEM = "application/problem+json"
KEY_PREFIX = "urn:customer-api:problem:"
API_KEY, OTHER_API_KEY = "bounded-client-one", "bounded-client-two"
# The longest a client waits for room: a record's hold and day, and on DynamoDB the rest
# of the hour that lifetime ends in.
LONGEST_WAIT = HOLD_SECONDS + KEEP_SECONDS + 3600


def count_sqlite_records(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()
    conn.close()
    return int(count)


def count_dynamo_records(client: Any, table: str) -> int:
    """The IDEMPOTENCY# items in the table (not the counters), read consistently."""
    count, start = 0, None
    while True:
        page = client.scan(
            TableName=table,
            FilterExpression="begins_with(pk, :records)",
            ExpressionAttributeValues={":records": {"S": "IDEMPOTENCY#"}},
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        count += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return count


@pytest.fixture
def served(
    request: pytest.FixtureRequest, tmp_path: Path, store_settings: dict[str, str]
) -> Iterator[tuple[ServerProcess, Callable[[], int]]]:
    """`python app.py` on a file store (or moto's table), and a count of its records."""
    database = tmp_path / "customers.db"
    server = ServerProcess({"WORKERS": "1", **file_or_table(store_settings, database)})
    if store_settings:
        client = request.getfixturevalue("dynamo_client")
        table = store_settings["DYNAMODB_TABLE"]
        yield server, lambda: count_dynamo_records(client, table)
    else:
        yield server, lambda: count_sqlite_records(database)
    assert server.stop() == 0


def test_3000_invalid_bodies_with_fresh_keys_store_nothing(
    served: tuple[ServerProcess, Callable[[], int]],
) -> None:
    server, stored_records = served
    # GIVEN the served app, holding no idempotency records
    assert stored_records() == 0
    # WHEN one keep-alive connection sends 3,000 invalid bodies, each under a fresh key of
    # the longest length allowed
    statuses = set()
    with requests.Session() as session:
        for serial in range(3000):
            answer = session.post(
                f"{server.url}/customers",
                data=b'{"name": "No email"}',
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"{serial:08d}".ljust(255, "k"),
                },
                timeout=10,
            )
            statuses.add((answer.status_code, answer.headers["Content-Type"]))
    # THEN each was refused, and the store keeps none of them
    assert statuses == {(400, PROBLEM)}
    assert stored_records() == 0


# --- the bounds ------------------------------------------------------------------------------


@pytest.fixture
def serve(app_settings: dict[str, Any]) -> Iterator[Callable[..., str]]:
    """Serves an app with the test's settings and these on top; gives its base URL."""
    started: list[tuple[Flask, LiveServer]] = []

    def start(**settings: Any) -> str:
        application = create_app({**app_settings, **settings})
        server = LiveServer(application)
        started.append((application, server))
        return server.__enter__().url

    yield start
    for application, server in started:
        server.__exit__(None, None, None)
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()


KEYED = {"API_KEYS": (API_KEY, OTHER_API_KEY)}
ONE, TWO = {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": f"Bearer {OTHER_API_KEY}"}


def post(
    url: str, serial: int, key: str | None, headers: dict[str, str] | None = None
) -> requests.Response:
    """A create of customer `serial`, with the idempotency key if any."""
    sent = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
    body = {"name": f"Bounded {serial}", "email": f"bounded-{serial}@example.com"}
    return requests.post(f"{url}/customers", json=body, headers=sent, timeout=30)


def refused(response: requests.Response, status: int, slug: str) -> dict[str, Any]:
    """`response` is the `slug` problem with a Retry-After no longer than a record lives."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"] == KEY_PREFIX + slug and problem["status"] == status
    assert 0 < int(response.headers["Retry-After"]) <= LONGEST_WAIT
    return problem


def customer_count(url: str, headers: dict[str, str] | None = None) -> int:
    listed = requests.get(f"{url}/customers?limit=500", headers=headers or {}, timeout=30)
    assert listed.status_code == 200
    return len(listed.json())


def test_a_client_past_its_bound_is_429_and_its_retries_are_still_answered(
    serve: Callable[..., str],
) -> None:
    url = serve(**KEYED, IDEMPOTENCY_KEYS_PER_CLIENT=3)
    # GIVEN client one made three creates with keys, its bound
    first = [post(url, serial, f"key-{serial}", ONE) for serial in range(3)]
    assert [answer.status_code for answer in first] == [201, 201, 201]
    # WHEN it sends a fourth key, THEN it is refused and nothing is created
    problem = refused(post(url, 3, "key-3", ONE), 429, "idempotency-key-limit")
    assert "Retry-After" in problem["detail"]
    assert customer_count(url, ONE) == 3
    # AND a retry of a recorded create is still answered from its record
    replay = post(url, 0, "key-0", ONE)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first[0].json()
    # AND a create without a key still runs, as do another client's keys
    assert post(url, 4, None, ONE).status_code == 201
    assert post(url, 5, "key-3", TWO).status_code == 201
    assert customer_count(url, ONE) == 5


def test_a_refusal_before_the_store_takes_none_of_the_room(serve: Callable[..., str]) -> None:
    url = serve(**KEYED, IDEMPOTENCY_KEYS_PER_CLIENT=3)
    for serial in range(20):
        response = requests.post(
            f"{url}/customers",
            json={"name": "No email"},
            headers={**ONE, "Idempotency-Key": f"invalid-{serial}"},
            timeout=30,
        )
        assert response.status_code == 400
    answers = [post(url, serial, f"key-{serial}", ONE) for serial in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 201]


def post_from(address: str, url: str, serial: int, key: str) -> tuple[int, dict[str, str]]:
    """A create with `key` sent from the loopback `address` (any of 127.0.0.0/8 will do)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(
        host, int(port), timeout=30, source_address=(address, 0)
    )
    try:
        body = json.dumps({"name": f"From {serial}", "email": f"from-{serial}@example.com"})
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        connection.request("POST", "/customers", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status, dict(answer.getheaders())
    finally:
        connection.close()


def test_without_api_keys_each_address_has_a_bound_of_its_own(serve: Callable[..., str]) -> None:
    url = serve(IDEMPOTENCY_KEYS_PER_CLIENT=2)
    # GIVEN one address made two creates with keys, its bound
    made = [post_from("127.0.0.1", url, serial, f"key-{serial}")[0] for serial in range(2)]
    assert made == [201, 201]
    # WHEN it sends a third key, THEN it is refused
    status, headers = post_from("127.0.0.1", url, 2, "key-2")
    assert status == 429 and 0 < int(headers["Retry-After"]) <= LONGEST_WAIT
    # AND another address has room of its own
    assert post_from("127.0.0.2", url, 2, "key-2")[0] == 201
    # AND keys are still shared without API keys: its retry of the first is a replay
    status, headers = post_from("127.0.0.2", url, 0, "key-0")
    assert status == 201 and headers["Idempotent-Replayed"] == "true"
    assert customer_count(url) == 3


def test_a_full_store_is_503_for_every_client(serve: Callable[..., str]) -> None:
    url = serve(**KEYED, IDEMPOTENCY_KEYS_PER_CLIENT=2, IDEMPOTENCY_KEYS_TOTAL=3)
    # GIVEN the store holds three live records, the most it may
    assert post(url, 0, "key-0", ONE).status_code == 201
    assert post(url, 1, "key-1", ONE).status_code == 201
    assert post(url, 2, "key-2", TWO).status_code == 201
    # WHEN a client with room of its own sends a new key, THEN the service is full
    refused(post(url, 3, "key-3", TWO), 503, "idempotency-keys-exhausted")
    # AND a client at its own bound hears of that first
    refused(post(url, 4, "key-4", ONE), 429, "idempotency-key-limit")
    # AND recorded answers are still replayed, and creates without a key still run
    assert post(url, 2, "key-2", TWO).headers["Idempotent-Replayed"] == "true"
    assert post(url, 5, None, TWO).status_code == 201
    assert customer_count(url, ONE) == 4


def test_the_access_line_names_a_refused_key_without_the_key(
    serve: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve(**KEYED, IDEMPOTENCY_KEYS_PER_CLIENT=2)
    assert post(url, 0, "first-secret-key", ONE).status_code == 201
    capsys.readouterr()
    assert post(url, 0, "second-secret-key", ONE).status_code == 409  # the email is taken
    assert post(url, 1, "third-secret-key", ONE).status_code == 429
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    accesses = [line for line in lines if line.get("event") == "request"]
    assert [(line["status"], line["idempotency"]) for line in accesses] == [
        (409, "new"),
        (429, "limited"),
    ]
    # Neither is the store failing: the line marks neither.
    assert [line.get("store_error", False) for line in accesses] == [False, False]
    assert "secret-key" not in out
