"""Serving in production: granian runs the app built by `create_app`.

`python app.py` and `make run` come here. With the in-memory store the service
is one process with many threads, since each process would have its own
database; with a file store it may run several processes on one WAL file.
Before granian starts, it checks what it can (the settings, that a file store
opens, that the port is free), so a failure stops the service with one line
naming the setting instead of a traceback from each worker.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import sys
from typing import Any

from customers.config import (
    DEFAULTS,
    ConfigError,
    check_settings,
    settings_from_env,
)
from customers.stores.sqlite import SqliteStore, is_in_memory
from customers.web import stop_signals


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


def check_port_free(host: str, port: int) -> None:
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
                    f"PORT={port}: port {port} on {host} is already in use by another "
                    "program (another `make run`?). Stop it, or set PORT to a free port."
                ) from None
            raise ConfigError(
                f"HOST={host!r}: cannot listen on port {port} there: {exc.strerror}"
            ) from None


def check_store_opens(settings: dict[str, object]) -> None:
    """Open a file store once before any worker starts; raise ConfigError if it cannot be.

    Each worker opens the store itself, so a path that cannot be opened (no such
    directory, a newer schema) would otherwise show as one traceback per worker.
    """
    path = str(settings["SQLITE_PATH"])
    if settings["CUSTOMER_STORE"] != "sqlite" or is_in_memory(path):
        return
    try:
        SqliteStore(path).close()
    except (sqlite3.Error, RuntimeError) as exc:
        raise ConfigError(f"SQLITE_PATH={path!r}: cannot open the database: {exc}") from None


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


def granian_settings() -> dict[str, Any]:
    """How granian runs the app in a worker; bench/threads.py measures the choices.

    ASGI, not granian's WSGI interface: see customers.web.asgi_bridge for why. Requests
    run in the event loop's thread or on the bridge's SERVER_THREADS threads (see
    app.answered_in_loop); no lifespan, no websockets. Two runtime threads for the
    sockets, not one: while the loop thread runs a request, the second can take the next
    one in and schedule it; on one core that measured a tenth to a fifth more
    requests a second, the servers run alternately under wrk as in `make bench`.
    The loop is granian's "auto": uvloop, which requirements.txt pins, where it is
    installed; its loop turns a request around in fewer microseconds than asyncio's.
    """
    from granian.constants import Interfaces

    return {
        "interface": Interfaces.ASGINL,
        "runtime_threads": 2,
        "websockets": False,
        "log_access": False,  # the app writes its own access line
    }


def main() -> None:
    """Serve on HOST:PORT until SIGTERM or SIGINT; in-flight requests finish first.

    The first stop signal stops the service, whenever it comes and whichever process it
    reaches; the later ones change nothing. A worker still running DRAIN_TIMEOUT seconds
    after it is ended (see customers.web.stop_signals).
    """
    from granian import Granian
    from granian.log import LogLevels

    from customers.web.log_setup import server_log_config

    stop_signals.hold()  # already held by `python app.py`; here for any other caller
    stop = stop_signals.FirstStopSignal()
    try:
        settings = {**DEFAULTS, **settings_from_env()}
        check_settings(settings)
        workers = worker_count(settings)
        check_limit_storage(settings, workers)
        check_drain_time(settings)
        check_store_opens(settings)
        check_port_free(str(settings["HOST"]), int(str(settings["PORT"])))
    except ConfigError as exc:
        sys.exit(f"customer-api: {exc}")
    if stop.came:
        return  # stopped while starting: nothing served yet
    server = Granian(
        "app:served_asgi_app",  # by name: the factory is imported in each worker, not here
        factory=True,
        address=str(settings["HOST"]),
        port=int(str(settings["PORT"])),
        workers=workers,
        **granian_settings(),
        log_level=LogLevels(str(settings["LOG_LEVEL"]).lower()),
        log_dictconfig=server_log_config(),
    )
    stop.then(server.signal_handler_interrupt)
    server.serve()


if __name__ == "__main__":
    main()
