"""Serving in production: granian runs the app built by `create_app`.

`python app.py`, `make run` and the `customer-api` command (pyproject.toml's script)
come here. With the in-memory store the service is one process with many threads,
since each process would have its own database; with a file store it may run several
processes on one WAL file. Before granian starts, it checks what it can (the
arguments, the settings, that the store opens, that the port is free), so a failure
stops the service with one line naming the argument or the setting, and exit status
2, instead of a traceback from each worker.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from customers.config import (
    CONVERTERS,
    DEFAULTS,
    ConfigError,
    check_settings,
    settings_from_env,
)
from customers.store_settings import check_store_answers, open_configured_store
from customers.stores.sqlite import is_in_memory
from customers.web import stop_signals

# Exit status for anything the operator gave that the service cannot run with: a setting,
# an argument. 2, as argparse and click use for usage errors.
REFUSED = 2


def worker_count(settings: dict[str, object]) -> int:
    """Processes to run: WORKERS, or one per core for a file store and one for memory."""
    requested = int(str(settings["WORKERS"]))
    path = str(settings["SQLITE_PATH"])
    if settings["CUSTOMER_STORE"] == "sqlite" and is_in_memory(path):
        if requested > 1:
            raise ConfigError(
                f"WORKERS={requested}: an in-memory database lives in one process, so several "
                "workers would each see a different, partial set of customers. Use WORKERS=1 "
                "or set SQLITE_PATH to a file."
            )
        return 1
    return requested or (os.cpu_count() or 1)


def check_port_free(host: str, port: int, *, setting: str = "PORT") -> None:
    """Raise ConfigError naming the port when a server already listens on `host`:`port`.

    granian's workers bind with SO_REUSEPORT, and the kernel lets every socket that
    does so share the port: a second instance would start beside the first, and
    connections would be spread between two services (two in-memory databases behind
    one address). A bind without SO_REUSEPORT is refused while anything listens on
    the address, whatever that listener's options, so it is the test. SO_REUSEADDR
    keeps the closed connections of a server just stopped (TIME_WAIT) from counting.
    Two instances started within the same moment can still both pass.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{setting}={port}: port {port} on {host} is already in use by another "
                    f"program (another `make run`?). Stop it, or set {setting} to a free port."
                ) from None
            raise ConfigError(
                f"HOST={host!r}: cannot listen on port {port} there: {exc.strerror}"
            ) from None


def check_store_opens(settings: dict[str, object]) -> None:
    """Open the store once before any worker starts; raise ConfigError if it cannot be.

    Each worker opens the store itself, so a path that cannot be opened (no such
    directory, a newer schema) or a DynamoDB table that is not there would otherwise
    show as one traceback per worker, or as a service answering 503 to everything.
    """
    if settings["CUSTOMER_STORE"] == "sqlite" and is_in_memory(str(settings["SQLITE_PATH"])):
        return
    store = open_configured_store(settings)
    try:
        check_store_answers(store, settings)
    finally:
        store.close()


def check_limit_storage(settings: dict[str, object], workers: int) -> None:
    """Refuse a RATE_LIMIT that several processes would each count on their own.

    With memory:// every worker keeps its own counts, so N workers would allow N times
    the advertised limit; raises ConfigError instead of quietly serving that.
    """
    if settings["RATE_LIMIT"] and settings["RATE_LIMIT_STORAGE_URI"] == "memory://" and workers > 1:
        raise ConfigError(
            f"RATE_LIMIT={settings['RATE_LIMIT']} with RATE_LIMIT_STORAGE_URI=memory:// and "
            f"{workers} workers: each worker would count on its own and allow {workers} times "
            "the limit. Set RATE_LIMIT_STORAGE_URI to a Redis URI (redis://host:6379/0) "
            "shared by every worker, or run WORKERS=1."
        )


def check_drain_time(settings: dict[str, object]) -> None:
    """Refuse a DRAIN_TIMEOUT shorter than the slowest request: a stop would cut it off.

    The slowest takes BODY_READ_TIMEOUT to send its body, then BUSINESS_DEADLINE to
    look a company up.
    """
    slowest = float(str(settings["BODY_READ_TIMEOUT"])) + float(str(settings["BUSINESS_DEADLINE"]))
    if int(str(settings["DRAIN_TIMEOUT"])) < slowest:
        raise ConfigError(
            f"DRAIN_TIMEOUT={settings['DRAIN_TIMEOUT']}: a stop would kill requests still "
            f"running, and a request may take BODY_READ_TIMEOUT + BUSINESS_DEADLINE = "
            f"{slowest:g} s. Raise DRAIN_TIMEOUT, or lower those."
        )


