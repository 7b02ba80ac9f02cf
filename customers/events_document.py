"""What the OpenAPI document says of change events beyond the feed's own operation:
the CloudEvent schema, an example, and the webhook request each endpoint receives.

Kept beside `customers.events`, whose view declares `GET /events` with @documented;
`customers.openapi` adds these to the document's components and its `webhooks`.
"""

from __future__ import annotations

from typing import Any

from customers.openapi_parts import content, ref
from db import ALL_EVENT_TYPES

# A real event, as the feed and webhooks carry it.
EVENT_EXAMPLE = {
    "specversion": "1.0",
    "id": "01a24ec5-fdef-7b82-a6f7-2584ab4fb1e2",
    "source": "/customers",
    "type": "customer.updated",
    "subject": "01a24ec5-fde8-766b-a53a-e9a0d1a770cb",
    "time": "2026-12-07T04:32:08.175740Z",
    "datacontenttype": "application/json",
    "data": {"id": "01a24ec5-fde8-766b-a53a-e9a0d1a770cb", "version": 2, "changed": ["phone"]},
}


def webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 `webhooks`: the request each WEBHOOK_URL endpoint receives."""
    signed = {
        "webhook-id": "The event's id; the same on every retry, for deduplication.",
        "webhook-timestamp": "Seconds since the epoch when this attempt was signed.",
        "webhook-signature": "`v1,` and base64 of HMAC-SHA256 under WEBHOOK_SECRET of"
        " `{webhook-id}.{webhook-timestamp}.{body}` (Standard Webhooks).",
    }
    return {
        "customerChanged": {
            "post": {
                "operationId": "customerChanged",
                "tags": ["events"],
                "summary": "A change event, delivered",
                "description": "Each event POSTed to each endpoint, at least once, a"
                " customer's events in version order. A 2xx is success; any other answer"
                " or none within 10 s is retried with backoff for up to 24 hours (honouring"
                " `Retry-After` on 429 and 503); a 410 turns the endpoint off.",
                "security": [],
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": description,
                        "schema": {"type": "string"},
                    }
                    for name, description in signed.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": content(
                        ref("CloudEvent"),
                        examples={"event": {"summary": "A phone changed", "value": EVENT_EXAMPLE}},
                    ),
                },
                "responses": {"2XX": {"description": "Received; not sent again."}},
            }
        }
    }


def cloud_event_schema() -> dict[str, Any]:
    """The CloudEvent schema: the envelope, and the thin data every type carries."""
    text = {"type": "string"}
    return {
        "type": "object",
        "title": "CloudEvent",
        "description": "A change, as a CloudEvents 1.0 JSON object with thin data.",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "data",
        ],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {**text, "description": "Unique per event; the webhook-id of its deliveries."},
            "source": {"const": "/customers"},
            "type": {"type": "string", "enum": list(ALL_EVENT_TYPES)},
            "subject": {**text, "description": "The customer's id."},
            "time": {**text, "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "data": {
                "type": "object",
                "required": ["id", "version", "changed"],
                "properties": {
                    "id": text,
                    "version": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "The version after the change (a delete's: one past"
                        " the last).",
                    },
                    "changed": {
                        "type": "array",
                        "items": text,
                        "description": "The API names of the fields whose value changed.",
                    },
                    # A boolean, not `const: true`: some generators write invalid code for a
                    # boolean constant (openapi-python-client 0.29.1), and true is the only value.
                    "imported": {
                        "type": "boolean",
                        "description": "Made by a bulk import: present only then, and true.",
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
