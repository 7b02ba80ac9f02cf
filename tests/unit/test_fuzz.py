"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

`make test` runs a bounded, derandomized pass; `make fuzz` sets FUZZ_EXAMPLES high.
Every response must be documented (status, content type, headers, body schema) and
no input may produce a 5xx, with keys on and off.

One default check is left out: "schema-valid data is accepted". What JSON Schema cannot
state is only in words there: a business ID's check digit, a cursor the service made
for the same filters, an If-Match naming the current version. `make e2e` runs
Schemathesis with that check on, taught those rules (e2e/schemathesis_hooks.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from pytest_httpserver import HTTPServer
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.checks import ignored_auth
from werkzeug.wrappers import Request, Response

from app import create_app
from tests.conftest import TEST_SETTINGS
from tests.upstream_samples import company_found_body

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
KEY = "fuzz-key"


def _company(request: Request) -> Response:
    """The register's answer for the ID asked for: the document's IDs carry valid check
    digits, and a company under another ID would be the 502 it is in production."""
    body = company_found_body(request.args.get("businessId", "0112038-9"))
    return Response(json.dumps(body), content_type="application/json")


REGISTER = HTTPServer(host="127.0.0.1", port=0)
REGISTER.start()
REGISTER.expect_request("/companies").respond_with_handler(_company)


def _fuzz_app(**settings_: Any) -> Flask:
    return create_app(
        {
            **TEST_SETTINGS,
            "LOG_LEVEL": "WARNING",
            "PROPAGATE_EXCEPTIONS": False,  # a bug must show as the 500 the client would get
            "TESTING": False,
            "BUSINESS_API_URL": REGISTER.url_for("/"),
            "BUSINESS_RETRIES": 0,
            **settings_,
        }
    )


OPEN_APP = _fuzz_app()
KEYED_APP = _fuzz_app(API_KEYS=(KEY,))
LOCKED_APP = _fuzz_app(API_KEYS=(KEY,))  # never sent the key
open_schema = schemathesis.openapi.from_wsgi("/openapi.json", OPEN_APP)
keyed_schema = schemathesis.openapi.from_wsgi("/openapi.json", KEYED_APP)
locked_schema = schemathesis.openapi.from_wsgi("/openapi.json", LOCKED_APP)


@pytest.fixture(scope="module", autouse=True)
def _close_apps_and_register() -> Iterator[None]:
    yield
    for app in (OPEN_APP, KEYED_APP, LOCKED_APP):
        app.extensions["customer_store"].close()
        app.extensions["business_client"].close()
    REGISTER.stop()


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@open_schema.parametrize()
@FUZZ_SETTINGS
def test_api_without_keys(case: Any) -> None:
    # The document asks for a key whether or not the instance checks one (so clients
    # generated from any instance can send it); an instance without keys takes none.
    case.call_and_validate(excluded_checks=[positive_data_acceptance, ignored_auth])


@keyed_schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_a_key(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=[positive_data_acceptance]
    )


@locked_schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_keys_on_but_none_presented(case: Any) -> None:
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.operation.definition.raw.get("security") != []:
        assert response.status_code == 401
