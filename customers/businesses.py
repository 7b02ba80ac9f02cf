"""The businesses resource: company details from the business register, by business ID
or by a customer's. Failed lookups pass through as the client's own errors and become
problems in `customers.web.errors`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app

from business_client import BusinessError, BusinessNotFound
from customers.documented import documented, examples, field_schema
from customers.openapi_parts import (
    HEADER_RETRY_AFTER_SENT,
    content,
    data_errors,
    problem,
    problems,
    ref,
)
from customers.request_input import query_args, validated
from customers.store_access import CUSTOMER_ID, find
from customers.web.errors import business_problem
from customers.web.jsonio import json_response
from customers.web.problems import NotFound
from customers.web.request_context import record_upstream_call

if TYPE_CHECKING:
    from business_client import BusinessClient
    from customers.register.models import Business
    from db import CustomerRecord

bp = Blueprint("businesses", __name__)

# What both lookups answer: the company, or the register's failure.
COMPANY = {
    "200": {
        "description": "The company.",
        "content": content(ref("Business"), examples=examples("business")),
    }
}
REGISTER_FAILED = {
    "502": problem("The business register failed.", "upstream-error"),
    "503": problem(
        "The business register is unavailable, the breaker is open, or too many lookups wait"
        " on it.",
        "upstream-unavailable",
        **{"Retry-After": HEADER_RETRY_AFTER_SENT},
    ),
    "504": problem("The business register did not answer in time.", "upstream-timeout"),
}


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
@documented(
    "getBusiness",
    tag="businesses",
    summary="Look a company up",
    description="The company with this business ID in the Finnish business register, in the"
    " service's own shape. An invalid ID is a 400 and no lookup is made.",
    parameters=[
        {
            "name": "businessId",
            "in": "path",
            "required": True,
            "description": "A Finnish business ID, checked and trimmed as the"
            " customer's `businessId` is; an invalid one is a 400.",
            "schema": field_schema("businessId"),
        }
    ],
    responses={
        **COMPANY,
        **problems(("404", "No company has this business ID.", "not-found")),
        **data_errors(body=False, query=True),
        **REGISTER_FAILED,
    },
)
def get_business(business_id: str) -> Response:
    """Look a company up in the Finnish business register by its business ID."""
    from customers.schemas import BusinessLookup  # pydantic, on the first lookup only

    query_args()
    path = validated(
        BusinessLookup, {"businessId": business_id}, detail="The business ID is not valid."
    )
    return business_response(lookup(path.businessId))


@bp.get("/customers/<customer_id>/business")
@documented(
    "getCustomerBusiness",
    tag="businesses",
    summary="Get a customer's company",
    description="The company of the customer's business ID, from the business register.",
    parameters=[CUSTOMER_ID],
    responses={
        **COMPANY,
        **problems(
            (
                "404",
                "No such customer, no business ID, or no such company; `detail` says which.",
                "not-found",
            )
        ),
        **data_errors(body=False, query=True),
        **REGISTER_FAILED,
    },
)
def get_customer_business(customer_id: str) -> Response:
    """The company of the customer's business ID."""
    query_args()
    record = find(customer_id)
    if record.business_id is None:
        raise NotFound("The customer has no business ID.")
    try:
        return business_response(lookup(record.business_id))
    except BusinessNotFound:
        # Said of the customer's company, so that it is not read as "no such customer".
        raise NotFound(
            "No company in the business register has the customer's business ID."
        ) from None


def customer_with_business(record: CustomerRecord) -> Response:
    """The customer with its company embedded; a failed lookup leaves `business` null."""
    body: dict[str, Any] = record.to_public()
    body["business"] = None
    if record.business_id is not None:
        try:
            body["business"] = lookup(record.business_id).model_dump(mode="json")
        except BusinessError as exc:
            body["businessError"] = business_problem(exc).to_dict()
    return json_response(body)
