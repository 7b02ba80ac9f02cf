"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

`make test` runs a bounded, derandomized pass; `make fuzz` sets FUZZ_EXAMPLES high.
Every response must be documented (status, content type, headers, body schema) and
no input may produce a 5xx, with keys on and off.

One default check is left out: "schema-valid data is accepted". An email that JSON
Schema's `format: email` admits may still be refused by the stricter email check
(reserved domains such as `.test`), and an opaque cursor is a string to the schema
but only cursors the service made are valid; both are documented 400s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from pytest_httpserver import HTTPServer
from schemathesis.checks import positive_data_acceptance

from app import create_app
from tests.conftest import TEST_SETTINGS
from tests.upstream_samples import company_found_body

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
KEY = "fuzz-key"


def _fuzz_app(httpserver: HTTPServer, **settings_: Any) -> Flask:
    httpserver.expect_request("/companies").respond_with_json(company_found_body("0112038-9"))
    return create_app(
        {
            **TEST_SETTINGS,
            "LOG_LEVEL": "WARNING",
            "PROPAGATE_EXCEPTIONS": False,  # a bug must show as the 500 the client would get
            "TESTING": False,
            "BUSINESS_API_URL": httpserver.url_for("/"),
            "BUSINESS_RETRIES": 0,
            **settings_,
        }
    )


@pytest.fixture
def open_api(httpserver: HTTPServer) -> Iterator[Any]:
    app = _fuzz_app(httpserver)
    yield schemathesis.openapi.from_wsgi("/openapi.json", app)
    app.extensions["customer_store"].close()
    app.extensions["business_client"].close()


@pytest.fixture
def keyed_api(httpserver: HTTPServer) -> Iterator[Any]:
    app = _fuzz_app(httpserver, API_KEYS=(KEY,))
    yield schemathesis.openapi.from_wsgi("/openapi.json", app)
    app.extensions["customer_store"].close()
    app.extensions["business_client"].close()


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

open_schema = schemathesis.pytest.from_fixture("open_api")
keyed_schema = schemathesis.pytest.from_fixture("keyed_api")


@open_schema.parametrize()
@FUZZ_SETTINGS
def test_api_without_keys(case: Any) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@keyed_schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_a_key(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[positive_data_acceptance]
    )


@keyed_schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_keys_on_but_none_presented(case: Any) -> None:
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.path != "/health":
        assert response.status_code == 401
