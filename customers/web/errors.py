"""Domain errors to problems, in one place.

Views let the store's and the business client's own exceptions through; the
handlers registered here turn each into the problem a client sees. Neither the
store nor the client knows anything of HTTP.
"""

from __future__ import annotations

from flask import Flask, Response

from business_client import (
    BusinessError,
    BusinessNotFound,
    InvalidBusinessId,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from customers.web.problems import (
    BadGateway,
    EmailConflict,
    GatewayTimeout,
    IdempotencyKeyLimit,
    IdempotencyKeysExhaustedProblem,
    NotFound,
    PreconditionFailed,
    Problem,
    ServiceUnavailable,
    UpstreamUnavailableProblem,
    ValidationFailed,
    field_errors,
    render,
)
from db import (
    CustomerNotFound,
    EmailTaken,
    IdempotencyKeysExhausted,
    StoreError,
    StoreUnavailable,
    VersionMismatch,
)

NO_CUSTOMER = "No customer has this id."
NO_COMPANY = "No company in the business register has this business ID."
STALE = "If-Match does not match the customer's current ETag."


def store_problem(exc: StoreError) -> Problem:
    """The problem a client sees for a store error."""
    if isinstance(exc, CustomerNotFound):
        return NotFound(NO_CUSTOMER)
    if isinstance(exc, EmailTaken):
        return EmailConflict(
            "Another customer already uses this email.",
            errors=field_errors([("email", "is already in use")]),
        )
    if isinstance(exc, VersionMismatch):
        return PreconditionFailed(STALE)
    if isinstance(exc, StoreUnavailable):
        return ServiceUnavailable("The store does not answer.")
    if isinstance(exc, IdempotencyKeysExhausted):
        return idempotency_keys_problem(exc)
    raise exc


def idempotency_keys_problem(exc: IdempotencyKeysExhausted) -> Problem:
    """429 for a client at its own bound on live Idempotency-Key records, 503 for a store
    at the bound of all clients; both say when the oldest record in the way expires."""
    headers = {"Retry-After": str(exc.retry_after)}
    if exc.per_client:
        return IdempotencyKeyLimit(
            "This client holds as many live Idempotency-Key records as it may; use a new"
            " key after Retry-After seconds, when the oldest expires.",
            headers=headers,
        )
    return IdempotencyKeysExhaustedProblem(
        "The service holds as many Idempotency-Key records as it may; use a new key"
        " after Retry-After seconds, when the oldest expires.",
        headers=headers,
    )


def business_problem(exc: BusinessError) -> Problem:
    """The problem a client sees for a failed lookup in the business register."""
    if isinstance(exc, InvalidBusinessId):
        return ValidationFailed(
            "The business ID is not valid.", errors=field_errors([("businessId", str(exc))])
        )
    if isinstance(exc, BusinessNotFound):
        return NotFound(NO_COMPANY)
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


def _render_store_error(exc: StoreError) -> Response:
    return render(store_problem(exc))


def _render_business_error(exc: BusinessError) -> Response:
    return render(business_problem(exc))


def init_app(app: Flask) -> None:
    """Render the store's and the business client's errors as their problems."""
    app.register_error_handler(StoreError, _render_store_error)
    app.register_error_handler(BusinessError, _render_business_error)
