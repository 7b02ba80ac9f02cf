"""A local stand-in for the business register (YTJ v3) for manual runs and `make e2e`.

    python3 e2e/register_stub.py 8081 &      # knows 0112038-9 only
    BUSINESS_API_URL=http://127.0.0.1:8081 make run

It serves `GET /companies?businessId=<id>` on 127.0.0.1 the way the register does:

- 0112038-9: 200 with the register's sample company (tests/data/v3-company-found.json),
  its business ID and EUID set to 0112038-9, since the service checks that the company
  it gets back is the one it asked for;
- any other valid business ID: 200 with the register's empty answer
  (tests/data/v3-company-not-found.json), which the service turns into a 404;
- a malformed ID or a missing/repeated `businessId`: 400 with the register's error body;
- any other path: 404 with the error body.

Standard library only, so the system python3 runs it; it logs nothing per request.
The benchmark runs it in a thread (`bench.upstream`) and reads its `lookups` count.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

KNOWN_ID = "0112038-9"
DEFAULT_PORT = 8081
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data"
BUSINESS_ID = re.compile(r"[0-9]{7}-[0-9]")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def company_found(business_id: str) -> dict[str, Any]:
    """The sample one-company answer, made to be about `business_id`."""
    body: dict[str, Any] = copy.deepcopy(load_sample("v3-company-found.json"))
    company = body["companies"][0]
    company["businessId"]["value"] = business_id
    if isinstance(company.get("euId"), dict):
        company["euId"]["value"] = f"FIFPRO.{business_id}"
    return body


def is_valid_business_id(value: str) -> bool:
    """`NNNNNNN-C` with a correct check digit (a remainder of 1 is never issued)."""
    if not BUSINESS_ID.fullmatch(value):
        return False
    digits = (int(digit) for digit in value[:7])
    remainder = sum(d * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11
    if remainder == 1:
        return False
    return int(value[-1]) == (0 if remainder == 0 else 11 - remainder)


def error_body(status: HTTPStatus, message: str) -> dict[str, Any]:
    """The register's error shape (tests/data/v3-error.json)."""
    return {
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
        "message": message,
        "errorcode": int(status),
    }


class RegisterStub(ThreadingHTTPServer):
    """The stand-in server (port 0: any free one); the bodies are read once at start."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.found = json.dumps(company_found(KNOWN_ID), ensure_ascii=False).encode()
        self.not_found = json.dumps(load_sample("v3-company-not-found.json")).encode()
        self.lookups = 0  # company lookups answered: shows when a cache answered instead

    @property
    def base_url(self) -> str:
        """What the service takes as BUSINESS_API_URL."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: RegisterStub
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") != "/companies":
            self.send_json(HTTPStatus.NOT_FOUND, error_body(HTTPStatus.NOT_FOUND, "Not found"))
            return
        ids = parse_qs(url.query, keep_blank_values=True).get("businessId", [])
        if len(ids) != 1 or not is_valid_business_id(ids[0]):
            body = error_body(HTTPStatus.BAD_REQUEST, "Invalid businessId")
            self.send_json(HTTPStatus.BAD_REQUEST, body)
            return
        self.server.lookups += 1
        found = ids[0] == KNOWN_ID
        self.send_bytes(HTTPStatus.OK, self.server.found if found else self.server.not_found)

    def send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self.send_bytes(status, json.dumps(body).encode())

    def send_bytes(self, status: HTTPStatus, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PORT
    with RegisterStub(port) as server:
        print(f"register stub on http://127.0.0.1:{port}, knows {KNOWN_ID} only", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


if __name__ == "__main__":
    main()
