"""List paging: limits, Link headers, opaque cursors, and walks while others insert."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Customers


def walk(client: FlaskClient, first_url: str) -> tuple[list[dict[str, Any]], int]:
    """Every customer reached by following rel="next" from `first_url`, and the page count."""
    seen: list[dict[str, Any]] = []
    url: str | None = first_url
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        pages += 1
        seen += response.get_json()
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else None
        if link:
            assert link.endswith('; rel="next"')
    return seen, pages


def test_default_limit_is_100_and_max_is_500(client: FlaskClient, customers: Customers) -> None:
    made = [customers.create() for _ in range(101)]
    first = client.get("/customers")
    assert len(first.get_json()) == 100
    assert "Link" in first.headers
    assert client.get("/customers?limit=500").get_json() == made
    assert len(client.get("/customers?limit=1").get_json()) == 1


def test_following_next_visits_every_row_once_in_order(
    client: FlaskClient, customers: Customers
) -> None:
    made = [customers.create() for _ in range(10)]
    seen, pages = walk(client, "/customers?limit=3")
    assert seen == made
    assert pages == 4


def test_an_exact_last_page_has_no_next_link(client: FlaskClient, customers: Customers) -> None:
    for _ in range(6):
        customers.create()
    _, pages = walk(client, "/customers?limit=3")
    assert pages == 2


def test_the_next_link_keeps_limit_and_filters(client: FlaskClient, customers: Customers) -> None:
    wanted = [customers.create(businessId="0112038-9") for _ in range(5)]
    customers.create()
    response = client.get("/customers?limit=2&businessId=0112038-9")
    link = response.headers["Link"]
    assert "limit=2" in link and "businessId=0112038-9" in link and "cursor=" in link
    seen, _ = walk(client, "/customers?limit=2&businessId=0112038-9")
    assert seen == wanted


def test_walking_while_others_insert_never_repeats_or_skips(
    client: FlaskClient, customers: Customers
) -> None:
    before = [customers.create() for _ in range(25)]
    seen: list[dict[str, Any]] = []
    url: str | None = "/customers?limit=4"
    while url:
        response = client.get(url)
        seen += response.get_json()
        customers.create()  # lands behind the walk: at the end, in creation order
        customers.create()
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else None
    ids = [customer["id"] for customer in seen]
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert ids[: len(before)] == [customer["id"] for customer in before], "a row was skipped"


def test_deleting_the_cursor_row_does_not_break_the_walk(
    client: FlaskClient, customers: Customers
) -> None:
    made = [customers.create() for _ in range(6)]
    first = client.get("/customers?limit=3")
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    client.delete(f"/customers/{made[2]['id']}")
    assert client.get(next_url).get_json() == made[3:]


def cursor_of(client: FlaskClient, url: str) -> str:
    link = client.get(url).headers["Link"]
    return link.split("cursor=")[1].split("&")[0].split(">")[0]


def test_cursor_is_opaque_base64url(client: FlaskClient, customers: Customers) -> None:
    for _ in range(3):
        customers.create()
    cursor = cursor_of(client, "/customers?limit=1")
    assert all(c.isalnum() or c in "-_" for c in cursor)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-3],
        lambda c: c + "A",
        lambda c: c[::-1],
        lambda c: "!" + c,
        lambda c: base64.urlsafe_b64encode(json.dumps(["x", "y", "z"]).encode()).decode(),
        lambda c: base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        lambda c: "A" * 300,
    ],
)
def test_a_forged_or_truncated_cursor_is_400(
    client: FlaskClient, customers: Customers, mangle: Any
) -> None:
    for _ in range(3):
        customers.create()
    cursor = cursor_of(client, "/customers?limit=1")
    response = client.get(f"/customers?limit=1&cursor={mangle(cursor)}")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "cursor"


def test_a_cursor_replayed_under_other_filters_is_400(
    client: FlaskClient, customers: Customers
) -> None:
    for _ in range(3):
        customers.create(businessId="0112038-9")
    cursor = cursor_of(client, "/customers?limit=1&businessId=0112038-9")
    assert client.get(f"/customers?limit=1&cursor={cursor}").status_code == 400
    other = f"/customers?limit=1&cursor={cursor}&businessId=2331972-7"
    assert client.get(other).status_code == 400
    same = f"/customers?limit=5&cursor={cursor}&businessId=0112038-9"
    assert len(client.get(same).get_json()) == 2
