"""`StoreErrors` counts the store failing, never the store's answer about a request.

The served app's access lines are read as CloudWatch reads them (METRICS=emf, as a
server whose lines go to CloudWatch Logs runs): every status the store can cause, on the sqlite file store and (with `--store=dynamodb`) in moto's
server, against what the line's `StoreErrors` says.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.served import ServerProcess


class Served:
    """The served app, each request named by its X-Request-ID so its access line is found."""

    def __init__(self, settings: dict[str, str], output: Path) -> None:
        self.output = output
        self.server = ServerProcess(
            {**settings, "LOG_LEVEL": "INFO", "METRICS": "emf"}, output=output
        )
        self.session = requests.Session()
        self.sent: dict[str, int] = {}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        request_id = f"metric-{len(self.sent)}"
        headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
        response = self.session.request(
            method, f"{self.server.url}{path}", headers=headers, timeout=10, **kwargs
        )
        self.sent[request_id] = response.status_code
        return response

    def lines(self) -> dict[str, dict[str, Any]]:
        """Stop the server (its lines are written by then) and give each request's line."""
        self.session.close()
        assert self.server.stop() == 0
        text = self.output.read_text().splitlines()
        parsed = [json.loads(line) for line in text if line.startswith("{")]
        return {
            line["request_id"]: line
            for line in parsed
            if line.get("event") == "request" and line.get("request_id") in self.sent
        }


@pytest.fixture
def served_store(
    request: pytest.FixtureRequest, tmp_path: Path, store_settings: dict[str, str]
) -> tuple[dict[str, str], Callable[[], None]]:
    """The served app's store settings, and how to make that store fail for real: the
    sqlite file's table dropped behind the app's back, or the DynamoDB table deleted."""
    if store_settings:
        table = store_settings["DYNAMODB_TABLE"]

        def delete_table() -> None:
            request.getfixturevalue("dynamo_client").delete_table(TableName=table)

        return store_settings, delete_table
    path = tmp_path / "customers.db"

    def drop_table() -> None:
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TABLE customers")
        connection.close()

    return {"SQLITE_PATH": str(path)}, drop_table


@pytest.fixture
def served(
    served_store: tuple[dict[str, str], Callable[[], None]], tmp_path: Path
) -> Iterator[Served]:
    app = Served({"WORKERS": "1", **served_store[0]}, tmp_path / "served.log")
    yield app
    if app.server.process.poll() is None:
        app.server.kill_hard()


def test_the_stores_answers_about_a_request_are_not_store_errors(served: Served) -> None:
    # GIVEN two customers
    first = served("POST", "/customers", json={"name": "A", "email": "a@example.com"}).json()
    second = served("POST", "/customers", json={"name": "B", "email": "b@example.com"}).json()
    stale = {"If-Match": '"999"'}
    taken = {"name": "B", "email": "A@example.com"}
    # WHEN requests the store refuses arrive, one of each kind
    answers = {
        "email taken on create": served("POST", "/customers", json=taken),
        "email taken on patch": served("PATCH", f"/customers/{second['id']}", json=taken),
        "email taken on put": served("PUT", f"/customers/{second['id']}", json=taken),
        "no such customer (get)": served("GET", "/customers/nobody"),
        "no such customer (patch)": served("PATCH", "/customers/nobody", json={"name": "C"}),
        "no such customer (put)": served("PUT", "/customers/nobody", json=taken),
        "no such customer (delete)": served("DELETE", "/customers/nobody"),
        "stale If-Match (patch)": served(
            "PATCH", f"/customers/{first['id']}", json={"name": "C"}, headers=stale
        ),
        "stale If-Match (put)": served(
            "PUT", f"/customers/{first['id']}", json=taken, headers=stale
        ),
        "stale If-Match (delete)": served("DELETE", f"/customers/{first['id']}", headers=stale),
        "idempotency key reused": served(
            "POST",
            "/customers",
            json={"name": "D", "email": "d@example.com"},
            headers={"Idempotency-Key": "key-1"},
        ),
        "idempotency key reused, other body": served(
            "POST",
            "/customers",
            json={"name": "E", "email": "e@example.com"},
            headers={"Idempotency-Key": "key-1"},
        ),
    }
    lines = served.lines()
    # THEN each got its problem, and none counts as the store failing
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "email taken on create": 409,
        "email taken on patch": 409,
        "email taken on put": 409,
        "no such customer (get)": 404,
        "no such customer (patch)": 404,
        "no such customer (put)": 404,
        "no such customer (delete)": 404,
        "stale If-Match (patch)": 412,
        "stale If-Match (put)": 412,
        "stale If-Match (delete)": 412,
        "idempotency key reused": 201,
        "idempotency key reused, other body": 422,
    }
    assert {line["status"] for line in lines.values()} == {201, 404, 409, 412, 422}
    assert {(line["status"], line["StoreErrors"]) for line in lines.values()} == {
        (201, 0),
        (404, 0),
        (409, 0),
        (412, 0),
        (422, 0),
    }


def test_a_store_that_fails_is_a_store_error(
    served: Served, served_store: tuple[dict[str, str], Callable[[], None]]
) -> None:
    # GIVEN a store that answers
    assert served("GET", "/customers").status_code == 200
    # WHEN it fails for real
    served_store[1]()
    listed = served("GET", "/customers")
    created = served("POST", "/customers", json={"name": "F", "email": "f@example.com"})
    lines = served.lines()
    # THEN the requests it failed get a 5xx and count, and the one before does not
    assert (listed.status_code, created.status_code) == (500, 500)
    assert [line["StoreErrors"] for line in lines.values()] == [0, 1, 1]
    assert [line["StatusClass"] for line in lines.values()] == ["2xx", "5xx", "5xx"]
    assert [line.get("store_error", False) for line in lines.values()] == [False, True, True]
