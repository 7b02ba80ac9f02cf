"""Prometheus metrics: counted in each worker, served by the main process on METRICS_PORT.

Imported only when METRICS_PORT is set, so neither the Lambda cold start nor a server
without it imports prometheus_client.

Several granian workers each count their own requests. prometheus_client's
multiprocess mode keeps every worker's values in files of one directory, and one
collector adds them up at scrape time (see `metrics_server`, which `serving.main` runs
in the main process). A worker that ends is marked dead, so its breaker no longer
counts as open.

Every label is bounded (see `figures`): a route's template, a known method, a status
class, outcomes from fixed sets; never a path, an id or a key.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from customers.web.figures import RequestFigures

PREFIX = "customer_api"
# Seconds: a get from memory takes well under a millisecond, a lookup in the register
# up to BUSINESS_DEADLINE (8 s by default).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_LABELS = ("route", "method", "status_class")


class PrometheusRecorder:
    """The service's metrics, fed each request's figures by the access-line middleware.

    A registry of its own per app, so that every test app starts from zero; in
    multiprocess mode the values live in the shared directory whatever the registry.
    """

    def __init__(self, breaker_state: Callable[[], str]) -> None:
        self.registry = CollectorRegistry()
        self._breaker_state = breaker_state
        self.requests = Counter(
            f"{PREFIX}_requests", "Requests answered.", _REQUEST_LABELS, registry=self.registry
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from the request's arrival in the app to its answer.",
            _REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            f"{PREFIX}_store_errors",
            "Requests the store failed (not its answers: 404, 409, 412).",
            ("route",),
            registry=self.registry,
        )
        self.register_calls = Counter(
            f"{PREFIX}_register_calls",
            "Lookups in the business register.",
            ("outcome",),
            registry=self.registry,
        )
        self.register_latency = Histogram(
            f"{PREFIX}_register_call_duration_seconds",
            "Time of one lookup in the business register, retries included.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            f"{PREFIX}_register_breaker_open",
            "1 while a worker's breaker keeps lookups away from the register.",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.idempotency = Counter(
            f"{PREFIX}_idempotency",
            "What creates with an Idempotency-Key led to.",
            ("outcome",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited",
            "Requests a rate limit refused (429).",
            ("limit",),
            registry=self.registry,
        )

    def observe(self, figures: RequestFigures) -> None:
        """Count one request."""
        labels = (figures.route, figures.method_label, figures.status_class)
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(figures.latency_ms / 1000)
        if figures.store_error:
            self.store_errors.labels(figures.route).inc()
        for call in figures.register_calls:
            self.register_calls.labels(call.outcome).inc()
            self.register_latency.observe(call.duration_ms / 1000)
        if figures.register_calls:
            self.breaker_open.set(1 if self._breaker_state() == "open" else 0)
        if figures.idempotency:
            self.idempotency.labels(figures.idempotency).inc()
        if figures.rate_limited:
            self.rate_limited.labels(figures.rate_limited).inc()


def mark_worker_dead() -> None:
    """Drop this process's live gauges (the breaker's) from what is collected."""
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
