"""Logging and request ids: one JSON line per request, every line tagged with its request.

structlog renders JSON lines on stdout (what CloudWatch and container runtimes
collect); records from the standard `logging` module (Werkzeug, botocore,
granian) pass through the same renderer. The request id is bound in a context
variable, so every line logged while a request runs carries it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from flask import Flask, Response, current_app, g, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = structlog.get_logger("access")


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Werkzeug's dev server logs each request itself; the access line below replaces it.
    logging.getLogger("werkzeug").setLevel(max(numeric, logging.WARNING))


def _fallback_request_id() -> str:
    """The Lambda invocation's id when there is one, else a fresh one."""
    context = request.environ.get("apig_wsgi.context")
    aws_request_id = getattr(context, "aws_request_id", None)
    if isinstance(aws_request_id, str) and _SANE_REQUEST_ID.fullmatch(aws_request_id):
        return aws_request_id
    return uuid.uuid4().hex


def _start_request() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _SANE_REQUEST_ID.fullmatch(given) else _fallback_request_id()
    g.request_id = request_id
    g.started = time.perf_counter()
    g.upstream_calls = []
    structlog.contextvars.clear_contextvars()
    context: dict[str, Any] = {"request_id": request_id}
    request_context = request.environ.get("apig_wsgi.request_context")
    if isinstance(request_context, dict) and request_context.get("requestId"):
        context["apigw_request_id"] = str(request_context["requestId"])
    structlog.contextvars.bind_contextvars(**context)


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or _fallback_request_id()
    started = g.get("started")
    rule = request.url_rule
    log.info(
        "request",
        method=request.method,
        route=rule.rule if rule is not None else None,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        store=current_app.config["CUSTOMER_STORE"],
        upstream=g.get("upstream_calls") or None,
    )
    return response


def init_app(app: Flask) -> None:
    """Settle the request id before each request; add its header and log after."""
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(lambda _: structlog.contextvars.clear_contextvars())
