"""/health/ready: the register's breaker is reported, never a reason to be unready."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from tests.conftest import TEST_SETTINGS, LiveServer
from tests.upstream_samples import error_body

ID = "0112038-9"


@pytest.fixture
def app_settings(httpserver: HTTPServer) -> dict[str, Any]:
    return {
        **TEST_SETTINGS,
        "BUSINESS_API_URL": httpserver.url_for("/"),
        "BUSINESS_RETRIES": 0,
        "BUSINESS_BREAKER_FAILURES": 1,
        "BUSINESS_BREAKER_COOLDOWN": 600.0,
    }


def test_ready_reports_an_open_breaker_and_stays_ready(
    app: Flask, live_server: LiveServer, httpserver: HTTPServer
) -> None:
    http = live_server.session
    # GIVEN a closed breaker, THEN ready says so
    ready = http.get(f"{live_server.url}/health/ready", timeout=5)
    assert (ready.status_code, ready.json()["register"]) == (200, {"breaker": "closed"})

    # WHEN the register fails once (the breaker opens after one failure)
    httpserver.expect_request("/companies").respond_with_json(error_body(), status=500)
    assert http.get(f"{live_server.url}/businesses/{ID}", timeout=5).status_code == 502

    # THEN ready still answers 200, and says the breaker is open
    ready = http.get(f"{live_server.url}/health/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "store": {"kind": app.extensions["customer_store"].kind, "writable": True},
        "register": {"breaker": "open"},
    }
