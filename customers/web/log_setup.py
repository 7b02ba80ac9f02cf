"""Logging set-up: every line on stdout as one JSON object.

structlog renders JSON lines on stdout (what CloudWatch and container runtimes
collect); records from the standard `logging` module (Werkzeug, botocore,
granian) pass through the same renderer. The request id is bound in a context
variable (see `request_context`), so every line logged while a request runs
carries it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog


def level_and_time() -> list[Any]:
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _shared_processors() -> list[Any]:
    return [structlog.contextvars.merge_contextvars, *level_and_time()]


def render_json(_: Any, __: str, event: MutableMapping[str, Any]) -> bytes:
    return orjson.dumps(event, default=str)


# Where log lines go: stdout, unless configure_logging chose stderr for a CLI command.
_to_stderr = False


def _log_stream() -> Any:
    return sys.stderr if _to_stderr else sys.stdout


class _StdoutLogger:
    """Writes rendered lines to whatever `sys.stdout` is at the time of writing.

    Looking the stream up per line (not once at configuration) keeps logging
    working when stdout is replaced, as test runners and some hosts do.
    """

    def msg(self, message: bytes) -> None:
        stream = _log_stream().buffer
        stream.write(message + b"\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return STDOUT_LOGGER


STDOUT_LOGGER = _StdoutLogger()


class _StdoutHandler(logging.Handler):
    """A handler writing to the current `sys.stdout`, for the same reason."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            _log_stream().write(line + "\n")
            _log_stream().flush()
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
        "handlers": {"json": {"()": "customers.web.log_setup.json_handler"}},
        "loggers": {
            "_granian": {"handlers": ["json"], "propagate": False},
            "granian.access": {"handlers": ["json"], "propagate": False},
        },
    }


def configure_logging(level: str, *, to_stderr: bool = False) -> None:
    """Send structlog and stdlib records to stdout as JSON lines at `level` and above.

    `to_stderr` sends them to stderr instead, for command-line tools whose stdout is
    their output (`flask customers export -`).
    """
    global _to_stderr
    _to_stderr = to_stderr
    numeric = logging.getLevelName(level)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            render_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(numeric)
    # Libraries whose debug lines carry what the logs must not: urllib3 logs every URL
    # with its query string, botocore every request and answer body (customer data).
    for chatty in ("urllib3", "botocore", "boto3"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.INFO))
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
