"""A page of the list: its `limit`, and opaque cursors, the keyset position of the last
row bound to its filters.

A cursor is base64url of `[createdAt, id, filters]`; a history cursor, of `[version,
customer]`; an events cursor, of `["events", position, time]`. It is opaque to clients but
checked strictly here: anything that does not decode to exactly that shape, or
that was made for other filters, is rejected, so a forged, truncated or
replayed-from-another-query cursor is a 400, never a 500 or a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from functools import lru_cache
from typing import Any

from customers.openapi_parts import header, pattern
from customers.web.problems import ValidationFailed, field_errors

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_VERSION = re.compile(r"[1-9][0-9]{0,18}")
# What a cursor this service makes looks like (unpadded base64url); the OpenAPI document
# publishes the same form, and anything else is refused before it is decoded.
CURSOR_FORM = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_LIMIT, DEFAULT_LIMIT = 500, 100


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this query."""


@lru_cache(maxsize=1024)
def _filters_key(email: str | None, business_id: str | None) -> str:
    material = json.dumps([email.lower() if email else None, business_id])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _customer_key(customer_id: str) -> str:
    return hashlib.sha256(customer_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _pack(parts: list[str]) -> str:
    payload = json.dumps(parts, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _unpack(cursor: str, length: int) -> list[str]:
    """The `length` strings a cursor holds; raises InvalidCursor for anything else."""
    if not CURSOR_FORM.fullmatch(cursor):
        raise InvalidCursor("malformed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("malformed") from None
    if (
        not isinstance(payload, list)
        or len(payload) != length
        or not all(isinstance(part, str) for part in payload)
    ):
        raise InvalidCursor("malformed")
    return payload


def encode_cursor(
    created_at: str, customer_id: str, *, email: str | None, business_id: str | None
) -> str:
    """The cursor that continues after the row (created_at, customer_id)."""
    return _pack([created_at, customer_id, _filters_key(email, business_id)])


def decode_cursor(cursor: str, *, email: str | None, business_id: str | None) -> tuple[str, str]:
    """The (created_at, id) position a cursor holds; raises InvalidCursor."""
    created_at, customer_id, filters = _unpack(cursor, 3)
    if not _TIMESTAMP.fullmatch(created_at) or not 0 < len(customer_id) <= 64:
        raise InvalidCursor("malformed")
    if filters != _filters_key(email, business_id):
        raise InvalidCursor("made for other filters")
    return created_at, customer_id


def encode_history_cursor(version: int, customer_id: str) -> str:
    """The cursor of a customer's history that continues after entry `version`."""
    return _pack([str(version), _customer_key(customer_id)])


def decode_history_cursor(cursor: str, customer_id: str) -> int:
    """The version a history cursor continues after; raises InvalidCursor, also for a
    cursor made for another customer's history."""
    version, owner = _unpack(cursor, 2)
    if not _VERSION.fullmatch(version):
        raise InvalidCursor("malformed")
    if owner != _customer_key(customer_id):
        raise InvalidCursor("made for another customer")
    return int(version)


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


# What the OpenAPI document says of a page: its two parameters, the headers that lead to
# the next page, and the link a client can follow to it.
LIMIT_PARAMETER: dict[str, Any] = {
    "name": "limit",
    "in": "query",
    "description": "Customers per page.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
}
CURSOR_PARAMETER: dict[str, Any] = {
    "name": "cursor",
    "in": "query",
    "description": "Opaque: the `Next-Cursor` header (or the `next` link) of the"
    " previous page, sent with the same filters. Only cursors the service made are"
    " taken; any other is a 400.",
    "schema": {"type": "string", "pattern": pattern(CURSOR_FORM)},
}
PAGE_HEADERS = {
    "Link": header(
        'RFC 8288 link to the next page, `</customers?...&cursor=...>; rel="next"`; absent on'
        " the last page."
    ),
    "Next-Cursor": header(
        "The `cursor` of the next page (the same as in `Link`); absent on the last page."
    ),
}
# The next page: its cursor, with the limit and filters of the page that gave it.
NEXT_PAGE_LINKS = {
    "nextPage": {
        "operationId": "listCustomers",
        "parameters": {
            "cursor": "$response.header.Next-Cursor",
            **{name: f"$request.query.{name}" for name in ("limit", "email", "businessId")},
        },
        "description": "The next page, while `Next-Cursor` is sent.",
    }
}


# A position in the feed, as the stores give them out: a sequence number (sqlite) or an
# event id or its prefix (DynamoDB).
_FEED_POSITION = re.compile(r"[0-9a-f-]{1,36}")


def encode_events_cursor(position: str, at: str) -> str:
    """The cursor that resumes the feed at `position`, which stands for the time `at`."""
    return _pack(["events", position, at])


def decode_events_cursor(cursor: str) -> tuple[str, str]:
    """The (position, at) an events cursor holds; raises InvalidCursor."""
    kind, position, at = _unpack(cursor, 3)
    if kind != "events" or not _FEED_POSITION.fullmatch(position) or not _TIMESTAMP.fullmatch(at):
        raise InvalidCursor("malformed")
    return position, at
