"""Serving in production: granian runs the app built by `create_app`.

`python app.py` and `make run` come here. With the in-memory store the service
is one process with many threads, since each process would have its own
database; with a file store it may run several processes on one WAL file.
"""

from __future__ import annotations

import atexit
import os
import sys

from flask import Flask

from asgi_bridge import WsgiOverAsgi
from config import DEFAULTS, SERVER_THREADS, ConfigError, check_settings, settings_from_env

MEMORY_PATHS = ("", ":memory:")


def worker_count(settings: dict[str, object]) -> int:
    """Processes to run: WORKERS, or one per core for a file store and one for memory."""
    requested = int(str(settings["WORKERS"]))
    in_memory = settings["CUSTOMER_STORE"] == "sqlite" and settings["SQLITE_PATH"] in MEMORY_PATHS
    if in_memory:
        if requested > 1:
            raise ConfigError(
                f"WORKERS={requested}: an in-memory database lives in one process, so several "
                "workers would each see a different, partial set of customers. Use WORKERS=1 "
                "or set SQLITE_PATH to a file."
            )
        return 1
    return requested or (os.cpu_count() or 1)


def served_app() -> Flask:
    """The factory granian calls in each worker: the app, its store closed at exit."""
    from app import create_app

    app = create_app()
    atexit.register(app.extensions["customer_store"].close)
    return app


def served_asgi_app() -> WsgiOverAsgi:
    """What granian serves: the app behind the bridge that reads bodies before a thread runs."""
    app = served_app()
    return WsgiOverAsgi(
        app,
        threads=SERVER_THREADS,
        body_limit=app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_READ_TIMEOUT"],
    )


def main() -> None:
    """Serve on HOST:PORT until SIGTERM or SIGINT; in-flight requests finish first."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from logs import server_log_config

    try:
        settings = {**DEFAULTS, **settings_from_env()}
        check_settings(settings)
        workers = worker_count(settings)
    except ConfigError as exc:
        sys.exit(f"customer-api: {exc}")
    # ASGI, not granian's WSGI interface: see asgi_bridge for why. The requests run on
    # the bridge's SERVER_THREADS threads; no lifespan, no websockets.
    Granian(
        "server:served_asgi_app",
        factory=True,
        interface=Interfaces.ASGINL,
        websockets=False,
        address=str(settings["HOST"]),
        port=int(str(settings["PORT"])),
        workers=workers,
        log_access=False,  # the app writes its own access line
        log_level=LogLevels(str(settings["LOG_LEVEL"]).lower()),
        log_dictconfig=server_log_config(),
    ).serve()


if __name__ == "__main__":
    main()
