"""Logging set-up: every line on stdout as one JSON object.

structlog renders JSON lines on stdout (what CloudWatch and container runtimes
collect); records from the standard `logging` module (granian, botocore, the
limiter) are rendered in the same shape: `{..., "event", "level", "timestamp"}`,
their text in `detail` and the library as the event. The request id is bound in a
context variable (see `request_context`), so every line logged while a request
runs carries it. The one exception is the development server's own lines under
`flask run`, which a developer reads on a terminal: they stay as Werkzeug prints them.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
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


def _render_json_text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event, default=str).decode()


def library_event(logger_name: str) -> str:
    """The event a library's record is logged as: its top package (`_granian.serve`: granian)."""
    return logger_name.split(".", 1)[0].lstrip("_")


def _as_service_line(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """A stdlib record in the service's shape: members, then event, level and timestamp.

    The record's text becomes `detail` (as in the service's own warnings) and the library
    that logged it the `event`, so `select(.event == "granian")` finds the server's lines.
    """
    line = dict(event)
    record: logging.LogRecord = line["_record"]
    detail = line.pop("event")
    level, timestamp = line.pop("level"), line.pop("timestamp")
    return {
        **line,
        "detail": detail,
        "event": library_event(record.name),
        "level": level,
        "timestamp": timestamp,
    }


# Where log lines go: stdout, unless configure_logging chose stderr for a CLI command.
_to_stderr = False


def _log_stream() -> Any:
    return sys.stderr if _to_stderr else sys.stdout


class LineWriter:
    """Every log line of the process goes through here, so lines reach stdout in order.

    Unbuffered (the default) each line is written and flushed at once: right for tests
    that read stdout, for `flask run`, and for Lambda, which may freeze the process as
    soon as a response is out. Buffered (`start_buffering`, what the served app does),
    a line is copied into a buffer under a lock, which neither makes a system call nor
    releases the GIL; one thread writes the pending lines every FLUSH_INTERVAL seconds
    in a single write. A line at WARNING or above is flushed with everything before it
    at once; a writer whose line would overfill the buffer (MAX_PENDING_BYTES) flushes
    it itself, so a stalled flusher cannot grow memory without bound.

    The two buffers (one filling, one being written) are allocated once, and each line
    is copied in and freed at once. Keeping the lines themselves until the flush
    would leave them interleaved on the heap with whatever the request allocated for
    good (the in-memory store's pages), and the holes they leave when freed together
    grew the served process by about a quarter per customer stored (bench.run's memory).

    Lines go to whatever `sys.stdout` (or, for a CLI command, `sys.stderr`) is when they
    are written, not at configuration, which keeps logging working when stdout is
    replaced, as test runners and hosts do.
    """

    FLUSH_INTERVAL = 0.05
    MAX_PENDING_BYTES = 256 * 1024

    def __init__(self) -> None:
        self._filling = bytearray()
        self._spare = bytearray()
        self._used = 0
        self._lock = threading.Lock()  # guards the filling buffer; held for a copy only
        # One batch at a time, so batches stay in order and the spare buffer is free
        # whenever a flush takes it; re-entered by stop_buffering.
        self._flush_lock = threading.RLock()
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def buffering(self) -> bool:
        return self._flusher is not None

    def write(self, line: bytes, *, urgent: bool = False) -> None:
        """Queue `line` (without its newline); written at once when unbuffered or `urgent`."""
        appended = self._append(line)
        if appended is False:  # the buffer is full: this writer empties it first
            with self._flush_lock:
                self.flush()
                appended = self._append(line)
                if appended is False:  # a line longer than a whole batch goes on its own
                    self._write(line + b"\n")
                    return
        if appended is None:  # unbuffered
            with self._flush_lock:  # after any batch that a switch of mode is still writing
                self._write(line + b"\n")
        elif urgent or self._used >= len(self._filling):
            self.flush()

    def _append(self, line: bytes) -> bool | None:
        """Copy `line` and its newline into the filling buffer: None when unbuffered,
        False when it does not fit."""
        with self._lock:
            if self._flusher is None:
                return None
            start = self._used
            end = start + len(line) + 1
            if end > len(self._filling):
                return False
            self._filling[start : end - 1] = line  # same length: copied, never resized
            self._filling[end - 1] = 0x0A
            self._used = end
            return True

    def flush(self) -> None:
        """Write every pending line, in one write, and flush stdout."""
        with self._flush_lock:
            with self._lock:
                full, used = self._filling, self._used
                self._filling, self._spare, self._used = self._spare, full, 0
            if used:
                self._write(memoryview(full)[:used])

    @staticmethod
    def _write(data: bytes | memoryview) -> None:
        stream = _log_stream().buffer
        stream.write(data)
        stream.flush()

    def start_buffering(self) -> None:
        """From now on, batch lines and write them from one thread.

        Whoever starts it registers `flush` to run at the process's exit.
        """
        if self._flusher is not None:
            return
        with self._lock:
            self._filling = bytearray(self.MAX_PENDING_BYTES)
            self._spare = bytearray(self.MAX_PENDING_BYTES)
            self._used = 0
        self._stopped.clear()
        self._flusher = threading.Thread(target=self._flush_often, name="log-lines", daemon=True)
        self._flusher.start()

    def stop_buffering(self) -> None:
        """Write what is pending and go back to writing each line at once."""
        with self._flush_lock:
            with self._lock:
                flusher, self._flusher = self._flusher, None
            self.flush()
            with self._lock:
                self._filling, self._spare = bytearray(), bytearray()
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
    return STDOUT_LOGGER


STDOUT_LOGGER = _StdoutLogger()


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
            foreign_pre_chain=[*_shared_processors(), _as_service_line],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _render_json_text,
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
    # are for the developer running `flask run`: on stderr as Werkzeug prints them, at
    # LOG_LEVEL like everything else (its banner is at INFO). Its line per request is
    # dropped: the access line replaces it.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(numeric)
    werkzeug.handlers[:] = [DevServerHandler()]
    werkzeug.propagate = False


_ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")


class DevServerHandler(logging.Handler):
    """Werkzeug's development-server lines as Werkzeug prints them: the text, on stderr.

    Werkzeug's request handler logs each request with the format that ends in
    `"%s" %s %s` (request line, status, size); nothing else it logs does, and those
    lines are dropped. The colours Werkzeug puts in its start-up lines are kept on a
    terminal and taken out elsewhere (a log file, a CI job).
    """

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.endswith('"%s" %s %s'):
            return
        try:
            stream = sys.stderr
            text = record.getMessage()
            if not stream.isatty():
                text = _ANSI_STYLE.sub("", text)
            stream.write(text + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)
