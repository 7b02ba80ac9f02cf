"""The access line: one JSON line per request, written after its answer.

A WSGI middleware rather than Flask hooks, because it runs for every response,
the ones Flask's own error handling makes included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from customers.web import metrics
from customers.web.figures import UNMATCHED_ROUTE, RequestFigures, register_calls
from customers.web.log_setup import STDOUT_LOGGER, render_json
from customers.web.request_context import (
    ENVIRON_IDEMPOTENCY,
    ENVIRON_RATE_LIMITED,
    ENVIRON_REQUEST_ID,
    ENVIRON_RULE,
    ENVIRON_STORE_ERROR,
    ENVIRON_TRACE_ID,
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

    The request's figures are gathered here once (`figures.RequestFigures`) and feed
    everything that reports them: the access line, CloudWatch's Embedded Metric Format
    in that line when `emf` is on (see `metrics`), and each of `observers` (Prometheus,
    when METRICS_PORT is set). Observers run whatever LOG_LEVEL says of the line.

    Done around Flask rather than in its hooks because it runs for every response,
    including the ones Flask's own error handling makes, and because it costs a
    fraction of what per-request hooks and header assignments do.
    """

    def __init__(
        self,
        wsgi_app: Any,
        store_kind: str,
        *,
        log_level: str = "INFO",
        emf: bool = False,
        observers: Sequence[Callable[[RequestFigures], None]] = (),
    ) -> None:
        self.wsgi_app = wsgi_app
        self.store_kind = store_kind
        self.emf = emf
        self.observers = tuple(observers)
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
            upstream = environ.get(ENVIRON_UPSTREAM)
            figures = RequestFigures(
                method=str(environ.get("REQUEST_METHOD", "")),
                route=route or UNMATCHED_ROUTE,
                status=int(statuses[-1][:3]) if statuses else None,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                store_error=ENVIRON_STORE_ERROR in environ,
                register_calls=register_calls(upstream),
                idempotency=environ.get(ENVIRON_IDEMPOTENCY),
                rate_limited=environ.get(ENVIRON_RATE_LIMITED),
            )
            for observe in self.observers:
                observe(figures)
            if self.enabled:
                line = {
                    "event": "request",
                    "method": environ.get("REQUEST_METHOD"),
                    "route": route,
                    "status": figures.status,
                    "duration_ms": figures.latency_ms,
                    "store": self.store_kind,
                    "upstream": upstream,
                    "idempotency": figures.idempotency,
                    **context,
                    # The request's trace, beside its id, when traces are on.
                    **(
                        {"trace_id": environ[ENVIRON_TRACE_ID]}
                        if ENVIRON_TRACE_ID in environ
                        else {}
                    ),
                    "level": "info",
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
                if figures.store_error:
                    line["store_error"] = True
                if figures.rate_limited:
                    line["rate_limited"] = figures.rate_limited
                if self.emf:
                    line.update(metrics.request_fields(figures, service=_service_name(environ)))
                STDOUT_LOGGER.msg(render_json(None, "info", line))
            structlog.contextvars.reset_contextvars(**tokens)
