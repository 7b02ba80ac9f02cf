"""What Schemathesis needs to know of the document beyond JSON Schema (`make e2e`).

Loaded with SCHEMATHESIS_HOOKS=e2e.schemathesis_hooks. The document states three rules
in words because JSON Schema cannot; each is taught here the way the service itself
applies it, so that what Schemathesis generates as valid is valid:

- a business ID's check digit: the document names it as the format `fi-business-id`,
  generated here as seven digits with the check digit `is_valid_business_id` takes;
- a cursor is one the service made for the same filters (a page of customers), the
  same customer (a page of its history) or the feed (a page of events): in a positive
  case, a cursor the query cannot take becomes one the service makes for it, or for a
  history is left out (a link passes on the real one, and it is kept when it fits);
- an Idempotency-Key names one request: a positive case gets a key of its own, as a
  client makes one per request; the same key with another body is the documented 422.

The fourth, an If-Match naming the customer's current version, cannot be known before
the call; its 412 is allowed in e2e/schemathesis.toml.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from business_client import is_valid_business_id
from customers.paging import (
    InvalidCursor,
    decode_cursor,
    decode_events_cursor,
    decode_history_cursor,
    encode_cursor,
    encode_events_cursor,
)
from customers.schemas import BUSINESS_ID_FORMAT, CustomerFilter
from db import utc_timestamp

# A cursor's position, the keyset of a customer; any will do for a page that follows it.
START = ("2000-01-01T00:00:00.000000Z", "00000000-0000-0000-0000-000000000000")


def _with_check_digit(base: int) -> str | None:
    """`base` as NNNNNNN-C, or None for the bases no ID is issued for."""
    digits = f"{base:07d}"
    return next(
        (f"{digits}-{c}" for c in "0123456789" if is_valid_business_id(f"{digits}-{c}")), None
    )


schemathesis.openapi.format(
    BUSINESS_ID_FORMAT, st.integers(0, 9_999_999).map(_with_check_digit).filter(bool)
)


def _fitting_cursor(query: dict[str, Any]) -> str:
    """The query's cursor if it can take it, else one the service makes for its filters."""
    filters = CustomerFilter.model_validate(
        {name: query[name] for name in ("email", "businessId") if name in query}
    )
    try:
        decode_cursor(query["cursor"], email=filters.email, business_id=filters.businessId)
    except InvalidCursor:
        return encode_cursor(*START, email=filters.email, business_id=filters.businessId)
    return str(query["cursor"])


def _fits_history(cursor: str, customer_id: str) -> bool:
    """Whether the cursor is one of this customer's history (a link passes on the real one)."""
    try:
        decode_history_cursor(cursor, customer_id)
    except InvalidCursor:
        return False
    return True


def _fitting_events_cursor(cursor: str) -> str:
    """The cursor if it is one of the feed's, else one from the feed's start, made now
    (within the retention, so not the documented 410)."""
    try:
        decode_events_cursor(cursor)
    except InvalidCursor:
        return encode_events_cursor("0", utc_timestamp())
    return cursor


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.query and "cursor" in case.query:
        if case.operation.path == "/events":
            case.query["cursor"] = _fitting_events_cursor(case.query["cursor"])
        elif case.operation.path.endswith("/history"):
            # Left out when it is not the customer's: the first page is a valid request.
            if not _fits_history(case.query["cursor"], str(case.path_parameters["customerId"])):
                del case.query["cursor"]
        else:
            case.query["cursor"] = _fitting_cursor(case.query)
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
