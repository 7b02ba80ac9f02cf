"""Every error the service sends is one of its own problem types, whoever raised it.

Each way a client can reach each error status, walked: the service's own problems,
Werkzeug's (unknown route, wrong method, body too large, a body cut short),
flask-limiter's 429 and the failed-key limit, an unexpected exception, and every
HTTPException Werkzeug defines. None answers `about:blank` or another's title,
and the headers that belong to the error (Allow, Retry-After, RateLimit-*,
WWW-Authenticate) survive the rendering.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.datastructures import WWWAuthenticate

from app import create_app
from customers.web.problems import FOR_STATUS, TYPE_PREFIX, slug_for_status
from db import ListQuery, StoreUnavailable
from tests.conftest import Customers, LiveServer

KEY = "problem-types-key"


def assert_type(response: Any, status: int, slug: str) -> dict[str, Any]:
    """`response` is the problem document of `status` with the service's type `slug`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json()
    assert problem["type"] == TYPE_PREFIX + slug
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    return problem


@pytest.fixture
def build(app_settings: dict[str, Any]) -> Iterator[Any]:
    """Apps with extra settings on top of the test's, closed afterwards."""
    made: list[Flask] = []

    def make(**settings: Any) -> Flask:
        application = create_app({**app_settings, **settings})
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()


# --- the service's own problems ---------------------------------------------------------


