"""Company details from the business register, and its failures mapped to HTTP once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Response, current_app

from business_client import (
    BusinessError,
    BusinessNotFound,
    InvalidBusinessId,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from customers import bp
from customers.routes import find, query_args, validated
from jsonio import json_response
from logs import record_upstream_call
from problems import NotFound, Problem, ValidationFailed, field_errors

if TYPE_CHECKING:
    from business_client import BusinessClient
    from business_models import Business
    from db import CustomerRecord


class BadGateway(Problem):
    """The register answered with an error or with something that is not its JSON."""

    status, title, slug = 502, "Bad Gateway", "upstream-error"


class UpstreamUnavailableProblem(Problem):
    """The register is unavailable for now, or the breaker keeps calls away from it."""

    status, title, slug = 503, "Service Unavailable", "upstream-unavailable"


class GatewayTimeout(Problem):
    """The register did not answer within the deadline."""

    status, title, slug = 504, "Gateway Timeout", "upstream-timeout"


NO_COMPANY = "No company in the business register has this business ID."


def problem_for(exc: BusinessError, *, not_found: str = NO_COMPANY) -> Problem:
    """The problem a client sees for a failed lookup."""
    if isinstance(exc, InvalidBusinessId):
        return ValidationFailed(
            "The business ID is not valid.", errors=field_errors([("businessId", str(exc))])
        )
    if isinstance(exc, BusinessNotFound):
        return NotFound(not_found)
    if isinstance(exc, UpstreamUnavailable):
        return UpstreamUnavailableProblem(
            "The business register is unavailable; retry later.",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, UpstreamTimeout):
        return GatewayTimeout("The business register did not answer in time.")
    if isinstance(exc, UpstreamError):
        # The client's messages name what went wrong and never carry upstream content.
        return BadGateway(str(exc))
    return BadGateway("The business lookup failed.")


def lookup(business_id: str) -> Business:
    """The company for `business_id`, noting the outcome for the access log line."""
    client: BusinessClient = current_app.extensions["business_client"]
    started = time.perf_counter()
    outcome = "ok"
    try:
        return client.lookup(business_id)
    except BusinessError as exc:
        outcome = type(exc).__name__
        raise
    finally:
        record_upstream_call(
            {
                "service": "business-register",
                "outcome": outcome,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )


def business_response(business: Business) -> Response:
    return json_response(business.model_dump(mode="json"))


@bp.get("/businesses/<business_id>")
def get_business(business_id: str) -> Response:
    """Look a company up in the Finnish business register by its business ID."""
    from customers.schemas import BusinessLookup  # pydantic, on the first lookup only

    query_args()
    path = validated(
        BusinessLookup, {"businessId": business_id}, detail="The business ID is not valid."
    )
    try:
        return business_response(lookup(path.businessId))
    except BusinessError as exc:
        raise problem_for(exc) from None


@bp.get("/customers/<customer_id>/business")
def get_customer_business(customer_id: str) -> Response:
    """The company of the customer's business ID."""
    query_args()
    record = find(customer_id)
    if record.business_id is None:
        raise NotFound("The customer has no business ID.")
    try:
        return business_response(lookup(record.business_id))
    except BusinessError as exc:
        raise problem_for(
            exc, not_found="No company in the business register has the customer's business ID."
        ) from None


def customer_with_business(record: CustomerRecord) -> Response:
    """The customer with its company embedded; a failed lookup leaves `business` null."""
    body: dict[str, Any] = record.to_public()
    body["business"] = None
    if record.business_id is not None:
        try:
            body["business"] = lookup(record.business_id).model_dump(mode="json")
        except BusinessError as exc:
            body["businessError"] = problem_for(exc).to_dict()
    return json_response(body)
