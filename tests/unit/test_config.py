"""Settings: read once, converted, and refused at start with the variable named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import requests
from dotenv import dotenv_values
from flask.cli import ScriptInfo

from app import create_app
from customers.config import ConfigError, settings_from_env
from customers.serving import worker_count
from tests.served import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "0"),
        ("PORT", "http"),
        ("WORKERS", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("BODY_READ_TIMEOUT", "0"),
        ("IDEMPOTENCY_KEYS_PER_CLIENT", "0"),
        ("IDEMPOTENCY_KEYS_TOTAL", "lots"),
        ("DRAIN_TIMEOUT", "0"),
        ("DRAIN_TIMEOUT", "2.5"),
        ("CUSTOMER_STORE", "postgres"),
        ("BUSINESS_API_URL", "ftp://example.com"),
        ("BUSINESS_API_URL", "https://example.com/v3?x=1"),
        ("BUSINESS_CONNECT_TIMEOUT", "0"),
        ("BUSINESS_READ_TIMEOUT", "-5"),
        ("BUSINESS_DEADLINE", "nan"),
        ("BUSINESS_RETRIES", "11"),
        ("BUSINESS_CACHE_TTL", "an hour"),
        ("BUSINESS_CACHE_SIZE", "0"),
        ("BUSINESS_BREAKER_FAILURES", "0"),
        ("BUSINESS_BREAKER_COOLDOWN", "inf"),
        ("BUSINESS_MAX_CONCURRENT", "0"),
        ("BUSINESS_MAX_CONCURRENT", "5"),  # more than half the server's 8 threads
        ("REQUIRE_API_KEYS", "maybe"),
        ("RATE_LIMIT", "lots"),
        ("DYNAMODB_CREATE_TABLE", "2"),
        # Each of these was once taken without a word, and failed only later, or never.
        ("CORS_ORIGINS", "app.example.com"),  # no scheme: matches no Origin
        ("CORS_ORIGINS", "https://app.example.com/"),  # a trailing slash: the same
        ("CORS_ORIGINS", "https://app.example.com/app"),
        ("CORS_ORIGINS", "https://app.example.com:443"),  # browsers leave the port out
        ("CORS_ORIGINS", "https://app.example.com, *"),
        ("CORS_ORIGINS", "http://[::1]:3000"),  # flask-cors would read it as a pattern
        ("SQLITE_PATH", " "),  # a temporary database, gone at the stop
        ("RATE_LIMIT", "0/minute"),
        ("RATE_LIMIT", "1/0 minute"),  # read by `limits` as once a minute
        ("BUSINESS_API_URL", "https://"),
        ("BUSINESS_API_URL", "https://example.com:99999/v3"),
        ("AWS_ENDPOINT_URL", "127.0.0.1:5000"),
        ("AWS_REGION", "eu-nrth1"),
        ("DYNAMODB_TABLE", "x"),
        ("API_KEYS_SSM_PARAMETER", "customer api keys"),
    ],
)
def test_an_unusable_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}="):
        settings_from_env({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_KEYS", "first-key,sälainen"),  # sent as UTF-8, read as latin-1: never matches
        ("API_KEYS", "first-key,with space"),
        ("RATE_LIMIT_STORAGE_URI", "redis://:secret@redis:63790000/0"),
    ],
)
def test_an_unusable_secret_is_named_and_not_shown(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}=<hidden>: ") as raised:
        settings_from_env({name: value})
    assert "sälainen" not in str(raised.value) and "secret" not in str(raised.value)


@pytest.mark.parametrize(
    "environ",
    [
        {"DYNAMODB_TABLE": "customers-prod"},
        {"DYNAMODB_CREATE_TABLE": "1", "CUSTOMER_STORE": "sqlite"},
        {"SQLITE_PATH": "customers.db", "CUSTOMER_STORE": "dynamodb"},
    ],
)
def test_a_setting_of_the_store_not_chosen_is_refused(environ: dict[str, str]) -> None:
    """CUSTOMER_STORE alone picks the store: the other store's settings would be ignored."""
    (named,) = set(environ) - {"CUSTOMER_STORE"}
    with pytest.raises(ConfigError, match=f"^{named}=.*set CUSTOMER_STORE="):
        settings_from_env(environ)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "8080", 8080),
        ("SQLITE_PATH", " /tmp/x.db ", "/tmp/x.db"),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("BODY_READ_TIMEOUT", "2.5", 2.5),
        ("IDEMPOTENCY_KEYS_PER_CLIENT", " 500 ", 500),
        ("IDEMPOTENCY_KEYS_TOTAL", "5000", 5000),
        ("DRAIN_TIMEOUT", "30", 30),
        ("BUSINESS_CACHE_TTL", "0", 0.0),
        ("BUSINESS_API_URL", "http://127.0.0.1:9000/v3/", "http://127.0.0.1:9000/v3"),
        ("API_KEYS", " a, b ,,c ", ("a", "b", "c")),
        ("CORS_ORIGINS", "", ()),
        (
            "CORS_ORIGINS",
            "HTTPS://App.Example.com, http://localhost:8080",
            ("https://app.example.com", "http://localhost:8080"),
        ),
        ("AWS_REGION", "", None),
        ("AWS_REGION", "us-gov-west-1", "us-gov-west-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("API_KEYS_SSM_PARAMETER", " /customer-api/prod/api-keys ", "/customer-api/prod/api-keys"),
        ("REQUIRE_API_KEYS", "1", True),
        ("RATE_LIMIT", "100/minute", "100/minute"),
        ("BUSINESS_MAX_CONCURRENT", "4", 4),
    ],
)
def test_values_are_converted(name: str, value: str, expected: object) -> None:
    assert settings_from_env({name: value})[name] == expected


