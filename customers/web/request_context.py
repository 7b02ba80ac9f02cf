"""What the service knows of the request being served, kept in its WSGI environ.

The request id, the matched route, upstream calls and the idempotency outcome
are noted here while a request runs; the access line (`access_log`) reads them
after Flask has let go of the request object.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Flask, Request, request
from werkzeug.exceptions import TooManyRequests
from werkzeug.routing import Rule

from customers.web import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

ENVIRON_REQUEST_ID = "customer_api.request_id"
ENVIRON_UPSTREAM = "customer_api.upstream_calls"
ENVIRON_RULE = "customer_api.url_rule"
ENVIRON_STORE_ERROR = "customer_api.store_error"
ENVIRON_IDEMPOTENCY = "customer_api.idempotency"
ENVIRON_RATE_LIMITED = "customer_api.rate_limited"
ENVIRON_TRACE_ID = "customer_api.trace_id"


class RoutedRequest(Request):
    """Flask's request, keeping its matched URL rule in the WSGI environ.

    Flask lets go of the request object before the access line is written; the
    environ outlives it, so the route is read from there.
    """

    @property
    def url_rule(self) -> Rule | None:
        rule: Rule | None = self.environ.get(ENVIRON_RULE)
        return rule

    @url_rule.setter
    def url_rule(self, rule: Rule | None) -> None:
        self.environ[ENVIRON_RULE] = rule


def request_id_for(environ: dict[str, Any]) -> str:
    """The client's sane X-Request-ID, else the Lambda invocation's id, else a fresh one."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    if _SANE_REQUEST_ID.fullmatch(given):
        return str(given)
    aws_request_id = getattr(environ.get("apig_wsgi.context"), "aws_request_id", None)
    if isinstance(aws_request_id, str) and _SANE_REQUEST_ID.fullmatch(aws_request_id):
        return aws_request_id
    return os.urandom(16).hex()


def log_context(environ: dict[str, Any], request_id: str) -> dict[str, Any]:
    """What every line logged for this request carries; on Lambda, the invocation's ids too."""
    context: dict[str, Any] = {"request_id": request_id}
    aws_request_id = getattr(environ.get("apig_wsgi.context"), "aws_request_id", None)
    if isinstance(aws_request_id, str):
        context["aws_request_id"] = aws_request_id
    request_context = environ.get("apig_wsgi.request_context")
    if isinstance(request_context, dict) and request_context.get("requestId"):
        context["apigw_request_id"] = str(request_context["requestId"])
    return context


def current_request_id() -> str | None:
    """The id of the request being served."""
    request_id: str | None = request.environ.get(ENVIRON_REQUEST_ID)
    return request_id


def current_route() -> str | None:
    """The matched route's template (`/customers/<customer_id>`), never the path's values."""
    rule: Rule | None = request.environ.get(ENVIRON_RULE)
    return rule.rule if rule is not None else None


def record_upstream_call(summary: dict[str, Any]) -> None:
    """Note an upstream call for the request's access line."""
    request.environ.setdefault(ENVIRON_UPSTREAM, []).append(summary)


def record_exception(exc: BaseException) -> None:
    """Note, for the access line's metrics, a request the store failed or a limit refused.

    A rate limit's refusal is Werkzeug's TooManyRequests (flask-limiter's, or the
    failed-key limit's, which names itself in `limit_name`); the 429 for a client's
    idempotency records is the service's own problem, and no rate limit.
    """
    if metrics.is_store_error(exc):
        request.environ[ENVIRON_STORE_ERROR] = True
    elif isinstance(exc, TooManyRequests):
        request.environ[ENVIRON_RATE_LIMITED] = getattr(exc, "limit_name", "requests")


def record_idempotency(outcome: str) -> None:
    """Note for the request's access line what its Idempotency-Key led to (never the key)."""
    request.environ[ENVIRON_IDEMPOTENCY] = outcome


def init_app(app: Flask) -> None:
    """Keep each request's URL rule where the access line can read it."""
    app.request_class = RoutedRequest
