"""The routes at the service's root: `GET /`, which points at the rest, and `GET /health`."""

from __future__ import annotations

from flask import Blueprint, Response, request

from customers.documented import documented, examples
from customers.openapi_parts import STORE_DOWN, content, open_errors, problem, ref
from customers.store_access import store
from customers.web.jsonio import json_response

bp = Blueprint("index", __name__)


@bp.get("/")
@documented(
    "getIndex",
    tag="service",
    summary="Where to start",
    description="Links to the customers, this document and its docs page.",
    responses={
        "200": {
            "description": "The links.",
            "content": content(ref("Index"), examples=examples("index")),
        },
        **open_errors(),
    },
)
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


@bp.get("/health")
@documented(
    "getHealth",
    tag="service",
    summary="Liveness and store check",
    description="200 while the store answers, else 503. Never needs a key, never rate limited.",
    responses={
        "200": {
            "description": "Serving.",
            "content": content(ref("Health"), examples=examples("health")),
        },
        **open_errors(),
        "503": problem("The store does not answer.", STORE_DOWN),
    },
)
def health() -> Response:
    """Liveness: 200 while the store answers, else 503 (StoreUnavailable, in one place)."""
    customer_store = store()
    customer_store.ping()
    return json_response({"status": "ok", "store": customer_store.kind})
