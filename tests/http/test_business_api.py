"""The business endpoints against a local stand-in of the register."""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from app import create_app
from customers.config import SERVER_THREADS
from tests.conftest import TEST_SETTINGS, Customers
from tests.served import ServerProcess, free_port
from tests.upstream_samples import (
    HeldRegister,
    company_found_body,
    company_not_found_body,
    error_body,
)

ID = "0112038-9"


@pytest.fixture
def app_settings(httpserver: HTTPServer) -> dict[str, Any]:
    return {
        **TEST_SETTINGS,
        "BUSINESS_API_URL": httpserver.url_for("/"),
        "BUSINESS_READ_TIMEOUT": 0.5,
        "BUSINESS_CONNECT_TIMEOUT": 0.5,
        "BUSINESS_DEADLINE": 1.5,
        "BUSINESS_RETRIES": 1,
        "BUSINESS_BREAKER_FAILURES": 2,
    }


def test_found(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/companies", query_string=f"businessId={ID}").respond_with_json(
        company_found_body(ID)
    )
    response = client.get(f"/businesses/{ID}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["businessId"] == ID
    assert body["name"] == "Revontuli Software Oy"
    assert body["status"] == "active"
    assert body["companyForm"] == {"code": "16", "description": "Limited company"}
    assert {address["type"] for address in body["addresses"]} == {"visiting", "postal"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("business_id", ["0112038-8", "1234567-8", "ABCDEFG-H", "112038-9"])
def test_invalid_id_is_400_without_a_lookup(
    client: FlaskClient, httpserver: HTTPServer, business_id: str
) -> None:
    response = client.get(f"/businesses/{business_id}")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "businessId"
    assert httpserver.log == []


def test_unknown_company_is_404(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/companies").respond_with_json(company_not_found_body())
    response = client.get(f"/businesses/{ID}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "detail"),
    [
        (500, None, None, "The business register answered 500."),
        (
            200,
            "<html>oops</html>",
            "text/html",
            "The business register sent a body that is not JSON.",
        ),
        (400, None, None, "The business register answered 400."),
    ],
)
def test_upstream_errors_are_502_saying_what_went_wrong(
    client: FlaskClient,
    httpserver: HTTPServer,
    status: int,
    body: str | None,
    content_type: str | None,
    detail: str,
) -> None:
    handler = httpserver.expect_request("/companies")
    if body is None:
        handler.respond_with_json(error_body(), status=status)
    else:
        handler.respond_with_data(body, status=status, content_type=content_type)
    response = client.get(f"/businesses/{ID}")
    assert response.status_code == 502
    assert response.get_json()["detail"] == detail
    assert "oops" not in response.get_data(as_text=True)


def test_an_unreachable_register_is_502_saying_so(app_settings: dict[str, Any]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = create_app({**app_settings, "BUSINESS_API_URL": closed})
    try:
        response = app.test_client().get(f"/businesses/{ID}")
    finally:
        app.extensions["business_client"].close()
        app.extensions["customer_store"].close()
    assert response.status_code == 502
    assert response.get_json()["detail"] == "The business register could not be reached."


def test_upstream_rate_limit_after_retries_is_503_with_retry_after(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies").respond_with_data(
        "Too many requests", status=429, headers={"Retry-After": "0"}
    )
    response = client.get(f"/businesses/{ID}")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


def test_open_breaker_is_503_with_retry_after(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/companies").respond_with_json(error_body(), status=500)
    for _ in range(2):
        assert client.get(f"/businesses/{ID}").status_code == 502
    calls = len(httpserver.log)
    response = client.get(f"/businesses/{ID}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert len(httpserver.log) == calls


def test_with_rate_limits_on_a_503_keeps_its_own_retry_after(
    app_settings: dict[str, Any], httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies").respond_with_json(error_body(), status=500)
    app = create_app({**app_settings, "RATE_LIMIT": "100/minute"})
    try:
        client = app.test_client()
        for _ in range(2):
            assert client.get(f"/businesses/{ID}").status_code == 502
        response = client.get(f"/businesses/{ID}")
    finally:
        app.extensions["business_client"].close()
        app.extensions["customer_store"].close()
    assert response.status_code == 503
    assert response.headers["RateLimit-Limit"] == "100"
    assert response.headers["Retry-After"] == "30"


def test_a_hanging_register_is_504_within_the_deadline(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    held = HeldRegister(httpserver, hold_seconds=5)
    httpserver.expect_request("/companies").respond_with_handler(held)
    response = client.get(f"/businesses/{ID}")
    assert held.release() >= 1
    assert response.status_code == 504


def test_customer_business(
    client: FlaskClient, customers: Customers, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    customer = customers.create(businessId=ID)
    response = client.get(f"/customers/{customer['id']}/business")
    assert response.status_code == 200
    assert response.get_json()["businessId"] == ID


@pytest.mark.parametrize(
    ("business_id", "register", "detail"),
    [
        (None, None, "The customer has no business ID."),
        (
            ID,
            company_not_found_body(),
            "No company in the business register has the customer's business ID.",
        ),
    ],
)
def test_customer_business_404s_say_which(
    client: FlaskClient,
    customers: Customers,
    httpserver: HTTPServer,
    business_id: str | None,
    register: dict[str, Any] | None,
    detail: str,
) -> None:
    if register is not None:
        httpserver.expect_request("/companies").respond_with_json(register)
    customer = customers.create(businessId=business_id)
    response = client.get(f"/customers/{customer['id']}/business")
    assert response.status_code == 404
    assert response.get_json()["detail"] == detail
    missing = client.get("/customers/no-such-id/business")
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == "No customer has this id."


def test_include_business_embeds_the_company(
    client: FlaskClient, customers: Customers, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    customer = customers.create(businessId=ID)
    body = client.get(f"/customers/{customer['id']}?include=business").get_json()
    assert body["business"]["name"] == "Revontuli Software Oy"
    assert "businessError" not in body
    assert body["email"] == customer["email"]


def test_include_business_is_null_without_a_business_id(
    client: FlaskClient, customers: Customers, httpserver: HTTPServer
) -> None:
    customer = customers.create()
    body = client.get(f"/customers/{customer['id']}?include=business").get_json()
    assert body["business"] is None
    assert httpserver.log == []


def test_a_failing_register_does_not_fail_the_read(
    client: FlaskClient, customers: Customers, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/companies").respond_with_json(error_body(), status=500)
    customer = customers.create(businessId=ID)
    response = client.get(f"/customers/{customer['id']}?include=business")
    assert response.status_code == 200
    body = response.get_json()
    assert body["business"] is None
    assert body["businessError"]["status"] == 502
    assert body["id"] == customer["id"]


@pytest.mark.slow
def test_a_customer_s_company_is_looked_up_off_the_event_loop(httpserver: HTTPServer) -> None:
    """The served app answers most requests in its event loop's thread; a customer read
    that reaches the register, however its query is spelled, must not be one of them."""
    held = HeldRegister(httpserver, hold_seconds=20)
    httpserver.expect_request("/companies").respond_with_handler(held)
    server = ServerProcess(
        {
            "BUSINESS_API_URL": httpserver.url_for("/"),
            "BUSINESS_READ_TIMEOUT": "15",
            "BUSINESS_DEADLINE": "16",
            "DRAIN_TIMEOUT": "25",  # above BODY_READ_TIMEOUT + BUSINESS_DEADLINE
            "BUSINESS_RETRIES": "0",
        }
    )
    answers: list[int] = []
    try:
        created = requests.post(
            f"{server.url}/customers",
            json={"name": "Held", "email": "held@example.com", "businessId": ID},
            timeout=5,
        )
        assert created.status_code == 201
        customer = f"/customers/{created.json()['id']}"
        # GIVEN a lookup of each spelling waiting on a register that does not answer (sent
        # by http.client, since requests would rewrite %69 to i before sending)
        paths = [
            f"{customer}/business",
            f"{customer}?include=business",
            f"{customer}?%69nclude=business",
        ]

        def look_up(path: str) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            connection.request("GET", path)
            answers.append(connection.getresponse().status)
            connection.close()

        lookups = [threading.Thread(target=look_up, args=(path,)) for path in paths]
        for thread in lookups:
            thread.start()
        settled = time.monotonic() + 10
        while len(held.received) < len(paths) and time.monotonic() < settled:
            time.sleep(0.01)
        assert len(held.received) == len(paths)
        # THEN the rest of the API answers at once
        with requests.Session() as session:
            for path in ("/health", "/customers", f"/customers/{created.json()['id']}"):
                started = time.monotonic()
                assert session.get(f"{server.url}{path}", timeout=5).status_code == 200
                assert time.monotonic() - started < 1.0, path
        assert answers == []  # the lookups are still waiting
        held.release()
        for thread in lookups:
            thread.join(timeout=30)
    finally:
        held.release()
        server.stop()
    assert len(answers) == len(paths)


@pytest.mark.slow
def test_the_served_app_answers_everything_else_while_the_register_hangs(
    httpserver: HTTPServer,
) -> None:
    """More hanging lookups than granian has threads: the rest of the API stays quick."""
    held = HeldRegister(httpserver, hold_seconds=20)
    httpserver.expect_request("/companies").respond_with_handler(held)
    waiting = SERVER_THREADS // 2  # the most BUSINESS_MAX_CONCURRENT allows
    server = ServerProcess(
        {
            "BUSINESS_API_URL": httpserver.url_for("/"),
            "BUSINESS_READ_TIMEOUT": "15",
            "BUSINESS_DEADLINE": "16",
            "DRAIN_TIMEOUT": "25",  # above BODY_READ_TIMEOUT + BUSINESS_DEADLINE
            "BUSINESS_RETRIES": "0",
            "BUSINESS_MAX_CONCURRENT": str(waiting),
        }
    )
    answers: list[requests.Response] = []

    def look_up() -> None:
        answers.append(requests.get(f"{server.url}/businesses/{ID}", timeout=30))

    lookups = [threading.Thread(target=look_up) for _ in range(40)]
    turned_away = len(lookups) - waiting
    try:
        for thread in lookups:
            thread.start()
        settled = time.monotonic() + 10
        while len(answers) < turned_away and time.monotonic() < settled:
            time.sleep(0.01)
        # half the threads' worth of lookups wait on the register (the first to get there
        # imports requests, which a served app leaves to its first lookup); the others
        # were turned away at once
        while len(held.received) < waiting and time.monotonic() < settled:
            time.sleep(0.01)
        assert len(held.received) == waiting
        assert [answer.status_code for answer in answers] == [503] * turned_away
        assert all(answer.headers["Retry-After"] == "1" for answer in answers)
        with requests.Session() as session:
            for number in range(10):
                started = time.monotonic()
                created = session.post(
                    f"{server.url}/customers",
                    json={"name": "Busy", "email": f"busy-{number}@example.com"},
                    timeout=5,
                )
                assert created.status_code == 201
                listed = session.get(f"{server.url}/customers", timeout=5)
                assert listed.status_code == 200
                assert session.get(f"{server.url}/health", timeout=5).status_code == 200
                assert time.monotonic() - started < 1.0
        held.release()
        for thread in lookups:
            thread.join(timeout=30)
    finally:
        held.release()
        server.stop()
    assert sorted(answer.status_code for answer in answers) == [502] * waiting + [503] * turned_away
