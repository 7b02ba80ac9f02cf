"""Customer views: parse, validate, call the store, shape the answer."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from flask import Response, current_app, request

from customers import bp
from customers.paging import InvalidCursor, decode_cursor, encode_cursor
from customers.preconditions import read_entity_tags
from db import MAX_VERSION, CustomerNotFound, CustomerRecord, EmailTaken, VersionMismatch
from jsonio import json_response
from problems import (
    EmailConflict,
    NotFound,
    PreconditionFailed,
    UnsupportedMediaType,
    ValidationFailed,
    field_errors,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from db import CustomerStore

# The pydantic models (customers.schemas) are imported by the first view that validates
# something, not at start-up: a Lambda container's first request is often a plain GET.

JSON_TYPES = frozenset({"application/json"})
PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
MAX_LIMIT, DEFAULT_LIMIT = 500, 100
MAX_ID_LENGTH = 64
# The ETag of a version: its decimal digits, without leading zeros (see etag_of).
VERSION_TAG = re.compile(r"[1-9][0-9]{0,18}")
# Left as they are in a query string, as Werkzeug's URL building does (WHATWG URL spec).
QUERY_SAFE = "!$'()*,/:;?@"


def store() -> CustomerStore:
    """The app's customer store."""
    customer_store: CustomerStore = current_app.extensions["customer_store"]
    return customer_store


# --- request parsing -------------------------------------------------------------------


def query_args(*allowed: str) -> dict[str, str]:
    """The query parameters as single values; unknown or repeated ones are a 400."""
    if not request.query_string:
        return {}
    errors = [
        (name, "is not a known query parameter") for name in request.args if name not in allowed
    ]
    errors += [
        (name, "must be given at most once")
        for name, values in request.args.lists()
        if name in allowed and len(values) > 1
    ]
    if errors:
        raise ValidationFailed("The query is not valid.", errors=field_errors(errors))
    return request.args.to_dict()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # One pass: counting each name again would be quadratic in a body of many members.
        seen: set[str] = set()
        duplicate = ""
        for name, _ in pairs:
            if name in seen:
                duplicate = name
                break
            seen.add(name)
        raise ValidationFailed(
            "The body has a member more than once.",
            errors=field_errors([(duplicate, "is given more than once")]),
        )
    return result


def json_body(allowed_types: frozenset[str]) -> dict[str, Any]:
    """The body as a JSON object; 415 for other media types, 400 for anything malformed."""
    if request.mimetype not in allowed_types:
        raise UnsupportedMediaType(f"Send the body as {' or '.join(sorted(allowed_types))}.")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("Send the body encoded as UTF-8.")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError:
        raise ValidationFailed("The body is not valid UTF-8.") from None
    except RecursionError:
        raise ValidationFailed("The body is nested too deeply.") from None
    except ValueError:
        raise ValidationFailed("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.")
    return body


M = TypeVar("M", bound="BaseModel")


def validated(
    model: type[M], body: dict[str, Any], *, detail: str = "The body has invalid fields."
) -> M:
    """`body` checked against `model`; every bad field is named in one 400."""
    from pydantic import ValidationError

    from customers.schemas import describe_errors

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(detail, errors=field_errors(describe_errors(exc))) from None


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


def expected_version(customer_id: str) -> int | None:
    """The version a write must find, from `If-Match` and `If-None-Match`; None without them.

    Raises the 412 problem when a condition is false or cannot be read, and the 404
    problem first when the customer does not exist: RFC 9110 §13.2.1 has preconditions
    ignored when the request would fail without them. One strong tag goes to the store,
    which compares it atomically; other conditions are checked against a read, and the
    write is pinned to the version read, so a change in between is a 412 as well.
    """
    if_match = read_entity_tags(request.headers.get("If-Match"))
    if_none_match = read_entity_tags(request.headers.get("If-None-Match"))
    if if_none_match is None:
        if if_match is None or if_match.star:  # `*`: any version; the store answers 404
            return None
        if len(if_match.strong) == 1:
            version = version_of(next(iter(if_match.strong)))
            if version is not None:
                return version
    current = find(customer_id)
    etag = etag_of(current)
    if if_match is not None and not if_match.matches_strongly(etag):
        raise PreconditionFailed(
            "If-Match does not match the customer's current ETag."
            if if_match.readable
            else "If-Match is not a list of entity tags, so it matches no ETag."
        )
    if if_none_match is not None and (
        not if_none_match.readable or if_none_match.matches_weakly(etag)
    ):
        raise PreconditionFailed(
            "If-None-Match matches the customer's current ETag."
            if if_none_match.readable
            else "If-None-Match is not a list of entity tags, so it cannot be evaluated."
        )
    return current.version


