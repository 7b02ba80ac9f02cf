"""Access control, rate limits, CORS and security headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from app import create_app
from customers.config import ConfigError
from customers.web.security import KeyRing, fingerprint
from tests.conftest import TEST_SETTINGS, LiveServer
from tests.served import ServerProcess

KEY, OTHER_KEY = "s3cret-key-one", "s3cret-key-two"


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {**TEST_SETTINGS, "API_KEYS": (KEY, OTHER_KEY)}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(KEY.upper()),
        bearer(KEY + " "),
        bearer(f"{KEY},{OTHER_KEY}"),
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer "},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer wrong", "X-API-Key": KEY},
    ],
    ids=repr,
)
def test_requests_without_a_valid_key_get_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/customers", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for key in (KEY, OTHER_KEY, "wrong"):
        assert key not in response.get_data(as_text=True)


@pytest.mark.parametrize("headers", [bearer(KEY), bearer(OTHER_KEY), {"X-API-Key": KEY}])
def test_either_header_with_a_valid_key_is_let_in(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    assert client.get("/customers", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/customers", {"data": "{not json", "content_type": "application/json"}),
        ("post", "/customers", {"data": "x", "content_type": "text/plain"}),
        ("post", "/customers", {"json": {"name": "", "email": "bad", "id": "x"}}),
        ("get", "/customers", {"query_string": {"limit": "9999", "bogus": "1"}}),
        ("get", "/businesses/not-an-id", {}),
        ("get", "/businesses/0112038-9", {}),
        ("patch", "/customers/missing", {"json": {"name": None}}),
        ("delete", "/customers/missing", {}),
        ("get", "/customers/missing/business", {}),
    ],
)
def test_key_is_checked_before_anything_else(
    app_settings: dict[str, Any], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    # GIVEN a store and a register client that fail the test if touched
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"reached {name} without a key")

    application = create_app(app_settings)
    store, register = (
        application.extensions["customer_store"],
        application.extensions["business_client"],
    )
    application.extensions["customer_store"] = Untouchable()
    application.extensions["business_client"] = Untouchable()
    # WHEN a keyless request with some other fault arrives THEN it gets 401, nothing else
    response = getattr(application.test_client(), method)(path, **kwargs)
    assert response.status_code == 401
    store.close()
    register.close()


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs", "/docs/swagger-ui.css"])
def test_health_spec_and_docs_stay_open(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 200


def test_openapi_declares_the_key_schemes_when_keys_are_on(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "401" in document["paths"]["/customers"]["post"]["responses"]
    assert document["paths"]["/health"]["get"]["security"] == []


def test_keys_never_reach_the_logs(
    app_settings: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    application = create_app({**app_settings, "LOG_LEVEL": "DEBUG"})
    client = application.test_client()
    client.get("/customers", headers=bearer(KEY))
    client.get("/customers", headers=bearer("presented-wrong-key"))
    client.get("/customers", headers={"X-API-Key": OTHER_KEY})
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()
    logged = capsys.readouterr().out
    assert fingerprint(KEY) in logged  # the start-up line names keys by fingerprint only
    for secret in (KEY, OTHER_KEY, "presented-wrong-key"):
        assert secret not in logged


def test_key_ring_matches_exactly() -> None:
    ring = KeyRing([KEY])
    assert ring.match(KEY)
    assert not ring.match(KEY[:-1])
    assert not ring.match(KEY + "x")
    assert not ring.match("")
    assert not KeyRing([])


def test_required_keys_refuse_to_start_without_one() -> None:
    with pytest.raises(ConfigError, match="REQUIRE_API_KEYS"):
        create_app({**TEST_SETTINGS, "REQUIRE_API_KEYS": True})


def test_no_keys_logs_a_warning_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    application = create_app(TEST_SETTINGS)
    assert application.test_client().get("/customers").status_code == 200
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()
    assert '"api_keys_off"' in capsys.readouterr().out


def test_rate_limit_answers_429_problem_with_headers() -> None:
    application = create_app({**TEST_SETTINGS, "API_KEYS": (KEY,), "RATE_LIMIT": "2/minute"})
    client = application.test_client()
    first = client.get("/customers", headers=bearer(KEY))
    assert first.headers["RateLimit-Limit"] == "2"
    assert first.headers["RateLimit-Remaining"] == "1"
    assert 0 <= int(first.headers["RateLimit-Reset"]) <= 61
    assert "Retry-After" not in first.headers
    client.get("/customers", headers=bearer(KEY))
    limited = client.get("/customers", headers=bearer(KEY))
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    assert limited.get_json()["status"] == 429
    # /health is not counted against the key, and another key has its own budget
    assert client.get("/health").status_code == 200
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


def test_rate_limit_is_off_by_default(client: FlaskClient) -> None:
    for _ in range(30):
        response = client.get("/customers", headers=bearer(KEY))
        assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers


def test_security_headers_on_data_and_docs(client: FlaskClient) -> None:
    data = client.get("/customers", headers=bearer(KEY))
    assert data.headers["X-Content-Type-Options"] == "nosniff"
    assert data.headers["Cache-Control"] == "no-store"
    missing = client.get("/nowhere")
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    docs = client.get("/docs")
    csp = docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "'unsafe-inline'" not in csp.split("style-src ")[1].split(";")[0]
    assert "<script>" not in docs.get_data(as_text=True)  # no inline script to allow


def test_cors_is_off_by_default(client: FlaskClient) -> None:
    response = client.get(
        "/customers", headers={**bearer(KEY), "Origin": "https://app.example.com"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_only_listed_origins() -> None:
    application = create_app(
        {**TEST_SETTINGS, "API_KEYS": (KEY,), "CORS_ORIGINS": ("https://app.example.com",)}
    )
    client = application.test_client()
    allowed = client.get("/customers", headers={**bearer(KEY), "Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = client.get("/customers", headers={**bearer(KEY), "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/customers",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


def test_options_needs_a_key_unless_it_is_a_cors_preflight(client: FlaskClient) -> None:
    assert client.options("/customers").status_code == 401
    preflight = client.options(
        "/customers",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 401  # CORS is off: no preflight to answer


def test_failed_key_attempts_are_limited_per_address() -> None:
    application = create_app({**TEST_SETTINGS, "API_KEYS": (KEY,), "RATE_LIMIT": "3/minute"})
    client = application.test_client()
    wrong = {"Authorization": "Bearer guess"}
    assert [client.get("/customers", headers=wrong).status_code for _ in range(3)] == [401] * 3
    limited = client.post("/customers", data="not json", headers={"Content-Type": "text/plain"})
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    assert "guess" not in limited.get_data(as_text=True)
    # past the limit the address is refused whatever key it sends: a guesser that
    # found the key would otherwise learn it from the one 200 among the 429s
    assert client.get("/customers", headers=bearer(KEY)).status_code == 429
    # another address has its own count
    other = client.get("/customers", headers=wrong, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


def test_the_failed_key_limit_answers_with_the_rate_limit_headers() -> None:
    application = create_app({**TEST_SETTINGS, "API_KEYS": (KEY,), "RATE_LIMIT": "3/minute"})
    client = application.test_client()
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(3):
        client.get("/customers", headers=wrong)
    limited = client.get("/customers", headers=wrong)
    assert limited.status_code == 429
    assert limited.headers["RateLimit-Limit"] == "3"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(limited.headers["RateLimit-Reset"]) <= 61
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://evil.example", None])
@pytest.mark.parametrize("path", ["/docs/swagger-ui.css", "/docs", "/customers", "/nowhere"])
def test_cors_answers_vary_on_origin(path: str, origin: str | None) -> None:
    """Allowed or not, the answer depends on Origin: a cache (docs assets are public) must know."""
    application = create_app({**TEST_SETTINGS, "CORS_ORIGINS": ("https://app.example.com",)})
    response = application.test_client().get(path, headers={"Origin": origin} if origin else {})
    response.close()  # the docs asset is a file
    varies = [
        name.strip() for value in response.headers.getlist("Vary") for name in value.split(",")
    ]
    assert varies.count("Origin") == 1
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()


def test_an_unhandled_error_is_logged_by_route_not_by_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    application = create_app({**TEST_SETTINGS, "PROPAGATE_EXCEPTIONS": False, "TESTING": False})
    store = application.extensions["customer_store"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    store.get = broken
    capsys.readouterr()
    response = application.test_client().get("/customers/maija.meikalainen@example.com")
    assert response.status_code == 500
    output = capsys.readouterr().out
    assert "maija" not in output
    logged = [json.loads(line) for line in output.splitlines() if line]
    errors = [record for record in logged if record["level"] == "error"]
    assert len(errors) == 1  # one line, with the traceback
    assert errors[0]["route"] == "/customers/<customer_id>"
    assert errors[0]["method"] == "GET"
    assert "RuntimeError" in errors[0]["exception"]
    store.close()
    application.extensions["business_client"].close()


def test_header_names_with_underscores_are_not_the_key_header(live_server: LiveServer) -> None:
    """A proxy that strips `X-API-Key` must not be passed by sending `X_API_KEY`."""
    customers = f"{live_server.url}/customers"
    assert live_server.session.get(customers, headers={"X-API-Key": KEY}).status_code == 200
    assert live_server.session.get(customers, headers={"X_API_KEY": KEY}).status_code == 401
    assert live_server.session.get(customers, headers={"x_api_key": KEY}).status_code == 401


def test_header_names_with_underscores_are_dropped_by_the_served_app(
    store_settings: dict[str, str],
) -> None:
    """The same under granian (`make run`), whose WSGI interface would fold the names."""
    server = ServerProcess({"API_KEYS": KEY, "WORKERS": "1", **store_settings})
    try:
        customers = f"{server.url}/customers"
        with requests.Session() as session:
            assert session.get(customers, headers={"X-API-Key": KEY}).status_code == 200
            assert session.get(customers, headers={"X_API_KEY": KEY}).status_code == 401
            assert session.get(customers, headers={"x_api_key": KEY}).status_code == 401
    finally:
        assert server.stop() == 0


def test_keys_whose_log_fingerprints_agree_are_still_told_apart() -> None:
    """Two keys with one 8-digit fingerprint: separate rate limits and idempotency scopes."""
    seen: dict[str, str] = {}
    for n in range(1_000_000):
        key = f"key-{n}"
        tag = fingerprint(key)
        if tag in seen:
            first, second = seen[tag], key
            break
        seen[tag] = key
    assert fingerprint(first) == fingerprint(second)
    application = create_app(
        {**TEST_SETTINGS, "API_KEYS": (first, second), "RATE_LIMIT": "2/minute"}
    )
    client = application.test_client()
    assert [client.get("/customers", headers=bearer(first)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert client.get("/customers", headers=bearer(second)).status_code == 200
    application.extensions["customer_store"].close()
    application.extensions["business_client"].close()
