"""A request's query and JSON body, read strictly and checked against a pydantic model.

Each function raises the problem (415, or 400 naming each bad field) where the request
cannot go on, so a view never sees a query or body it did not ask for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from flask import request

from customers.web.problems import UnsupportedMediaType, ValidationFailed, field_errors

if TYPE_CHECKING:
    from pydantic import BaseModel


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
