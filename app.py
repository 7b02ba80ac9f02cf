"""The application factory: a map of the service, read top to bottom.

`create_app(config=None)` layers settings (defaults, then the environment,
then `config`), builds the long-lived collaborators once (the store, the
business-register client) and registers hooks, error handlers and blueprints.
Nothing happens at import: no connections, no environment reads.
"""

from __future__ import annotations

if __name__ == "__main__":
    # `python app.py`: SIGINT and SIGTERM wait until the service can stop cleanly, from
    # before the imports below (see customers.web.stop_signals).
    from customers.web import stop_signals

    stop_signals.hold()

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import click
from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from business_client import BusinessClient
from customers import businesses, cli, docs_page, events, index, openapi, readiness, routes
from customers.config import (
    DEFAULTS,
    SERVER_THREADS,
    ConfigError,
    check_settings,
    settings_from_env,
)
from customers.delivery import commands as delivery_commands
from customers.store_settings import open_configured_store
from customers.stores.sqlite import is_in_memory
from customers.web import bodies, errors, problems, rate_limits, request_context, security
from customers.web.access_log import RequestLogMiddleware
from customers.web.bodies import WholeBodyMiddleware
from customers.web.jsonio import OrjsonProvider
from customers.web.log_setup import LINES, configure_logging

if TYPE_CHECKING:
    from customers.web.asgi_bridge import WsgiOverAsgi

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class CustomerApi(Flask):
    """Flask with the service's WSGI middleware in front of its `wsgi_app`.

    Every caller (granian, the test client, the Lambda adapter) enters through
    `__call__`, so the middleware sees every request and every response, the ones
    Flask's own error handling makes included.
    """

    middleware: WsgiApp | None = None

    def make_default_options_response(self) -> Response:
        """OPTIONS: 204 and `Allow`, instead of Flask's empty `text/html` 200."""
        response = super().make_default_options_response()
        response.status_code = 204
        return response

    def process_response(self, response: Response) -> Response:
        """After every hook: a 204 or 304 has no content, so no Content-Type describes one.

        Flask's Response says `text/html` unless told otherwise; this is the one place
        that drops it, whichever view, default answer or hook made the response.
        """
        response = super().process_response(response)
        if response.status_code in (204, 304):
            del response.headers["Content-Type"]
        return response

    def handle_user_exception(self, e: Exception) -> Any:
        """Every exception a hook or view raises passes here, handled or not: the access
        line's metrics count the ones where the store failed."""
        request_context.record_exception(e)
        return super().handle_user_exception(e)

    def log_exception(self, exc_info: Any) -> None:
        """Nothing: Flask's line names the request's path; problems logs it by its route."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.middleware is None:
            return self.wsgi_app(environ, start_response)
        return self.middleware(environ, start_response)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service; `config` overrides the environment, which overrides DEFAULTS.

    Raises ConfigError naming the setting that it cannot run with; under the `flask`
    command line, that is one line and exit status 2 instead of a traceback.
    """
    try:
        return _build(config, serving=built_to_serve())
    except ConfigError as exc:
        if click.get_current_context(silent=True) is None:
            raise
        raise cli.SettingRefused(str(exc)) from None


def built_to_serve() -> bool:
    """Whether the app is built to serve requests: by a server, Lambda, a test, `flask run`.

    Not when the `flask` command line builds it for a command of its own (`flask
    customers …`, `flask init-db`, `flask shell`): such a command opens the store itself,
    as it needs it, and the warnings about serving do not concern it.
    """
    context = click.get_current_context(silent=True)
    return context is None or context.command.name == "run"


