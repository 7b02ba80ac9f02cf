"""What the resource views share: query and body parsing, validation, preconditions,
the store, the customer lookup and the customer's answer.

Each helper raises the problem (or lets the store's own error through) where the
request cannot go on, so views read as parse, validate, call the store, answer.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Response, current_app, g, request

from customers.preconditions import read_entity_tags
from customers.web.jsonio import json_response
from customers.web.problems import (
    PreconditionFailed,
    UnsupportedMediaType,
    ValidationFailed,
    field_errors,
)
from customers.web.request_context import ENVIRON_REQUEST_ID
from db import MAX_VERSION, CustomerNotFound, CustomerRecord, WrittenBy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from db import CustomerStore

MAX_ID_LENGTH = 64
# The ETag of a version: its decimal digits, without leading zeros (see etag_of).
VERSION_TAG = re.compile(r"[1-9][0-9]{0,18}")


def store() -> CustomerStore:
    """The app's customer store."""
    customer_store: CustomerStore = current_app.extensions["customer_store"]
    return customer_store


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
        raise ValidationFailed(detail, errors=field_errors(describe_errors(exc, body))) from None


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


def checked_id(customer_id: str) -> str:
    """`customer_id`, or CustomerNotFound when it is longer than any id the store makes."""
    if len(customer_id) > MAX_ID_LENGTH:
        raise CustomerNotFound(customer_id)
    return customer_id


def find(customer_id: str) -> CustomerRecord:
    """The customer with this id; raises CustomerNotFound."""
    return store().get(checked_id(customer_id))


def written_by() -> WrittenBy:
    """Who makes this request's change, for its history entry: the API key's fingerprint
    as the logs show it (None with keys off), and the request's X-Request-ID."""
    key = g.get("key_fingerprint")
    return WrittenBy(
        actor=f"key:{key}" if key else None, request_id=request.environ.get(ENVIRON_REQUEST_ID)
    )
