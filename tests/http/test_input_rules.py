"""One rule per field wherever the field arrives: body, query or path; and bounded echoes.

A filter names a field, so it is checked and trimmed by that field's own code: a
value the field refuses is a 400 naming the parameter, an equal value finds the
customer. Every string field is trimmed before its length and pattern are checked,
on POST, PUT and PATCH alike, and the pattern the document publishes says so.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from db import ListQuery
from tests.conftest import Customers

PROBLEM = "application/problem+json"
PROBLEM_TYPE = "urn:customer-api:problem:"
# The longest address the email field takes (254), and one character over, both well formed.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
TOO_LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"


def stored(app: Flask) -> list[dict[str, Any]]:
    """Every customer in the store, in the API's shape."""
    page = app.extensions["customer_store"].list_page(ListQuery(limit=500))
    return [record.to_public() for record in page.items]


def assert_400_naming(response: Any, *fields: str) -> dict[str, Any]:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    problem: dict[str, Any] = response.get_json()
    assert problem["type"] == PROBLEM_TYPE + "validation-error"
    assert sorted(error["field"] for error in problem["errors"]) == sorted(fields)
    return problem


# --- filters: the field's rules, the parameter's name ----------------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("businessId=123", "businessId"),
        ("businessId=0112038-8", "businessId"),  # wrong check digit
        ("businessId=0112038-9x", "businessId"),
        ("businessId=", "businessId"),
        ("businessId=%20%20", "businessId"),
        ("email=" + "a" * 64 + "@" + "b" * 250 + ".com", "email"),  # 319: the old bound was 320
        ("email=not-an-address", "email"),
        ("email=", "email"),
        ("email=%20", "email"),
        ("email=a%00b@example.com", "email"),
        ("email=a@example.com&businessId=123", "businessId"),
        ("email=nope&businessId=123", "email"),  # both named, in one answer
    ],
)
def test_a_filter_the_field_would_refuse_is_400_naming_the_parameter(
    client: FlaskClient, customers: Customers, query: str, parameter: str
) -> None:
    customers.create(businessId="0112038-9")
    response = client.get(f"/customers?{query}")
    expected = ("email", "businessId") if query.startswith("email=nope") else (parameter,)
    assert_400_naming(response, *expected)


def test_the_email_filter_takes_what_the_email_field_takes_and_no_more(
    client: FlaskClient, customers: Customers
) -> None:
    assert (len(LONGEST_EMAIL), len(TOO_LONG_EMAIL)) == (254, 255)
    wanted = customers.create(email=LONGEST_EMAIL)
    assert client.get("/customers", query_string={"email": LONGEST_EMAIL}).get_json() == [wanted]
    too_long = client.get("/customers", query_string={"email": TOO_LONG_EMAIL})
    assert_400_naming(too_long, "email")
    assert_400_naming(client.post("/customers", json=customers.body(email=TOO_LONG_EMAIL)), "email")


@pytest.mark.parametrize(
    "padded", ["%200112038-9%20", "%090112038-9", "0112038-9%0A", "+0112038-9+"]
)
def test_a_padded_business_id_filter_finds_the_customer(
    client: FlaskClient, customers: Customers, padded: str
) -> None:
    customers.create(businessId="2331972-7")
    wanted = customers.create(businessId=" 0112038-9 ")  # trimmed on the way in, too
    assert wanted["businessId"] == "0112038-9"
    assert client.get(f"/customers?businessId={padded}").get_json() == [wanted]


def test_a_padded_email_filter_finds_the_customer_in_any_case(
    client: FlaskClient, customers: Customers
) -> None:
    customers.create()
    wanted = customers.create(email="Wanted@Example.com")
    for given in ("%20wanted@example.COM%20", "%09WANTED@EXAMPLE.COM"):
        assert client.get(f"/customers?email={given}").get_json() == [wanted]


def test_the_next_link_and_cursor_carry_the_trimmed_filter(
    client: FlaskClient, customers: Customers
) -> None:
    made = [customers.create(businessId="0112038-9") for _ in range(3)]
    first = client.get("/customers?limit=2&businessId=%200112038-9%20")
    assert first.get_json() == made[:2]
    link = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
    assert link is not None
    params = parse_qs(urlsplit(link.group(1)).query)
    assert params["businessId"] == ["0112038-9"]
    [cursor] = params["cursor"]
    # The cursor a padded query made serves the plain one, and the other way round.
    for given in ("0112038-9", " 0112038-9", "0112038-9\t"):
        page = client.get(
            "/customers", query_string={"limit": 2, "businessId": given, "cursor": cursor}
        )
        assert page.status_code == 200 and page.get_json() == made[2:]
    # A cursor stays bound to its filter: another, valid, business ID is refused.
    other = client.get(
        "/customers", query_string={"limit": 2, "businessId": "2331972-7", "cursor": cursor}
    )
    assert_400_naming(other, "cursor")