def _build(config: Mapping[str, Any] | None, *, serving: bool) -> Flask:
    app = CustomerApi(__name__, static_folder=None)
    settings = {**DEFAULTS, **settings_from_env(), **(config or {})}
    check_settings(settings)
    app.config.update(settings)
    app.json = OrjsonProvider(app)

    # Logging first, so everything after it logs as JSON lines. A command of the `flask`
    # command line may write its output to stdout, so its log lines go to stderr.
    configure_logging(app.config["LOG_LEVEL"], to_stderr=not serving)

    # Errors: every failure leaves as a problem document; the store's and the business
    # client's own errors are mapped to theirs in one place.
    problems.init_app(app)
    errors.init_app(app)

    # Request ids and the access line (see the middleware at the end); then a request the
    # server could not read whole (broken framing, a late body) is answered with its problem.
    request_context.init_app(app)
    bodies.init_app(app)

    # Access: the API key check (before any other work), rate limits, CORS.
    security.init_app(app)

    # Long-lived collaborators, one per app, reached through app.extensions. A command
    # opens the store itself (cli.command_store): it alone knows whether it may create one.
    if serving:
        app.extensions["customer_store"] = open_configured_store(app.config)
    app.extensions["business_client"] = BusinessClient(
        base_url=app.config["BUSINESS_API_URL"],
        connect_timeout=app.config["BUSINESS_CONNECT_TIMEOUT"],
        read_timeout=app.config["BUSINESS_READ_TIMEOUT"],
        deadline=app.config["BUSINESS_DEADLINE"],
        retries=app.config["BUSINESS_RETRIES"],
        cache_ttl=app.config["BUSINESS_CACHE_TTL"],
        not_found_ttl=app.config["BUSINESS_NOT_FOUND_TTL"],
        cache_size=app.config["BUSINESS_CACHE_SIZE"],
        breaker_failures=app.config["BUSINESS_BREAKER_FAILURES"],
        breaker_cooldown=app.config["BUSINESS_BREAKER_COOLDOWN"],
        max_concurrent=app.config["BUSINESS_MAX_CONCURRENT"],
    )

    # Prometheus, when METRICS_PORT is set: fed by the access line's figures (below);
    # the main process serves them (customers.web.metrics_server).
    observers = []
    if app.config["METRICS_PORT"]:
        from customers.web.prometheus import PrometheusRecorder

        client: BusinessClient = app.extensions["business_client"]
        recorder = PrometheusRecorder(breaker_state=lambda: client.breaker_state)
        app.extensions["prometheus"] = recorder
        observers.append(recorder.observe)

    # Routes: the customers resource, business lookups, the change feed, liveness and
    # readiness, the API's own docs, and the base URL, which points at the rest.
    app.register_blueprint(routes.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(businesses.bp)
    app.register_blueprint(index.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(docs_page.bp)

    app.cli.add_command(cli.commands)  # flask customers import|export
    app.cli.add_command(cli.init_db_command)  # flask init-db
    app.cli.add_command(delivery_commands.commands)  # flask events failed|redeliver

    # Traces, when the OTEL_* variables ask for them: imported only then.
    if app.config["TRACING"]:
        from customers.web import tracing

        tracing.init_app(app)

    # Around all of it: security headers outermost, then request id and access line,
    # then bodies read whole and within the limit, whichever server delivers them.
    app.middleware = security.SecurityHeadersMiddleware(
        RequestLogMiddleware(
            WholeBodyMiddleware(app.wsgi_app, limit=app.config["MAX_CONTENT_LENGTH"]),
            app.config["CUSTOMER_STORE"],
            log_level=app.config["LOG_LEVEL"],
            emf=app.config["METRICS"] == "emf",
            observers=observers,
        )
    )
    # Behind TRUSTED_PROXIES proxies, the client address is the one the nearest of them
    # appended to X-Forwarded-For; with none trusted that header is ignored, since any
    # caller can send it, and the address is the connection's.
    if app.config["TRUSTED_PROXIES"]:
        app.middleware = ProxyFix(app.middleware, x_for=app.config["TRUSTED_PROXIES"])

    # Last, once nothing can stop the start any more: which keys serve, or that none do.
    if serving:
        security.log_key_state(app)
    return app


def served_app() -> Flask:
    """The app as a server runs it (granian calls this in each worker): its store closed at exit.

    Log lines are batched by one thread from here on (see log_setup.LineWriter): a served
    request then writes its access line without a system call of its own.
    """
    from customers.delivery.relay import start_relay
    from customers.web.lifecycle import at_exit  # a server's concern, not Lambda's

    app = create_app()
    LINES.start_buffering()
    at_exit(LINES.flush)  # registered first, so it runs last: after the store's lines
    at_exit(app.extensions["customer_store"].close)
    if "prometheus" in app.extensions:
        from customers.web.prometheus import mark_worker_dead

        at_exit(mark_worker_dead)
    # Webhooks from the store's outbox (sqlite; on AWS the stream function delivers).
    relay = start_relay(app.config, app.extensions["customer_store"])
    if relay is not None:
        at_exit(relay.stop)  # registered after the store, so it stops before the store closes
    return app


# The routes whose work is the store's and the app's alone: the base URL, liveness, the
# customers and one customer. Those that reach the business register (/businesses/...,
# /customers/<id>/business, ?include=business) are not among them.
LOCAL_PATHS = frozenset({"/", "/health", "/customers"})
CUSTOMER_PREFIX = "/customers/"


def answered_in_loop(config: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Which requests the served app answers in granian's event loop thread, not a pool thread.

    Handing a request to a pool thread and back costs about as much as a get from the
    in-memory store takes (bench.profile --py-spy: futures, the loop's self-pipe, two
    threads winning the GIL back), so such requests run in the loop thread itself. While
    one runs, the loop serves nobody else, so only requests that wait on nothing outside
    the process may: the in-memory store (its lock is only ever held for a statement),
    rate limits and failed-key counts in memory://, and routes that never reach the
    business register. Everything else stays on the pool: DynamoDB and Redis are network
    round trips; a file store's one connection may wait on fsync or on another worker's
    write lock (busy_timeout); lookups may wait on the register for seconds.

    The predicate reads the environ the app is about to route: its PATH_INFO, and its
    query string decoded as Werkzeug will decode it, so `?%69nclude=business` is seen.
    """
    if (
        config["CUSTOMER_STORE"] != "sqlite"
        or not is_in_memory(config["SQLITE_PATH"])
        or config["RATE_LIMIT_STORAGE_URI"] != rate_limits.MEMORY_STORAGE
    ):
        return lambda environ: False  # every request to the pool

    def local(environ: dict[str, Any]) -> bool:
        path: str = environ["PATH_INFO"]
        if path not in LOCAL_PATHS:
            customer_id = path.removeprefix(CUSTOMER_PREFIX)
            if customer_id == path or "/" in customer_id:
                return False
        query: str = environ["QUERY_STRING"]
        return "include" not in (unquote(query) if "%" in query else query)

    return local


def served_asgi_app(threads: int = SERVER_THREADS) -> WsgiOverAsgi:
    """What granian serves: the app behind the bridge that reads bodies before a thread runs."""
    from customers.web import stop_signals
    from customers.web.asgi_bridge import WsgiOverAsgi  # asyncio: a server's concern only

    app = served_app()
    stop_signals.stop_worker_once(app.config["DRAIN_TIMEOUT"])
    return WsgiOverAsgi(
        app,
        threads=threads,
        body_limit=app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_READ_TIMEOUT"],
        body_memory=app.config["BODY_MEMORY_LIMIT"],
        in_loop=answered_in_loop(app.config),
    )


if __name__ == "__main__":
    # `python app.py`: the same module serves as `app` in granian's workers, so that it is
    # loaded once, not a second time under its import name.
    sys.modules.setdefault("app", sys.modules["__main__"])
    from customers.serving import main

    main()
