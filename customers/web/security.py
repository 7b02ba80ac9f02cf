"""Who may call, how often, and what every response tells a browser.

API keys come from `API_KEYS` or, on Lambda, from the SSM parameter named by
`API_KEYS_SSM_PARAMETER` (read once per container). The key check runs before
anything else in a request: without a valid key, neither validation, nor the
store, nor the business register is reached. Keys are compared in constant
time and only their short fingerprints are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import structlog
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import TooManyRequests

from customers.config import ConfigError
from customers.web.problems import Unauthorized

log = structlog.get_logger(__name__)

# Routes anyone may call, keys or not: liveness, the API's description, its docs.
OPEN_PATHS = frozenset({"/", "/health", "/openapi.json", "/docs"})
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


# Redis answers in well under a millisecond next to the service: a request waits at most
# a second on one that hangs (redis-py's default is to wait forever), and a refused
# connection fails at once. Whole seconds, as flask-limiter types its storage options.
REDIS_OPTIONS: dict[str, str | int] = {"socket_connect_timeout": 1, "socket_timeout": 1}
MEMORY_STORAGE = "memory://"


def limit_storage_options(uri: str) -> dict[str, str | int]:
    """Options for `limits.storage.storage_from_string(uri)`: timeouts for Redis."""
    return {} if uri == MEMORY_STORAGE else dict(REDIS_OPTIONS)


class StorageOutageLog:
    """Logs that the shared counters cannot be reached, at most once a minute per process.

    Both limits report here on every request that finds the storage down; an outage
    under load would otherwise write a line per request.
    """

    INTERVAL = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def note(self) -> None:
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.INTERVAL:
                return
            self._last = now
        log.warning(
            "rate_limit_storage_unavailable",
            detail="RATE_LIMIT_STORAGE_URI does not answer: both limits count in this "
            "process's memory until it does (logged at most once a minute).",
        )


class _LimiterLogger(logging.Logger):
    """flask-limiter's logger, its storage-outage warning sent to the StorageOutageLog.

    flask-limiter warns each time it falls back to memory, which a flapping Redis does
    as often as it flaps; everything else it logs passes through unchanged.
    """

    def __init__(self, outages: StorageOutageLog) -> None:
        super().__init__("flask-limiter")
        self.parent = logging.getLogger()
        self._outages = outages

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if str(msg).startswith("Rate limit storage unreachable"):
            self._outages.note()
            return
        super().warning(msg, *args, **kwargs)


class FailedKeyLimit:
    """Requests without a valid key, counted per client address at the RATE_LIMIT rate.

    The per-key limit cannot count them (there is no key), so without this a caller
    could try keys as fast as the server answers 401s. Past the limit, the address
    gets 429 with Retry-After until its window ends, for any key it sends.

    The counts live in RATE_LIMIT_STORAGE_URI, shared by every worker and instance.
    While that storage does not answer they are kept in this process's memory (as the
    per-key limit's are, see SECURITY.md), and the storage is tried again after
    RECHECK seconds, so a hanging Redis costs one timeout per RECHECK, not one per request.
    """

    RECHECK = 5.0

    def __init__(
        self,
        rate: str,
        *,
        storage_uri: str = MEMORY_STORAGE,
        outages: StorageOutageLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from limits import parse
        from limits.storage import MemoryStorage, storage_from_string
        from limits.strategies import FixedWindowRateLimiter

        self._rate = parse(rate)
        self._local = FixedWindowRateLimiter(MemoryStorage())
        self._storage = (
            None
            if storage_uri == MEMORY_STORAGE
            else storage_from_string(
                storage_uri, wrap_exceptions=True, **limit_storage_options(storage_uri)
            )
        )
        self._shared = None if self._storage is None else FixedWindowRateLimiter(self._storage)
        self._outages = outages or StorageOutageLog()
        self._clock = clock
        self._shared_down_until = 0.0

    def count(self, address: str) -> None:
        """Count one failure of `address`; raise KeyGuessingLimited when it is over the limit."""
        reset = self._on_counter(lambda counter: self._hit(counter, address))
        if reset is not None:
            raise KeyGuessingLimited(limit=self._rate.amount, reset_at=reset)

    def check(self, address: str) -> None:
        """Raise KeyGuessingLimited while `address` is over the limit, whatever key it sends.

        Checked before the key: were a right key let through, a guesser over the limit
        would go on at full speed and stop at the first 200. Behind a proxy this relies
        on TRUSTED_PROXIES naming the caller, or one guesser would lock out the proxy.
        """
        reset = self._on_counter(lambda counter: self._blocked_until(counter, address))
        if reset is not None:
            raise KeyGuessingLimited(limit=self._rate.amount, reset_at=reset)

    def _on_counter(self, use: Callable[[Any], float | None]) -> float | None:
        """`use` on the shared counter, or on this process's while the storage is down."""
        from limits.errors import StorageError

        counter = self._local
        if self._shared is not None and self._clock() >= self._shared_down_until:
            counter = self._shared
        try:
            return use(counter)
        except StorageError:
            self._shared_down_until = self._clock() + self.RECHECK
            self._outages.note()
            return use(self._local)

    def _blocked_until(self, counter: Any, address: str) -> float | None:
        """None while `address` may still fail, else when its window resets; counts nothing."""
        if counter.test(self._rate, "failed-key", address):
            return None
        reset: float = counter.get_window_stats(self._rate, "failed-key", address).reset_time
        return reset

    def close(self) -> None:
        """Close the connections to the shared storage; a served process just exits."""
        from limits.storage import RedisStorage

        if isinstance(self._storage, RedisStorage):
            self._storage.storage.close()

    def _hit(self, counter: Any, address: str) -> float | None:
        """Count on `counter`; None within the limit, else when the window resets."""
        if counter.hit(self._rate, "failed-key", address):
            return None
        reset: float = counter.get_window_stats(self._rate, "failed-key", address).reset_time
        return reset


