"""Hostile and malformed input: always a clear 4xx, never a 5xx, never a change, never a leak."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from db import ListQuery
from tests.conftest import TEST_SETTINGS, Customers

SQL_AND_NUL = [
    "'; DROP TABLE customers; --",
    '" OR 1=1 --',
    "x' UNION SELECT sqlite_version() --",
    "a\x00b",
    "%00",
    "\\x00",
    "Robert'); DELETE FROM customers;--",
]
SECRETS_AND_INTERNALS = ("Traceback", "sqlite", "SELECT", "INSERT", 'File "', "customers.db")


@pytest.fixture
def app_settings(httpserver: HTTPServer) -> dict[str, Any]:
    """Any lookup that slips through lands on this local register, and shows in its log."""
    return {**TEST_SETTINGS, "BUSINESS_API_URL": httpserver.url_for("/")}


def assert_clean_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    text = response.get_data(as_text=True)
    for marker in SECRETS_AND_INTERNALS:
        assert marker not in text


def count(app: Flask) -> int:
    return len(app.extensions["customer_store"].list_page(ListQuery(limit=500)).items)


@pytest.mark.parametrize("value", SQL_AND_NUL)
@pytest.mark.parametrize("field", ["name", "email", "phone", "businessId"])
def test_sql_metacharacters_and_nul_in_every_field(
    app: Flask, client: FlaskClient, customers: Customers, field: str, value: str
) -> None:
    customers.create()
    response = client.post("/customers", json=customers.body(**{field: value}))
    if field == "name" and "\x00" not in value:
        # Quotes and SQL words are a fine name: stored verbatim, never executed.
        assert response.status_code == 201
        assert response.get_json()["name"] == value
        assert count(app) == 2
    else:
        assert_clean_problem(response, 400)
        assert count(app) == 1


@pytest.mark.parametrize("value", SQL_AND_NUL)
@pytest.mark.parametrize("param", ["email", "businessId", "cursor", "limit", "include"])
def test_sql_metacharacters_and_nul_in_query_parameters(
    client: FlaskClient, customers: Customers, param: str, value: str
) -> None:
    customers.create()
    path = "/customers/x" if param == "include" else "/customers"
    response = client.get(path, query_string={param: value})
    # None of them is an email or a business ID, so none can be a filter either.
    assert_clean_problem(response, 400)


def test_sql_quotes_in_a_valid_email_filter_are_only_data(
    client: FlaskClient, customers: Customers
) -> None:
    customers.create()
    response = client.get("/customers", query_string={"email": "x'OR'1'='1@example.com"})
    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize("value", SQL_AND_NUL)
def test_sql_metacharacters_in_the_path(client: FlaskClient, value: str) -> None:
    assert_clean_problem(client.get(f"/customers/{value.replace(chr(0), '%00')}"), 404)


def test_invalid_utf8_body(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/customers",
        data=b'{"name": "\xff\xfe", "email": "a@example.com"}',
        content_type="application/json",
    )
    assert_clean_problem(response, 400)
    assert count(app) == 0


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_ten_thousand_deep_nesting(app: Flask, client: FlaskClient, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = opener * 10_000 + "1" + closer * 10_000
    response = client.post("/customers", data=body, content_type="application/json")
    assert_clean_problem(response, 400)
    assert count(app) == 0


def test_body_one_byte_over_the_limit(app: Flask, client: FlaskClient) -> None:
    padding = "x" * (64 * 1024)
    body = json.dumps({"name": "n", "email": "a@example.com", "phone": padding})
    body = body[: 64 * 1024 + 1]
    assert len(body.encode()) == 64 * 1024 + 1
    response = client.post("/customers", data=body, content_type="application/json")
    assert_clean_problem(response, 413)
    assert count(app) == 0


def test_body_at_the_limit_is_read(client: FlaskClient) -> None:
    body = json.dumps({"name": "n", "email": "a@example.com", "note": ""})
    body = body.replace('""', '"' + "x" * (64 * 1024 - len(body)) + '"')
    assert len(body.encode()) == 64 * 1024
    response = client.post("/customers", data=body, content_type="application/json")
    assert_clean_problem(response, 400)  # read in full, then refused for the unknown field
    assert response.get_json()["errors"] == [{"field": "note", "message": "is not a known field"}]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json; charset=latin-1",
        "application/merge-patch+json",
    ],
)
def test_wrong_content_types_on_post(
    app: Flask, client: FlaskClient, content_type: str | None
) -> None:
    body = json.dumps({"name": "n", "email": "a@example.com"})
    response = client.post("/customers", data=body, content_type=content_type)
    assert_clean_problem(response, 415)
    assert count(app) == 0


def test_duplicate_keys_are_refused(app: Flask, client: FlaskClient) -> None:
    body = '{"name": "n", "email": "a@example.com", "email": "b@example.com"}'
    response = client.post("/customers", data=body, content_type="application/json")
    assert_clean_problem(response, 400)
    assert response.get_json()["errors"] == [
        {"field": "email", "message": "is given more than once"}
    ]
    assert count(app) == 0


@pytest.mark.parametrize(
    "limit", ["10000000000000000000000", "501", "-1", "0", "1e3", "0x10", "١٢"]
)
def test_huge_or_odd_limits(client: FlaskClient, limit: str) -> None:
    response = client.get("/customers", query_string={"limit": limit})
    assert_clean_problem(response, 400)
    assert response.get_json()["errors"][0]["field"] == "limit"


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not-base64!!",
        "A" * 10_000,
        _cursor({"a": 1}),
        _cursor(["2026-01-01T00:00:00.000000Z", "x"]),
        _cursor(["2026-01-01T00:00:00.000000Z", "x", "0" * 16]),
        _cursor(["'; DROP TABLE customers; --", "x", "0" * 16]),
        _cursor([1, 2, 3]),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    ],
)
def test_forged_cursors(client: FlaskClient, customers: Customers, cursor: str) -> None:
    customers.create()
    response = client.get("/customers", query_string={"cursor": cursor})
    assert_clean_problem(response, 400)


def test_replayed_cursor_from_another_filter(client: FlaskClient, customers: Customers) -> None:
    for _ in range(3):
        customers.create(businessId="0112038-9")
    first = client.get("/customers?limit=1&businessId=0112038-9")
    cursor = first.headers["Link"].split("cursor=")[1].split("&")[0].split(">")[0]
    assert client.get(f"/customers?limit=1&businessId=0112038-9&cursor={cursor}").status_code == 200
    assert_clean_problem(client.get(f"/customers?limit=1&cursor={cursor}"), 400)
    assert_clean_problem(
        client.get(f"/customers?limit=1&email=a@example.com&businessId=0112038-9&cursor={cursor}"),
        400,
    )


@pytest.mark.parametrize(
    "business_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "0112038-9%2F..%2F..%2Fadmin",
        "0112038-9%3Fx%3D1",
        "0112038-9%23frag",
        "@evil.example",
        "http:%2F%2Fevil.example%2F",
        "0112038-9%20OR%201%3D1",
        "%0d%0aHost:%20evil",
        "%00",
    ],
)
def test_business_id_injection_never_reaches_any_host(
    client: FlaskClient, httpserver: HTTPServer, app: Flask, business_id: str
) -> None:
    response = client.get(f"/businesses/{business_id}")
    assert response.status_code in (400, 404)
    assert response.mimetype == "application/problem+json"
    assert httpserver.log == []


def test_a_valid_business_id_reaches_only_the_configured_path(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies", query_string="businessId=0112038-9").respond_with_json(
        {"totalResults": 0, "companies": []}
    )
    assert client.get("/businesses/%200112038-9%20").status_code == 404
    [(request, _)] = httpserver.log
    assert request.path == "/companies"
    assert request.query_string == b"businessId=0112038-9"


@pytest.mark.parametrize(
    "request_id",
    ["a\r\nSet-Cookie: x=1", "x" * 129, "<script>alert(1)</script>", "a b", "ä", ""],
)
def test_header_injection_in_request_id(client: FlaskClient, request_id: str) -> None:
    try:
        response = client.get("/health", headers={"X-Request-ID": request_id})
    except ValueError:
        return  # the client itself refuses to send a header with a newline
    echoed = response.headers["X-Request-ID"]
    assert echoed != request_id
    assert "Set-Cookie" not in response.headers
    assert len(echoed) == 32 and echoed.isalnum()


def test_other_customers_data_never_appears_in_errors(
    client: FlaskClient, customers: Customers
) -> None:
    other = customers.create(phone="+358 40 765 4321", businessId="2331972-7")
    clash = client.post("/customers", json=customers.body(email=other["email"].upper()))
    assert clash.status_code == 409
    text = clash.get_data(as_text=True)
    for value in (other["id"], other["name"], other["phone"], other["email"].upper()):
        assert value not in text
