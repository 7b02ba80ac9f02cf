"""Which served requests run in the event loop's thread: only those that wait on nothing
outside the process. A request sent to the loop by mistake would stop every other one."""

from __future__ import annotations

from typing import Any

import pytest

from app import answered_in_loop
from customers.config import DEFAULTS

IN_MEMORY = {**DEFAULTS, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": ":memory:"}
CUSTOMER = "/customers/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def environ(method: str, path: str, query: str = "") -> dict[str, Any]:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}


@pytest.mark.parametrize(
    ("method", "path", "query", "in_loop"),
    [
        ("GET", "/health", "", True),
        ("GET", "/", "", True),
        ("GET", "/customers", "limit=50", True),
        ("POST", "/customers", "", True),
        ("GET", CUSTOMER, "", True),
        ("PATCH", CUSTOMER, "", True),
        ("DELETE", CUSTOMER, "", True),
        ("GET", "/customers/", "", True),  # a 404, answered from the routing table
        # the business register, by its routes or by ?include=business, however spelled
        ("GET", "/businesses/0112038-9", "", False),
        ("GET", f"{CUSTOMER}/business", "", False),
        ("GET", CUSTOMER, "include=business", False),
        ("GET", CUSTOMER, "%69nclude=business", False),
        ("GET", CUSTOMER, "include", False),
        # routes nobody has told the predicate about go to the pool
        ("GET", "/openapi.json", "", False),
        ("GET", "/docs", "", False),
        ("GET", "/customers/a/b", "", False),
    ],
)
def test_only_requests_of_the_in_memory_store_and_no_register_run_in_the_loop(
    method: str, path: str, query: str, in_loop: bool
) -> None:
    assert answered_in_loop(IN_MEMORY)(environ(method, path, query)) is in_loop


@pytest.mark.parametrize(
    "settings",
    [
        {"SQLITE_PATH": "/var/lib/customers.db"},  # fsync, another worker's write lock
        {"SQLITE_PATH": "file:customers.db?mode=rwc"},
        {"CUSTOMER_STORE": "dynamodb"},  # a network round trip
        {"RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"},  # counts over the network
    ],
    ids=["file", "file-uri", "dynamodb", "redis-limits"],
)
def test_nothing_runs_in_the_loop_when_a_request_may_wait_outside_the_process(
    settings: dict[str, str],
) -> None:
    predicate = answered_in_loop({**IN_MEMORY, **settings})
    for method, path in (("GET", "/health"), ("GET", CUSTOMER), ("POST", "/customers")):
        assert predicate(environ(method, path)) is False
