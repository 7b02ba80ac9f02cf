"""The change feed: GET /events, every create, update and delete as a CloudEvent.

Each event was written in the same transaction as its change (the stores' outbox), so
the feed holds exactly the changes made. A consumer keeps the `Next-Cursor` of its last
answer and asks again from there: it gets the events after it, none missed, none twice.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from customers.paging import InvalidCursor, decode_events_cursor, encode_events_cursor
from customers.routes import invalid_cursor, link_next, parse_limit
from customers.view_helpers import query_args, store
from customers.web.jsonio import json_response
from customers.web.problems import CursorExpired, ValidationFailed, field_errors
from db import ALL_EVENT_TYPES, EventQuery, retention_cutoff

bp = Blueprint("events", __name__)

MAX_SUBJECT_LENGTH = 64  # a customer id's longest form


@bp.get("/events")
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
