"""Request metrics in CloudWatch Embedded Metric Format (EMF), carried by the access line.

Each request's access line is a JSON object; the fields below turn it into an EMF
record as well. CloudWatch Logs reads the `_aws` member of a Lambda function's log
lines and makes metrics of the members it names, with no API call and nothing sent
from the function (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html). They are written only where
CloudWatch reads them: on Lambda, or with METRICS=emf (a server whose stdout goes to
CloudWatch Logs). A local access line has none of them: a server's metrics are
Prometheus's (`prometheus`, METRICS_PORT), from the same figures.

Metrics, namespace `customer-api`, dimension `Service` (the function's name, or
`customer-api` off Lambda), each also by `Route` (the route's template) and
`StatusClass` (`2xx` ... `5xx`):

    Requests      1 per request                          Count
    Latency       the request's time in the app           Milliseconds
    StoreErrors   1 when the store failed the request     Count
                  (not for its answers: 404, 409, 412)

and, by `Service` only, for requests that looked a company up in the register:

    RegisterOk, RegisterNotFound, RegisterTimeout,       Count (lookups with that outcome)
    RegisterUnavailable, RegisterBreakerOpen, RegisterError
    RegisterLatency                                      Milliseconds (one value per lookup)

A few lines of our own instead of aws-lambda-powertools' Metrics: that module brings
its own logger, typing and validation to import on every cold start, and its API
(a metrics object flushed by a decorator around the handler) would sit apart from the
access line that already has every figure.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from customers.web.figures import RequestFigures
from db import StoreError, StoreUnavailable

NAMESPACE = "customer-api"
DEFAULT_SERVICE = "customer-api"

# The register client's outcomes (figures.REGISTER_OUTCOMES) to metric names.
REGISTER_METRIC_NAMES = {
    "ok": "RegisterOk",
    "BusinessNotFound": "RegisterNotFound",
    "UpstreamTimeout": "RegisterTimeout",
    "UpstreamUnavailable": "RegisterUnavailable",
    "BreakerOpen": "RegisterBreakerOpen",
    "UpstreamError": "RegisterError",
}
_REGISTER_COUNTS = tuple(dict.fromkeys(REGISTER_METRIC_NAMES.values()))

_REQUEST_METRICS = {
    "Namespace": NAMESPACE,
    "Dimensions": [["Service"], ["Service", "Route", "StatusClass"]],
    "Metrics": [
        {"Name": "Requests", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds"},
        {"Name": "StoreErrors", "Unit": "Count"},
    ],
}
_REGISTER_METRICS = {
    "Namespace": NAMESPACE,
    "Dimensions": [["Service"]],
    "Metrics": [
        *({"Name": name, "Unit": "Count"} for name in _REGISTER_COUNTS),
        {"Name": "RegisterLatency", "Unit": "Milliseconds"},
    ],
}


def request_fields(figures: RequestFigures, *, service: str) -> dict[str, Any]:
    """The members that make one access line an EMF record of the request's metrics."""
    fields: dict[str, Any] = {
        "Service": service,
        "Route": figures.route,
        "StatusClass": figures.status_class,
        "Requests": 1,
        "Latency": figures.latency_ms,
        "StoreErrors": 1 if figures.store_error else 0,
    }
    directives = [_REQUEST_METRICS]
    if figures.register_calls:
        fields.update(dict.fromkeys(_REGISTER_COUNTS, 0))
        for call in figures.register_calls:
            fields[REGISTER_METRIC_NAMES[call.outcome]] += 1
        fields["RegisterLatency"] = [call.duration_ms for call in figures.register_calls]
        directives = [_REQUEST_METRICS, _REGISTER_METRICS]
    fields["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
    return fields


def is_store_error(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is the store failing, not the request.

    The store's own `StoreUnavailable`, SQLite's errors and botocore's (throttling, a
    table that is gone, no network) count. The store's other errors are its answers
    about the request (no such customer, a taken email, a stale version, an idempotency
    key taken over) and do not count, whatever they were raised from: a taken email is
    SQLite's IntegrityError or DynamoDB's cancelled transaction underneath. Nor does what
    is raised while handling one (a 409 for a key taken over). botocore's errors are
    known by their module, so that checking never imports it.
    """
    current: BaseException | None = exc
    for _ in range(3):  # the exception, and what it was raised from or while handling
        if current is None:
            return False
        if isinstance(current, StoreError):
            # The store's own verdict, whatever driver error it was raised from: a taken
            # email comes from an IntegrityError or a failed condition, and is no failure.
            return isinstance(current, StoreUnavailable)
        if isinstance(current, sqlite3.Error):
            return True
        if type(current).__module__.partition(".")[0] in ("botocore", "boto3"):
            return True
        current = current.__cause__ or current.__context__
    return False
