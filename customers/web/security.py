"""Who may call and what every response tells a browser; how often is `rate_limits`'.

API keys come from `API_KEYS` or, on Lambda, from the SSM parameter named by
`API_KEYS_SSM_PARAMETER` (read once per container). The key check runs before
anything else in a request: without a valid key, neither validation, nor the
store, nor the business register is reached. Keys are compared in constant
time and only their short fingerprints are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import structlog
from flask import Flask, Response, current_app, g, request

from customers.config import ConfigError
from customers.web import rate_limits
from customers.web.problems import Unauthorized
from customers.web.rate_limits import FailedKeyLimit

log = structlog.get_logger(__name__)

# Routes anyone may call, keys or not: liveness, the API's description, its docs.
OPEN_PATHS = frozenset({"/", "/health", "/health/ready", "/openapi.json", "/docs"})
OPEN_PREFIXES = ("/docs/",)
# Swagger UI adds one <style> element of its own (allowed by its hash, which `make e2e`
# reports should an upgrade change it) and sets style attributes as it renders.
SWAGGER_UI_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
DOCS_CSP = (
    f"default-src 'none'; script-src 'self'; style-src 'self' {SWAGGER_UI_STYLE}; "
    "style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def fingerprint(key: str) -> str:
    """A short, non-reversible tag for a key: enough to tell keys apart in logs."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def client_id(key: str) -> str:
    """Whom a valid key identifies, for its rate limit and its idempotency records.

    A longer tag than the logs' fingerprint: two keys whose 8-digit fingerprints
    agree must still count apart and never see each other's recorded answers.
    """
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class KeyRing:
    """The configured keys, matched exactly and in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(key.encode() for key in keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def fingerprints(self) -> list[str]:
        return [fingerprint(key.decode()) for key in self._keys]

    def match(self, presented: str) -> bool:
        """Whether `presented` is a key; all keys are compared, so timing tells nothing."""
        candidate = presented.encode()
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(candidate, key)
        return found


def load_keys(settings: Mapping[str, Any]) -> KeyRing:
    """The keys from the settings; raises ConfigError when keys are required and missing."""
    keys: tuple[str, ...] = tuple(settings["API_KEYS"])
    if settings["API_KEYS_SSM_PARAMETER"]:
        from customers.aws.ssm import keys_from_ssm

        keys += keys_from_ssm(
            settings["API_KEYS_SSM_PARAMETER"],
            region=settings["AWS_REGION"],
            endpoint_url=settings["AWS_ENDPOINT_URL"],
        )
    if not keys and settings["REQUIRE_API_KEYS"]:
        raise ConfigError(
            "REQUIRE_API_KEYS=1 but neither API_KEYS nor API_KEYS_SSM_PARAMETER gives a key"
        )
    return KeyRing(keys)


def _presented_key() -> str | None:
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        return credentials if scheme.lower() == "bearer" and credentials else ""
    return request.headers.get("X-API-Key")


def _is_open_path() -> bool:
    return request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES)


def _is_cors_preflight() -> bool:
    """A browser's preflight carries no credentials by design; it learns only CORS headers."""
    return (
        request.method == "OPTIONS"
        and bool(current_app.config["CORS_ORIGINS"])
        and "Access-Control-Request-Method" in request.headers
    )


def _refuse(problem: Unauthorized) -> NoReturn:
    """Raise `problem`, or 429 for an address that failed too often."""
    failures: FailedKeyLimit | None = current_app.extensions.get("failed_key_limit")
    if failures is not None:
        failures.count(rate_limits.remote_address())
    raise problem


def _require_key() -> None:
    g.client_key = g.key_fingerprint = None
    if _is_open_path() or _is_cors_preflight():
        return
    failures: FailedKeyLimit | None = current_app.extensions.get("failed_key_limit")
    if failures is not None:
        failures.check(rate_limits.remote_address())
    keys: KeyRing = current_app.extensions["api_keys"]
    presented = _presented_key()
    if presented is None:
        _refuse(
            Unauthorized(
                "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers={"WWW-Authenticate": 'Bearer realm="customer-api"'},
            )
        )
    if not keys.match(presented):
        log.info("api_key_rejected", key_fingerprint=fingerprint(presented))
        _refuse(
            Unauthorized(
                "The API key is not valid.",
                headers={"WWW-Authenticate": 'Bearer realm="customer-api", error="invalid_token"'},
            )
        )
    g.client_key = client_id(presented)
    g.key_fingerprint = fingerprint(presented)  # names the key in change history


_COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_API_HEADERS = (*_COMMON_HEADERS, ("Content-Security-Policy", API_CSP))
_DOCS_HEADERS = (*_COMMON_HEADERS, ("Content-Security-Policy", DOCS_CSP))


class SecurityHeadersMiddleware:
    """WSGI middleware adding the security headers to every response, errors included.

    The API's answers (customer data among them) are never to be cached: `no-store`,
    unless a view chose its own caching, as the docs assets do. The docs page gets
    the CSP that lets its local assets run; everything else the strictest one.
    """

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path: str = environ.get("PATH_INFO", "")
        docs = path == "/docs" or path.startswith("/docs/")

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(_DOCS_HEADERS if docs else _API_HEADERS)
            if not docs and not any(name.lower() == "cache-control" for name, _ in headers):
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _vary_on_origin(response: Response) -> Response:
    """`Vary: Origin` on every response while CORS is on: `Access-Control-Allow-Origin`
    depends on the request's Origin (present, absent, or another origin's), so a cache
    keeping a response (the docs assets are `public`) must key it by Origin.

    flask-cors adds it only when several origins are listed, and only to responses
    that carry the header, not to those whose Origin was refused.
    """
    values = response.headers.getlist("Vary")
    varies = {name.strip().lower() for value in values for name in value.split(",")}
    if "origin" not in varies and "*" not in varies:
        response.headers.add("Vary", "Origin")
    return response


def log_key_state(app: Flask) -> None:
    """At the start of serving: the keys' fingerprints, or a warning that every route is open.

    For a server, Lambda and `flask run` only: a command of the `flask` command line
    (an import, an export) opens no route, so the warning would only be noise there.
    """
    keys: KeyRing = app.extensions["api_keys"]
    if keys:
        log.info("api_keys_loaded", fingerprints=keys.fingerprints())
    else:
        log.warning(
            "api_keys_off",
            detail="No API key is configured: every route is open. Set API_KEYS for any "
            "deployment that holds real data.",
        )


def init_app(app: Flask) -> None:
    """Keys (when configured), rate limits (when RATE_LIMIT is set), CORS."""
    keys = load_keys(app.config)
    app.extensions["api_keys"] = keys
    if keys:
        app.before_request(_require_key)
    # Registered after the key check, so that only requests with a valid key are counted
    # against their key; the others are counted by the failed-key limit.
    rate_limits.init_app(app, keyed=bool(keys), exempt=_is_open_path)
    if app.config["CORS_ORIGINS"]:
        from flask_cors import CORS

        app.after_request(_vary_on_origin)

        CORS(
            app,
            origins=list(app.config["CORS_ORIGINS"]),
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "X-Request-ID",
                "Idempotency-Key",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Link",
                "Next-Cursor",
                "X-Request-ID",
                "Retry-After",
                "Idempotent-Replayed",
            ],
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        )
