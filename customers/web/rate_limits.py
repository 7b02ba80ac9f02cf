"""How often a caller may call: `RATE_LIMIT` per key, and the same rate for failed keys.

Two limits, both at the `RATE_LIMIT` rate (every limit it lists), both counted in
`RATE_LIMIT_STORAGE_URI`:

- The request limit (flask-limiter): one count per key across every route, the paths
  no route serves included; `/health`, `/openapi.json` and `/docs` are not counted.
  Without keys configured, one count per client and one per block (client_address).
- The failed-key limit (`FailedKeyLimit`): requests without a valid key, per client and
  per block, so keys cannot be guessed faster than the rate from one machine or from
  a whole block of addresses.

A block may make BLOCK_FACTOR times a client's count: enough that the clients of one
network (a campus, a carrier's NAT pool) do not shut each other out, while an attacker
holding 256 IPv4 or 65,536 IPv6 clients gets a few clients' worth, not all of them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from flask import Flask, Response, g, request
from werkzeug.exceptions import TooManyRequests

from customers.web.client_address import block_of, client_of

log = structlog.get_logger(__name__)

BLOCK_FACTOR = 4
UNKNOWN_ADDRESS = "unknown"

# Redis answers in well under a millisecond next to the service: a request waits at most
# a second on one that hangs (redis-py's default is to wait forever), and a refused
# connection fails at once. Whole seconds, as flask-limiter types its storage options.
REDIS_OPTIONS: dict[str, str | int] = {"socket_connect_timeout": 1, "socket_timeout": 1}
MEMORY_STORAGE = "memory://"


def limit_storage_options(uri: str) -> dict[str, str | int]:
    """Options for `limits.storage.storage_from_string(uri)`: timeouts for Redis."""
    return {} if uri == MEMORY_STORAGE else dict(REDIS_OPTIONS)


def block_rate(rate: str) -> str:
    """What a block may do: each limit in `rate` (`10/second;100/minute`) times BLOCK_FACTOR."""
    from limits import parse_many

    return ";".join(
        f"{item.amount * BLOCK_FACTOR} per {item.multiples} {item.GRANULARITY.name}"
        for item in parse_many(rate)
    )


def remote_address() -> str:
    """The caller's address, as the connection or the trusted proxies give it."""
    return request.remote_addr or UNKNOWN_ADDRESS


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
    """Requests without a valid key, counted per client and per block at the RATE_LIMIT rate.

    The per-key limit cannot count them (there is no key), so without this a caller
    could try keys as fast as the server answers 401s. Past the limit, the client (or
    every client of the block) gets 429 with Retry-After until its window ends, for any
    key it sends.

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
        from limits import parse_many
        from limits.storage import MemoryStorage, storage_from_string
        from limits.strategies import FixedWindowRateLimiter

        # (the limit, the counter's name, whom it counts): each of RATE_LIMIT's limits
        # per client, and BLOCK_FACTOR times it per block.
        self._limits = [
            *((item, "failed-key", client_of) for item in parse_many(rate)),
            *((item, "failed-key-block", block_of) for item in parse_many(block_rate(rate))),
        ]
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
        """Count one failure of `address`; raise KeyGuessingLimited when it is over a limit."""
        self._on_counter(lambda counter: self._over(counter.hit, counter, address))

    def check(self, address: str) -> None:
        """Raise KeyGuessingLimited while `address` is over a limit, whatever key it sends.

        Checked before the key: were a right key let through, a guesser over the limit
        would go on at full speed and stop at the first 200. Behind a proxy this relies
        on TRUSTED_PROXIES naming the caller, or one guesser would lock out the proxy.
        """
        self._on_counter(lambda counter: self._over(counter.test, counter, address))

    def _on_counter(self, use: Callable[[Any], None]) -> None:
        """`use` on the shared counter, or on this process's while the storage is down."""
        from limits.errors import StorageError

        counter = self._local
        if self._shared is not None and self._clock() >= self._shared_down_until:
            counter = self._shared
        try:
            use(counter)
        except StorageError:
            self._shared_down_until = self._clock() + self.RECHECK
            self._outages.note()
            use(self._local)

    def _over(self, within: Callable[..., bool], counter: Any, address: str) -> None:
        """Raise KeyGuessingLimited when `within` (the counter's hit or test) finds `address`
        over any limit, with the latest reset among those it is over."""
        over: list[tuple[float, int]] = []
        for item, name, whom in self._limits:
            if not within(item, name, whom(address)):
                stats = counter.get_window_stats(item, name, whom(address))
                over.append((stats.reset_time, item.amount))
        if over:
            reset_at, limit = max(over)
            raise KeyGuessingLimited(limit=limit, reset_at=reset_at)

    def close(self) -> None:
        """Close the connections to the shared storage; a served process just exits."""
        from limits.storage import RedisStorage

        if isinstance(self._storage, RedisStorage):
            self._storage.storage.close()


