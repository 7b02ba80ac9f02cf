"""GET /customers/{id}/history over real HTTP: one entry per change, in the change's own
transaction, with gapless versions, paged as the list is. `--store=dynamodb` runs it on moto.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from customers.web.security import fingerprint
from tests.conftest import LiveServer

KEY = "history-test-key-0123456789"
WRITERS = 20


def history(server: LiveServer, customer_id: str, **headers: str) -> list[dict[str, Any]]:
    """Every entry, walking the pages by their `Link` to the end."""
    entries: list[dict[str, Any]] = []
    url: str | None = f"{server.url}/customers/{customer_id}/history?limit=2"
    while url is not None:
        page = server.session.get(url, headers=headers, timeout=10)
        assert page.status_code == 200, page.text
        entries += page.json()
        url = page.links["next"]["url"] if "next" in page.links else None
        if url is not None:
            url = server.url + url if url.startswith("/") else url
            assert page.headers["Next-Cursor"] in url
    return entries


def create(server: LiveServer, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    made = server.session.post(f"{server.url}/customers", json=body, headers=headers, timeout=10)
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def test_create_patch_and_put_each_make_one_entry(live_server: LiveServer) -> None:
    # GIVEN a customer made, a field cleared by PATCH, and the whole replaced by PUT
    body = {"name": "Aino", "email": "aino@example.com", "phone": "+358 40 123 4567"}
    made = create(live_server, body, **{"X-Request-ID": "req-create"})
    url = f"{live_server.url}/customers/{made['id']}"
    patched = live_server.session.patch(
        url, json={"phone": None}, headers={"X-Request-ID": "req-patch"}, timeout=10
    )
    replaced = live_server.session.put(
        url,
        json={"name": "Aino K", "email": "AINO@example.com", "businessId": "0112038-9"},
        headers={"X-Request-ID": "req-put"},
        timeout=10,
    )
    assert (patched.headers["ETag"], replaced.headers["ETag"]) == ('"2"', '"3"')

    # THEN the history holds the three changes, oldest first, each with what changed
    entries = history(live_server, made["id"])
    final = replaced.json()
    assert entries == [
        {
            "version": 1,
            "at": made["createdAt"],
            "action": "created",
            "actor": None,
            "requestId": "req-create",
            "changes": {name: {"from": None, "to": value} for name, value in body.items()},
        },
        {
            "version": 2,
            "at": patched.json()["updatedAt"],
            "action": "updated",
            "actor": None,
            "requestId": "req-patch",
            "changes": {"phone": {"from": "+358 40 123 4567", "to": None}},
        },
        {
            "version": 3,
            "at": final["updatedAt"],
            "action": "replaced",
            "actor": None,
            "requestId": "req-put",
            "changes": {
                "name": {"from": "Aino", "to": "Aino K"},
                "email": {"from": "aino@example.com", "to": "AINO@example.com"},
                "businessId": {"from": None, "to": "0112038-9"},
            },
        },
    ]


@pytest.fixture
def keyed_app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["API_KEYS"] = (KEY,)
    return app_settings


@pytest.mark.usefixtures("keyed_app_settings")
def test_with_keys_on_the_actor_is_the_keys_fingerprint(live_server: LiveServer) -> None:
    headers = {"X-API-Key": KEY}
    made = create(live_server, {"name": "K", "email": "k@example.com"}, **headers)
    changed = live_server.session.patch(
        f"{live_server.url}/customers/{made['id']}",
        json={"name": "K2"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert changed.status_code == 200
    entries = history(live_server, made["id"], **headers)
    assert [entry["actor"] for entry in entries] == [f"key:{fingerprint(KEY)}"] * 2
    # The key itself is nowhere in the answer.
    assert (
        KEY
        not in live_server.session.get(
            f"{live_server.url}/customers/{made['id']}/history", headers=headers, timeout=10
        ).text
    )


def test_rejected_and_empty_writes_make_no_entry_and_keep_the_version(
    live_server: LiveServer, app: Flask
) -> None:
    # GIVEN two customers
    made = create(live_server, {"name": "R", "email": "r@example.com", "phone": "+358 1"})
    create(live_server, {"name": "Other", "email": "other@example.com"})
    url = f"{live_server.url}/customers/{made['id']}"
    session = live_server.session
    too_big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)

    # WHEN writes are refused, or change no value
    refused = [
        session.patch(url, json={"email": "not an email"}, timeout=10),
        session.patch(url, json={"email": "OTHER@example.com"}, timeout=10),
        session.patch(url, json={"name": "S"}, headers={"If-Match": '"7"'}, timeout=10),
        session.put(url, json={"name": too_big}, timeout=10),
        session.put(url, data="name=S", headers={"Content-Type": "text/plain"}, timeout=10),
    ]
    unchanged = [
        session.patch(url, json={}, timeout=10),
        session.patch(url, json={"name": "R", "phone": "+358 1"}, timeout=10),
        session.put(
            url, json={"name": "R", "email": "r@example.com", "phone": "+358 1"}, timeout=10
        ),
        session.patch(url, json={"name": "R"}, headers={"If-Match": '"1"'}, timeout=10),
    ]

    # THEN each is answered as always, the customer is as it was, at version 1
    assert [answer.status_code for answer in refused] == [400, 409, 412, 413, 415]
    assert [answer.status_code for answer in unchanged] == [200] * 4
    assert {answer.headers["ETag"] for answer in unchanged} == {'"1"'}
    assert session.get(url, timeout=10).json() == made
    # AND only the create is in the history
    assert [entry["action"] for entry in history(live_server, made["id"])] == ["created"]


def test_concurrent_writers_make_gapless_versions_each_with_its_entry(
    live_server: LiveServer,
) -> None:
    # GIVEN one customer, and WRITERS threads changing it at once (If-Match, again on 412)
    made = create(live_server, {"name": "W", "email": "w@example.com"})
    url = f"{live_server.url}/customers/{made['id']}"
    start = threading.Barrier(WRITERS)

    def write(worker: int) -> int:
        with requests.Session() as session:
            start.wait()
            while True:
                current = session.get(url, timeout=30)
                answer = session.patch(
                    url,
                    json={"name": f"by {worker}"},
                    headers={"If-Match": current.headers["ETag"], "X-Request-ID": f"w{worker}"},
                    timeout=30,
                )
                if answer.status_code != 412:
                    assert answer.status_code == 200, answer.text
                    return int(answer.headers["ETag"].strip('"'))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        versions = sorted(pool.map(write, range(WRITERS)))

    # THEN every write got its own version, and the history has exactly one entry each,
    # recording the change that made it
    assert versions == list(range(2, WRITERS + 2))
    entries = history(live_server, made["id"])
    assert [entry["version"] for entry in entries] == list(range(1, WRITERS + 2))
    names = ["W"] + [entry["changes"]["name"]["to"] for entry in entries[1:]]
    for before, entry in zip(names, entries[1:], strict=False):
        assert entry["changes"] == {"name": {"from": before, "to": f"by {entry['requestId'][1:]}"}}


def test_pages_walk_to_the_end_and_a_cursor_is_bound_to_its_customer(
    live_server: LiveServer,
) -> None:
    made = create(live_server, {"name": "P0", "email": "p@example.com"})
    other = create(live_server, {"name": "Q", "email": "q@example.com"})
    url = f"{live_server.url}/customers/{made['id']}"
    for serial in range(1, 7):
        assert live_server.session.patch(url, json={"name": f"P{serial}"}, timeout=10).ok

    # Pages of 2 hold 7 entries: 4 pages, the last without a next link.
    assert [entry["version"] for entry in history(live_server, made["id"])] == list(range(1, 8))
    first = live_server.session.get(f"{url}/history?limit=7", timeout=10)
    assert len(first.json()) == 7 and "Link" not in first.headers
    assert "Next-Cursor" not in first.headers
    page = live_server.session.get(f"{url}/history?limit=3", timeout=10)
    cursor = page.headers["Next-Cursor"]
    foreign = live_server.session.get(
        f"{live_server.url}/customers/{other['id']}/history?cursor={cursor}", timeout=10
    )
    assert foreign.status_code == 400
    assert foreign.json()["errors"] == [
        {"field": "cursor", "message": "is not a cursor this query made"}
    ]
    for query in ("limit=0", "limit=501", "cursor=abc", "sort=version"):
        assert live_server.session.get(f"{url}/history?{query}", timeout=10).status_code == 400


def test_unknown_and_deleted_customers_have_no_history(live_server: LiveServer) -> None:
    made = create(live_server, {"name": "D", "email": "d@example.com"})
    url = f"{live_server.url}/customers/{made['id']}"
    assert live_server.session.patch(url, json={"name": "D2"}, timeout=10).ok
    assert live_server.session.delete(url, timeout=10).status_code == 204
    for target in (url, f"{live_server.url}/customers/no-such-id", f"{url}{'x' * 100}"):
        missing = live_server.session.get(f"{target}/history", timeout=10)
        assert missing.status_code == 404
        assert missing.headers["Content-Type"] == "application/problem+json"


@pytest.fixture
def file_app_settings(app_settings: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """An import refuses a store in memory; with `--store=dynamodb` the table is used."""
    app_settings["SQLITE_PATH"] = str(tmp_path / "customers.db")
    return app_settings


@pytest.mark.usefixtures("file_app_settings")
def test_an_import_makes_imported_entries_by_the_cli(
    live_server: LiveServer, app: Flask, tmp_path: Path
) -> None:
    rows = tmp_path / "customers.csv"
    rows.write_text("name,email,phone\nImre,imre@example.com,\nIda,ida@example.com,+358 2\n")
    result = app.test_cli_runner().invoke(args=["customers", "import", str(rows)])
    assert result.exit_code == 0, result.output
    listed = live_server.session.get(f"{live_server.url}/customers", timeout=10).json()
    by_email = {customer["email"]: customer for customer in listed}
    for email, changes in (
        ("imre@example.com", {"name": "Imre", "email": "imre@example.com"}),
        ("ida@example.com", {"name": "Ida", "email": "ida@example.com", "phone": "+358 2"}),
    ):
        (entry,) = history(live_server, by_email[email]["id"])
        assert entry.pop("at") >= by_email[email]["createdAt"]
        assert entry == {
            "version": 1,
            "action": "imported",
            "actor": "cli",
            "changes": {name: {"from": None, "to": value} for name, value in changes.items()},
        }
