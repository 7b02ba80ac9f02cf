"""Crash safety of the file store: `kill -9` the real server mid-load, lose nothing acknowledged,
leave no customer without its idempotency record."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from tests.served import ServerProcess
from tests.upstream_samples import HeldRegister, company_found_body

BUSINESS_ID = "0112038-9"


def file_store(database: Path) -> dict[str, str]:
    """One worker on a file: a kill -9 of it is a crash of the whole service."""
    return {"SQLITE_PATH": str(database), "WORKERS": "1"}


def load(
    url: str, acknowledged: dict[str, dict[str, object]], stop: threading.Event, tag: str
) -> None:
    """Create customers until the server dies; remember each one that got a 201."""
    serial = 0
    with requests.Session() as session:
        while not stop.is_set():
            serial += 1
            body = {
                "name": f"Durable {tag} {serial}",
                "email": f"{tag}-{serial}@example.com",
                "phone": "+358 1",
            }
            try:
                response = session.post(f"{url}/customers", json=body, timeout=5)
            except requests.RequestException:
                return
            if response.status_code == 201:
                created = response.json()
                acknowledged[created["id"]] = created


def kill_during(
    database: Path, loader: Callable[..., None], state: Any, prefix: str, rng: random.Random
) -> None:
    """Serve `database` under four threads of `loader`, then SIGKILL it at a random moment."""
    server = ServerProcess(file_store(database))
    stop = threading.Event()
    loaders = [
        threading.Thread(target=loader, args=(server.url, state, stop, f"{prefix}t{i}"))
        for i in range(4)
    ]
    for thread in loaders:
        thread.start()
    time.sleep(rng.uniform(0.2, 1.2))
    server.kill_hard()
    stop.set()
    for thread in loaders:
        thread.join(timeout=10)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_create(tmp_path: Path) -> None:
    database = tmp_path / "customers.db"
    acknowledged: dict[str, dict[str, object]] = {}
    rng = random.Random(20261125)
    for round_number in range(4):
        # GIVEN a server under a load of creates, WHEN it is killed with SIGKILL at a random
        # moment
        kill_during(database, load, acknowledged, f"r{round_number}", rng)

        # THEN the file is sound and every acknowledged create is there, intact
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        connection.close()
        restarted = ServerProcess(file_store(database))
        with requests.Session() as session:
            for customer_id, created in acknowledged.items():
                stored = session.get(f"{restarted.url}/customers/{customer_id}", timeout=5)
                assert stored.status_code == 200, customer_id
                assert stored.json() == created
        assert restarted.stop() == 0
    assert len(acknowledged) > 20  # the load really ran


def keyed_load(url: str, sent: dict[str, dict[str, str]], stop: threading.Event, tag: str) -> None:
    """Create customers, each with an Idempotency-Key, until the server dies."""
    serial = 0
    with requests.Session() as session:
        while not stop.is_set():
            serial += 1
            key = f"{tag}-{serial}"
            sent[key] = {"name": f"Keyed {key}", "email": f"{key}@example.com"}
            try:
                session.post(
                    f"{url}/customers",
                    json=sent[key],
                    headers={"Idempotency-Key": key},
                    timeout=5,
                )
            except requests.RequestException:
                return


def stored_state(database: Path) -> tuple[set[str], dict[str, tuple[int | None, str | None]]]:
    """The customer ids, and (status, customer id) of each idempotency key, from the file."""
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        customers = {row[0] for row in connection.execute("SELECT id FROM customers")}
        records = {
            key: (status, customer_id)
            for key, status, customer_id in connection.execute(
                "SELECT key, status, customer_id FROM idempotency_keys"
            )
        }
    connection.close()
    return customers, records


@pytest.mark.slow
def test_kill_9_mid_burst_of_keyed_creates_leaves_every_key_whole(tmp_path: Path) -> None:
    database = tmp_path / "customers.db"
    rng = random.Random(20261126)
    sent_in_all = 0
    for round_number in range(4):
        sent: dict[str, dict[str, str]] = {}
        # GIVEN a server under a burst of creates, each with its own key, WHEN it is killed
        # with SIGKILL at a random moment
        kill_during(database, keyed_load, sent, f"r{round_number}", rng)

        # THEN no customer is without the answer that names it, and no 201 answer
        # names a customer that is not there
        customers, records = stored_state(database)
        named = [customer_id for status, customer_id in records.values() if status == 201]
        assert sorted(named) == sorted(customers)
        # AND a retry of every key sent gets its customer, or a 409 while the dead
        # request's hold lasts, or makes the customer now: never a second one
        restarted = ServerProcess(file_store(database))
        with requests.Session() as session:
            for key, body in sent.items():
                status, customer_id = records.get(key, (None, None))
                retry = session.post(
                    f"{restarted.url}/customers",
                    json=body,
                    headers={"Idempotency-Key": key},
                    timeout=5,
                )
                if key not in records:
                    assert retry.status_code == 201, key
                    assert "Idempotent-Replayed" not in retry.headers
                elif status is None:
                    assert retry.status_code == 409, key
                    assert retry.headers["Retry-After"] == "1"
                else:
                    assert retry.status_code == 201, key
                    assert retry.headers["Idempotent-Replayed"] == "true"
                    assert retry.json()["id"] == customer_id
                    stored = session.get(f"{restarted.url}{retry.headers['Location']}", timeout=5)
                    assert stored.json() == retry.json()
        assert restarted.stop() == 0
        customers, records = stored_state(database)
        assert len(customers) == sum(status == 201 for status, _ in records.values())
        sent_in_all += len(sent)
    assert sent_in_all > 20  # the load really ran


def test_sigterm_stops_cleanly_with_exit_code_zero(tmp_path: Path) -> None:
    server = ServerProcess(file_store(tmp_path / "customers.db"))
    made = requests.post(
        f"{server.url}/customers", json={"name": "n", "email": "t@example.com"}, timeout=5
    )
    assert made.status_code == 201
    assert server.stop() == 0
    with sqlite3.connect(tmp_path / "customers.db") as connection:
        assert connection.execute("SELECT count(*) FROM customers").fetchone() == (1,)
    connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_lets_in_flight_requests_finish(
    tmp_path: Path, httpserver: HTTPServer, stop_signal: signal.Signals
) -> None:
    held = HeldRegister(httpserver, hold_seconds=10, body=company_found_body(BUSINESS_ID))
    httpserver.expect_request("/companies").respond_with_handler(held)
    server = ServerProcess(
        {**file_store(tmp_path / "customers.db"), "BUSINESS_API_URL": httpserver.url_for("/")}
    )
    answers: list[requests.Response] = []
    lookup = threading.Thread(
        target=lambda: answers.append(
            requests.get(f"{server.url}/businesses/{BUSINESS_ID}", timeout=20)
        )
    )
    try:
        lookup.start()
        held.wait_for()
        server.process.send_signal(stop_signal)  # as a process manager does: the main process
        time.sleep(0.5)
        assert server.process.poll() is None, "the server quit with a request in flight"
        held.release()
        lookup.join(timeout=20)
        assert server.process.wait(timeout=30) == 0
    finally:
        held.release()
        if server.process.poll() is None:
            server.kill_hard()
    assert [answer.status_code for answer in answers] == [200]
    assert answers[0].json()["businessId"] == BUSINESS_ID


def changing_load(url: str, acknowledged: dict[str, int], stop: threading.Event, tag: str) -> None:
    """Create a customer, then change it until the server dies; remember each version
    acknowledged."""
    with requests.Session() as session:
        try:
            made = session.post(
                f"{url}/customers", json={"name": tag, "email": f"{tag}@example.com"}, timeout=5
            )
            if made.status_code != 201:
                return
            customer_id = made.json()["id"]
            acknowledged[customer_id] = 1
            serial = 0
            while not stop.is_set():
                serial += 1
                changed = session.patch(
                    f"{url}/customers/{customer_id}", json={"name": f"{tag} {serial}"}, timeout=5
                )
                if changed.status_code == 200:
                    acknowledged[customer_id] = int(changed.headers["ETag"].strip('"'))
        except requests.RequestException:
            return


@pytest.mark.slow
def test_kill_9_during_changes_leaves_each_change_with_its_history_entry(
    tmp_path: Path,
) -> None:
    database = tmp_path / "customers.db"
    rng = random.Random(20261207)
    for round_number in range(3):
        acknowledged: dict[str, int] = {}
        # GIVEN a server under a load of changes, WHEN it is killed with SIGKILL
        kill_during(database, changing_load, acknowledged, f"h{round_number}", rng)

        # THEN every customer's entries are exactly its versions 1..current: no change
        # without its entry, no entry without its change; and every acknowledged
        # version is there
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            versions = dict(connection.execute("SELECT id, version FROM customers"))
            entries: dict[str, list[int]] = {}
            for customer_id, version in connection.execute(
                "SELECT customer_id, version FROM customer_history ORDER BY customer_id, version"
            ):
                entries.setdefault(customer_id, []).append(version)
        connection.close()
        assert entries == {
            customer_id: list(range(1, version + 1)) for customer_id, version in versions.items()
        }
        for customer_id, version in acknowledged.items():
            assert versions[customer_id] >= version, customer_id
        assert sum(acknowledged.values()) > 20  # the load really ran