@pytest.mark.parametrize(
    "business_id",
    [
        "0112038-8",
        "\x1c0112038-9",  # a control character, not white space: refused, as in a body
        "1" * 300,
    ],
)
def test_the_business_id_path_follows_the_fields_rules(
    client: FlaskClient, customers: Customers, business_id: str
) -> None:
    assert_400_naming(client.get(f"/businesses/{quote(business_id)}"), "businessId")
    body = customers.body(businessId=business_id)
    assert_400_naming(client.post("/customers", json=body), "businessId")


# --- phone numbers and trimming, on every write ----------------------------------------


BAD_PHONES = [
    "   ",
    "+-()",
    "()",
    " ( ) ",
    "",
    "1" * 33,
    " " + "1" * 33,
    "040 123 4567 ext",
    "\x1c1",
]
GOOD_PHONES = [
    ("  040 123 4567 ", "040 123 4567"),
    ("\t+358 (40) 123-4567\n", "+358 (40) 123-4567"),
    ("\u3000" + "1" * 32 + "\u00a0", "1" * 32),
    ("(0)", "(0)"),
]


@pytest.mark.parametrize("phone", BAD_PHONES)
def test_a_phone_without_a_digit_or_out_of_bounds_is_refused_on_every_write(
    app: Flask, client: FlaskClient, customers: Customers, phone: str
) -> None:
    created = customers.create()
    before = stored(app)
    assert_400_naming(client.post("/customers", json=customers.body(phone=phone)), "phone")
    url = f"/customers/{created['id']}"
    put_body = {"name": "N", "email": created["email"], "phone": phone}
    assert_400_naming(client.put(url, json=put_body), "phone")
    patch = client.patch(
        url, data=json.dumps({"phone": phone}), content_type="application/merge-patch+json"
    )
    assert_400_naming(patch, "phone")
    assert stored(app) == before


@pytest.mark.parametrize(("phone", "kept"), GOOD_PHONES)
def test_a_phone_is_stored_trimmed_on_every_write(
    app: Flask, client: FlaskClient, customers: Customers, phone: str, kept: str
) -> None:
    created = customers.create(phone=phone)
    assert created["phone"] == kept
    url = f"/customers/{created['id']}"
    cleared = client.patch(
        url, data=json.dumps({"phone": None}), content_type="application/merge-patch+json"
    )
    assert cleared.get_json()["phone"] is None
    patched = client.patch(
        url, data=json.dumps({"phone": phone}), content_type="application/merge-patch+json"
    )
    assert patched.get_json()["phone"] == kept
    replaced = client.put(url, json={"name": "N", "email": created["email"], "phone": phone})
    assert replaced.get_json()["phone"] == kept
    assert client.get(url).get_json()["phone"] == kept
    assert [customer["phone"] for customer in stored(app)] == [kept]


@pytest.mark.parametrize(
    ("field", "padded", "kept"),
    [
        ("name", "\u2003 " + "n" * 200 + " \t", "n" * 200),  # trimmed, then 200: in bounds
        ("email", f"\n{LONGEST_EMAIL} ", LONGEST_EMAIL),
        ("businessId", "\u00a00112038-9\r\n", "0112038-9"),
    ],
)
def test_every_string_field_is_trimmed_before_its_length_and_pattern(
    client: FlaskClient, customers: Customers, field: str, padded: str, kept: str
) -> None:
    created = customers.create(**{field: padded})
    assert created[field] == kept
    url = f"/customers/{created['id']}"
    patched = client.patch(
        url, data=json.dumps({field: padded}), content_type="application/merge-patch+json"
    )
    assert patched.status_code == 200 and patched.get_json()[field] == kept
    body = {"name": "N", "email": "put@example.com", field: padded}
    assert client.put(url, json=body).get_json()[field] == kept


