"""Races over real HTTP against a threaded server: one winner, no lost update, no torn page."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from customers.config import DEFAULTS
from tests.conftest import TEST_SETTINGS, LiveServer


def in_parallel(workers: int, task: Callable[[int, requests.Session], Any]) -> list[Any]:
    """Run `task(i, session)` for i in range(workers), all released at once."""
    barrier = threading.Barrier(workers)

    def run(index: int) -> Any:
        with requests.Session() as session:
            barrier.wait()
            return task(index, session)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers)))


def test_fifty_clients_create_the_same_email(live_server: LiveServer) -> None:
    def create(index: int, session: requests.Session) -> int:
        body = {
            "name": f"Racer {index}",
            "email": "Same@Example.com" if index % 2 else "same@example.com",
        }
        return session.post(f"{live_server.url}/customers", json=body, timeout=30).status_code

    statuses = in_parallel(50, create)
    assert sorted(statuses) == [201] + [409] * 49
    listed = live_server.session.get(f"{live_server.url}/customers", timeout=10).json()
    assert len(listed) == 1


def test_conditional_patches_lose_no_update(live_server: LiveServer) -> None:
    # GIVEN one customer
    url = f"{live_server.url}/customers"
    created = live_server.session.post(
        url, json={"name": "v0", "email": "p@example.com"}, timeout=10
    )
    customer_url = f"{url}/{created.json()['id']}"

    # WHEN 20 clients each read the ETag and patch with If-Match, five times over
    def patcher(index: int, session: requests.Session) -> list[tuple[int, str, str | None]]:
        outcomes = []
        for attempt in range(5):
            etag = session.get(customer_url, timeout=10).headers["ETag"]
            name = f"client-{index}-{attempt}"
            response = session.patch(
                customer_url,
                json={"name": name},
                headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
                timeout=10,
            )
            outcomes.append((response.status_code, name, response.headers.get("ETag")))
        return outcomes

    outcomes = [item for batch in in_parallel(20, patcher) for item in batch]

    # THEN every 200 moved the version on by exactly one, and the rest were 412s
    statuses = {status for status, _, _ in outcomes}
    assert statuses <= {200, 412}
    won = [(int(etag.strip('"')), name) for status, name, etag in outcomes if status == 200]
    versions = sorted(version for version, _ in won)
    assert versions == list(range(2, 2 + len(won)))
    final = live_server.session.get(customer_url, timeout=10)
    assert final.headers["ETag"] == f'"{1 + len(won)}"'
    assert final.json()["name"] == max(won)[1]


def test_creates_and_deletes_interleaved_with_paging(live_server: LiveServer) -> None:
    url = f"{live_server.url}/customers"
    before = [
        live_server.session.post(
            url, json={"name": f"b{i}", "email": f"b{i}@example.com"}, timeout=10
        ).json()["id"]
        for i in range(60)
    ]
    doomed = set(before[::3])
    stop = threading.Event()
    failures: list[str] = []

    def churn(index: int, session: requests.Session) -> None:
        serial = 0
        while not stop.is_set():
            serial += 1
            made = session.post(
                url, json={"name": "c", "email": f"c{index}-{serial}@example.com"}, timeout=10
            )
            gone = session.delete(f"{url}/{made.json()['id']}", timeout=10)
            if made.status_code != 201 or gone.status_code != 204:
                failures.append(f"churn {made.status_code} {gone.status_code}")
        for customer_id in list(doomed)[index::4]:
            session.delete(f"{url}/{customer_id}", timeout=10)

    def walk(session: requests.Session) -> list[str]:
        seen: list[str] = []
        next_url: str | None = f"{url}?limit=7"
        while next_url:
            response = session.get(next_url, timeout=10)
            if response.status_code != 200:
                failures.append(f"walk {response.status_code}")
                return seen
            seen += [customer["id"] for customer in response.json()]
            link = response.links.get("next")
            next_url = f"{live_server.url}{link['url']}" if link else None
        return seen

    with ThreadPoolExecutor(max_workers=7) as pool:
        sessions = [requests.Session() for _ in range(7)]
        churners = [pool.submit(churn, i, sessions[i]) for i in range(4)]
        walks = [pool.submit(walk, sessions[4 + i]) for i in range(3)]
        walked = [future.result() for future in walks]
        stop.set()
        for future in churners:
            future.result()
        for session in sessions:
            session.close()

    assert failures == []
    survivors = set(before) - doomed
    for seen in walked:
        assert len(seen) == len(set(seen)), "a walk saw a row twice"
        assert survivors <= set(seen), "a walk skipped a row that existed throughout"


@pytest.fixture
def hanging_register() -> Iterator[str]:
    """A register that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture
def app_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    settings = dict(TEST_SETTINGS)
    if "hanging_register" in request.fixturenames:
        settings.update(
            BUSINESS_API_URL=request.getfixturevalue("hanging_register"),
            BUSINESS_READ_TIMEOUT=3.0,
            BUSINESS_DEADLINE=3.0,
            BUSINESS_RETRIES=0,
        )
    return settings


def test_a_hanging_register_does_not_slow_customer_crud(
    hanging_register: str, live_server: LiveServer
) -> None:
    # GIVEN as many lookups as may wait at once, stuck on a register that never answers
    waiting = DEFAULTS["BUSINESS_MAX_CONCURRENT"]
    lookups_done = threading.Event()

    def stuck_lookup(index: int, session: requests.Session) -> int:
        return session.get(f"{live_server.url}/businesses/0112038-9", timeout=30).status_code

    def run_lookups() -> None:
        assert set(in_parallel(waiting, stuck_lookup)) == {504}
        lookups_done.set()

    lookup_thread = threading.Thread(target=run_lookups)
    lookup_thread.start()
    time.sleep(0.3)

    # WHEN customers are created and read meanwhile
    url = f"{live_server.url}/customers"
    for index in range(20):
        made = live_server.session.post(
            url, json={"name": "n", "email": f"h{index}@example.com"}, timeout=10
        )
        assert made.status_code == 201
        assert live_server.session.get(f"{url}/{made.json()['id']}", timeout=10).status_code == 200

    # THEN all of that finished while the lookups were still waiting on the register
    assert not lookups_done.is_set()
    lookup_thread.join(timeout=30)
    assert lookups_done.is_set()
