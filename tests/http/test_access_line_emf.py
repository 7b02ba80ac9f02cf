"""CloudWatch's Embedded Metric Format rides on the access line only where it is read:
on Lambda (tests/http/test_lambda_handler.py) or with METRICS=emf; a local line has none."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from tests.conftest import TEST_SETTINGS, LiveServer

EMF_MEMBERS = {"_aws", "Service", "Route", "StatusClass", "Requests", "Latency", "StoreErrors"}


def access_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


@pytest.mark.parametrize(("metrics", "emf"), [("", False), ("emf", True)])
def test_emf_members_only_with_metrics_emf(
    metrics: str, emf: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a server built with METRICS as the environment gives it
    monkeypatch.setenv("METRICS", metrics)
    from app import create_app

    app: Flask = create_app(dict(TEST_SETTINGS))
    try:
        with LiveServer(app) as server:
            capsys.readouterr()
            assert server.session.get(f"{server.url}/customers", timeout=5).status_code == 200
        (line,) = access_lines(capsys.readouterr().out)
    finally:
        app.extensions["customer_store"].close()
        app.extensions["business_client"].close()
    # THEN the line has the EMF members only with METRICS=emf, and the same figures always
    assert (line["route"], line["status"], line["method"]) == ("/customers", 200, "GET")
    if emf:
        assert set(line) >= EMF_MEMBERS
        assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "customer-api"
        assert (line["Route"], line["StatusClass"], line["Requests"]) == ("/customers", "2xx", 1)
    else:
        assert not EMF_MEMBERS & set(line)
        assert len(json.dumps(line)) < 400
