"""Webhooks from the served app (`python app.py` on a sqlite file) to a receiver in the test
that verifies every delivery with the receivers' own library, `standardwebhooks`.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.served import ServerProcess, run_to_exit
from tests.webhook_receiver import SECRET, Receiver

FLASK = str(Path(sys.executable).parent / "flask")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def webhook_settings(database: Path, *urls: str, **more: str) -> dict[str, str]:
    return {
        "SQLITE_PATH": str(database),
        "WORKERS": "1",
        "LOG_LEVEL": "INFO",
        "WEBHOOK_URL": ",".join(urls),
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_BACKOFF_S": "0.2",
        **more,
    }


def create(url: str, serial: int) -> dict[str, Any]:
    made = requests.post(
        f"{url}/customers",
        json={"name": f"C{serial}", "email": f"c{serial}@example.com"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def test_signed_deliveries_retried_with_the_same_id_until_the_receiver_takes_them(
    tmp_path: Path, receiver: Receiver
) -> None:
    # GIVEN a receiver that fails the first attempts: a 500, then a 503 asking for 1 s
    def answer(number: int, event: dict[str, Any]) -> Any:
        return {1: 500, 2: (503, {"Retry-After": "1"})}.get(number, 204)

    receiver.answer = answer
    log = tmp_path / "server.log"
    server = ServerProcess(webhook_settings(tmp_path / "c.db", receiver.url), output=log)
    try:
        made = [create(server.url, serial) for serial in range(3)]
        feed = requests.get(f"{server.url}/events", timeout=10).json()

        # THEN each event arrives on its third attempt, every attempt signed as the library
        # expects, with the event's id as webhook-id each time, and the event as the body
        done = receiver.wait_for(3)
        assert sorted(d.event["subject"] for d in done) == sorted(c["id"] for c in made)
        assert all(d.verified for d in receiver.deliveries)
        attempts = collections.defaultdict(list)
        for delivery in receiver.deliveries:
            attempts[delivery.webhook_id].append(delivery)
        assert set(attempts) == {event["id"] for event in feed}
        for event in feed:
            tried = attempts[event["id"]]
            assert [d.answered for d in tried] == [500, 503, 204]
            assert all(d.event == event for d in tried)
            assert tried[2].at - tried[1].at >= 0.9  # Retry-After, not the 0.2 s backoff
        # AND the relay says what it did: attempts, failures, the oldest undelivered
        deadline = time.monotonic() + 15
        while b'"webhook_relay"' not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    reports = [line for line in lines if line["event"] == "webhook_relay"]
    assert reports and {"attempts", "failures", "oldest_undelivered_s"} <= set(reports[-1])
    assert max(r["attempts"] for r in reports) >= 1


def test_a_customers_events_arrive_in_version_order(tmp_path: Path, receiver: Receiver) -> None:
    # GIVEN a receiver failing every other first attempt, and customers changed quickly
    receiver.answer = lambda number, event: (
        500 if number == 1 and event["data"]["version"] % 2 else 200
    )
    server = ServerProcess(webhook_settings(tmp_path / "c.db", receiver.url))
    try:
        made = [create(server.url, serial) for serial in range(2)]
        for version in range(2, 8):
            for customer in made:
                changed = requests.patch(
                    f"{server.url}/customers/{customer['id']}",
                    json={"name": f"v{version}"},
                    timeout=10,
                )
                assert changed.status_code == 200
        done = receiver.wait_for(14)
    finally:
        server.stop()
    # THEN for each customer, no event was even tried before the one before it arrived
    for customer in made:
        tried = [d for d in receiver.deliveries if d.event["subject"] == customer["id"]]
        versions = [d.event["data"]["version"] for d in tried]
        delivered = [
            d.event["data"]["version"] for d in done if d.event["subject"] == customer["id"]
        ]
        assert delivered == list(range(1, 8))
        assert versions == sorted(versions)


def test_an_event_committed_before_a_kill_9_is_delivered_after_the_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    # GIVEN a receiver that is down (503), and a server that commits two creates
    up = threading.Event()
    receiver.answer = lambda number, event: 200 if up.is_set() else 503
    settings = webhook_settings(tmp_path / "c.db", receiver.url, WEBHOOK_BACKOFF_S="5")
    server = ServerProcess(settings)
    first = create(server.url, 1)
    deadline = time.monotonic() + 10
    while not receiver.deliveries and time.monotonic() < deadline:
        time.sleep(0.05)
    second = create(server.url, 2)
    # WHEN it is killed with SIGKILL (the first event tried once, the second maybe never)
    server.kill_hard()
    assert receiver.delivered() == []
    up.set()
    # THEN a new server on the same file delivers both
    server = ServerProcess(settings)
    try:
        # (once the dead relay's lease has lapsed, and the first's backoff has passed)
        done = receiver.wait_for(2, within=45)
    finally:
        server.stop()
    assert sorted(d.event["subject"] for d in done) == sorted([first["id"], second["id"]])
    assert all(d.verified for d in receiver.deliveries)


def test_a_410_turns_the_endpoint_off_and_the_others_go_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    gone = Receiver(lambda number, event: 410)
    log = tmp_path / "server.log"
    server = ServerProcess(webhook_settings(tmp_path / "c.db", gone.url, receiver.url), output=log)
    try:
        for serial in range(3):
            create(server.url, serial)
        receiver.wait_for(3)
        time.sleep(0.5)
    finally:
        server.stop()
        gone.close()
    assert len(gone.deliveries) == 1
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    disabled = [line for line in lines if line["event"] == "webhook_endpoint_disabled"]
    assert [line["url"] for line in disabled] == [gone.url]


def test_retries_run_out_and_flask_events_lists_and_redelivers_them(
    tmp_path: Path, receiver: Receiver
) -> None:
    failing = threading.Event()
    failing.set()
    receiver.answer = lambda number, event: 500 if failing.is_set() else 200
    settings = webhook_settings(tmp_path / "c.db", receiver.url, WEBHOOK_RETRY_FOR_S="0.5")
    server = ServerProcess(settings)
    try:
        made = create(server.url, 1)
        (event,) = requests.get(f"{server.url}/events", timeout=10).json()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            code, listed = run_to_exit([FLASK, "events", "failed"], settings)
            if event["id"] in listed:
                break
            time.sleep(0.3)
        assert code == 0 and f"{event['id']}\t{receiver.url}\t" in listed
        failing.clear()
        code, said = run_to_exit([FLASK, "events", "redeliver", event["id"]], settings)
        assert code == 0, said
        (done,) = receiver.wait_for(1)
    finally:
        server.stop()
    assert done.webhook_id == event["id"] and done.event["subject"] == made["id"]


def test_two_workers_deliver_each_event_once(tmp_path: Path, receiver: Receiver) -> None:
    settings = webhook_settings(tmp_path / "c.db", receiver.url, WORKERS="2")
    server = ServerProcess(settings)
    try:
        for serial in range(20):
            create(server.url, serial)
        receiver.wait_for(20)
        time.sleep(1.0)  # time for a second sending, if there were one
    finally:
        server.stop()
    ids = [d.webhook_id for d in receiver.deliveries]
    assert len(ids) == len(set(ids)) == 20


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("http://example.com/hook", "https"),
    ],
)
def test_a_private_or_plain_http_url_stops_the_service_at_start(url: str, why: str) -> None:
    code, output = run_to_exit(
        [sys.executable, "app.py"], {"WEBHOOK_URL": url, "WEBHOOK_SECRET": SECRET}
    )
    assert code not in (0, None), output
    assert "WEBHOOK_URL" in output and why in output
