"""Logging and request ids: one JSON line per request, every line tagged with its request.

structlog renders JSON lines on stdout (what CloudWatch and container runtimes
collect); records from the standard `logging` module (Werkzeug, botocore,
granian) pass through the same renderer. The request id is bound in a context
variable, so every line logged while a request runs carries it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from flask import Flask, Request, request
from werkzeug.routing import Rule

import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _level_and_time() -> list[Any]:
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _shared_processors() -> list[Any]:
    return [structlog.contextvars.merge_contextvars, *_level_and_time()]


def _render(_: Any, __: str, event: MutableMapping[str, Any]) -> bytes:
    return orjson.dumps(event, default=str)


class _StdoutLogger:
    """Writes rendered lines to whatever `sys.stdout` is at the time of writing.

    Looking the stream up per line (not once at configuration) keeps logging
    working when stdout is replaced, as test runners and some hosts do.
    """

    def msg(self, message: bytes) -> None:
        stream = sys.stdout.buffer
        stream.write(message + b"\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return _STDOUT_LOGGER


_STDOUT_LOGGER = _StdoutLogger()


class _StdoutHandler(logging.Handler):
    """A handler writing to the current `sys.stdout`, for the same reason."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def json_handler() -> logging.Handler:
    """A handler writing stdlib records as the same JSON lines structlog writes."""
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_shared_processors(), structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    return handler


def server_log_config() -> dict[str, Any]:
    """granian's own logging (`log_dictconfig`): its lines as JSON too, in every process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": "logs.json_handler"}},
        "loggers": {
            "_granian": {"handlers": ["json"], "propagate": False},
            "granian.access": {"handlers": ["json"], "propagate": False},
        },
    }


def configure_logging(level: str) -> None:
    """Send structlog and stdlib records to stdout as JSON lines at `level` and above."""
    numeric = logging.getLevelName(level)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(numeric)
    # The development server's own lines (where it listens, the debugger PIN, reloads)
    # are what a developer running `flask run` looks for: they pass at any LOG_LEVEL.
    # Its line per request does not: the access line below replaces it.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.INFO)
    werkzeug.filters[:] = [_DevServerLines()]


_ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")


class _DevServerLines(logging.Filter):
    """Drops Werkzeug's line per request and the terminal colours from its other lines.

    Werkzeug's request handler logs each request with the format that ends in
    `"%s" %s %s` (request line, status, size); nothing else it logs does. Its start-up
    lines carry ANSI colour codes, which would show as escapes inside a JSON line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            if record.msg.endswith('"%s" %s %s'):
                return False
            record.msg = _ANSI_STYLE.sub("", record.msg)
        return True


ENVIRON_REQUEST_ID = "customer_api.request_id"
ENVIRON_UPSTREAM = "customer_api.upstream_calls"
ENVIRON_RULE = "customer_api.url_rule"
ENVIRON_STORE_ERROR = "customer_api.store_error"


class RoutedRequest(Request):
    """Flask's request, keeping its matched URL rule in the WSGI environ.

    Flask lets go of the request object before the access line is written; the
    environ outlives it, so the route is read from there.
    """

    @property
    def url_rule(self) -> Rule | None:
        rule: Rule | None = self.environ.get(ENVIRON_RULE)
        return rule

    @url_rule.setter
    def url_rule(self, rule: Rule | None) -> None:
        self.environ[ENVIRON_RULE] = rule


def _request_id_for(environ: dict[str, Any]) -> str:
    """The client's sane X-Request-ID, else the Lambda invocation's id, else a fresh one."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    if _SANE_REQUEST_ID.fullmatch(given):
        return str(given)
    aws_request_id = getattr(environ.get("apig_wsgi.context"), "aws_request_id", None)
    if isinstance(aws_request_id, str) and _SANE_REQUEST_ID.fullmatch(aws_request_id):
        return aws_request_id
    return os.urandom(16).hex()


def _log_context(environ: dict[str, Any], request_id: str) -> dict[str, Any]:
    """What every line logged for this request carries; on Lambda, the invocation's ids too."""
    context: dict[str, Any] = {"request_id": request_id}
    aws_request_id = getattr(environ.get("apig_wsgi.context"), "aws_request_id", None)
    if isinstance(aws_request_id, str):
        context["aws_request_id"] = aws_request_id
    request_context = environ.get("apig_wsgi.request_context")
    if isinstance(request_context, dict) and request_context.get("requestId"):
        context["apigw_request_id"] = str(request_context["requestId"])
    return context


def current_request_id() -> str | None:
    """The id of the request being served."""
    request_id: str | None = request.environ.get(ENVIRON_REQUEST_ID)
    return request_id


def current_route() -> str | None:
    """The matched route's template (`/customers/<customer_id>`), never the path's values."""
    rule: Rule | None = request.environ.get(ENVIRON_RULE)
    return rule.rule if rule is not None else None


def record_upstream_call(summary: dict[str, Any]) -> None:
    """Note an upstream call for the request's access line."""
    request.environ.setdefault(ENVIRON_UPSTREAM, []).append(summary)


def record_exception(exc: BaseException) -> None:
    """Note, for the access line's metrics, a request the store failed."""
    if metrics.is_store_error(exc):
        request.environ[ENVIRON_STORE_ERROR] = True


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
        # The access line's own structlog logger, built once: it is handed the request's
        # context directly, so it skips merging context variables, the costliest step
        # of the shared chain, on the one line every request writes.
        self.log = structlog.wrap_logger(
            _STDOUT_LOGGER,
            processors=[*_level_and_time(), _render],
            wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(log_level)),
        ).bind()  # the logger itself, not a proxy that would build it again per line

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        request_id = _request_id_for(environ)
        environ[ENVIRON_REQUEST_ID] = request_id
        context = _log_context(environ, request_id)
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
            self.log.info(
                "request",
                method=environ.get("REQUEST_METHOD"),
                route=route,
                status=status,
                duration_ms=duration_ms,
                store=self.store_kind,
                upstream=upstream,
                **context,
                **metrics.request_fields(
                    service=_service_name(environ),
                    route=route,
                    status=status,
                    latency_ms=duration_ms,
                    store_error=ENVIRON_STORE_ERROR in environ,
                    upstream=upstream,
                ),
            )
            structlog.contextvars.reset_contextvars(**tokens)


def init_app(app: Flask) -> None:
    """Keep each request's URL rule where the access line can read it."""
    app.request_class = RoutedRequest
