"""Shared fixtures: a fresh app per test, its client, stores, and real servers on loopback."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug.serving import make_server

from app import create_app
from customers.config import CONVERTERS
from customers.stores.sqlite import SqliteStore
from db import CustomerStore
from tests.served import end_started_groups

pytest_plugins = ["tests.dynamo", "tests.redis_server"]

TEST_SETTINGS: dict[str, Any] = {"TESTING": True, "SQLITE_PATH": ":memory:", "LOG_LEVEL": "INFO"}


# The signals that end a test run from outside: `kill -- -PGID` of `make test`, a CI
# step's timeout, a closed terminal. (Ctrl-C unwinds through pytest and its session end.)
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def pytest_configure(config: pytest.Config) -> None:
    """The servers tests start run in sessions of their own, which a signal to the test
    run's group does not reach: end them before the run itself ends."""
    for signum in ENDING_SIGNALS:
        signal.signal(signum, _end_started_then_die)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    end_started_groups()


def _end_started_then_die(signum: int, frame: FrameType | None) -> None:
    """End every server a test started, then end as the signal would have ended us."""
    end_started_groups()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[HTTPServer]:
    """pytest-httpserver's server, threaded: like the register, it answers lookups at once."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the defaults, whatever the shell running pytest has set."""
    for name in CONVERTERS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings for the `app` fixture; a test may override this fixture or update it."""
    return dict(TEST_SETTINGS)


@pytest.fixture
def app(app_settings: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_settings)
    yield application
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Customers:
    """Repeated customer actions over the test client, with their expected answers checked."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._serial = 0

    def body(self, **fields: Any) -> dict[str, Any]:
        self._serial += 1
        return {
            "name": f"Customer {self._serial}",
            "email": f"c{self._serial}@example.com",
            **fields,
        }

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/customers", json=self.body(**fields))
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        return created


@pytest.fixture
def customers(client: FlaskClient) -> Customers:
    return Customers(client)


@pytest.fixture(params=["memory", "file", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[CustomerStore]:
    """Every store implementation, for the store-contract tests."""
    if request.param == "dynamodb":
        yield request.getfixturevalue("dynamo_store")
        return
    path = ":memory:" if request.param == "memory" else str(tmp_path / "customers.db")
    sqlite_store = SqliteStore(path)
    yield sqlite_store
    sqlite_store.close()


class LiveServer:
    """A real, threaded HTTP server for `app` on a free loopback port."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.session = requests.Session()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
