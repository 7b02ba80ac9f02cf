"""Request metrics in CloudWatch Embedded Metric Format (EMF), carried by the access line.

Each request's access line is a JSON object; the fields below turn it into an EMF
record as well. CloudWatch Logs reads the `_aws` member of a Lambda function's log
lines and makes metrics of the members it names, with no API call and nothing sent
from the function (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html). On a server the same fields
are plain members of the same line, for whatever reads the logs.

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

from db import StoreError, StoreUnavailable

NAMESPACE = "customer-api"
DEFAULT_SERVICE = "customer-api"
UNMATCHED_ROUTE = "unmatched"

# The register client's exception names (as the access line notes them) to metric names.
REGISTER_OUTCOMES = {
    "ok": "RegisterOk",
    "BusinessNotFound": "RegisterNotFound",
    "UpstreamTimeout": "RegisterTimeout",
    "UpstreamUnavailable": "RegisterUnavailable",
    "BreakerOpen": "RegisterBreakerOpen",
    "UpstreamError": "RegisterError",
}
_OTHER_OUTCOME = "RegisterError"
_REGISTER_COUNTS = tuple(dict.fromkeys(REGISTER_OUTCOMES.values()))

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
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def request_fields(
    *,
    service: str,
    route: str | None,
    status: int | None,
    latency_ms: float,
    store_error: bool,
    upstream: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The members that make one access line an EMF record of the request's metrics.

    A request that never produced a status (the app raised past every handler) is
    counted as a 5xx, which is what the client gets from the server or API Gateway.
    """
    fields: dict[str, Any] = {
        "Service": service,
        "Route": route or UNMATCHED_ROUTE,
        "StatusClass": _STATUS_CLASSES.get((status or 500) // 100, "5xx"),
        "Requests": 1,
        "Latency": latency_ms,
        "StoreErrors": 1 if store_error else 0,
    }
    directives = [_REQUEST_METRICS]
    lookups = [call for call in upstream or () if call.get("service") == "business-register"]
    if lookups:
        fields.update(dict.fromkeys(_REGISTER_COUNTS, 0))
        for call in lookups:
            name = REGISTER_OUTCOMES.get(str(call.get("outcome")), _OTHER_OUTCOME)
            fields[name] += 1
        fields["RegisterLatency"] = [call.get("duration_ms", 0) for call in lookups]
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
