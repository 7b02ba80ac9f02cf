"""The customers resource: its blueprint and views (parse, validate, call the store, answer).

Store errors (not found, email taken, version mismatch) pass through the views and
become problems in `customers.web.errors`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, request

from customers.businesses import customer_with_business
from customers.fields import FILTERABLE, REQUIRED_FIELDS, columns_of
from customers.idempotency import idempotent, recorded
from customers.paging import (
    InvalidCursor,
    decode_cursor,
    decode_history_cursor,
    encode_cursor,
    encode_history_cursor,
)
from customers.preconditions import read_entity_tags
from customers.view_helpers import (
    checked_id,
    customer_response,
    etag_of,
    expected_version,
    find,
    json_body,
    query_args,
    store,
    validated,
    written_by,
)
from customers.web.jsonio import json_response
from customers.web.problems import PreconditionFailed, ValidationFailed, field_errors
from db import Action, CustomerRecord, ListQuery, merge_update

bp = Blueprint("customers", __name__)

# The pydantic models (customers.schemas) are imported by the first view that validates
# something, not at start-up: a Lambda container's first request is often a plain GET.

JSON_TYPES = frozenset({"application/json"})
PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
MAX_LIMIT, DEFAULT_LIMIT = 500, 100
FILTERS = tuple(field.api for field in FILTERABLE)
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


def invalid_cursor() -> ValidationFailed:
    """The 400 of a cursor that this query did not make."""
    return ValidationFailed(
        "The cursor is not valid for this query.",
        errors=field_errors([("cursor", "is not a cursor this query made")]),
    )


def link_next(response: Response, path: str, params: dict[str, Any]) -> None:
    """Point `response` at the next page: `Link` to it, and its cursor in `Next-Cursor`."""
    # What url_for would build, without its rule lookup (about 10 µs a page).
    query = urlencode(params, safe=QUERY_SAFE)
    response.headers["Link"] = f'<{request.script_root}{path}?{query}>; rel="next"'
    # The cursor alone too, so a client need not parse Link to walk the pages.
    response.headers["Next-Cursor"] = params["cursor"]


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
        **columns_of(data.model_dump()),
        idempotency=recorded(created_response),
        by=written_by(),
    )
    return created_response(record)


@bp.get("/customers")
def list_customers() -> Response:
    """List customers, oldest first, a page at a time."""
    args = query_args("limit", "cursor", *FILTERS)
    limit = parse_limit(args.get("limit"))
    # Checked and trimmed by the fields' own rules; the cursor and the next link carry the
    # trimmed values, so a padded filter and its plain form page alike.
    email = business_id = None
    if any(name in args for name in FILTERS):
        from customers.schemas import CustomerFilter

        filters = validated(
            CustomerFilter,
            {name: args[name] for name in FILTERS if name in args},
            detail="The query is not valid.",
        ).model_dump()
        email, business_id = filters["email"], filters["businessId"]
    after = None
    if "cursor" in args:
        try:
            after = decode_cursor(args["cursor"], email=email, business_id=business_id)
        except InvalidCursor:
            raise invalid_cursor() from None
    page = store().list_json(
        ListQuery(limit=limit, after=after, email=email, business_id=business_id)
    )
    response = Response(page.body, mimetype="application/json")
    if page.has_more and page.last is not None:
        cursor = encode_cursor(*page.last, email=email, business_id=business_id)
        params: dict[str, Any] = {"limit": limit, "cursor": cursor}
        params.update({k: v for k, v in (("email", email), ("businessId", business_id)) if v})
        link_next(response, "/customers", params)
    return response


@bp.get("/customers/<customer_id>/history")
def customer_history(customer_id: str) -> Response:
    """List a customer's changes, oldest first, a page at a time."""
    args = query_args("limit", "cursor")
    limit = parse_limit(args.get("limit"))
    after = None
    if "cursor" in args:
        try:
            after = decode_history_cursor(args["cursor"], customer_id)
        except InvalidCursor:
            raise invalid_cursor() from None
    page = store().history_page(checked_id(customer_id), limit=limit, after=after)
    response = json_response([entry.to_public() for entry in page.items])
    if page.has_more:
        cursor = encode_history_cursor(page.items[-1].version, customer_id)
        path = f"/customers/{quote(customer_id, safe='')}/history"
        link_next(response, path, {"limit": limit, "cursor": cursor})
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


def _update(customer_id: str, changes: dict[str, Any], *, merge: bool, action: Action) -> Response:
    """Write `changes` (columns); a merge patch merges the objects it holds into the
    stored ones, a replacement sets every field as given."""
    expected = expected_version(customer_id)
    if merge:
        record = merge_update(
            store(), checked_id(customer_id), changes, expected_version=expected, by=written_by()
        )
    else:
        record = store().update(
            checked_id(customer_id),
            changes=changes,
            expected_version=expected,
            action=action,
            by=written_by(),
        )
    return customer_response(record)


@bp.patch("/customers/<customer_id>")
def patch_customer(customer_id: str) -> Response:
    """Change some fields (JSON merge patch); `null` clears an optional field."""
    from customers.schemas import CustomerPatch

    query_args()
    body = json_body(PATCH_TYPES)
    patch = validated(CustomerPatch, body)
    cleared = [name for name in REQUIRED_FIELDS if name in body and body[name] is None]
    if cleared:
        raise ValidationFailed(
            "The body has invalid fields.",
            errors=field_errors([(name, "is required and cannot be null") for name in cleared]),
        )
    # The members given, as given: a nested object is a merge patch of its own.
    changes = columns_of(patch.model_dump(include=patch.model_fields_set, exclude_unset=True))
    if not changes:
        record = find(customer_id)
        expected = expected_version(customer_id)
        if expected is not None and expected != record.version:
            raise PreconditionFailed("If-Match does not match the customer's current ETag.")
        return customer_response(record)
    return _update(customer_id, changes, merge=True, action="updated")


@bp.put("/customers/<customer_id>")
def replace_customer(customer_id: str) -> Response:
    """Replace every writable field; an optional field left out is cleared."""
    from customers.schemas import CustomerReplace

    query_args()
    data = validated(CustomerReplace, json_body(JSON_TYPES))
    return _update(customer_id, columns_of(data.model_dump()), merge=False, action="replaced")


@bp.delete("/customers/<customer_id>")
def delete_customer(customer_id: str) -> Response:
    """Delete a customer; with `If-Match`, only while it still has that ETag."""
    query_args()
    expected = expected_version(customer_id)
    store().delete(checked_id(customer_id), expected_version=expected)
    return Response(status=204)