def test_secret_values_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("customers.config.CONVERTERS", {"API_KEYS": _refuse})
    with pytest.raises(ConfigError) as raised:
        settings_from_env({"API_KEYS": "super-secret"})
    assert "super-secret" not in str(raised.value)


def _refuse(raw: str) -> str:
    raise ValueError("refused")


def test_a_deadline_shorter_than_a_connect_timeout_is_refused() -> None:
    with pytest.raises(ConfigError, match="BUSINESS_DEADLINE"):
        create_app({"BUSINESS_CONNECT_TIMEOUT": 5.0, "BUSINESS_DEADLINE": 1.0})


def test_config_passed_to_the_factory_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    monkeypatch.setenv("BUSINESS_RETRIES", "5")
    app = create_app({"LOG_LEVEL": "WARNING"})
    assert app.config["LOG_LEVEL"] == "WARNING"
    assert app.config["BUSINESS_RETRIES"] == 5
    app.extensions["customer_store"].close()
    app.extensions["business_client"].close()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"WORKERS": 0, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": ":memory:"}, 1),
        ({"WORKERS": 1, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": ":memory:"}, 1),
        ({"WORKERS": 3, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": "/tmp/c.db"}, 3),
        ({"WORKERS": 2, "CUSTOMER_STORE": "dynamodb", "SQLITE_PATH": ":memory:"}, 2),
    ],
)
def test_worker_count(settings: dict[str, object], expected: int) -> None:
    assert worker_count(settings) == expected


def test_an_in_memory_store_refuses_several_workers() -> None:
    with pytest.raises(ConfigError, match="WORKERS=2"):
        worker_count({"WORKERS": 2, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": ":memory:"})


def test_python_app_py_stops_at_start_on_a_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BUSINESS_RETRIES": "many"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "BUSINESS_RETRIES" in result.stderr


def test_flask_run_finds_the_factory_and_port_3000() -> None:
    values = dotenv_values(ROOT / ".flaskenv")
    assert values["FLASK_RUN_PORT"] == "3000"
    app = ScriptInfo(app_import_path=values["FLASK_APP"]).load_app()
    assert "customers.list_customers" in app.view_functions
    app.extensions["customer_store"].close()
    app.extensions["business_client"].close()


def test_the_served_app_writes_nothing_but_json_lines(tmp_path: Path) -> None:
    """granian's own lines too, in the service's shape: a log collector parses every line
    of the output, and one query finds the server's lines as it finds the service's."""
    output = tmp_path / "output.log"
    server = ServerProcess({"LOG_LEVEL": "INFO"}, output=output)
    try:
        assert requests.get(f"{server.url}/customers", timeout=5).status_code == 200
    finally:
        assert server.stop() == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert any(record.get("event") == "request" for record in records)
    server_lines = [record for record in records if record["event"] == "granian"]
    details = [record["detail"] for record in server_lines]
    assert any(detail.startswith("Listening at:") for detail in details), details
    assert any(detail.startswith("Shutting down") for detail in details), details
    for line, record in zip(lines, records, strict=True):
        # The service's shape: compact JSON, an event, its level and time last.
        assert line == orjson.dumps(record).decode(), line
        assert "event" in record and list(record)[-2:] == ["level", "timestamp"], line


def test_library_debug_lines_that_carry_urls_or_bodies_stay_off_at_debug() -> None:
    """LOG_LEVEL=DEBUG must not log the register's query strings or DynamoDB's bodies."""
    import logging

    from customers.web.log_setup import configure_logging

    configure_logging("DEBUG")
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    for name in ("urllib3.connectionpool", "botocore.endpoint", "boto3.resources"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    configure_logging("INFO")
