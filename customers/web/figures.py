"""A request's figures, gathered once for everything that reports them.

The access line, CloudWatch's Embedded Metric Format (`metrics`) and Prometheus
(`prometheus`) all read the same `RequestFigures`, made once per request by the
access-line middleware, so the three never disagree on a route, a status or a count.
Every value that becomes a metric label is bounded: a route's template (never the
path), a known method or "OTHER", a status class, outcomes from fixed sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNMATCHED_ROUTE = "unmatched"
# Methods a label may name; any other a client sends is counted as OTHER.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
REGISTER_SERVICE = "business-register"
# The register client's outcomes as the access line notes them (its exception names);
# any other is an error.
REGISTER_OUTCOMES = (
    "ok",
    "BusinessNotFound",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "BreakerOpen",
    "UpstreamError",
)
OTHER_REGISTER_OUTCOME = "UpstreamError"
# What an Idempotency-Key led to (customers.idempotency), and what a rate limit refused.
IDEMPOTENCY_OUTCOMES = ("new", "replayed", "conflict", "mismatch", "limited")
RATE_LIMITS = ("requests", "failed_key")


@dataclass(slots=True, frozen=True)
class RegisterCall:
    """One lookup in the business register: its outcome (one of REGISTER_OUTCOMES) and time."""

    outcome: str
    duration_ms: float


@dataclass(slots=True, frozen=True)
class RequestFigures:
    """What one request counts for; `route` is "unmatched" when no route matched."""

    method: str
    route: str
    status: int | None
    latency_ms: float
    store_error: bool
    register_calls: tuple[RegisterCall, ...]
    idempotency: str | None
    rate_limited: str | None

    @property
    def status_class(self) -> str:
        """`2xx` ... `5xx`; a request that never produced a status counts as a 5xx, which
        is what the client gets from the server or API Gateway."""
        return _STATUS_CLASSES.get((self.status or 500) // 100, "5xx")

    @property
    def method_label(self) -> str:
        return self.method if self.method in KNOWN_METHODS else OTHER_METHOD


def register_calls(upstream: list[dict[str, Any]] | None) -> tuple[RegisterCall, ...]:
    """The register lookups among a request's upstream calls, outcomes bounded."""
    return tuple(
        RegisterCall(
            outcome=outcome if outcome in REGISTER_OUTCOMES else OTHER_REGISTER_OUTCOME,
            duration_ms=float(call.get("duration_ms", 0)),
        )
        for call in upstream or ()
        if call.get("service") == REGISTER_SERVICE
        for outcome in (str(call.get("outcome")),)
    )
