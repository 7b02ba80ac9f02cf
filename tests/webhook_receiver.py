"""A webhook endpoint for tests: on loopback, verifying every delivery with the receivers'
own library, `standardwebhooks`, and answering as the test says."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@dataclass
class Delivery:
    """One attempt as the receiver saw it: verified by the library, or not."""

    webhook_id: str
    event: dict[str, Any]
    verified: bool
    answered: int
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """A webhook endpoint on loopback; `answer(attempt_number, event)` picks the status
    (and headers) of each attempt, 200 unless told."""

    def __init__(self, answer: Callable[[int, dict[str, Any]], Any] | None = None) -> None:
        self.answer = answer or (lambda number, event: 200)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._verifier = Webhook(SECRET)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """The endpoint, as a WSGI app: verify, record, answer as told."""
        request = Request(environ)
        body = request.get_data()
        try:
            self._verifier.verify(body, dict(request.headers))
            verified = True
        except WebhookVerificationError:
            verified = False
        event = orjson.loads(body)
        webhook_id = request.headers.get("webhook-id", "")
        with self._lock:
            number = 1 + sum(d.webhook_id == webhook_id for d in self.deliveries)
            answer = self.answer(number, event)
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            self.deliveries.append(Delivery(webhook_id, event, verified, status))
        return Response(status=status, headers=headers)(environ, start_response)

    def delivered(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.answered < 300]

    def wait_for(self, count: int, *, within: float = 30.0) -> list[Delivery]:
        """The successful deliveries, once there are `count` of them."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            done = self.delivered()
            if len(done) >= count:
                return done
            time.sleep(0.05)
        raise AssertionError(f"{len(self.delivered())} of {count} delivered: {self.deliveries}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