# File descriptors a worker keeps for its own use beyond connections: the store's files,
# the register's and Redis's sockets, logs, the event loop's own.
RESERVED_DESCRIPTORS = 256
# What the kernel queues before a worker accepts (Linux caps it at net.core.somaxconn).
LISTEN_BACKLOG = 4096
# The most header bytes an HTTP/2 request may carry (HPACK-decoded, 32 bytes counted per
# field as RFC 9113 asks); an HTTP/1 head is bounded by granian's read buffer instead.
HTTP2_MAX_HEADER_BYTES = 64 * 1024
# Streams open at once on one HTTP/2 connection, and the bytes a client may send ahead of
# what the service has read: per stream, enough for the largest body, and per connection.
HTTP2_MAX_STREAMS = 32
HTTP2_STREAM_WINDOW = 128 * 1024
HTTP2_CONNECTION_WINDOW = 256 * 1024


def raise_descriptor_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the new soft limit.

    Each connection holds a descriptor, and many systems start processes with a soft
    limit of 1,024: idle sockets alone would fill it. granian's workers inherit it.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def connection_limit(settings: Mapping[str, Any], descriptors: int) -> int:
    """Connections a worker keeps open at once: MAX_CONNECTIONS, or what `descriptors` allow.

    granian stops accepting while a worker holds this many (its backpressure), so the
    figure must be far beyond what idle clients can hold before the header deadline
    closes them; raises ConfigError when the descriptors cannot hold MAX_CONNECTIONS.
    """
    available = descriptors - RESERVED_DESCRIPTORS
    requested = int(settings["MAX_CONNECTIONS"])
    if requested > available:
        raise ConfigError(
            f"MAX_CONNECTIONS={requested}: the open-file limit ({descriptors}) leaves room "
            f"for {max(available, 0)}; raise it (ulimit -n, LimitNOFILE=) or lower the setting"
        )
    if available < 1:
        raise ConfigError(
            f"the open-file limit ({descriptors}) leaves no room for connections; raise it"
        )
    return requested or available


def granian_settings(
    settings: Mapping[str, Any] = DEFAULTS, *, max_connections: int = 1024
) -> dict[str, Any]:
    """How granian runs the app in a worker; bench/threads.py measures the choices.

    ASGI, not granian's WSGI interface: see customers.web.asgi_bridge for why. Requests
    run in the event loop's thread or on the bridge's SERVER_THREADS threads (see
    app.answered_in_loop); no lifespan, no websockets. Two runtime threads for the
    sockets, not one: while the loop thread runs a request, the second can take the next
    one in and schedule it; on one core that measured a tenth to a fifth more
    requests a second, the servers run alternately under wrk as in `make bench`.
    The loop is granian's "auto": uvloop, which requirements.txt pins, where it is
    installed; its loop turns a request around in fewer microseconds than asyncio's.

    HTTP/1.1 only unless HTTP2 is set. granian's "auto" mode waits for a new connection's
    first bytes to tell the two apart, with no deadline, so a socket that sends nothing
    would hold its place for ever; HTTP/1 alone starts the header deadline at once.
    HTTP/2, when on, is held to HTTP/1's bounds: the same head size order, a stream
    count, windows that bound what a client sends ahead, and the bridge's header count
    and body memory. It has no deadline for a connection that never sends its preface,
    so it is for a proxy in front that speaks it, not for the open network.
    """
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings, HTTP2Settings

    return {
        "interface": Interfaces.ASGINL,
        "runtime_threads": 2,
        "websockets": False,
        "log_access": False,  # the app writes its own access line
        "http": HTTPModes.auto if settings["HTTP2"] else HTTPModes.http1,
        "backlog": LISTEN_BACKLOG,
        "backpressure": max_connections,
        "http1_settings": HTTP1Settings(
            header_read_timeout=int(float(settings["HEADER_READ_TIMEOUT"]) * 1000)
        ),
        "http2_settings": HTTP2Settings(
            max_concurrent_streams=HTTP2_MAX_STREAMS,
            max_headers_size=HTTP2_MAX_HEADER_BYTES,
            initial_stream_window_size=HTTP2_STREAM_WINDOW,
            initial_connection_window_size=HTTP2_CONNECTION_WINDOW,
            keep_alive_interval=int(float(settings["HEADER_READ_TIMEOUT"]) * 1000),
        ),
    }


