"""The customers resource: its blueprint and views (parse, validate, call the store, answer).

Store errors (not found, email taken, version mismatch) pass through the views and
become problems in `customers.web.errors`. Each view carries its own OpenAPI operation
(`@documented`), which `customers.openapi` puts in the document.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, request

from customers.answers import (
    ETAG_DESCRIPTION,
    HEADER_ETAG,
    created_response,
    customer_response,
    described_customer_answer,
)
from customers.businesses import customer_with_business
from customers.documented import documented, examples, field_schema
from customers.fields import FILTERABLE, REQUIRED_FIELDS, columns_of
from customers.idempotency import KEY_PARAMETER, REPLAYED, idempotent, recorded
from customers.openapi_examples import optional_fields
from customers.openapi_parts import (
    HEADER_RETRY_AFTER,
    JSON,
    MERGE_PATCH,
    RATE_LIMITED,
    RATE_LIMITED_HEADERS,
    content,
    data_errors,
    header,
    problem,
    problems,
    ref,
    request_body,
)
from customers.paging import (
    CURSOR_PARAMETER,
    LIMIT_PARAMETER,
    NEXT_PAGE_LINKS,
    PAGE_HEADERS,
    InvalidCursor,
    decode_cursor,
    decode_history_cursor,
    encode_cursor,
    encode_history_cursor,
    parse_limit,
)
from customers.preconditions import (
    IF_MATCH,
    STALE,
    etag_of,
    expected_version,
    read_entity_tags,
)
from customers.request_input import json_body, query_args, validated
from customers.store_access import CUSTOMER_ID, NO_CUSTOMER, checked_id, find, store, written_by
from customers.web.jsonio import json_response
from customers.web.problems import PreconditionFailed, ValidationFailed, field_errors
from db import Action, ListQuery, merge_update

bp = Blueprint("customers", __name__)

# The pydantic models (customers.schemas) are imported by the first view that validates
# something, not at start-up: a Lambda container's first request is often a plain GET.

JSON_TYPES = frozenset({JSON})
PATCH_TYPES = frozenset({JSON, MERGE_PATCH})
# Left as they are in a query string, as Werkzeug's URL building does (WHATWG URL spec).
QUERY_SAFE = "!$'()*,/:;?@"
FILTERS = tuple(field.api for field in FILTERABLE)
# The document's 409 of a change that would give the customer another's email.
TAKEN = ("409", "Another customer already uses this email; nothing changed.", "email-taken")


@bp.post("/customers")
@documented(
    "createCustomer",
    tag="customers",
    summary="Create a customer",
    description="Creates a customer from its writable fields; the answer carries the new"
    " customer, its `Location` and its `ETag`. Emails are unique, compared"
    " case-insensitively. With `Idempotency-Key`, a retry gets the first"
    " request's answer again (201, 400, 409 or 422, for 24 hours, with"
    " `Idempotent-Replayed: true`) instead of running again, or a 410 once the"
    " customer it created is deleted; keys are per API key.",
    parameters=[KEY_PARAMETER],
    body=request_body(
        "CustomerCreate",
        JSON,
        f"The new customer; {optional_fields()} left out are empty (`null`).",
        examples("create"),
    ),
    responses={
        **described_customer_answer(
            "201",
            "Created; or, with `Idempotent-Replayed: true`, the recorded answer of the first"
            " request with this `Idempotency-Key`.",
            Location=header("The new customer's path.", required=True),
            **REPLAYED,
        ),
        **data_errors(body=True, query=True, writes=True),
        "409": problem(  # recorded, so replayed too
            "Another customer already uses this email, or a request with this"
            " `Idempotency-Key` is still running (see `Retry-After`).",
            "email-taken",
            "idempotency-key-in-use",
            **{"Retry-After": HEADER_RETRY_AFTER},
            **REPLAYED,
        ),
        "410": problem(
            "The customer the first request with this `Idempotency-Key` created has been"
            " deleted since: its recorded answer was erased with it, nothing is created,"
            " and the key stays taken until its 24 hours end. The problem holds no"
            " customer data.",
            "customer-deleted",
            **REPLAYED,
        ),
        "422": problem(
            "This `Idempotency-Key` was used for another request.", "idempotency-key-reused"
        ),
        "429": problem(
            f"{RATE_LIMITED}, or this client holds as many live `Idempotency-Key` records as"
            " it may.",
            "rate-limited",
            "idempotency-key-limit",
            **RATE_LIMITED_HEADERS,
        ),
        "503": problem(
            "The service holds as many `Idempotency-Key` records as it may, or the store"
            " does not answer.",
            "idempotency-keys-exhausted",
            "service-unavailable",
            **{"Retry-After": HEADER_RETRY_AFTER},
        ),
    },
)
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
@documented(
    "listCustomers",
    tag="customers",
    summary="List customers",
    description="Customers oldest first (by `createdAt`, then `id`), a page at a time. When"
    " more follow, `Next-Cursor` holds the next page's cursor and `Link` its URL;"
    " a walk through the pages never repeats or skips a customer that existed"
    " when it began.",
    parameters=[
        LIMIT_PARAMETER,
        CURSOR_PARAMETER,
        {
            "name": "email",
            "in": "query",
            "description": "Only the customer with this email, compared case-insensitively;"
            " checked and trimmed as the field is.",
            "schema": field_schema("email"),
        },
        {
            "name": "businessId",
            "in": "query",
            "description": "Only customers with this business ID; checked and trimmed as the"
            " field is.",
            "schema": field_schema("businessId"),
        },
    ],
    responses={
        "200": {
            "description": "A page of customers.",
            "headers": PAGE_HEADERS,
            "content": content(
                {"type": "array", "items": ref("Customer")}, examples=examples("page")
            ),
            "links": NEXT_PAGE_LINKS,
        },
        **data_errors(body=False, query=True),
    },
)
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


@bp.get("/customers/<customer_id>/history")
@documented(
    "getCustomerHistory",
    tag="customers",
    summary="List a customer's changes",
    description="The customer's changes, oldest first (by `version`, gapless from the first"
    " one kept), paged as `GET /customers` is: `Next-Cursor` and `Link` while more"
    " follow. A write that changed no value made no entry. Entries are kept"
    " `HISTORY_RETENTION_DAYS` (365 by default) and go with the customer when it"
    " is deleted.",
    parameters=[CUSTOMER_ID, LIMIT_PARAMETER, CURSOR_PARAMETER],
    responses={
        "200": {
            "description": "A page of history entries.",
            "headers": PAGE_HEADERS,
            "content": content(
                {"type": "array", "items": ref("HistoryEntry")}, examples=examples("history")
            ),
        },
        **problems(NO_CUSTOMER),
        **data_errors(body=False, query=True),
    },
)
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
@documented(
    "getCustomer",
    tag="customers",
    summary="Get a customer",
    description="The customer and its `ETag`; `If-None-Match` with that tag answers 304."
    " With `include=business`, the company from the business register is"
    " embedded as `business`; a failed lookup leaves it `null` and says why in"
    " `businessError`, never failing the request. One schema for both answers,"
    " so that every generated client reads `business` when it is there.",
    parameters=[
        CUSTOMER_ID,
        {
            "name": "include",
            "in": "query",
            "description": "`business` embeds the customer's company.",
            "schema": {"type": "string", "enum": ["business"]},
        },
        {
            "name": "If-None-Match",
            "in": "header",
            "description": "Answer 304 if the customer still has one of these ETags (weak or"
            " strong). Any value is taken: one that is not a list of entity tags matches"
            " nothing, so the full answer comes.",
            "schema": {"type": "string", "examples": ['"1"']},
        },
    ],
    responses={
        "200": {
            "description": "The customer; with include=business, its company too.",
            "headers": {
                "ETag": header(
                    f"{ETAG_DESCRIPTION} Absent with include=business: that answer holds the"
                    " register's data too."
                )
            },
            "content": content(
                ref("CustomerWithBusiness"), examples=examples("customerWithBusiness")
            ),
        },
        "304": {
            "description": "Not modified since the ETag given.",
            "headers": {"ETag": HEADER_ETAG},
        },
        **problems(NO_CUSTOMER),
        **data_errors(body=False, query=True),
    },
)
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
@documented(
    "patchCustomer",
    tag="customers",
    summary="Change some fields",
    description="A JSON merge patch (RFC 7396): fields left out stay, `null` clears an"
    " optional field. Sent as `application/merge-patch+json`; plain"
    " `application/json` is accepted too. With `If-Match`, only if the customer"
    " is unchanged since.",
    parameters=[CUSTOMER_ID, IF_MATCH],
    body=request_body(
        "CustomerPatch",
        MERGE_PATCH,
        "The fields to change: a member left out stays as it is; `null` clears"
        f" {optional_fields().replace(' and ', ' or ')}.",
        examples("patch"),
    ),
    responses={
        **described_customer_answer("200", "Changed."),
        **problems(NO_CUSTOMER, TAKEN, STALE),
        **data_errors(body=True, query=True, writes=True),
    },
)
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
@documented(
    "replaceCustomer",
    tag="customers",
    summary="Replace a customer",
    description="Replaces every writable field; an optional field left out is cleared. With"
    " `If-Match`, only if the customer is unchanged since.",
    parameters=[CUSTOMER_ID, IF_MATCH],
    body=request_body(
        "CustomerReplace",
        JSON,
        f"Every writable field; {optional_fields()} left out are cleared.",
        examples("replace"),
    ),
    responses={
        **described_customer_answer("200", "Replaced."),
        **problems(NO_CUSTOMER, TAKEN, STALE),
        **data_errors(body=True, query=True, writes=True),
    },
)
def replace_customer(customer_id: str) -> Response:
    """Replace every writable field; an optional field left out is cleared."""
    from customers.schemas import CustomerReplace

    query_args()
    data = validated(CustomerReplace, json_body(JSON_TYPES))
    return _update(customer_id, columns_of(data.model_dump()), merge=False, action="replaced")


@bp.delete("/customers/<customer_id>")
@documented(
    "deleteCustomer",
    tag="customers",
    summary="Delete a customer",
    description="Deletes the customer, its change history and the personal data in the"
    " recorded answer of the create that made it (a retry of that create is then a 410),"
    " and frees its email. With `If-Match`, only if the customer is unchanged since.",
    parameters=[CUSTOMER_ID, IF_MATCH],
    responses={
        "204": {"description": "Deleted; no body."},
        **problems(NO_CUSTOMER, STALE),
        **data_errors(body=False, query=True, writes=True),
    },
)
def delete_customer(customer_id: str) -> Response:
    """Delete a customer; with `If-Match`, only while it still has that ETag."""
    query_args()
    expected = expected_version(customer_id)
    store().delete(checked_id(customer_id), expected_version=expected)
    return Response(status=204)
