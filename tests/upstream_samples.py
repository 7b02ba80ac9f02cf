"""The register's sample bodies (tests/data), adapted to the ID a test asks for."""

from __future__ import annotations

import copy
import json
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

DATA = Path(__file__).resolve().parent / "data"


@cache
def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def company_found_body(business_id: str = "2891246-6") -> dict[str, Any]:
    """A one-company answer (v3-company-found.json) for `business_id`."""
    body: dict[str, Any] = copy.deepcopy(_load("v3-company-found.json"))
    body["companies"][0]["businessId"]["value"] = business_id
    return body


def company_not_found_body() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(_load("v3-company-not-found.json"))
    return body


def error_body() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(_load("v3-error.json"))
    return body


class HeldRegister:
    """A register handler that holds each request until `release`, then answers `body`.

    The held requests are answered after the client gave up; `release` waits until
    the server has logged each of them, so none lands in the next test's log.
    """

    def __init__(
        self, httpserver: HTTPServer, hold_seconds: float, body: dict[str, Any] | None = None
    ) -> None:
        self.httpserver = httpserver
        self.hold_seconds = hold_seconds
        self.body = json.dumps(body if body is not None else {})
        self.received: list[Request] = []
        self._released = threading.Event()

    def __call__(self, request: Request) -> Response:
        self.received.append(request)
        self._released.wait(self.hold_seconds)
        return Response(self.body, content_type="application/json")

    def wait_for(self, count: int = 1, timeout: float = 10) -> None:
        """Until the register holds `count` requests; AssertionError after `timeout` s."""
        settled = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < settled:
            time.sleep(0.01)
        assert len(self.received) >= count, "the lookup never reached the register"

    def release(self) -> int:
        """Let every held request be answered; how many the register received."""
        self._released.set()
        settled = time.monotonic() + 5
        while len(self.httpserver.log) < len(self.received) and time.monotonic() < settled:
            time.sleep(0.01)
        assert len(self.httpserver.log) == len(self.received)
        return len(self.received)
