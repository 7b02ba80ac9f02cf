"""An HTTP proxy on loopback that loses the answers to chosen requests.

It stands in front of moto's server: each request is passed on and applied there, but
for the ones chosen the answer never reaches the client. The connection closes
instead, so botocore sees no answer and sends the request again, as it does when a
real answer is lost to a timeout or a dropped connection.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

# Hop-by-hop or recomputed: not copied from moto's answer.
_NOT_COPIED = {"connection", "content-length", "date", "server", "transfer-encoding"}


class LossyProxy:
    """`url` forwards to `upstream`; `lose(operation, times)` loses answers to come."""

    def __init__(self, upstream: str) -> None:
        self._upstream = urlsplit(upstream)
        self._lock = threading.Lock()
        self._to_lose: Counter[str] = Counter()  # operation -> answers still to lose
        self._every_first: set[str] = set()  # operations whose every first answer is lost
        self._seen: set[bytes] = set()
        self.lost: list[str] = []  # the operations whose answers were lost, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def lose(self, operation: str, times: int = 1) -> None:
        """Lose the next `times` answers to `operation` (such as "UpdateItem")."""
        with self._lock:
            self._to_lose[operation] += times

    def lose_every_first(self, operation: str) -> None:
        """Lose the answer to the first sending of every `operation` request; the same
        request sent again (the same body) gets its answer."""
        with self._lock:
            self._every_first.add(operation)

    def _loses(self, operation: str, body: bytes) -> bool:
        with self._lock:
            if self._to_lose[operation] > 0:
                self._to_lose[operation] -= 1
            elif operation in self._every_first and body not in self._seen:
                self._seen.add(body)
            else:
                return False
            self.lost.append(operation)
            return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                status, headers, answer = proxy._forward(self.path, self.headers, body)
                if proxy._loses(operation, body):
                    self.close_connection = True  # applied upstream; the client hears nothing
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _NOT_COPIED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """No line per request."""

        return Handler

    def _forward(
        self, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self._upstream.hostname, self._upstream.port, timeout=60
        )
        try:
            connection.request("POST", path, body, dict(headers.items()))
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