class KeyGuessingLimited(TooManyRequests):
    """429 for an address over the failed-key limit, with the headers every 429 carries.

    The key check runs before flask-limiter's, so the limiter adds nothing to this
    answer: its `RateLimit-*` headers come from here. `RateLimit-Reset` is an epoch,
    as the limiter writes it; `_rate_limit_headers` turns both into seconds left.
    """

    def __init__(self, *, limit: int, reset_at: float) -> None:
        super().__init__(retry_after=max(1, math.ceil(reset_at - time.time())))
        self.rate_limit_headers = [
            ("RateLimit-Limit", str(limit)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", str(math.ceil(reset_at))),
        ]

    def get_headers(
        self, environ: dict[str, Any] | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        return [*super().get_headers(environ, scope), *self.rate_limit_headers]


def _refuse(problem: Unauthorized) -> NoReturn:
    """Raise `problem`, or 429 for an address that failed too often."""
    failures: FailedKeyLimit | None = current_app.extensions.get("failed_key_limit")
    if failures is not None:
        failures.count(request.remote_addr or "unknown")
    raise problem


def _require_key() -> None:
    g.client_key = None
    if _is_open_path() or _is_cors_preflight():
        return
    failures: FailedKeyLimit | None = current_app.extensions.get("failed_key_limit")
    if failures is not None:
        failures.check(request.remote_addr or "unknown")
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


def _note_own_retry_after(response: Response) -> Response:
    """Keep the answer's own Retry-After (a 503's, a 409's): flask-limiter writes over it."""
    g.own_retry_after = response.headers.get("Retry-After")
    return response


def _rate_limit_headers(response: Response) -> Response:
    """RateLimit-Reset in seconds left (flask-limiter gives an epoch); the limiter's
    Retry-After on 429 only, any other answer keeping its own."""
    headers = response.headers
    if "RateLimit-Reset" in headers:
        reset = int(headers["RateLimit-Reset"]) - int(time.time())
        headers["RateLimit-Reset"] = str(max(reset, 0))
        if response.status_code != 429:
            own: str | None = g.get("own_retry_after")
            if own is None:
                del headers["Retry-After"]
            else:
                headers["Retry-After"] = own
    return response


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


def rate_limit_key() -> str:
    """Whom a limit counts: the key's fingerprint, else the client's address."""
    return g.get("client_key") or request.remote_addr or "unknown"


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
    if app.config["RATE_LIMIT"]:
        from flask_limiter import Limiter

        # Registered before the limiter, so that it runs after the limiter adds its headers.
        app.after_request(_rate_limit_headers)

        storage_uri: str = app.config["RATE_LIMIT_STORAGE_URI"]
        outages = StorageOutageLog()
        if keys:
            app.extensions["failed_key_limit"] = FailedKeyLimit(
                app.config["RATE_LIMIT"], storage_uri=storage_uri, outages=outages
            )
        # Over the limit, flask-limiter raises TooManyRequests: problems renders it,
        # and the limiter adds RateLimit-* and Retry-After to that response. While the
        # storage does not answer it counts in memory and retries the storage now and then.
        limiter = Limiter(
            rate_limit_key,
            app=app,
            default_limits=[app.config["RATE_LIMIT"]],
            storage_uri=storage_uri,
            storage_options=limit_storage_options(storage_uri),
            in_memory_fallback_enabled=storage_uri != MEMORY_STORAGE,
            headers_enabled=True,
            header_name_mapping=_ratelimit_headers(),
        )
        limiter.logger = _LimiterLogger(outages)
        limiter.request_filter(_is_open_path)
        # Registered after the limiter, so that it runs before the limiter adds its headers.
        app.after_request(_note_own_retry_after)
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


def _ratelimit_headers() -> dict[Any, str]:
    from flask_limiter import HeaderNames

    return {
        HeaderNames.LIMIT: "RateLimit-Limit",
        HeaderNames.REMAINING: "RateLimit-Remaining",
        HeaderNames.RESET: "RateLimit-Reset",
        HeaderNames.RETRY_AFTER: "Retry-After",
    }