class KeyGuessingLimited(TooManyRequests):
    """429 for a client over the failed-key limit, with the headers every 429 carries.

    The key check runs before flask-limiter's, so the limiter adds nothing to this
    answer: its `RateLimit-*` headers come from here. `RateLimit-Reset` is an epoch,
    as the limiter writes it; `_rate_limit_headers` turns both into seconds left.
    """

    limit_name = "failed_key"  # the metrics' label (figures.RATE_LIMITS)

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


def rate_limit_key() -> str:
    """Whom a limit counts (requests, live idempotency keys): the key's client id, else the
    caller's client."""
    key: str | None = g.get("client_key")
    return key or client_of(remote_address())


def _rate_limit_block() -> str:
    return block_of(remote_address())


def _has_key() -> bool:
    return g.get("client_key") is not None


def _request_identity() -> str:
    """Every request is counted, the paths no route serves included (flask-limiter leaves
    requests without an endpoint uncounted); the limits are shared, so no count is per route."""
    return request.endpoint or "unrouted"


def init_app(app: Flask, *, keyed: bool, exempt: Callable[[], bool]) -> None:
    """The request limit and, with keys (`keyed`), the failed-key limit; `exempt` requests
    (the open paths) are not counted. Only when RATE_LIMIT is set."""
    rate: str = app.config["RATE_LIMIT"]
    if not rate:
        return
    from flask_limiter import ApplicationLimit, Limiter

    # Registered before the limiter, so that it runs after the limiter adds its headers.
    app.after_request(_rate_limit_headers)

    storage_uri: str = app.config["RATE_LIMIT_STORAGE_URI"]
    outages = StorageOutageLog()
    if keyed:
        app.extensions["failed_key_limit"] = FailedKeyLimit(
            rate, storage_uri=storage_uri, outages=outages
        )
    # Application limits, not default ones: flask-limiter counts a default limit per route,
    # an application limit once across all of them. Over the limit it raises
    # TooManyRequests: problems renders it, and the limiter adds RateLimit-* and
    # Retry-After to that response. While the storage does not answer it counts in
    # memory and retries the storage now and then.
    limiter = Limiter(
        rate_limit_key,
        app=app,
        application_limits=[
            ApplicationLimit(rate, scope="requests"),
            ApplicationLimit(
                block_rate(rate),
                key_function=_rate_limit_block,
                scope="block-requests",
                exempt_when=_has_key,
            ),
        ],
        request_identifier=_request_identity,
        storage_uri=storage_uri,
        storage_options=limit_storage_options(storage_uri),
        in_memory_fallback_enabled=storage_uri != MEMORY_STORAGE,
        headers_enabled=True,
        header_name_mapping=_ratelimit_headers(),
    )
    limiter.logger = _LimiterLogger(outages)
    limiter.request_filter(exempt)
    # Registered after the limiter, so that it runs before the limiter adds its headers.
    app.after_request(_note_own_retry_after)


def _ratelimit_headers() -> dict[Any, str]:
    from flask_limiter import HeaderNames

    return {
        HeaderNames.LIMIT: "RateLimit-Limit",
        HeaderNames.REMAINING: "RateLimit-Remaining",
        HeaderNames.RESET: "RateLimit-Reset",
        HeaderNames.RETRY_AFTER: "Retry-After",
    }
