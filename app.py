"""The application factory: a map of the service, read top to bottom.

`create_app(config=None)` layers settings (defaults, then the environment,
then `config`), builds the long-lived collaborators once (the store, the
business-register client) and registers hooks, error handlers and blueprints.
Nothing happens at import: no connections, no environment reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request

import customers
import db
import logs
import openapi
import problems
import security
from business_client import BusinessClient
from config import DEFAULTS, check_settings, settings_from_env
from jsonio import OrjsonProvider, json_response

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
        logs.record_exception(e)
        return super().handle_user_exception(e)

    def log_exception(self, exc_info: Any) -> None:
        """Nothing: Flask's line names the request's path; problems logs it by its route."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.middleware is None:
            return self.wsgi_app(environ, start_response)
        return self.middleware(environ, start_response)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service; `config` overrides the environment, which overrides DEFAULTS."""
    app = CustomerApi(__name__, static_folder=None)
    settings = {**DEFAULTS, **settings_from_env(), **(config or {})}
    check_settings(settings)
    app.config.update(settings)
    app.json = OrjsonProvider(app)

    # Logging first, so everything after it logs as JSON lines.
    logs.configure_logging(app.config["LOG_LEVEL"])

    # Errors: every failure leaves as a problem document.
    problems.init_app(app)

    # Request ids and the access line (see the middleware at the end).
    logs.init_app(app)

    # Access: the API key check (before any other work), rate limits, CORS.
    security.init_app(app)

    # Long-lived collaborators, one per app, reached through app.extensions.
    db.init_app(app)
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

    # Routes: the customers resource, business lookups, health, the API's own docs, and the
    # base URL, which points at the rest.
    customers.init_app(app)
    app.register_blueprint(openapi.bp)
    app.add_url_rule("/health", view_func=health)
    app.add_url_rule("/", view_func=index)

    # Around all of it: security headers outermost, then request id and access line.
    app.middleware = security.SecurityHeadersMiddleware(
        logs.RequestLogMiddleware(
            app.wsgi_app, app.config["CUSTOMER_STORE"], log_level=app.config["LOG_LEVEL"]
        )
    )
    return app


def index() -> Response:
    """Where to go from the base URL: the customers, the API's description and its docs."""
    # Under a base path (a proxy's prefix, API Gateway's stage) the links keep it.
    base = request.script_root
    return json_response(
        {
            "name": "customer-api",
            "links": {
                "customers": {"href": f"{base}/customers"},
                "openapi": {"href": f"{base}/openapi.json"},
                "docs": {"href": f"{base}/docs"},
            },
        }
    )


def health() -> Response:
    """Liveness: 200 while the store answers, else 503."""
    store: db.CustomerStore = current_app.extensions["customer_store"]
    try:
        store.ping()
    except db.StoreError:
        raise problems.ServiceUnavailable("The store does not answer.") from None
    return json_response({"status": "ok", "store": store.kind})


if __name__ == "__main__":
    from server import main

    main()
