"""The customers resource: its blueprint and views (parse, validate, call the store, answer).

Store errors (not found, email taken, version mismatch) pass through the views and
become problems in `customers.web.errors`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from customers.businesses import customer_with_business
from customers.idempotency import idempotent, recorded
from customers.paging import InvalidCursor, decode_cursor, encode_cursor
from customers.preconditions import etag_of, expected_version, read_entity_tags
from customers.request_input import json_body, query_args, validated
from customers.store_access import checked_id, find, store
from customers.web.jsonio import json_response
from customers.web.problems import PreconditionFailed, ValidationFailed, field_errors
from db import CustomerRecord, ListQuery

bp = Blueprint("customers", __name__)

# The pydantic models (customers.schemas) are imported by the first view that validates
# something, not at start-up: a Lambda container's first request is often a plain GET.

JSON_TYPES = frozenset({"application/json"})
PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
MAX_LIMIT, DEFAULT_LIMIT = 500, 100
# Left as they are in a query string, as Werkzeug's URL building does (WHATWG URL spec).
QUERY_SAFE = "!$'()*,/:;?@"


def parse_limit(raw: str | None) -> int:
    """`limit` as an int in 1..MAX_LIMIT; digits only, so '1e3' or ' 5' are a 400."""
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(
            "The query is not valid.",
            errors=field_errors([("limit", f"must be an integer from 1 to {MAX_LIMIT}")]),
        )
    return int(raw)


def customer_response(record: CustomerRecord, status: int = 200) -> Response:
    """The customer and its ETag."""
    response = json_response(record.to_public(), status)
    response.set_etag(etag_of(record))
    return response


def created_response(record: CustomerRecord) -> Response:
    """The 201 of a create: the customer, its ETag and Location."""
    response = customer_response(record, 201)
    # Ids are made by the server (UUIDs): nothing in them needs the quoting and rule
    # lookup of url_for, which cost a few µs on every create.
    response.headers["Location"] = f"{request.script_root}/customers/{record.id}"
    return response


@bp.post("/customers")
@idempotent
def create_customer() -> Response:
    """Create a customer; a retry with the same `Idempotency-Key` gets the first answer."""
    from customers.schemas import CustomerCreate

    query_args()
    data = validated(CustomerCreate, json_body(JSON_TYPES))
    record = store().create(
        name=data.name,
        email=data.email,
        phone=data.phone,
        business_id=data.businessId,
        idempotency=recorded(created_response),
    )
    return created_response(record)


@bp.get("/customers")
def list_customers() -> Response:
    """List customers, oldest first, a page at a time."""
    args = query_args("limit", "cursor", "email", "businessId")
    limit = parse_limit(args.get("limit"))
    # Checked and trimmed by the fields' own rules; the cursor and the next link carry the
    # trimmed values, so a padded filter and its plain form page alike.
    email = business_id = None
    if "email" in args or "businessId" in args:
        from customers.schemas import CustomerFilter

        filters = validated(
            CustomerFilter,
            {name: args[name] for name in ("email", "businessId") if name in args},
            detail="The query is not valid.",
        )
        email, business_id = filters.email, filters.businessId
    after = None
    if "cursor" in args:
        try:
            after = decode_cursor(args["cursor"], email=email, business_id=business_id)
        except InvalidCursor:
            raise ValidationFailed(
                "The cursor is not valid for this query.",
                errors=field_errors([("cursor", "is not a cursor this query made")]),
            ) from None
    page = store().list_json(
        ListQuery(limit=limit, after=after, email=email, business_id=business_id)
    )
    response = Response(page.body, mimetype="application/json")
    if page.has_more and page.last is not None:
        cursor = encode_cursor(*page.last, email=email, business_id=business_id)
        params: dict[str, Any] = {"limit": limit, "cursor": cursor}
        params.update({k: v for k, v in (("email", email), ("businessId", business_id)) if v})
        # What url_for would build, without its rule lookup (about 10 µs a page).
        query = urlencode(params, safe=QUERY_SAFE)
        response.headers["Link"] = f'<{request.script_root}/customers?{query}>; rel="next"'
        # The cursor alone too, so a client need not parse Link to walk the pages.
        response.headers["Next-Cursor"] = cursor
    return response


@bp.get("/customers/<customer_id>")
def get_customer(customer_id: str) -> Response:
    """Get one customer; `If-None-Match` with its ETag answers 304."""
    args = query_args("include")
    if args.get("include") not in (None, "business"):
        raise ValidationFailed(
            "The query is not valid.",
            errors=field_errors([("include", "the only value is 'business'")]),
        )
    record = find(customer_id)
    if "include" in args:
        return customer_with_business(record)
    tag = etag_of(record)
    # An If-None-Match that cannot be read matches nothing: the full answer is the safe one.
    if_none_match = read_entity_tags(request.headers.get("If-None-Match"))
    if if_none_match is not None and if_none_match.matches_weakly(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    return customer_response(record)


def _update(customer_id: str, changes: dict[str, str | None]) -> Response:
    expected = expected_version(customer_id)
    record = store().update(checked_id(customer_id), changes=changes, expected_version=expected)
    return customer_response(record)


@bp.patch("/customers/<customer_id>")
def patch_customer(customer_id: str) -> Response:
    """Change some fields (JSON merge patch); `null` clears an optional field."""
    from customers.schemas import COLUMN_OF, REQUIRED_FIELDS, CustomerPatch

    query_args()
    body = json_body(PATCH_TYPES)
    patch = validated(CustomerPatch, body)
    cleared = [name for name in REQUIRED_FIELDS if name in body and body[name] is None]
    if cleared:
        raise ValidationFailed(
            "The body has invalid fields.",
            errors=field_errors([(name, "is required and cannot be null") for name in cleared]),
        )
    changes = {COLUMN_OF[name]: getattr(patch, name) for name in patch.model_fields_set}
    if not changes:
        record = find(customer_id)
        expected = expected_version(customer_id)
        if expected is not None and expected != record.version:
            raise PreconditionFailed("If-Match does not match the customer's current ETag.")
        return customer_response(record)
    return _update(customer_id, changes)


@bp.put("/customers/<customer_id>")
def replace_customer(customer_id: str) -> Response:
    """Replace every writable field; an optional field left out is cleared."""
    from customers.schemas import COLUMN_OF, CustomerReplace

    query_args()
    data = validated(CustomerReplace, json_body(JSON_TYPES))
    changes = {column: getattr(data, name) for name, column in COLUMN_OF.items()}
    return _update(customer_id, changes)


@bp.delete("/customers/<customer_id>")
def delete_customer(customer_id: str) -> Response:
    """Delete a customer; with `If-Match`, only while it still has that ETag."""
    query_args()
    expected = expected_version(customer_id)
    store().delete(checked_id(customer_id), expected_version=expected)
    return Response(status=204)
