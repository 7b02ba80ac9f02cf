"""Readiness: whether this instance can do its work now, for load balancers and probes.

`/health` is liveness: it answers while the process serves and the store answers a
read, cheaply, and a restart is what helps when it fails. `/health/ready` asks more:
that the store takes a write (a full disk, a read-only file or DynamoDB refusing
writes leave reads working while every create fails), and it says whether the
business register's breaker keeps lookups away, without failing on it: a register
that is down is no reason to take this instance out of service.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from business_client import BusinessClient
from customers.documented import documented, examples
from customers.openapi_parts import STORE_DOWN, content, open_errors, problem, ref
from customers.store_access import store
from customers.web.jsonio import json_response
from customers.web.problems import ServiceUnavailable
from db import StoreUnavailable

bp = Blueprint("readiness", __name__)


@bp.get("/health/ready")
@documented(
    "getReadiness",
    tag="service",
    summary="Readiness",
    description="200 while the store takes a write, else 503 naming what refused it (a full"
    " disk, a read-only file, DynamoDB). Says whether the business register's"
    " breaker is open without failing on it. Never needs a key, never rate limited.",
    responses={
        "200": {
            "description": "Ready for traffic.",
            "content": content(ref("Readiness"), examples=examples("readiness")),
        },
        **open_errors(),
        "503": problem("The store cannot take a write.", STORE_DOWN),
    },
)
def ready() -> Response:
    """Readiness: 200 while the store takes a write, else 503 naming what refused it."""
    customer_store = store()
    client: BusinessClient = current_app.extensions["business_client"]
    register = {"breaker": client.breaker_state}
    try:
        customer_store.check_writable()
    except StoreUnavailable as exc:
        raise ServiceUnavailable(
            f"The store cannot take a write ({exc}).",
            extra={
                "store": {"kind": customer_store.kind, "writable": False, "error": str(exc)},
                "register": register,
            },
        ) from exc
    return json_response(
        {
            "status": "ready",
            "store": {"kind": customer_store.kind, "writable": True},
            "register": register,
        }
    )
