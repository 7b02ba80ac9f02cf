"""Conditional requests: every unsafe method honours If-Match and If-None-Match, a condition
that cannot be read fails rather than being skipped or breaking, and answers without
content (204, 304) carry no Content-Type.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.conftest import TEST_SETTINGS, Customers, LiveServer
from tests.http.test_customers_api import assert_problem
from tests.served import ServerProcess

# Present but unreadable, or readable but never any version's ETag: each a failed If-Match.
NEVER_MATCHING = [
    pytest.param('"9223372036854775808"', id="2^63"),
    pytest.param('"' + "9" * 4301 + '"', id="4301-digits"),
    pytest.param('"' + "1" * 100_000 + '"', id="100k-digits"),
    pytest.param('"01"', id="leading-zero"),
    pytest.param('W/"1"', id="weak"),
    pytest.param('""', id="empty-tag"),
    pytest.param("", id="empty-value"),
    pytest.param("   ", id="blank-value"),
    pytest.param("1", id="unquoted"),
    pytest.param('"1" "2"', id="no-comma"),
    pytest.param('"1",,"2"', id="empty-element"),
    pytest.param(',"1"', id="leading-comma"),
    pytest.param('"1", *', id="star-in-a-list"),
    pytest.param('"1\u00e4"', id="non-ascii"),
    pytest.param('"1"\u00c3\u00a4', id="utf-8-read-as-latin-1"),
    pytest.param('"-1"', id="negative"),
]
UNSAFE_METHODS = ["PATCH", "PUT", "DELETE"]


def write(
    client: FlaskClient,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
) -> Any:
    """`method` on the customer at `url`, with a valid body where the method takes one.

    `environ` puts values into the WSGI environ exactly as given, as a server would.
    """
    body = {"name": "Changed", "email": "changed@example.com"} if method != "DELETE" else None
    return client.open(url, method=method, json=body, headers=headers, environ_overrides=environ)


def success(method: str) -> int:
    return 204 if method == "DELETE" else 200


# --- DELETE -------------------------------------------------------------------------------


def test_delete_with_a_stale_etag_is_412_and_deletes_nothing(
    client: FlaskClient, customers: Customers
) -> None:
    # GIVEN a customer changed once, so its ETag is "2"
    created = customers.create(email="kept@example.com")
    url = f"/customers/{created['id']}"
    changed = client.patch(url, json={"name": "Changed"})
    assert changed.headers["ETag"] == '"2"'
    # WHEN it is deleted with the ETag it had before
    response = client.delete(url, headers={"If-Match": '"1"'})
    # THEN 412, and the customer and its email are still there
    assert_problem(response, 412)
    assert response.get_json()["type"] == "urn:customer-api:problem:precondition-failed"
    assert client.get(url).get_json() == changed.get_json()
    assert_problem(client.post("/customers", json=customers.body(email="kept@example.com")), 409)


@pytest.mark.parametrize("if_match", ['"2"', '"7", "2"', "*", ' W/"2", "2" '])
def test_delete_with_a_matching_if_match_deletes(
    client: FlaskClient, customers: Customers, if_match: str
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    client.patch(url, json={"name": "Changed"})
    response = client.delete(url, headers={"If-Match": if_match})
    assert response.status_code == 204
    assert_problem(client.get(url), 404)


@pytest.mark.parametrize("method", UNSAFE_METHODS)
@pytest.mark.parametrize("if_match", ["*", '"1"', '"1", "2"', '"01"', 'W/"1"', ""])
def test_a_missing_customer_is_404_whatever_if_match_says(
    client: FlaskClient, method: str, if_match: str
) -> None:
    # RFC 9110 §13.2.1: a request that fails without its preconditions (here 404)
    # ignores them; a 412 would tell the client a customer exists that does not.
    response = write(client, method, "/customers/nobody", {"If-Match": if_match})
    assert_problem(response, 404)


# --- If-Match on every unsafe method ------------------------------------------------------


@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_every_unsafe_method_with_a_stale_etag_is_412(
    client: FlaskClient, customers: Customers, method: str
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    changed = client.patch(url, json={"name": "Changed"}).get_json()
    assert_problem(write(client, method, url, {"If-Match": '"1"'}), 412)
    assert client.get(url).get_json() == changed


@pytest.mark.parametrize("method", UNSAFE_METHODS)
@pytest.mark.parametrize("if_match", NEVER_MATCHING)
def test_an_if_match_no_version_can_satisfy_is_412_and_changes_nothing(
    app: Flask, client: FlaskClient, customers: Customers, method: str, if_match: str
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    response = write(client, method, url, {"If-Match": if_match})
    assert_problem(response, 412)
    assert client.get(url).get_json() == created
    assert app.extensions["customer_store"].get(created["id"]).version == 1


@pytest.mark.parametrize(
    ("joined", "matches"), [(',"1"', False), ('"1",', False), ('"3","1"', True)]
)
@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_several_if_match_fields_are_one_list(
    client: FlaskClient, customers: Customers, method: str, joined: str, matches: bool
) -> None:
    # Servers join the lines of one field with commas (Werkzeug's server, granian); a line
    # granian could not decode arrives as an empty element, which fails the whole list.
    created = customers.create()
    url = f"/customers/{created['id']}"
    response = write(client, method, url, environ={"HTTP_IF_MATCH": joined})
    assert response.status_code == (success(method) if matches else 412)


# --- If-None-Match ------------------------------------------------------------------------


@pytest.mark.parametrize("method", UNSAFE_METHODS)
@pytest.mark.parametrize("if_none_match", ["*", '"1"', 'W/"1"', '"5", "1"', "", '"1\u00e4"'])
def test_if_none_match_on_an_unsafe_method_is_412_when_it_matches_or_cannot_be_read(
    client: FlaskClient, customers: Customers, method: str, if_none_match: str
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    assert_problem(write(client, method, url, {"If-None-Match": if_none_match}), 412)
    assert client.get(url).get_json() == created


@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_if_none_match_with_another_etag_lets_the_write_through(
    client: FlaskClient, customers: Customers, method: str
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    response = write(client, method, url, {"If-None-Match": '"5", W/"6"'})
    assert response.status_code == success(method)


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ('"1"', 304),
        ('W/"1"', 304),  # If-None-Match compares weakly
        ("*", 304),
        ('"2", "1"', 304),
        ('"2"', 200),
        ('"9223372036854775808"', 200),
        ('"' + "9" * 4301 + '"', 200),
        ('"' + "1" * 100_000 + '"', 200),
        ("1", 200),  # unquoted: unreadable, so the full answer
        ("", 200),
        ('"1\u00e4"', 200),
        ('"1",,"2"', 200),
    ],
)
def test_get_with_any_if_none_match_answers_200_or_304(
    client: FlaskClient, customers: Customers, if_none_match: str, status: int
) -> None:
    created = customers.create()
    response = client.get(f"/customers/{created['id']}", headers={"If-None-Match": if_none_match})
    assert response.status_code == status
    assert response.headers["ETag"] == '"1"'
    if status == 200:
        assert response.get_json() == created


# --- answers without content --------------------------------------------------------------


@pytest.fixture
def cors_app() -> Iterator[Flask]:
    application = create_app({**TEST_SETTINGS, "CORS_ORIGINS": ("https://app.example.com",)})
    yield application
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


def test_no_answer_without_content_has_a_content_type(
    cors_app: Flask, client: FlaskClient, customers: Customers
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    preflight = cors_app.test_client().options(
        "/customers",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    answers = {
        "OPTIONS": client.options(url),
        "preflight": preflight,
        "304": client.get(url, headers={"If-None-Match": '"1"'}),
        "DELETE": client.delete(url, headers={"If-Match": '"1"'}),
    }
    for name, response in answers.items():
        assert response.status_code in (204, 304), name
        assert response.data == b"", name
        assert "Content-Type" not in response.headers, name


# --- over real servers: what each makes of a non-ASCII header -----------------------------


def raw_request(port: int, method: str, path: str, headers: list[bytes], body: bytes) -> bytes:
    """One HTTP/1.1 exchange with header lines sent as the bytes given; the whole answer."""
    head = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    head += [*headers, b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(params=["granian", "werkzeug"])
def served(
    request: pytest.FixtureRequest, app_settings: dict[str, Any]
) -> Iterator[tuple[str, int]]:
    """The app as `make run` serves it (granian), or Werkzeug's threaded server; its url."""
    if request.param == "werkzeug":
        with LiveServer(request.getfixturevalue("app")) as server:
            yield server.url, int(server.url.rsplit(":", 1)[1])
        return
    names = ("CUSTOMER_STORE", "DYNAMODB_TABLE", "AWS_ENDPOINT_URL", "AWS_REGION")
    settings = {name: str(app_settings[name]) for name in names if app_settings.get(name)}
    if app_settings.get("DYNAMODB_CREATE_TABLE"):
        settings["DYNAMODB_CREATE_TABLE"] = "true"
    process = ServerProcess(settings)
    try:
        yield process.url, process.port
    finally:
        process.stop()


