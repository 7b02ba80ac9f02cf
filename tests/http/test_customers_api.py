"""The customer contract, row by row: every success and every failure code of the table."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from db import StoreUnavailable
from tests.conftest import Customers

PROBLEM = "application/problem+json"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
PUBLIC_FIELDS = {"id", "name", "email", "phone", "businessId", "createdAt", "updatedAt"}


def assert_problem(response: Any, status: int, *fields: str) -> dict[str, Any]:
    """`response` is an RFC 9457 problem of `status`; a 400 names exactly `fields`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    problem: dict[str, Any] = response.get_json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["type"]
    if fields:
        assert sorted(error["field"] for error in problem["errors"]) == sorted(fields)
        assert all(error["message"] for error in problem["errors"])
    return problem


# --- POST /customers --------------------------------------------------------------------


def test_create_answers_201_with_location_etag_and_the_customer(client: FlaskClient) -> None:
    response = client.post(
        "/customers",
        json={
            "name": "  Ada Lovelace ",
            "email": " Ada@Example.COM ",
            "phone": "+358 40 123 4567",
            "businessId": " 0112038-9 ",
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == PUBLIC_FIELDS
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "Ada@Example.COM"
    assert body["phone"] == "+358 40 123 4567"
    assert body["businessId"] == "0112038-9"
    assert RFC3339_UTC.match(body["createdAt"]) and body["createdAt"] == body["updatedAt"]
    assert response.headers["Location"] == f"/customers/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get(response.headers["Location"]).get_json() == body


def test_optional_fields_not_set_are_null_never_omitted(customers: Customers) -> None:
    created = customers.create()
    assert created["phone"] is None and created["businessId"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["name", "email"]),
        ({"name": "", "email": "a@example.com"}, ["name"]),
        ({"name": "   ", "email": "a@example.com"}, ["name"]),
        ({"name": "x" * 201, "email": "a@example.com"}, ["name"]),
        ({"name": "A", "email": "not-an-email"}, ["email"]),
        ({"name": "A", "email": "a@example.com", "phone": "call me"}, ["phone"]),
        ({"name": "A", "email": "a@example.com", "phone": "1" * 33}, ["phone"]),
        ({"name": "A", "email": "a@example.com", "businessId": "0112038-8"}, ["businessId"]),
        ({"name": "A", "email": "a@example.com", "businessId": "112038-9"}, ["businessId"]),
        ({"name": 5, "email": True}, ["name", "email"]),
        ({"name": "A", "email": "a@example.com", "phone": 123}, ["phone"]),
        ({"name": "A", "email": "a@example.com", "nickname": "x"}, ["nickname"]),
        ({"name": "A", "email": "a@example.com", "id": "x"}, ["id"]),
        ({"name": "A", "email": "a@example.com", "createdAt": "x", "updatedAt": "y"}, []),
        ({"name": None, "email": "a@example.com"}, ["name"]),
    ],
)
def test_create_names_every_bad_field(
    client: FlaskClient, body: dict[str, Any], fields: list[str]
) -> None:
    response = client.post("/customers", json=body)
    expected = fields or [name for name in ("createdAt", "updatedAt") if name in body]
    assert_problem(response, 400, *expected)
    assert client.get("/customers").get_json() == []


def test_nested_field_errors_use_dotted_paths(client: FlaskClient) -> None:
    response = client.post("/customers", json={"name": {"first": "A"}, "email": "a@example.com"})
    problem = assert_problem(response, 400)
    assert [error["field"] for error in problem["errors"]] == ["name"]


