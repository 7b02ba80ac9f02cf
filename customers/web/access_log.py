"""The access line: one JSON line per request, written after its answer.

A WSGI middleware rather than Flask hooks, because it runs for every response,
the ones Flask's own error handling makes included.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from customers.web import metrics
from customers.web.log_setup import STDOUT_LOGGER, render_json
from customers.web.request_context import (
    ENVIRON_IDEMPOTENCY,
    ENVIRON_REQUEST_ID,
    ENVIRON_RULE,
    ENVIRON_STORE_ERROR,
    ENVIRON_UPSTREAM,
    REQUEST_ID_HEADER,
    log_context,
    request_id_for,
)


def _service_name(environ: dict[str, Any]) -> str:
    """The Lambda function's name, else the service's: the metrics' `Service` dimension."""
    name = getattr(environ.get("apig_wsgi.context"), "function_name", None)
    return name if isinstance(name, str) and name else metrics.DEFAULT_SERVICE


class RequestLogMiddleware:
    """WSGI middleware: settles the request id, answers it in X-Request-ID, logs the access line.

    The access line is also the request's metrics, in CloudWatch's Embedded Metric
    Format (see `metrics`): on Lambda they become CloudWatch metrics with no API call;
    on a server they are the same members of the same line.

    Done around Flask rather than in its hooks because it runs for every response,
    including the ones Flask's own error handling makes, and because it costs a
    fraction of what per-request hooks and header assignments do.
    """

    def __init__(self, wsgi_app: Any, store_kind: str, *, log_level: str = "INFO") -> None:
        self.wsgi_app = wsgi_app
        self.store_kind = store_kind
        # The one line every request writes is rendered here, not by structlog's chain:
        # the same members (`event`, `level`, `timestamp` as structlog's TimeStamper
        # writes it) at a fraction of the cost of a logger call and its processors.
        self.enabled = logging.getLevelName(log_level) <= logging.INFO

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        request_id = request_id_for(environ)
        environ[ENVIRON_REQUEST_ID] = request_id
        context = log_context(environ, request_id)
        # Every other line logged while the request runs carries the same context.
        tokens = structlog.contextvars.bind_contextvars(**context)
        statuses: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            rule = environ.get(ENVIRON_RULE)
            route = rule.rule if rule is not None else None
            status = int(statuses[-1][:3]) if statuses else None
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            upstream = environ.get(ENVIRON_UPSTREAM)
            if self.enabled:
                line = {
                    "event": "request",
                    "method": environ.get("REQUEST_METHOD"),
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "store": self.store_kind,
                    "upstream": upstream,
                    "idempotency": environ.get(ENVIRON_IDEMPOTENCY),
                    **context,
                    **metrics.request_fields(
                        service=_service_name(environ),
                        route=route,
                        status=status,
                        latency_ms=duration_ms,
                        store_error=ENVIRON_STORE_ERROR in environ,
                        upstream=upstream,
                    ),
                    "level": "info",
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
                STDOUT_LOGGER.msg(render_json(None, "info", line))
            structlog.contextvars.reset_contextvars(**tokens)
