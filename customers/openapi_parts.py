"""The parts operations are described with: problem responses, headers, bodies.

Views compose their `@documented(...)` declarations from these, so a fact every data
operation shares (the 401 and its `WWW-Authenticate`, the 429 and its `Retry-After`,
the 500) is written once. Each problem response names the problem types it can carry;
the assembler lists an example of each under `components.examples`.
"""

from __future__ import annotations

import re
from typing import Any

from customers.documented import FromModels
from customers.web.problems import PROBLEM_JSON, TYPE_PREFIX

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STORE_DOWN = "service-unavailable"


def ref(name: str, kind: str = "schemas") -> dict[str, str]:
    """A reference to a component: a schema, or an example."""
    return {"$ref": f"#/components/{kind}/{name}"}


def pattern(form: re.Pattern[str]) -> str:
    """A regex the server applies with `fullmatch`, as a JSON Schema pattern (anchored)."""
    return f"^(?:{form.pattern})$"


def content(
    schema: dict[str, Any],
    media: str = JSON,
    *,
    examples: FromModels | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A response's or a body's `content`: one media type, its schema and examples."""
    media_type: dict[str, Any] = {"schema": schema}
    if examples:
        media_type["examples"] = examples
    return {media: media_type}


def request_body(model: str, media: str, description: str, examples: FromModels) -> dict[str, Any]:
    """A required body checked against the component `model`."""
    return {
        "required": True,
        "description": description,
        "content": content(ref(model), media, examples=examples),
    }


def header(description: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    """A response header; `required` when the service sends it on every such answer."""
    found: dict[str, Any] = {"description": description, "schema": {"type": "string", **schema}}
    if required:
        found["required"] = True
    return found


HEADER_REQUEST_ID = header(
    "The request's id: the client's when it is 1 to 128 of `[A-Za-z0-9._:-]`, else a new one.",
    required=True,
)
HEADER_RETRY_AFTER = header("Seconds to wait before trying again.", pattern="^[0-9]+$")
# On the answers that always say when to try again.
HEADER_RETRY_AFTER_SENT = {**HEADER_RETRY_AFTER, "required": True}
RATE_LIMITED_HEADERS = {
    "Retry-After": HEADER_RETRY_AFTER_SENT,
    "RateLimit-Limit": header("Requests allowed per window."),
    "RateLimit-Remaining": header("Requests left in this window."),
    "RateLimit-Reset": header("Seconds until the window resets."),
}
RATE_LIMITED = (
    "Too many requests: RATE_LIMIT counts per key across every route; without a key, per client"
    " and per address block, and wrong keys count too"
)


def problem(description: str, *slugs: str, **headers: Any) -> dict[str, Any]:
    """A problem response; `slugs` are the problem types it can carry, shown as examples."""
    types = ", ".join(f"`{TYPE_PREFIX}{slug}`" for slug in slugs)
    return {
        "description": f"{description} Problem type: {types}." if slugs else description,
        "headers": headers,
        "content": {
            PROBLEM_JSON: {
                "schema": ref("Problem"),
                "examples": {slug: ref(slug, "examples") for slug in slugs},
            }
        },
    }


def problems(*items: tuple[str, str, str]) -> dict[str, Any]:
    """Responses of one problem type each, from (status, description, slug)."""
    return {status: problem(description, slug) for status, description, slug in items}


def data_errors(*, body: bool, query: bool, writes: bool = False) -> dict[str, Any]:
    """What every data operation can answer besides its own errors.

    A body is read under a deadline and a size limit; the key check runs before
    anything else; rate limits (RATE_LIMIT) count each key; a write the DynamoDB store
    keeps losing to concurrent changes of the customer is a 503.
    """
    errors: dict[str, Any] = {}
    if body or query:
        what = "The body or query is not valid" if body else "The query is not valid"
        errors["400"] = problem(
            f"{what}; `errors` names each field.", "validation-error", "bad-request"
        )
    errors["401"] = problem(
        "No valid API key (when the service has keys).",
        "unauthorized",
        **{
            "WWW-Authenticate": header(
                '`Bearer realm="customer-api"`, with an error if any.', required=True
            )
        },
    )
    if body:
        errors["408"] = problem("The body did not arrive in time.", "request-timeout")
        errors["413"] = problem("The body is larger than 64 KiB.", "body-too-large")
        errors["415"] = problem(
            "The body is not JSON in UTF-8 of the media type given.", "unsupported-media-type"
        )
    errors["429"] = problem(f"{RATE_LIMITED}.", "rate-limited", **RATE_LIMITED_HEADERS)
    errors["500"] = problem("Unexpected failure.", "internal-error")
    if writes:
        errors["503"] = problem(
            "The store could not make the change for now (on DynamoDB: too many concurrent"
            " changes of the customer); nothing changed, try again.",
            STORE_DOWN,
        )
    return errors


def open_errors() -> dict[str, Any]:
    """What an open route (no key, no rate limit) can answer besides its own answer."""
    return {
        "4XX": problem("The request could not be read.", "bad-request"),
        "500": problem("Unexpected failure.", "internal-error"),
    }