def test_create_with_a_taken_email_is_409_whatever_its_case(
    client: FlaskClient, customers: Customers
) -> None:
    customers.create(email="taken@example.com")
    response = client.post("/customers", json={"name": "B", "email": "TAKEN@example.com"})
    problem = assert_problem(response, 409)
    assert problem["errors"] == [{"field": "email", "message": "is already in use"}]
    assert len(client.get("/customers").get_json()) == 1


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json"],
)
def test_create_needs_json(client: FlaskClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    data = json.dumps({"name": "A", "email": "a@example.com"})
    response = client.post("/customers", data=data, headers=headers)
    assert_problem(response, 415)


def test_json_with_a_charset_is_fine(client: FlaskClient) -> None:
    response = client.post(
        "/customers",
        data=json.dumps({"name": "Å", "email": "a@example.com"}).encode(),
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("data", [b"{", b"", b"[]", b'"text"', b"null", b"1"])
def test_malformed_or_non_object_json_is_400(client: FlaskClient, data: bytes) -> None:
    response = client.post("/customers", data=data, content_type="application/json")
    assert_problem(response, 400)


def test_body_over_64_kib_is_413(client: FlaskClient) -> None:
    padding = "x" * (64 * 1024)
    response = client.post("/customers", json={"name": padding, "email": "a@example.com"})
    assert_problem(response, 413)


# --- GET /customers ---------------------------------------------------------------------


def test_list_is_an_array_oldest_first(client: FlaskClient, customers: Customers) -> None:
    made = [customers.create() for _ in range(5)]
    response = client.get("/customers")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == made
    assert "Link" not in response.headers


def test_list_of_nothing_is_an_empty_array(client: FlaskClient) -> None:
    response = client.get("/customers")
    assert response.status_code == 200 and response.get_json() == []


def test_list_filters_by_email_case_insensitively(
    client: FlaskClient, customers: Customers
) -> None:
    customers.create()
    wanted = customers.create(email="Wanted@Example.com")
    assert client.get("/customers?email=wANTED@example.COM").get_json() == [wanted]
    assert client.get("/customers?email=nobody@example.com").get_json() == []


def test_list_filters_by_business_id(client: FlaskClient, customers: Customers) -> None:
    customers.create(businessId="2331972-7")
    wanted = [customers.create(businessId="0112038-9") for _ in range(2)]
    customers.create()
    assert client.get("/customers?businessId=0112038-9").get_json() == wanted


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("cursor=garbage", "cursor"),
        ("sort=name", "sort"),
        ("limit=1&limit=2", "limit"),
    ],
)
def test_bad_list_queries_are_400_naming_the_parameter(
    client: FlaskClient, query: str, field: str
) -> None:
    assert_problem(client.get(f"/customers?{query}"), 400, field)


# --- GET /customers/{id} ----------------------------------------------------------------


def test_get_answers_the_customer_with_its_etag(client: FlaskClient, customers: Customers) -> None:
    created = customers.create()
    response = client.get(f"/customers/{created['id']}")
    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == '"1"'


def test_get_with_a_matching_if_none_match_is_304(
    client: FlaskClient, customers: Customers
) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    etag = client.get(url).headers["ETag"]
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    client.patch(url, json={"name": "Changed"})
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] == '"2"'


@pytest.mark.parametrize("customer_id", ["no-such-id", "0" * 36, "x" * 65])
def test_get_of_an_unknown_id_is_404(client: FlaskClient, customer_id: str) -> None:
    assert_problem(client.get(f"/customers/{customer_id}"), 404)


# --- PATCH /customers/{id} --------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_patch_is_a_merge_patch(
    client: FlaskClient, customers: Customers, content_type: str
) -> None:
    created = customers.create(phone="123", businessId="0112038-9")
    response = client.patch(
        f"/customers/{created['id']}",
        data=json.dumps({"name": " New Name ", "phone": None}),
        content_type=content_type,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "New Name"
    assert body["phone"] is None
    assert body["businessId"] == "0112038-9"
    assert body["email"] == created["email"]
    assert body["createdAt"] == created["createdAt"]
    assert body["updatedAt"] >= created["updatedAt"]
    assert response.headers["ETag"] == '"2"'
    assert client.get(f"/customers/{created['id']}").get_json() == body


def test_patch_with_an_empty_object_changes_nothing(
    client: FlaskClient, customers: Customers
) -> None:
    created = customers.create()
    response = client.patch(f"/customers/{created['id']}", json={})
    assert response.status_code == 200 and response.get_json() == created


def test_a_customer_may_change_the_case_of_its_own_email(
    client: FlaskClient, customers: Customers
) -> None:
    created = customers.create(email="own@example.com")
    response = client.patch(f"/customers/{created['id']}", json={"email": "OWN@example.com"})
    assert response.status_code == 200
    assert response.get_json()["email"] == "OWN@example.com"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": None}, ["name"]),
        ({"email": None}, ["email"]),
        ({"email": "nope"}, ["email"]),
        ({"id": "other"}, ["id"]),
        ({"updatedAt": "2020-01-01T00:00:00Z"}, ["updatedAt"]),
        ({"colour": "red", "phone": "letters"}, ["colour", "phone"]),
    ],
)
def test_bad_patch_is_400_and_changes_nothing(
    client: FlaskClient, customers: Customers, body: dict[str, Any], fields: list[str]
) -> None:
    created = customers.create()
    response = client.patch(f"/customers/{created['id']}", json=body)
    assert_problem(response, 400, *fields)
    assert client.get(f"/customers/{created['id']}").get_json() == created


