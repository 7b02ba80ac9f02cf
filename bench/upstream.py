"""A stand-in for the business register (YTJ v3) on loopback, so no benchmark touches PRH.

It answers `GET /companies?businessId=<id>` with the register's sample company
(`tests/data/v3-company-found.json`), its `businessId.value` (and EUID) set to the
ID asked for, because the client checks that the company it gets back is the one it
asked for; IDs outside `known` (when given) get the register's empty answer. The
service caches answers, so after the first lookup this server is idle; it counts its
requests so the benchmark can show that the cache, not the stand-in, answered.
`e2e/register_stub.py` serves it on a fixed port.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data"
NOT_FOUND = b'{"totalResults": 0, "companies": []}'


def company_body(template: dict[str, Any], business_id: str) -> bytes:
    """The sample answer, made to describe `business_id`."""
    body = copy.deepcopy(template)
    company = body["companies"][0]
    company["businessId"]["value"] = business_id
    if isinstance(company.get("euId"), dict):
        company["euId"]["value"] = f"FIFPRO.{business_id}"
    return json.dumps(body).encode()


class RegisterStandIn(ThreadingHTTPServer):
    """A threaded HTTP server that knows the sample company and counts lookups."""

    daemon_threads = True

    def __init__(self, port: int = 0, known: frozenset[str] | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        sample = SAMPLES / "v3-company-found.json"
        self.template: dict[str, Any] = json.loads(sample.read_text(encoding="utf-8"))
        self.known = known
        self.lookups = 0

    @property
    def base_url(self) -> str:
        """What the service takes as BUSINESS_API_URL."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: RegisterStandIn
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Answer a lookup by business ID the way YTJ v3 does; anything else is a 404."""
        url = urlsplit(self.path)
        ids = parse_qs(url.query).get("businessId", [])
        if url.path != "/companies" or len(ids) != 1:
            self._send(404, b'{"message": "Not found", "errorcode": 404}')
            return
        self.server.lookups += 1
        known = self.server.known
        if known is not None and ids[0] not in known:
            self._send(200, NOT_FOUND)
            return
        self._send(200, company_body(self.server.template, ids[0]))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the benchmark's output is its tables."""


@contextmanager
def running_register() -> Iterator[RegisterStandIn]:
    """The stand-in, serving in a daemon thread until the block ends."""
    server = RegisterStandIn()
    thread = threading.Thread(target=server.serve_forever, name="register-stand-in", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