def test_the_services_own_problems(
    app: Flask, client: FlaskClient, customers: Customers, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    assert_type(client.post("/customers", json={}), 400, "validation-error")
    assert_type(client.get("/customers?sort=name"), 400, "validation-error")
    assert_type(client.get("/customers/no-such-id"), 404, "not-found")
    taken = client.post("/customers", json={"name": "N", "email": created["email"]})
    assert_type(taken, 409, "email-taken")
    stale = client.patch(url, json={"name": "N"}, headers={"If-Match": '"9"'})
    assert_type(stale, 412, "precondition-failed")
    not_json = client.post("/customers", data="x", content_type="text/plain")
    assert_type(not_json, 415, "unsupported-media-type")

    def unreachable() -> None:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(app.extensions["customer_store"], "ping", unreachable)
    assert_type(client.get("/health"), 503, "service-unavailable")


def test_a_missing_or_wrong_key_is_unauthorized(build: Any) -> None:
    client = build(API_KEYS=(KEY,)).test_client()
    missing = assert_type(client.get("/customers"), 401, "unauthorized")
    assert missing["detail"]
    wrong = client.get("/customers", headers={"X-API-Key": "guess"})
    assert_type(wrong, 401, "unauthorized")
    assert "error=" in wrong.headers["WWW-Authenticate"]


# --- Werkzeug's errors, reached as a client reaches them --------------------------------


def test_an_unknown_route_is_not_found(client: FlaskClient) -> None:
    assert_type(client.get("/nothing/here"), 404, "not-found")
    assert_type(client.get("/customers/x/y/z"), 404, "not-found")


def test_a_wrong_method_is_method_not_allowed_with_allow(client: FlaskClient) -> None:
    for method, path in (("POST", "/health"), ("PUT", "/customers"), ("POST", "/customers/x")):
        response = client.open(path, method=method)
        assert_type(response, 405, "method-not-allowed")
        assert response.headers["Allow"]


def test_a_body_over_the_limit_is_body_too_large(app: Flask, client: FlaskClient) -> None:
    body = b'{"name": "' + b"n" * (64 * 1024) + b'", "email": "a@example.com"}'
    response = client.post("/customers", data=body, content_type="application/json")
    problem = assert_type(response, 413, "body-too-large")
    assert problem["title"] != "Request Entity Too Large"  # Werkzeug's title, not ours
    assert app.extensions["customer_store"].list_page(ListQuery(limit=1)).items == []


def test_a_body_over_the_limit_over_http_is_body_too_large(live_server: LiveServer) -> None:
    body = b"x" * (64 * 1024 + 1)
    response = live_server.session.post(
        f"{live_server.url}/customers", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == TYPE_PREFIX + "body-too-large"


def test_a_body_cut_short_is_bad_request(live_server: LiveServer) -> None:
    # GIVEN a request that announces 100 bytes and sends 10, then stops sending
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\n" + b'{"name": "'
        )
        connection.shutdown(socket.SHUT_WR)
        # WHEN the server reads the body, THEN Werkzeug's 400 arrives in the service's type
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"application/problem+json" in head
    assert TYPE_PREFIX.encode() + b"bad-request" in body


def test_over_the_rate_limit_is_rate_limited_with_its_headers(build: Any) -> None:
    client = build(API_KEYS=(KEY,), RATE_LIMIT="2/minute").test_client()
    for _ in range(2):
        assert client.get("/customers", headers={"X-API-Key": KEY}).status_code == 200
    limited = client.get("/customers", headers={"X-API-Key": KEY})
    problem = assert_type(limited, 429, "rate-limited")
    assert "per" not in problem["detail"]  # flask-limiter's description names the limit
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    assert limited.headers["RateLimit-Limit"] == "2"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(limited.headers["RateLimit-Reset"]) <= 61


def test_too_many_failed_keys_is_rate_limited(build: Any) -> None:
    client = build(API_KEYS=(KEY,), RATE_LIMIT="2/minute").test_client()
    wrong = {"X-API-Key": "guess"}
    assert [client.get("/customers", headers=wrong).status_code for _ in range(2)] == [401] * 2
    limited = client.get("/customers", headers=wrong)
    assert_type(limited, 429, "rate-limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 61


def test_an_unexpected_exception_is_internal_error(build: Any) -> None:
    application = build(PROPAGATE_EXCEPTIONS=False, TESTING=False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    application.extensions["customer_store"].list_json = broken
    response = application.test_client().get("/customers", headers={"X-Request-ID": "r-500"})
    problem = assert_type(response, 500, "internal-error")
    assert problem["requestId"] == "r-500"
    assert "a bug" not in response.get_data(as_text=True)


# --- every HTTPException Werkzeug defines, should any part of the app raise it -----------


def _raised(code: int) -> werkzeug_exceptions.HTTPException:
    """An instance of Werkzeug's exception for `code`, with the headers it can carry."""
    if code == 401:
        return werkzeug_exceptions.Unauthorized(www_authenticate=WWWAuthenticate("bearer"))
    if code == 405:
        return werkzeug_exceptions.MethodNotAllowed(valid_methods=["GET", "HEAD"])
    if code == 416:
        return werkzeug_exceptions.RequestedRangeNotSatisfiable(length=10)
    if code in (429, 503):
        return werkzeug_exceptions.default_exceptions[code](retry_after=7)
    return werkzeug_exceptions.default_exceptions[code]()


@pytest.mark.parametrize("code", sorted(werkzeug_exceptions.default_exceptions))
def test_every_werkzeug_error_has_a_type_of_the_service(app: Flask, code: int) -> None:
    def fail() -> None:
        raise _raised(code)

    app.add_url_rule("/failing", view_func=fail)
    response = app.test_client().get("/failing")
    problem = assert_type(response, code, slug_for_status(code))
    assert slug_for_status(code) not in ("", "error", "about-blank")
    if code in FOR_STATUS:
        assert problem["title"] == FOR_STATUS[code].title
    for name, value in _raised(code).get_headers():
        if name != "Content-Type":
            assert response.headers[name] == value


@pytest.mark.parametrize(
    ("code", "slug"),
    [
        (400, "bad-request"),
        (401, "unauthorized"),
        (404, "not-found"),
        (405, "method-not-allowed"),
        (408, "request-timeout"),
        (409, "conflict"),
        (412, "precondition-failed"),
        (413, "body-too-large"),
        (414, "request-uri-too-long"),
        (415, "unsupported-media-type"),
        (418, "i-m-a-teapot"),
        (429, "rate-limited"),
        (431, "request-header-fields-too-large"),
        (500, "internal-error"),
        (501, "not-implemented"),
        (503, "service-unavailable"),
        (599, "http-error"),
    ],
)
def test_the_slug_of_each_status(code: int, slug: str) -> None:
    assert slug_for_status(code) == slug