class _Arguments(argparse.ArgumentParser):
    """argparse, refusing a bad argument in one line (`customer-api: ...`), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(REFUSED, f"customer-api: {message} (see customer-api --help)\n")


# Each argument, the setting it stands for, and what it is; its value is checked by that
# setting's converter, so `--port 0` is refused as `PORT=0` is.
ARGUMENTS = {
    "--host": ("HOST", "the IP address to listen on"),
    "--port": ("PORT", "the port to listen on"),
    "--workers": ("WORKERS", "server processes; 0: one per core for a file store, 1 in memory"),
    "--log-level": ("LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
}


def _checked(setting: str) -> Callable[[str], Any]:
    convert = CONVERTERS[setting]

    def check(raw: str) -> Any:
        try:
            return convert(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None

    return check


def parse_arguments(argv: Sequence[str]) -> dict[str, Any]:
    """The settings the command line gives, by setting name; exits 2 on a bad argument."""
    parser = _Arguments(
        prog="customer-api",
        allow_abbrev=False,  # `--po` is no way to say `--port`
        description="Serve customer-api with granian. Every setting is an environment "
        "variable (see docs/configuration.md); these arguments override theirs.",
    )
    for flag, (setting, meaning) in ARGUMENTS.items():
        parser.add_argument(
            flag,
            dest=setting,
            type=_checked(setting),
            metavar=setting,
            help=f"{meaning} (instead of ${setting}; default {DEFAULTS[setting]})",
        )
    given = vars(parser.parse_args(list(argv)))
    return {name: value for name, value in given.items() if value is not None}


def main(argv: Sequence[str] | None = None) -> None:
    """Serve on HOST:PORT until SIGTERM or SIGINT; in-flight requests finish first.

    The first stop signal stops the service, whenever it comes and whichever process it
    reaches; the later ones change nothing. A worker still running DRAIN_TIMEOUT seconds
    after the stop began is ended (see customers.web.stop_signals).
    """
    from granian import Granian
    from granian.log import LogLevels

    from customers.web.log_setup import server_log_config

    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    stop_signals.hold()  # already held by `python app.py`; here for any other caller
    stop = stop_signals.FirstStopSignal()
    try:
        settings = {**DEFAULTS, **settings_from_env(), **arguments}
        check_settings(settings)
        workers = worker_count(settings)
        check_limit_storage(settings, workers)
        check_drain_time(settings)
        check_store_opens(settings)
        check_port_free(str(settings["HOST"]), int(str(settings["PORT"])))
        metrics_port = int(str(settings["METRICS_PORT"]))
        if metrics_port:
            check_port_free(str(settings["HOST"]), metrics_port, setting="METRICS_PORT")
        max_connections = connection_limit(settings, raise_descriptor_limit())
    except ConfigError as exc:
        print(f"customer-api: {exc}", file=sys.stderr)
        sys.exit(REFUSED)
    if stop.came:
        return  # stopped while starting: nothing served yet
    # Each worker builds its app from the environment: the arguments reach it there.
    os.environ.update({name: str(value) for name, value in arguments.items()})
    server = Granian(
        "app:served_asgi_app",  # by name: the factory is imported in each worker, not here
        factory=True,
        address=str(settings["HOST"]),
        port=int(str(settings["PORT"])),
        workers=workers,
        **granian_settings(settings, max_connections=max_connections),
        log_level=LogLevels(str(settings["LOG_LEVEL"]).lower()),
        log_dictconfig=server_log_config(),
    )
    stop.then(server.signal_handler_interrupt)
    if not metrics_port:
        server.serve()
        return
    from customers.web import metrics_server

    # Before any worker starts, and before prometheus_client is imported (see there).
    directory = metrics_server.prepare_directory()
    try:
        metrics_server.serve(str(settings["HOST"]), metrics_port)
        server.serve()
    finally:
        metrics_server.remove_directory(directory)


if __name__ == "__main__":
    main()