NON_ASCII_IF_MATCH = [
    b'"1\xc3\xa4"',  # UTF-8
    b"\xff",  # latin-1
    b'"1"\xe2\x80\x8b',  # a zero-width space after the tag
    b'"\xc3\xa4", "1"',  # a readable tag beside an unreadable one
]


def test_a_non_ascii_if_match_is_412_under_a_real_server(
    served: tuple[str, int], app_settings: dict[str, Any]
) -> None:
    # Werkzeug's server hands the bytes over decoded as latin-1, granian as an empty string.
    url, port = served
    store = requests.get(f"{url}/health", timeout=10).json()["store"]
    assert store == app_settings.get("CUSTOMER_STORE", "sqlite")
    for serial, (method, if_match) in enumerate(
        (method, if_match) for method in UNSAFE_METHODS for if_match in NON_ASCII_IF_MATCH
    ):
        customer = {"name": "Served", "email": f"served{serial}@example.com"}
        created = requests.post(f"{url}/customers", json=customer, timeout=10).json()
        path = f"/customers/{created['id']}"
        body = b'{"name": "Changed", "email": "changed@example.com"}'
        body = b"" if method == "DELETE" else body
        case = (method, if_match)
        answer = raw_request(port, method, path, [b"If-Match: " + if_match], body)
        assert status_of(answer) == 412, (case, answer[:300])
        assert b"urn:customer-api:problem:precondition-failed" in answer, case
        # With a readable second line beside it, the one the server could not read still counts.
        lines = [b"If-Match: " + if_match, b'If-Match: "1"']
        assert status_of(raw_request(port, method, path, lines, body)) == 412, case
        assert requests.get(f"{url}{path}", timeout=10).json() == created, case
