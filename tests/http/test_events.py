"""GET /events over real HTTP: every change as a CloudEvent with thin data, written with
the change itself, and a cursor that resumes with no gap and no duplicate while writers
are busy. `--store=dynamodb` runs it on moto.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from customers.paging import encode_events_cursor
from tests.conftest import LiveServer

KEY = "events-test-key-0123456789"
WRITERS = 20
# On DynamoDB the feed stays this far behind the clock (EVENTS_SETTLE_S): moto applies
# each transaction whole before answering, so a short window is enough here.
SETTLE_S = 0.3


@pytest.fixture
def app_settings(app_settings: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A file store (an import refuses memory), and a short settle window on DynamoDB."""
    app_settings["SQLITE_PATH"] = str(tmp_path / "customers.db")
    app_settings["EVENTS_SETTLE_S"] = SETTLE_S
    return app_settings


class Feed:
    """A consumer of the feed: it keeps the cursor of its last answer and resumes there."""

    def __init__(self, server: LiveServer, query: str = "", **headers: str) -> None:
        self.server = server
        self.query = query
        self.headers = headers
        self.cursor: str | None = None

    def page(self, limit: int = 100) -> requests.Response:
        params = f"limit={limit}" + (f"&cursor={self.cursor}" if self.cursor else "")
        url = f"{self.server.url}/events?{params}{self.query}"
        answer = self.server.session.get(url, headers=self.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        self.cursor = answer.headers["Next-Cursor"]  # on every answer, the last page too
        return answer

    def read(self, limit: int = 7) -> list[dict[str, Any]]:
        """Every event after the cursor that is there now, walking pages to the end."""
        events: list[dict[str, Any]] = []
        while True:
            answer = self.page(limit)
            events += answer.json()
            if "next" not in answer.links:
                return events
            assert f"cursor={self.cursor}" in answer.links["next"]["url"]

    def until(self, count: int, *, within: float = 10.0) -> list[dict[str, Any]]:
        """Read on until `count` events came (the DynamoDB feed lags by its settle window)."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(events) < count and time.monotonic() < deadline:
            events += self.read()
            if len(events) < count:
                time.sleep(0.05)
        return events


def create(server: LiveServer, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    made = server.session.post(f"{server.url}/customers", json=body, headers=headers, timeout=10)
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def test_each_change_is_one_cloudevent_with_thin_data(live_server: LiveServer, app: Flask) -> None:
    # GIVEN a customer made, patched, replaced, then deleted, and two imported
    feed = Feed(live_server)
    body = {"name": "Aino", "email": "aino@example.com", "phone": "+358 40 123 4567"}
    made = create(live_server, body)
    url = f"{live_server.url}/customers/{made['id']}"
    session = live_server.session
    assert session.patch(url, json={"phone": None}, timeout=10).status_code == 200
    replaced = {"name": "Aino K", "email": "aino@example.com", "businessId": "0112038-9"}
    assert session.put(url, json=replaced, timeout=10).status_code == 200
    assert session.delete(url, timeout=10).status_code == 204
    rows = Path(app.config["SQLITE_PATH"]).with_name("import.csv")
    rows.write_text("name,email,phone\nImre,imre@example.com,\nIda,ida@example.com,+358 2\n")
    result = app.test_cli_runner().invoke(args=["customers", "import", str(rows)])
    assert result.exit_code == 0, result.output

    # THEN the feed holds the six changes, oldest first, as CloudEvents 1.0
    events = feed.until(6)
    assert len(events) == 6
    for event in events:
        assert set(event) == {
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "data",
        }
        assert (event["specversion"], event["source"]) == ("1.0", "/customers")
        assert event["datacontenttype"] == "application/json"
    assert len({event["id"] for event in events}) == 6
    mine = [(event["type"], event["subject"], event["data"]) for event in events[:4]]
    assert mine == [
        (
            "customer.created",
            made["id"],
            {"id": made["id"], "version": 1, "changed": ["name", "email", "phone"]},
        ),
        ("customer.updated", made["id"], {"id": made["id"], "version": 2, "changed": ["phone"]}),
        (
            "customer.updated",
            made["id"],
            {"id": made["id"], "version": 3, "changed": ["name", "businessId"]},
        ),
        (
            "customer.deleted",
            made["id"],
            {"id": made["id"], "version": 4, "changed": ["name", "email", "businessId"]},
        ),
    ]
    assert events[0]["time"] == made["createdAt"]
    imported = events[4:]
    assert [event["type"] for event in imported] == ["customer.created"] * 2
    assert [event["data"]["imported"] for event in imported] == [True, True]
    assert [event["data"]["changed"] for event in imported] == [
        ["name", "email"],
        ["name", "email", "phone"],
    ]
    # AND no value of any field travels in an event
    text = str(events)
    for value in ("Aino", "aino@example.com", "+358", "0112038-9", "Imre", "imre@"):
        assert value not in text


def test_a_refused_write_makes_no_event(live_server: LiveServer, app: Flask) -> None:
    # GIVEN two customers, and a consumer past their events
    made = create(live_server, {"name": "R", "email": "r@example.com"})
    create(live_server, {"name": "Other", "email": "other@example.com"})
    feed = Feed(live_server)
    assert len(feed.until(2)) == 2
    url = f"{live_server.url}/customers/{made['id']}"
    session = live_server.session

    # WHEN writes are refused, or change nothing
    answers = [
        session.post(
            f"{live_server.url}/customers", json={"name": "X", "email": "R@example.com"}, timeout=10
        ),
        session.post(f"{live_server.url}/customers", json={"name": "X"}, timeout=10),
        session.patch(url, json={"email": "OTHER@example.com"}, timeout=10),
        session.patch(url, json={"name": "S"}, headers={"If-Match": '"7"'}, timeout=10),
        session.delete(url, headers={"If-Match": '"7"'}, timeout=10),
        session.delete(f"{live_server.url}/customers/no-such-id", timeout=10),
        session.patch(url, json={"name": "R"}, timeout=10),
    ]
    assert [answer.status_code for answer in answers] == [409, 400, 409, 412, 412, 404, 200]

    # THEN the feed has nothing new, even once the settle window has passed
    time.sleep(SETTLE_S * 2)
    assert feed.read() == []
    # AND the next change is the next event
    assert session.patch(url, json={"name": "S"}, timeout=10).status_code == 200
    (event,) = feed.until(1)
    assert event["data"] == {"id": made["id"], "version": 2, "changed": ["name"]}


def test_a_consumer_resuming_from_its_cursor_misses_none_and_sees_none_twice(
    live_server: LiveServer,
) -> None:
    # GIVEN WRITERS threads creating customers, while a consumer reads and resumes
    feed = Feed(live_server)
    per_writer = 5
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()

    def write(worker: int) -> list[str]:
        made = []
        with requests.Session() as session:
            start.wait()
            for serial in range(per_writer):
                answer = session.post(
                    f"{live_server.url}/customers",
                    json={"name": f"W{worker}", "email": f"w{worker}-{serial}@example.com"},
                    timeout=30,
                )
                assert answer.status_code == 201, answer.text
                made.append(answer.json()["id"])
        return made

    seen: list[dict[str, Any]] = []

    def consume() -> None:
        start.wait()
        while not done.is_set():
            seen.extend(feed.read(limit=3))

    with ThreadPoolExecutor(max_workers=WRITERS + 1) as pool:
        consumer = pool.submit(consume)
        created = [customer for batch in pool.map(write, range(WRITERS)) for customer in batch]
        done.set()
        consumer.result()

    # THEN once the last writes settled, the consumer has each create exactly once
    seen += feed.until(len(created) - len(seen))
    subjects = [event["subject"] for event in seen]
    assert len(subjects) == len(set(subjects)) == WRITERS * per_writer
    assert set(subjects) == set(created)
    # AND, asked again, nothing more
    assert feed.read() == []


def test_type_and_subject_filter_the_feed(live_server: LiveServer) -> None:
    first = create(live_server, {"name": "F", "email": "f@example.com"})
    second = create(live_server, {"name": "G", "email": "g@example.com"})
    for made in (first, second):
        url = f"{live_server.url}/customers/{made['id']}"
        assert live_server.session.patch(url, json={"name": "H"}, timeout=10).ok
    assert live_server.session.delete(f"{live_server.url}/customers/{second['id']}", timeout=10).ok
    assert len(Feed(live_server).until(5)) == 5

    updates = Feed(live_server, "&type=customer.updated").read(limit=1)
    assert [(event["type"], event["subject"]) for event in updates] == [
        ("customer.updated", first["id"]),
        ("customer.updated", second["id"]),
    ]
    about_second = Feed(live_server, f"&subject={second['id']}").read(limit=2)
    assert [event["type"] for event in about_second] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    both = Feed(live_server, f"&type=customer.deleted&subject={first['id']}").read()
    assert both == []
    for query in (
        "type=customer.merged",
        "subject=",
        "limit=0",
        "limit=501",
        "cursor=abc",
        "order=desc",
    ):
        refused = live_server.session.get(f"{live_server.url}/events?{query}", timeout=10)
        assert refused.status_code == 400, query
        assert refused.headers["Content-Type"] == "application/problem+json"


def test_a_cursor_older_than_the_retention_is_410(live_server: LiveServer, app: Flask) -> None:
    create(live_server, {"name": "E", "email": "e@example.com"})
    feed = Feed(live_server)
    assert len(feed.until(1)) == 1
    days = app.config["EVENTS_RETENTION_DAYS"]
    assert days == 30
    old = time.gmtime(time.time() - (days + 1) * 86400)
    stale = encode_events_cursor("1", time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", old))
    answer = live_server.session.get(f"{live_server.url}/events?cursor={stale}", timeout=10)
    assert answer.status_code == 410
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:customer-api:problem:cursor-expired"
    # A cursor just handed out is good
    assert (
        live_server.session.get(
            f"{live_server.url}/events?cursor={feed.cursor}", timeout=10
        ).status_code
        == 200
    )


@pytest.fixture
def keyed_app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["API_KEYS"] = (KEY,)
    return app_settings


@pytest.mark.usefixtures("keyed_app_settings")
def test_with_keys_on_the_feed_needs_one(live_server: LiveServer) -> None:
    create(live_server, {"name": "K", "email": "k@example.com"}, **{"X-API-Key": KEY})
    refused = live_server.session.get(f"{live_server.url}/events", timeout=10)
    assert refused.status_code == 401
    assert len(Feed(live_server, **{"X-API-Key": KEY}).until(1)) == 1