def test_patch_of_an_unknown_id_is_404(client: FlaskClient) -> None:
    assert_problem(client.patch("/customers/nobody", json={"name": "A"}), 404)


def test_patch_to_a_taken_email_is_409(client: FlaskClient, customers: Customers) -> None:
    customers.create(email="first@example.com")
    second = customers.create()
    response = client.patch(f"/customers/{second['id']}", json={"email": "First@example.com"})
    assert_problem(response, 409)
    assert client.get(f"/customers/{second['id']}").get_json() == second


def test_patch_needs_json(client: FlaskClient, customers: Customers) -> None:
    created = customers.create()
    response = client.patch(f"/customers/{created['id']}", data="name=A")
    assert_problem(response, 415)


def test_if_match_makes_writes_conditional(client: FlaskClient, customers: Customers) -> None:
    created = customers.create()
    url = f"/customers/{created['id']}"
    first = client.patch(url, json={"name": "First"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    stale = client.patch(url, json={"name": "Stale"}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    stale_put = client.put(
        url, json={"name": "Stale", "email": created["email"]}, headers={"If-Match": '"1"'}
    )
    assert_problem(stale_put, 412)
    assert client.get(url).get_json()["name"] == "First"
    star = client.patch(url, json={"name": "Any"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    either = client.patch(url, json={"name": "Either"}, headers={"If-Match": '"1", "3"'})
    assert either.status_code == 200 and either.headers["ETag"] == '"4"'


def test_if_match_on_an_empty_patch_still_checks(client: FlaskClient, customers: Customers) -> None:
    created = customers.create()
    response = client.patch(f"/customers/{created['id']}", json={}, headers={"If-Match": '"7"'})
    assert_problem(response, 412)


# --- PUT /customers/{id} ----------------------------------------------------------------


def test_put_replaces_every_writable_field(client: FlaskClient, customers: Customers) -> None:
    created = customers.create(phone="123", businessId="0112038-9")
    url = f"/customers/{created['id']}"
    response = client.put(url, json={"name": "Whole", "email": "whole@example.com"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Whole" and body["email"] == "whole@example.com"
    assert body["phone"] is None and body["businessId"] is None
    assert body["id"] == created["id"] and body["createdAt"] == created["createdAt"]
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "Only"}, ["email"]),
        ({"name": "A", "email": "a@example.com", "createdAt": "x"}, ["createdAt"]),
        ({"name": "A", "email": "a@example.com", "phone": False}, ["phone"]),
    ],
)
def test_bad_put_is_400_and_changes_nothing(
    client: FlaskClient, customers: Customers, body: dict[str, Any], fields: list[str]
) -> None:
    created = customers.create()
    assert_problem(client.put(f"/customers/{created['id']}", json=body), 400, *fields)
    assert client.get(f"/customers/{created['id']}").get_json() == created


def test_put_failures_404_409_415(client: FlaskClient, customers: Customers) -> None:
    taken = customers.create()
    created = customers.create()
    url = f"/customers/{created['id']}"
    assert_problem(client.put("/customers/nobody", json={"name": "A", "email": "a@x.io"}), 404)
    assert_problem(client.put(url, json={"name": "A", "email": taken["email"].upper()}), 409)
    merge_patch = json.dumps({"name": "A", "email": "a@example.com"})
    assert_problem(
        client.put(url, data=merge_patch, content_type="application/merge-patch+json"), 415
    )
    assert client.get(url).get_json() == created


# --- DELETE /customers/{id} -------------------------------------------------------------


def test_delete_is_204_then_404_and_frees_the_email(
    client: FlaskClient, customers: Customers
) -> None:
    created = customers.create(email="gone@example.com")
    url = f"/customers/{created['id']}"
    response = client.delete(url)
    assert response.status_code == 204 and response.data == b""
    assert_problem(client.get(url), 404)
    assert_problem(client.delete(url), 404)
    assert (
        client.post("/customers", json={"name": "B", "email": "gone@example.com"}).status_code
        == 201
    )


# --- the service around the resource ---------------------------------------------------


def test_health_is_ok(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_health_is_503_when_the_store_does_not_answer(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(app.extensions["customer_store"], "ping", unreachable)
    problem = assert_problem(client.get("/health"), 503)
    assert "refused" not in problem["detail"]


def test_health_is_503_when_the_sqlite_store_is_closed(
    app_settings: dict[str, Any], tmp_path: Any
) -> None:
    from app import create_app

    application = create_app(
        {**app_settings, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": str(tmp_path / "c.db")}
    )
    application.extensions["customer_store"].close()
    assert_problem(application.test_client().get("/health"), 503)
    application.extensions["business_client"].close()


def test_unknown_route_is_a_404_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/nothing/here"), 404)


def test_wrong_method_is_a_405_problem_with_allow(client: FlaskClient) -> None:
    response = client.post("/health")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    collection = client.put("/customers", json={})
    assert_problem(collection, 405)
    assert {"GET", "POST"} <= {m.strip() for m in collection.headers["Allow"].split(",")}


@pytest.fixture
def failing_app(app_settings: dict[str, Any]) -> Any:
    """An app whose store raises an unexpected error, as a bug would."""
    from app import create_app

    application = create_app({**app_settings, "PROPAGATE_EXCEPTIONS": False, "TESTING": False})
    store = application.extensions["customer_store"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SELECT secret FROM customers -- stack detail")

    store.get = broken
    yield application
    store.close()
    application.extensions["business_client"].close()


def test_a_500_is_a_logged_problem_without_internals(
    capsys: pytest.CaptureFixture[str], failing_app: Flask
) -> None:
    response = failing_app.test_client().get(
        "/customers/some-id", headers={"X-Request-ID": "trace-500"}
    )
    problem = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert problem["requestId"] == "trace-500"
    assert response.headers["X-Request-ID"] == "trace-500"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    errors = [line for line in logged if line.get("level") == "error"]
    assert errors and all(line["request_id"] == "trace-500" for line in errors)


@pytest.mark.parametrize("path", ["/customers", "/health", "/nothing", "/customers/nobody"])
def test_every_response_carries_a_request_id(client: FlaskClient, path: str) -> None:
    generated = client.get(path).headers["X-Request-ID"]
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", generated)
    assert client.get(path).headers["X-Request-ID"] != generated
    sane = "req-1.2:3_A"
    assert client.get(path, headers={"X-Request-ID": sane}).headers["X-Request-ID"] == sane


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", "ä", "a/b", "<script>"])
def test_an_insane_request_id_is_replaced_not_reflected(client: FlaskClient, given: str) -> None:
    answered = client.get("/health", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert answered != given and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", answered)


def test_nothing_is_logged_about_the_customer(
    capsys: pytest.CaptureFixture[str], client: FlaskClient
) -> None:
    client.post(
        "/customers",
        json={"name": "Secret Person", "email": "secret@example.com", "phone": "+358 99"},
    )
    client.post("/customers", json={"name": "Secret Person", "email": "secret@example.com"})
    out = capsys.readouterr().out
    assert '"route":"/customers"' in out.replace(" ", "")
    for value in ("Secret", "secret@example.com", "+358 99"):
        assert value not in out


@pytest.mark.parametrize("if_match", ['""', 'W/"1"', '"x"', '"2", "3"', "\x00", "W/", '"01x"'])
def test_odd_if_match_values_never_match_and_never_fail(
    client: FlaskClient, customers: Customers, if_match: str
) -> None:
    # None of these is the strong tag "1" (If-Match compares strongly): all are 412.
    created = customers.create()
    url = f"/customers/{created['id']}"
    response = client.patch(url, json={"name": "Odd"}, headers={"If-Match": if_match})
    assert_problem(response, 412)
    assert client.get(url).get_json() == created


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/customers", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/customers/some-id", {"GET", "HEAD", "PATCH", "PUT", "DELETE", "OPTIONS"}),
    ],
)
def test_options_answers_204_with_the_allowed_methods(
    client: FlaskClient, path: str, methods: set[str]
) -> None:
    response = client.options(path)
    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) == methods
    assert response.data == b""
    assert "Content-Type" not in response.headers
