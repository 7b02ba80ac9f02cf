"""The change feed: GET /events, every create, update and delete as a CloudEvent.

Each event was written in the same transaction as its change (the stores' outbox), so
the feed holds exactly the changes made. A consumer keeps the `Next-Cursor` of its last
answer and asks again from there: it gets the events after it, none missed, none twice.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from customers.documented import documented
from customers.events_document import EVENT_EXAMPLE
from customers.openapi_parts import content, data_errors, header, pattern, problems, ref
from customers.paging import (
    CURSOR_FORM,
    InvalidCursor,
    decode_events_cursor,
    encode_events_cursor,
    parse_limit,
)
from customers.request_input import query_args
from customers.routes import invalid_cursor, link_next
from customers.store_access import MAX_ID_LENGTH, store
from customers.web.jsonio import json_response
from customers.web.problems import CursorExpired, ValidationFailed, field_errors
from db import ALL_EVENT_TYPES, EventQuery, retention_cutoff

bp = Blueprint("events", __name__)

MAX_SUBJECT_LENGTH = MAX_ID_LENGTH  # a customer id's longest form


@bp.get("/events")
@documented(
    "listEvents",
    tag="events",
    summary="List change events",
    description="Every create (a bulk import's with `data.imported`), update and delete, as"
    " a CloudEvents 1.0 object, in one order for the whole service, each written"
    " in the same transaction as its change. `data` is thin: the customer's id,"
    " its version after the change and the names of the fields changed, never a"
    " value; fetch the customer for those. Kept `EVENTS_RETENTION_DAYS` (30 by"
    " default). On DynamoDB the feed stays `EVENTS_SETTLE_S` behind the clock.",
    parameters=[
        {
            "name": "limit",
            "in": "query",
            "description": "Events per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "Opaque: the `Next-Cursor` of an earlier answer. Without it, the"
            " feed from its oldest event kept. Older than `EVENTS_RETENTION_DAYS`: a 410.",
            "schema": {"type": "string", "pattern": pattern(CURSOR_FORM)},
        },
        {
            "name": "type",
            "in": "query",
            "description": "Only events of this type.",
            "schema": {"type": "string", "enum": list(ALL_EVENT_TYPES)},
        },
        {
            "name": "subject",
            "in": "query",
            "description": "Only events about this customer id.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_LENGTH},
        },
    ],
    responses={
        "200": {
            "description": "A page of events, oldest first.",
            "headers": {
                "Link": header("RFC 8288 link to the next page while more events are there."),
                "Next-Cursor": header(
                    "Where to resume: on every answer, the last page too. Asked again later,"
                    " it gives exactly the events after this page, none twice.",
                    required=True,
                ),
            },
            "content": content(
                {"type": "array", "items": ref("CloudEvent")},
                examples={"page": {"summary": "A phone changed", "value": [EVENT_EXAMPLE]}},
            ),
        },
        **problems(("410", "The cursor is past the retention.", "cursor-expired")),
        **data_errors(body=False, query=True),
    },
)
def list_events() -> Response:
    """List change events, oldest first, a page at a time; resume from `Next-Cursor`."""
    args = query_args("limit", "cursor", "type", "subject")
    limit = parse_limit(args.get("limit"))
    errors = []
    if "type" in args and args["type"] not in ALL_EVENT_TYPES:
        errors.append(("type", f"must be one of {', '.join(ALL_EVENT_TYPES)}"))
    if "subject" in args and not 0 < len(args["subject"]) <= MAX_SUBJECT_LENGTH:
        errors.append(("subject", f"must be a customer id of 1 to {MAX_SUBJECT_LENGTH} characters"))
    if errors:
        raise ValidationFailed("The query is not valid.", errors=field_errors(errors))
    after = None
    if "cursor" in args:
        try:
            after, at = decode_events_cursor(args["cursor"])
        except InvalidCursor:
            raise invalid_cursor() from None
        if at < retention_cutoff(current_app.config["EVENTS_RETENTION_DAYS"]):
            raise CursorExpired(
                "The cursor is older than the feed's retention: events after it may be gone."
                " Read the customers anew, then follow the feed from its start."
            )
    page = store().events_page(
        EventQuery(limit=limit, after=after, type=args.get("type"), subject=args.get("subject"))
    )
    response = json_response([event.to_cloudevent() for event in page.items])
    cursor = encode_events_cursor(page.next, page.next_at)
    if page.has_more:
        params = {"limit": limit, "cursor": cursor}
        params.update({name: args[name] for name in ("type", "subject") if name in args})
        link_next(response, "/events", params)
    else:
        # The point to resume from, also on the last page: a consumer keeps it and asks
        # again later for what came after.
        response.headers["Next-Cursor"] = cursor
    return response
