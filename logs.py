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
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from flask import Flask, Request, request
from werkzeug.routing import Rule

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


class LineWriter:
    """Every log line of the process goes through here, so lines reach stdout in order.

    Unbuffered (the default) each line is written and flushed at once: right for tests
    that read stdout, for `flask run`, and for Lambda, which may freeze the process as
    soon as a response is out. Buffered (`start_buffering`, what the served app does),
    a line is appended to a list under a lock, which neither makes a system call nor
    releases the GIL; one thread writes the pending lines every FLUSH_INTERVAL seconds
    in a single write. A line at WARNING or above is flushed with everything before it
    at once; a writer whose pending lines pass MAX_PENDING_BYTES flushes them itself, so
    a stalled flusher cannot grow memory without bound.

    Lines go to whatever `sys.stdout` is when they are written, not at configuration,
    which keeps logging working when stdout is replaced, as test runners and hosts do.
    """

    FLUSH_INTERVAL = 0.05
    MAX_PENDING_BYTES = 256 * 1024

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()  # guards the pending list; held for an append only
        # One batch at a time, so batches stay in order; re-entered by stop_buffering.
        self._flush_lock = threading.RLock()
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def buffering(self) -> bool:
        return self._flusher is not None

    def write(self, line: bytes, *, urgent: bool = False) -> None:
        """Queue `line` (without its newline); written at once when unbuffered or `urgent`."""
        with self._lock:
            buffering = self._flusher is not None
            if buffering:
                self._pending.append(line)
                self._pending_bytes += len(line) + 1
                urgent = urgent or self._pending_bytes >= self.MAX_PENDING_BYTES
        if not buffering:
            with self._flush_lock:  # after any batch that a switch of mode is still writing
                self._write(line + b"\n")
        elif urgent:
            self.flush()

    def flush(self) -> None:
        """Write every pending line, in one write, and flush stdout."""
        with self._flush_lock:
            with self._lock:
                lines, self._pending, self._pending_bytes = self._pending, [], 0
            if lines:
                lines.append(b"")
                self._write(b"\n".join(lines))

    @staticmethod
    def _write(data: bytes) -> None:
        stream = sys.stdout.buffer
        stream.write(data)
        stream.flush()

    def start_buffering(self) -> None:
        """From now on, batch lines and write them from one thread.

        Whoever starts it registers `flush` to run at the process's exit.
        """
        if self._flusher is not None:
            return
        self._stopped.clear()
        self._flusher = threading.Thread(target=self._flush_often, name="log-lines", daemon=True)
        self._flusher.start()

    def stop_buffering(self) -> None:
        """Write what is pending and go back to writing each line at once."""
        with self._flush_lock:
            with self._lock:
                flusher, self._flusher = self._flusher, None
            self.flush()
        if flusher is not None:
            self._stopped.set()
            flusher.join()

    def _flush_often(self) -> None:
        while not self._stopped.wait(self.FLUSH_INTERVAL):
            self.flush()


LINES = LineWriter()


class _StdoutLogger:
    """structlog's output: rendered lines into the process's one LineWriter."""

    def msg(self, message: bytes) -> None:
        LINES.write(message)

    def urgent(self, message: bytes) -> None:
        LINES.write(message, urgent=True)

    log = debug = info = msg
    warn = warning = error = critical = exception = fatal = urgent


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return _STDOUT_LOGGER


_STDOUT_LOGGER = _StdoutLogger()


class _StdoutHandler(logging.Handler):
    """A handler for stdlib records, into the same LineWriter as structlog's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            LINES.write(line.encode(), urgent=record.levelno >= logging.WARNING)
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


class RequestLogMiddleware:
    """WSGI middleware: settles the request id, answers it in X-Request-ID, logs the access line.

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
            self.log.info(
                "request",
                method=environ.get("REQUEST_METHOD"),
                route=rule.rule if rule is not None else None,
                status=int(statuses[-1][:3]) if statuses else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                store=self.store_kind,
                upstream=environ.get(ENVIRON_UPSTREAM),
                **context,
            )
            structlog.contextvars.reset_contextvars(**tokens)


def init_app(app: Flask) -> None:
    """Keep each request's URL rule where the access line can read it."""
    app.request_class = RoutedRequest