# --- response shaping ------------------------------------------------------------------


def etag_of(record: CustomerRecord) -> str:
    """The strong entity tag of the customer's current version."""
    return str(record.version)


def version_of(etag: str) -> int | None:
    """The version whose ETag is `etag`; None when no version can have it.

    Compared as text, as a strong comparison must be: "01" is not the ETag of version 1,
    and digits beyond any version are never converted (int() refuses 4301 digits).
    """
    if VERSION_TAG.fullmatch(etag) and (version := int(etag)) <= MAX_VERSION:
        return version
    return None


def customer_response(record: CustomerRecord, status: int = 200) -> Response:
    response = json_response(record.to_public(), status)
    response.set_etag(etag_of(record))
    return response


def find(customer_id: str) -> CustomerRecord:
    """The customer with this id; raises the 404 problem."""
    try:
        if len(customer_id) > MAX_ID_LENGTH:
            raise CustomerNotFound(customer_id)
        return store().get(customer_id)
    except CustomerNotFound:
        raise NotFound("No customer has this id.") from None


def _conflict() -> EmailConflict:
    return EmailConflict(
        "Another customer already uses this email.",
        errors=field_errors([("email", "is already in use")]),
    )


# --- views -----------------------------------------------------------------------------


@bp.post("/customers")
def create_customer() -> Response:
    """Create a customer."""
    from customers.schemas import CustomerCreate

    query_args()
    data = validated(CustomerCreate, json_body(JSON_TYPES))
    try:
        record = store().create(
            name=data.name, email=data.email, phone=data.phone, business_id=data.businessId
        )
    except EmailTaken:
        raise _conflict() from None
    response = customer_response(record, 201)
    # Ids are made by the server (UUIDs): nothing in them needs the quoting and rule
    # lookup of url_for, which cost a few µs on every create.
    response.headers["Location"] = f"{request.script_root}/customers/{record.id}"
    return response


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
    page = store().list_json(limit=limit, after=after, email=email, business_id=business_id)
    response = Response(page.body, mimetype="application/json")
    if page.has_more and page.last is not None:
        cursor = encode_cursor(*page.last, email=email, business_id=business_id)
        params: dict[str, Any] = {"limit": limit, "cursor": cursor}
        params.update({k: v for k, v in (("email", email), ("businessId", business_id)) if v})
        # What url_for would build, without its rule lookup (about 10 µs a page).
        query = urlencode(params, safe=QUERY_SAFE)
        response.headers["Link"] = f'<{request.script_root}/customers?{query}>; rel="next"'
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
        from customers.business import customer_with_business

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
    if len(customer_id) > MAX_ID_LENGTH:
        raise NotFound("No customer has this id.")
    try:
        record = store().update(customer_id, changes=changes, expected_version=expected)
    except CustomerNotFound:
        raise NotFound("No customer has this id.") from None
    except EmailTaken:
        raise _conflict() from None
    except VersionMismatch:
        raise PreconditionFailed("If-Match does not match the customer's current ETag.") from None
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
    if len(customer_id) > MAX_ID_LENGTH:
        raise NotFound("No customer has this id.")
    try:
        store().delete(customer_id, expected_version=expected)
    except CustomerNotFound:
        raise NotFound("No customer has this id.") from None
    except VersionMismatch:
        raise PreconditionFailed("If-Match does not match the customer's current ETag.") from None
    return Response(status=204)