def test_the_published_patterns_take_exactly_what_the_fields_take(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schema = document["components"]["schemas"]["CustomerCreate"]["properties"]
    phone = re.compile(schema["phone"]["anyOf"][0]["pattern"])
    business_id = re.compile(schema["businessId"]["anyOf"][0]["pattern"])
    name = re.compile(schema["name"]["pattern"])
    for bad in BAD_PHONES:
        assert not phone.search(bad), bad
    for good, _ in GOOD_PHONES:
        assert phone.search(good), good
    assert business_id.search("\u00a00112038-9\r\n") and not business_id.search("\x1c0112038-9")
    assert name.search("\tMaija\n") and name.search(" Maija Meikäläinen\u3000")
    assert not name.search(" \t ") and not name.search("Ma\x00ija")


# --- the base URL ----------------------------------------------------------------------


def test_the_base_url_links_to_the_customers_the_document_and_the_docs(
    client: FlaskClient,
) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "application/json"
    links = response.get_json()["links"]
    assert {name: link["href"] for name, link in links.items()} == {
        "customers": "/customers",
        "openapi": "/openapi.json",
        "docs": "/docs",
    }
    for link in links.values():
        assert client.get(link["href"]).status_code == 200
    head = client.head("/")
    assert head.status_code == 200 and head.data == b""


def test_the_base_url_keeps_the_base_path(client: FlaskClient) -> None:
    response = client.get("/", base_url="http://localhost/prod")
    hrefs = [link["href"] for link in response.get_json()["links"].values()]
    assert hrefs == ["/prod/customers", "/prod/openapi.json", "/prod/docs"]


@pytest.fixture
def keyed_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    app_settings["API_KEYS"] = ("the-key",)
    return app_settings


def test_the_base_url_is_open_when_keys_are_on(keyed_settings: dict[str, Any]) -> None:
    from app import create_app

    application = create_app(keyed_settings)
    try:
        client = application.test_client()
        assert client.get("/").status_code == 200
        assert client.head("/").status_code == 200
        assert client.get("/customers").status_code == 401
    finally:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()


# --- error bodies the caller cannot size -----------------------------------------------


def assert_bounded(problem: dict[str, Any], total: int) -> None:
    assert len(problem["errors"]) == 20
    assert problem["errorsOmitted"] == total - 20
    assert all(len(error["field"]) <= 64 for error in problem["errors"])


def test_thousands_of_unknown_query_parameters_get_a_small_answer(client: FlaskClient) -> None:
    query = "&".join(f"p{number}=" for number in range(13_973))
    response = client.get(f"/customers?{query}")
    problem = assert_400_naming(response, *(f"p{number}" for number in range(20)))
    assert_bounded(problem, 13_973)
    assert len(response.data) < 4096


def test_few_errors_are_listed_whole(client: FlaskClient) -> None:
    problem = assert_400_naming(client.get("/customers?a=1&b=2&limit=0"), "a", "b")
    assert "errorsOmitted" not in problem


def test_thousands_of_unknown_members_get_a_small_answer(app: Flask, client: FlaskClient) -> None:
    body = {"name": "N", "email": "n@example.com"} | {f"m{n}": 0 for n in range(5000)}
    response = client.post("/customers", json=body)
    assert response.status_code == 400
    assert_bounded(response.get_json(), 5000)
    assert len(response.data) < 4096
    assert stored(app) == []


LONG_NAME = "q" * 20_000


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (f"/customers?{LONG_NAME}=1", None),  # an unknown query parameter
        (f"/customers?limit=1&limit=2&{LONG_NAME}=1", None),
        ("/customers", f'{{"name": "N", "email": "n@example.com", "{LONG_NAME}": 1}}'),
        ("/customers", f'{{"{LONG_NAME}": 1, "{LONG_NAME}": 2}}'),  # a duplicate
    ],
)
def test_a_long_name_is_clipped_where_it_is_echoed(
    client: FlaskClient, path: str, data: str | None
) -> None:
    if data is None:
        response = client.get(path)
    else:
        response = client.post(path, data=data, content_type="application/json")
    assert response.status_code == 400
    fields = [error["field"] for error in response.get_json()["errors"]]
    assert "q" * 63 + "…" in fields
    assert all(len(field) <= 64 for field in fields)
    assert len(response.data) < 1024


def test_a_late_duplicate_member_is_named(client: FlaskClient) -> None:
    members = ", ".join(f'"m{n}": 0' for n in range(4000))
    data = f'{{"name": "N", {members}, "m3999": 1}}'
    response = client.post("/customers", data=data, content_type="application/json")
    assert_400_naming(response, "m3999")


def test_an_invalid_email_is_named_without_echoing_it_at_length(client: FlaskClient) -> None:
    for given in ("<" * 5000 + "@example.com", "<" * 200 + "@example.com"):
        response = client.get("/customers", query_string={"email": given})
        problem = assert_400_naming(response, "email")
        assert len(problem["errors"][0]["message"]) <= 200
        assert len(response.data) < 1024
