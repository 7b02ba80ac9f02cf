"""The OpenAPI 3.1 document, built from the same pydantic models that check requests,
and the Swagger UI page that shows it with assets served from this service.

The document is a contract that tools read: generated clients, Spectral and Redocly
(`make e2e` lints it), Swagger UI and schemathesis. So it is the same whether keys are
configured or not (a client generated from a development instance must still be able
to send one), every operation carries an id, a tag, a description, its security and
every response it can give, and every problem type the service sends is listed.

It says only what the server means: no `default` on a request member (a generator
reads one as "absent is this value"), one schema per answer, each parameter with the
form the server checks (read from the declaration the server checks it with), as
`required` every header that is always sent, and examples that are real answers.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from http import HTTPStatus
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, send_from_directory

from customers.idempotency import VALID_KEY
from customers.openapi_examples import optional_fields
from customers.paging import CURSOR_FORM
from customers.preconditions import READABLE
from customers.routes import DEFAULT_LIMIT, MAX_LIMIT
from customers.view_helpers import MAX_ID_LENGTH
from customers.web.problems import PROBLEM_JSON, TYPE_PREFIX, NotFound
from db import ALL_EVENT_TYPES

bp = Blueprint("docs", __name__)


def _package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{name} is not installed")
    return Path(spec.origin).parent


# Found, not imported: flask-swagger-ui's module (a blueprint this service does not use)
# would only add to the cold start; its `dist` files are what /docs serves.
SWAGGER_UI_DIR = _package_dir("flask_swagger_ui") / "dist"
SWAGGER_UI_ASSETS = frozenset(
    {"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
    | {"favicon-32x32.png", "favicon-16x16.png"}
)
REF = "#/components/schemas/{model}"
STORE_DOWN = "service-unavailable"
API_VERSION = "1.0.0"
MERGE_PATCH = "application/merge-patch+json"

# Every problem type the service sends: slug -> (status, when). The slugs are problems.py's.
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "validation-error": (400, "The body, query or path holds invalid values; `errors` names each."),
    "bad-request": (400, "The request could not be read (malformed HTTP or framing)."),
    "unauthorized": (401, "No valid API key was sent."),
    "not-found": (404, "No such resource, or no route at this path."),
    "method-not-allowed": (405, "The path does not take this method; `Allow` lists those it does."),
    "request-timeout": (408, "The body did not arrive in time."),
    "email-taken": (409, "Another customer already uses this email."),
    "idempotency-key-in-use": (409, "A request with this `Idempotency-Key` is still running."),
    "customer-deleted": (
        410,
        "The customer this `Idempotency-Key` created has been deleted; nothing was created.",
    ),
    "cursor-expired": (
        410,
        "The events cursor is older than the feed's retention; read the customers anew.",
    ),
    "idempotency-key-reused": (422, "This `Idempotency-Key` was used for another request."),
    "idempotency-key-limit": (
        429,
        "The client holds as many live `Idempotency-Key` records as it may; see `Retry-After`.",
    ),
    "idempotency-keys-exhausted": (
        503,
        "The service holds as many `Idempotency-Key` records as it may; see `Retry-After`.",
    ),
    "precondition-failed": (412, "`If-Match` names no current version of the customer."),
    "body-too-large": (413, "The body is larger than 64 KiB."),
    "unsupported-media-type": (415, "The body is not of a media type the operation takes."),
    "rate-limited": (429, "Too many requests; `Retry-After` says when to try again."),
    "internal-error": (500, "The server failed; quote `requestId`."),
    "upstream-error": (
        502,
        "The business register was unreachable, or answered with an error or an unusable body.",
    ),
    "upstream-unavailable": (
        503,
        "The register is unavailable, the breaker is open, or too many lookups wait on it.",
    ),
    "service-unavailable": (503, "The store does not answer."),
    "upstream-timeout": (504, "The business register did not answer in time."),
}

TAGS = [
    {"name": "customers", "description": "Customer records: create, list, get, change, delete."},
    {
        "name": "businesses",
        "description": "Company details from the Finnish business register (PRH's YTJ).",
    },
    {"name": "events", "description": "Change events: the feed, and the webhooks that carry it."},
    {"name": "service", "description": "The index, health, this document and its docs page."},
]
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key in the X-API-Key header.",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as `Authorization: Bearer <key>`.",
    },
}
# Either scheme will do. An instance started without API_KEYS checks no key at all.
KEY_REQUIRED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(
    schema: dict[str, Any],
    media: str = "application/json",
    *,
    examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if examples:
        content["examples"] = examples
    return {media: content}


def _header(description: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    """A response header; `required` when the service sends it on every such answer."""
    header: dict[str, Any] = {"description": description, "schema": {"type": "string", **schema}}
    if required:
        header["required"] = True
    return header


def _pattern(form: re.Pattern[str]) -> str:
    """A regex the server applies with `fullmatch`, as a JSON Schema pattern (anchored)."""
    return f"^(?:{form.pattern})$"


HEADER_REQUEST_ID = _header(
    "The request's id: the client's when it is 1 to 128 of `[A-Za-z0-9._:-]`, else a new one.",
    required=True,
)
ETAG_DESCRIPTION = 'The customer\'s current version, a strong tag such as `"3"`.'
HEADER_ETAG = _header(ETAG_DESCRIPTION, required=True)
HEADER_RETRY_AFTER = _header("Seconds to wait before trying again.", pattern="^[0-9]+$")
HEADER_LINK = _header(
    'RFC 8288 link to the next page, `</customers?...&cursor=...>; rel="next"`; absent on'
    " the last page."
)
HEADER_NEXT_CURSOR = _header(
    "The `cursor` of the next page (the same as in `Link`); absent on the last page."
)
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("Requests allowed per window."),
    "RateLimit-Remaining": _header("Requests left in this window."),
    "RateLimit-Reset": _header("Seconds until the window resets."),
}


def _problem(description: str, *slugs: str, **headers: Any) -> dict[str, Any]:
    """A problem response; `slugs` are the problem types it can carry, shown as examples."""
    types = ", ".join(f"`{TYPE_PREFIX}{slug}`" for slug in slugs)
    return {
        "description": f"{description} Problem type: {types}." if slugs else description,
        "headers": headers,
        "content": {
            PROBLEM_JSON: {
                "schema": _ref("Problem"),
                "examples": {slug: _ref(slug, "examples") for slug in slugs},
            }
        },
    }


def _responses(ok: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """`ok` and `errors`, each with the X-Request-ID every response carries."""
    responses: dict[str, Any] = {**ok, **errors}
    for response in responses.values():
        response["headers"] = {**response.get("headers", {}), "X-Request-ID": HEADER_REQUEST_ID}
    return responses


RATE_LIMITED = (
    "Too many requests: RATE_LIMIT counts per key across every route; without a key, per client"
    " and per address block, and wrong keys count too"
)


def _data_errors(*, body: bool, query: bool, writes: bool = False) -> dict[str, Any]:
    """What every data operation can answer besides its own errors.

    A body is read under a deadline and a size limit; the key check runs before
    anything else; rate limits (RATE_LIMIT) count each key; a write the DynamoDB store
    keeps losing to concurrent changes of the customer is a 503.
    """
    errors: dict[str, Any] = {}
    if body or query:
        what = "The body or query is not valid" if body else "The query is not valid"
        errors["400"] = _problem(
            f"{what}; `errors` names each field.", "validation-error", "bad-request"
        )
    errors["401"] = _problem(
        "No valid API key (when the service has keys).",
        "unauthorized",
        **{
            "WWW-Authenticate": _header(
                '`Bearer realm="customer-api"`, with an error if any.', required=True
            )
        },
    )
    if body:
        errors["408"] = _problem("The body did not arrive in time.", "request-timeout")
        errors["413"] = _problem("The body is larger than 64 KiB.", "body-too-large")
        errors["415"] = _problem(
            "The body is not JSON in UTF-8 of the media type given.", "unsupported-media-type"
        )
    errors["429"] = _problem(
        f"{RATE_LIMITED}.",
        "rate-limited",
        **{"Retry-After": {**HEADER_RETRY_AFTER, "required": True}, **RATE_LIMIT_HEADERS},
    )
    errors["500"] = _problem("Unexpected failure.", "internal-error")
    if writes:
        errors["503"] = _problem(
            "The store could not make the change for now (on DynamoDB: too many concurrent"
            " changes of the customer); nothing changed, try again.",
            STORE_DOWN,
        )
    return errors


def _open_errors() -> dict[str, Any]:
    """What an open route (no key, no rate limit) can answer besides its own answer."""
    return {
        "4XX": _problem("The request could not be read.", "bad-request"),
        "500": _problem("Unexpected failure.", "internal-error"),
    }


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    security: list[dict[str, list[str]]],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "security": security,
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    return operation


def _body(name: str, media: str, description: str, examples: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": _json(_ref(name), media, examples=examples),
    }


def _link(operation_id: str, description: str, *, if_match: bool) -> dict[str, Any]:
    """A link to an operation on the customer in the answer, with its ETag as If-Match."""
    parameters = {"customerId": "$response.body#/id"}
    if if_match:
        parameters["header.If-Match"] = "$response.header.ETag"
    return {"operationId": operation_id, "parameters": parameters, "description": description}


# From an answer that holds a customer and its ETag to what can be done with it next.
CUSTOMER_LINKS = {
    "getCustomer": _link("getCustomer", "The customer, by its `id`.", if_match=False),
    "patchCustomer": _link(
        "patchCustomer", "Change some fields, only if it is still this version.", if_match=True
    ),
    "replaceCustomer": _link(
        "replaceCustomer", "Replace it, only if it is still this version.", if_match=True
    ),
    "deleteCustomer": _link(
        "deleteCustomer", "Delete it, only if it is still this version.", if_match=True
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


def _customer_ok(
    status: str, description: str, content: dict[str, Any], **headers: Any
) -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "headers": {"ETag": HEADER_ETAG, **headers},
            "content": content,
            "links": CUSTOMER_LINKS,
        }
    }


# What `customers.preconditions` reads; any other value is read as matching no ETag (412).
ENTITY_TAGS = {"type": "string", "pattern": _pattern(READABLE), "examples": ['"1"']}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Act only if the customer still has one of these ETags (`*`: any); else 412."
    " Strong tags only match: `W/` tags never do.",
    "schema": ENTITY_TAGS,
}
STALE = ("412", "If-Match names no current version; nothing changed.", "precondition-failed")
NO_CUSTOMER = ("404", "No customer has this id.", "not-found")
TAKEN = ("409", "Another customer already uses this email; nothing changed.", "email-taken")


def _errors(*items: tuple[str, str, str]) -> dict[str, Any]:
    return {status: _problem(description, slug) for status, description, slug in items}


HEADER_REPLAYED = {
    "description": "`true` on the recorded answer to an earlier request with this Idempotency-Key.",
    "schema": {"type": "string", "const": "true"},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A key of the client's choosing (a UUID, say) that makes retries safe: the first"
        " answer is recorded for 24 hours when the store decided it (201, 409 email taken),"
        " and a retry with the same key and body gets it again; a request refused before"
        " that (400, 413, 415) keeps nothing and runs again. The same key with another body"
        " is a 422; while the first request runs, a 409 with `Retry-After`; once the customer"
        " it created is deleted, a 410. A client's live"
        " keys, and all clients', are bounded: past the bound a new key is a 429 or 503."
    ),
    "schema": {"type": "string", "pattern": _pattern(VALID_KEY)},
}


def _create_responses(customer: dict[str, Any]) -> dict[str, Any]:
    """POST /customers: a customer, or the recorded answer replayed under Idempotency-Key."""
    responses = _responses(
        _customer_ok(
            "201",
            "Created; or, with `Idempotent-Replayed: true`, the recorded answer of the first"
            " request with this `Idempotency-Key`.",
            customer,
            Location=_header("The new customer's path.", required=True),
            **{"Idempotent-Replayed": HEADER_REPLAYED},
        ),
        {
            **_data_errors(body=True, query=True, writes=True),
            "409": _problem(
                "Another customer already uses this email, or a request with this"
                " `Idempotency-Key` is still running (see `Retry-After`).",
                "email-taken",
                "idempotency-key-in-use",
                **{"Retry-After": HEADER_RETRY_AFTER},
            ),
            "410": _problem(
                "The customer the first request with this `Idempotency-Key` created has been"
                " deleted since: its recorded answer was erased with it, nothing is created,"
                " and the key stays taken until its 24 hours end. The problem holds no"
                " customer data.",
                "customer-deleted",
                **{"Idempotent-Replayed": HEADER_REPLAYED},
            ),
            "422": _problem(
                "This `Idempotency-Key` was used for another request.", "idempotency-key-reused"
            ),
            "503": _problem(
                "The service holds as many `Idempotency-Key` records as it may, or the store"
                " does not answer.",
                "idempotency-keys-exhausted",
                "service-unavailable",
                **{"Retry-After": HEADER_RETRY_AFTER},
            ),
        },
    )
    responses["429"] = _problem(
        f"{RATE_LIMITED}, or this client holds as many live `Idempotency-Key` records as it may.",
        "rate-limited",
        "idempotency-key-limit",
        **responses["429"]["headers"],
    )
    for status in ("409",):  # recorded, so replayed too (the 201 says so above)
        responses[status]["headers"] = {
            **responses[status]["headers"],
            "Idempotent-Replayed": HEADER_REPLAYED,
        }
    return responses


def _customer_paths(examples: dict[str, dict[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    """`fields`: the parameter schemas the models give (see `_parameter_schemas`)."""
    path_id = {
        "name": "customerId",
        "in": "path",
        "required": True,
        "description": "The id the service gave the customer (longer ids are never given: 404).",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
    }
    query = [
        {
            "name": "limit",
            "in": "query",
            "description": "Customers per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "Opaque: the `Next-Cursor` header (or the `next` link) of the"
            " previous page, sent with the same filters. Only cursors the service made are"
            " taken; any other is a 400.",
            "schema": {"type": "string", "pattern": _pattern(CURSOR_FORM)},
        },
        {
            "name": "email",
            "in": "query",
            "description": "Only the customer with this email, compared case-insensitively;"
            " checked and trimmed as the field is.",
            "schema": fields["email"],
        },
        {
            "name": "businessId",
            "in": "query",
            "description": "Only customers with this business ID; checked and trimmed as the"
            " field is.",
            "schema": fields["businessId"],
        },
    ]
    get_include = {
        "name": "include",
        "in": "query",
        "description": "`business` embeds the customer's company.",
        "schema": {"type": "string", "enum": ["business"]},
    }
    if_none_match = {
        "name": "If-None-Match",
        "in": "header",
        "description": "Answer 304 if the customer still has one of these ETags (weak or"
        " strong). Any value is taken: one that is not a list of entity tags matches"
        " nothing, so the full answer comes.",
        "schema": {"type": "string", "examples": ['"1"']},
    }
    customer = _json(_ref("Customer"), examples=examples["customer"])

    return {
        "/customers": {
            "post": _operation(
                "createCustomer",
                "customers",
                "Create a customer",
                "Creates a customer from its writable fields; the answer carries the new"
                " customer, its `Location` and its `ETag`. Emails are unique, compared"
                " case-insensitively. With `Idempotency-Key`, a retry gets the first"
                " request's answer again (201, 400, 409 or 422, for 24 hours, with"
                " `Idempotent-Replayed: true`) instead of running again, or a 410 once the"
                " customer it created is deleted; keys are per API key.",
                _create_responses(customer),
                parameters=[IDEMPOTENCY_KEY],
                body=_body(
                    "CustomerCreate",
                    "application/json",
                    f"The new customer; {optional_fields()} left out are empty (`null`).",
                    examples["create"],
                ),
                security=KEY_REQUIRED,
            ),
            "get": _operation(
                "listCustomers",
                "customers",
                "List customers",
                "Customers oldest first (by `createdAt`, then `id`), a page at a time. When"
                " more follow, `Next-Cursor` holds the next page's cursor and `Link` its URL;"
                " a walk through the pages never repeats or skips a customer that existed"
                " when it began.",
                _responses(
                    {
                        "200": {
                            "description": "A page of customers.",
                            "headers": {"Link": HEADER_LINK, "Next-Cursor": HEADER_NEXT_CURSOR},
                            "content": _json(
                                {"type": "array", "items": _ref("Customer")},
                                examples=examples["page"],
                            ),
                            "links": NEXT_PAGE_LINKS,
                        }
                    },
                    _data_errors(body=False, query=True),
                ),
                parameters=query,
                security=KEY_REQUIRED,
            ),
        },
        "/customers/{customerId}/history": {
            "get": _operation(
                "getCustomerHistory",
                "customers",
                "List a customer's changes",
                "The customer's changes, oldest first (by `version`, gapless from the first"
                " one kept), paged as `GET /customers` is: `Next-Cursor` and `Link` while more"
                " follow. A write that changed no value made no entry. Entries are kept"
                " `HISTORY_RETENTION_DAYS` (365 by default) and go with the customer when it"
                " is deleted.",
                _responses(
                    {
                        "200": {
                            "description": "A page of history entries.",
                            "headers": {"Link": HEADER_LINK, "Next-Cursor": HEADER_NEXT_CURSOR},
                            "content": _json(
                                {"type": "array", "items": _ref("HistoryEntry")},
                                examples=examples["history"],
                            ),
                        }
                    },
                    {
                        **_errors(("404", "No customer has this id.", "not-found")),
                        **_data_errors(body=False, query=True),
                    },
                ),
                parameters=[path_id, *query[:2]],
                security=KEY_REQUIRED,
            )
        },
        "/customers/{customerId}": {
            "parameters": [path_id],
            "get": _operation(
                "getCustomer",
                "customers",
                "Get a customer",
                "The customer and its `ETag`; `If-None-Match` with that tag answers 304."
                " With `include=business`, the company from the business register is"
                " embedded as `business`; a failed lookup leaves it `null` and says why in"
                " `businessError`, never failing the request. One schema for both answers,"
                " so that every generated client reads `business` when it is there.",
                _responses(
                    {
                        "200": {
                            "description": "The customer; with include=business, its company too.",
                            "headers": {
                                "ETag": _header(
                                    f"{ETAG_DESCRIPTION} Absent with include=business: that"
                                    " answer holds the register's data too."
                                )
                            },
                            "content": _json(
                                _ref("CustomerWithBusiness"),
                                examples=examples["customerWithBusiness"],
                            ),
                        },
                        "304": {
                            "description": "Not modified since the ETag given.",
                            "headers": {"ETag": HEADER_ETAG},
                        },
                    },
                    {**_errors(NO_CUSTOMER), **_data_errors(body=False, query=True)},
                ),
                parameters=[get_include, if_none_match],
                security=KEY_REQUIRED,
            ),
            "patch": _operation(
                "patchCustomer",
                "customers",
                "Change some fields",
                "A JSON merge patch (RFC 7396): fields left out stay, `null` clears an"
                " optional field. Sent as `application/merge-patch+json`; plain"
                " `application/json` is accepted too. With `If-Match`, only if the customer"
                " is unchanged since.",
                _responses(
                    _customer_ok("200", "Changed.", customer),
                    {
                        **_errors(NO_CUSTOMER, TAKEN, STALE),
                        **_data_errors(body=True, query=True, writes=True),
                    },
                ),
                parameters=[IF_MATCH],
                body=_body(
                    "CustomerPatch",
                    MERGE_PATCH,
                    "The fields to change: a member left out stays as it is; `null` clears"
                    f" {optional_fields().replace(' and ', ' or ')}.",
                    examples["patch"],
                ),
                security=KEY_REQUIRED,
            ),
            "put": _operation(
                "replaceCustomer",
                "customers",
                "Replace a customer",
                "Replaces every writable field; an optional field left out is cleared. With"
                " `If-Match`, only if the customer is unchanged since.",
                _responses(
                    _customer_ok("200", "Replaced.", customer),
                    {
                        **_errors(NO_CUSTOMER, TAKEN, STALE),
                        **_data_errors(body=True, query=True, writes=True),
                    },
                ),
                parameters=[IF_MATCH],
                body=_body(
                    "CustomerReplace",
                    "application/json",
                    f"Every writable field; {optional_fields()} left out are cleared.",
                    examples["replace"],
                ),
                security=KEY_REQUIRED,
            ),
            "delete": _operation(
                "deleteCustomer",
                "customers",
                "Delete a customer",
                "Deletes the customer and frees its email. With `If-Match`, only if the"
                " customer is unchanged since.",
                _responses(
                    {"204": {"description": "Deleted; no body."}},
                    {
                        **_errors(NO_CUSTOMER, STALE),
                        **_data_errors(body=False, query=True, writes=True),
                    },
                ),
                parameters=[IF_MATCH],
                security=KEY_REQUIRED,
            ),
        },
    }


def _business_paths(examples: dict[str, dict[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    def ok() -> dict[str, Any]:
        company = _json(_ref("Business"), examples=examples["business"])
        return {"200": {"description": "The company.", "content": company}}

    register_down = (
        "The business register is unavailable, the breaker is open, or too many lookups wait on it."
    )
    upstream = {
        "502": _problem("The business register failed.", "upstream-error"),
        "503": _problem(
            register_down,
            "upstream-unavailable",
            **{"Retry-After": {**HEADER_RETRY_AFTER, "required": True}},
        ),
        "504": _problem("The business register did not answer in time.", "upstream-timeout"),
    }
    return {
        "/businesses/{businessId}": {
            "get": _operation(
                "getBusiness",
                "businesses",
                "Look a company up",
                "The company with this business ID in the Finnish business register, in the"
                " service's own shape. An invalid ID is a 400 and no lookup is made.",
                _responses(
                    ok(),
                    {
                        **_errors(("404", "No company has this business ID.", "not-found")),
                        **_data_errors(body=False, query=True),
                        **upstream,
                    },
                ),
                parameters=[
                    {
                        "name": "businessId",
                        "in": "path",
                        "required": True,
                        "description": "A Finnish business ID, checked and trimmed as the"
                        " customer's `businessId` is; an invalid one is a 400.",
                        "schema": fields["businessId"],
                    }
                ],
                security=KEY_REQUIRED,
            )
        },
        "/customers/{customerId}/business": {
            "get": _operation(
                "getCustomerBusiness",
                "businesses",
                "Get a customer's company",
                "The company of the customer's business ID, from the business register.",
                _responses(
                    ok(),
                    {
                        **_errors(
                            (
                                "404",
                                "No such customer, no business ID, or no such company;"
                                " `detail` says which.",
                                "not-found",
                            )
                        ),
                        **_data_errors(body=False, query=True),
                        **upstream,
                    },
                ),
                parameters=[
                    {
                        "name": "customerId",
                        "in": "path",
                        "required": True,
                        "description": "The id the service gave the customer.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                    }
                ],
                security=KEY_REQUIRED,
            )
        },
    }


def _service_paths(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The routes anyone may call: `security: []` overrides the document's default."""
    return {
        "/": {
            "get": _operation(
                "getIndex",
                "service",
                "Where to start",
                "Links to the customers, this document and its docs page.",
                _responses(
                    {
                        "200": {
                            "description": "The links.",
                            "content": _json(_ref("Index"), examples=examples["index"]),
                        }
                    },
                    _open_errors(),
                ),
                security=[],
            )
        },
        "/health": {
            "get": _operation(
                "getHealth",
                "service",
                "Liveness and store check",
                "200 while the store answers, else 503. Never needs a key, never rate limited.",
                _responses(
                    {
                        "200": {
                            "description": "Serving.",
                            "content": _json(_ref("Health"), examples=examples["health"]),
                        }
                    },
                    {
                        **_open_errors(),
                        "503": _problem("The store does not answer.", STORE_DOWN),
                    },
                ),
                security=[],
            )
        },
        "/openapi.json": {
            "get": _operation(
                "getOpenApiDocument",
                "service",
                "This document",
                "The OpenAPI 3.1 document of this service.",
                _responses(
                    {
                        "200": {
                            "description": "The document.",
                            "content": _json(
                                {"type": "object"},
                                examples={
                                    "start": {
                                        "summary": "How it begins",
                                        "value": {
                                            "openapi": "3.1.0",
                                            "info": {
                                                "title": "customer-api",
                                                "version": API_VERSION,
                                            },
                                        },
                                    }
                                },
                            ),
                        }
                    },
                    _open_errors(),
                ),
                security=[],
            )
        },
        "/docs": {
            "get": _operation(
                "getDocsPage",
                "service",
                "The docs page",
                "Swagger UI for this document, every asset served by the service itself.",
                _responses(
                    {
                        "200": {
                            "description": "The page.",
                            "content": _json(
                                {"type": "string"},
                                "text/html",
                                examples={
                                    "page": {
                                        "summary": "The page",
                                        "value": DOCS_PAGE.format(base=""),
                                    }
                                },
                            ),
                        }
                    },
                    _open_errors(),
                ),
                security=[],
            )
        },
    }


def _problem_schema() -> dict[str, Any]:
    listed = "\n".join(
        f"- `{TYPE_PREFIX}{slug}` ({status}): {when}"
        for slug, (status, when) in PROBLEM_TYPES.items()
    )
    return {
        "type": "object",
        "description": "RFC 9457 problem details. `type` is one of the service's problem"
        " types; a client should treat a type it does not know by its status:\n\n" + listed,
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "examples": [TYPE_PREFIX + slug for slug in PROBLEM_TYPES],
            },
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Each bad field (at most 20; `errorsOmitted` counts the rest).",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            "errorsOmitted": {"type": "integer"},
            "requestId": {"type": "string"},
        },
    }


def _problem_examples(used: set[str]) -> dict[str, Any]:
    """An example problem document for each type the operations name."""
    return {
        slug: {
            "summary": f"{status} {slug}",
            "value": {
                "type": TYPE_PREFIX + slug,
                "title": HTTPStatus(status).phrase,
                "status": status,
                "detail": when,
            },
        }
        for slug, (status, when) in PROBLEM_TYPES.items()
        if slug in used
    }


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


def _event_paths() -> dict[str, Any]:
    """GET /events: the change feed."""
    parameters = [
        {
            "name": "limit",
            "in": "query",
            "description": "Events per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "Opaque: the `Next-Cursor` of an earlier answer. Without it, the"
            " feed from its oldest event kept. Older than `EVENTS_RETENTION_DAYS`: a 410.",
            "schema": {"type": "string", "pattern": _pattern(CURSOR_FORM)},
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
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        },
    ]
    ok = {
        "description": "A page of events, oldest first.",
        "headers": {
            "Link": _header("RFC 8288 link to the next page while more events are there."),
            "Next-Cursor": _header(
                "Where to resume: on every answer, the last page too. Asked again later,"
                " it gives exactly the events after this page, none twice.",
                required=True,
            ),
        },
        "content": _json(
            {"type": "array", "items": _ref("CloudEvent")},
            examples={"page": {"summary": "A phone changed", "value": [EVENT_EXAMPLE]}},
        ),
    }
    return {
        "/events": {
            "get": _operation(
                "listEvents",
                "events",
                "List change events",
                "Every create (a bulk import's with `data.imported`), update and delete, as"
                " a CloudEvents 1.0 object, in one order for the whole service, each written"
                " in the same transaction as its change. `data` is thin: the customer's id,"
                " its version after the change and the names of the fields changed, never a"
                " value; fetch the customer for those. Kept `EVENTS_RETENTION_DAYS` (30 by"
                " default). On DynamoDB the feed stays `EVENTS_SETTLE_S` behind the clock.",
                _responses(
                    {"200": ok},
                    {
                        **_errors(("410", "The cursor is past the retention.", "cursor-expired")),
                        **_data_errors(body=False, query=True),
                    },
                ),
                parameters=parameters,
                security=KEY_REQUIRED,
            )
        }
    }


def _webhooks() -> dict[str, Any]:
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
                    "content": _json(
                        _ref("CloudEvent"),
                        examples={"event": {"summary": "A phone changed", "value": EVENT_EXAMPLE}},
                    ),
                },
                "responses": {"2XX": {"description": "Received; not sent again."}},
            }
        }
    }


def _cloud_event_schema() -> dict[str, Any]:
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
                    "imported": {"const": True, "description": "Made by a bulk import."},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }


def _schemas() -> dict[str, Any]:
    # Imported here, when the document is first asked for: pydantic and the models are
    # left out of the start-up of a container whose first request does not need them.
    from pydantic.json_schema import models_json_schema

    from customers.register.models import Business
    from customers.schemas import (
        Customer,
        CustomerCreate,
        CustomerPatch,
        CustomerReplace,
        HistoryEntry,
    )

    _, schemas = models_json_schema(
        [
            (CustomerCreate, "validation"),
            (CustomerReplace, "validation"),
            (CustomerPatch, "validation"),
            (Customer, "serialization"),
            (HistoryEntry, "serialization"),
            (Business, "serialization"),
        ],
        ref_template=REF,
    )
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    customer = components["Customer"]
    # One schema for both answers of GET /customers/{id}, not a union of Customer and a
    # richer shape: without a discriminator, a generated client picks a branch by trying
    # each (openapi-generator's Java client tries them in name order and ignores unknown
    # members), so a customer with its company would be read as a plain one.
    components["CustomerWithBusiness"] = {
        "type": "object",
        "title": "CustomerWithBusiness",
        "description": "A customer as `GET /customers/{customerId}` answers: with"
        " `include=business`, `business` is there too (and `businessError` when the lookup"
        " failed); without it, neither is.",
        "properties": {
            **customer["properties"],
            "business": {
                "description": "With include=business: the company, or `null` when the"
                " customer has no business ID or the lookup failed.",
                "anyOf": [_ref("Business"), {"type": "null"}],
            },
            "businessError": {
                **_ref("Problem"),
                "description": "With include=business: why the lookup failed, when it did.",
            },
        },
        "required": list(customer["required"]),
    }
    components["Problem"] = _problem_schema()
    components["CloudEvent"] = _cloud_event_schema()
    components["Health"] = {
        "type": "object",
        "required": ["status", "store"],
        "properties": {"status": {"const": "ok"}, "store": {"type": "string"}},
    }
    link = {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}
    components["Index"] = {
        "type": "object",
        "required": ["name", "links"],
        "properties": {
            "name": {"type": "string"},
            "links": {
                "type": "object",
                "required": ["customers", "openapi", "docs"],
                "properties": {"customers": link, "openapi": link, "docs": link},
            },
        },
    }
    return components


def _used_problem_types(paths: dict[str, Any]) -> set[str]:
    return {
        slug
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for slug in response.get("content", {}).get(PROBLEM_JSON, {}).get("examples", {})
    }


def _parameter_schemas() -> dict[str, Any]:
    """The schemas of the parameters the models check, as the models publish them.

    An optional filter's `null` branch is the parameter left out, so it is dropped.
    """
    from customers.schemas import BusinessLookup, CustomerFilter

    schemas: dict[str, Any] = {}
    for model in (CustomerFilter, BusinessLookup):
        for name, schema in model.model_json_schema(ref_template=REF)["properties"].items():
            (branch,) = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
            schemas.setdefault(name, {k: v for k, v in branch.items() if k != "title"})
    return schemas


def build_document(*, base_path: str = "") -> dict[str, Any]:
    """The whole document; `base_path` is where the service is mounted ('' at the root)."""
    from customers.openapi_examples import examples as build_examples

    schemas = _schemas()
    examples = build_examples(schemas)
    fields = _parameter_schemas()
    paths = {
        **_service_paths(examples),
        **_customer_paths(examples, fields),
        **_business_paths(examples, fields),
        **_event_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "customer-api",
            "version": API_VERSION,
            "description": (
                "Customer records, with company details from the Finnish business register."
                " Every data operation takes an API key, as `X-API-Key: <key>` or"
                " `Authorization: Bearer <key>` (an instance started without `API_KEYS`"
                " checks none). Every error is an RFC 9457 problem document; `Problem`"
                " lists the types."
            ),
            "contact": {"name": "customer-api maintainers"},
        },
        # Relative: the document is right wherever it is served from.
        "servers": [{"url": base_path or "/", "description": "This service."}],
        "security": KEY_REQUIRED,
        "tags": TAGS,
        "paths": paths,
        "webhooks": _webhooks(),
        "components": {
            "schemas": schemas,
            "examples": _problem_examples(_used_problem_types(paths)),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@lru_cache(maxsize=8)
def _document_bytes(base_path: str) -> bytes:
    return current_app.json.dumps(build_document(base_path=base_path)).encode()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document."""
    return Response(_document_bytes(request.script_root), mimetype="application/json")


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>customer-api</title>
<link rel="stylesheet" href="{base}/docs/swagger-ui.css">
<link rel="stylesheet" href="{base}/docs/index.css">
<link rel="icon" type="image/png" href="{base}/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/docs/swagger-ui-bundle.js"></script>
<script src="{base}/docs/swagger-ui-standalone-preset.js"></script>
<script src="{base}/docs/init.js"></script>
</body>
</html>
"""

# In a file of its own, not inline, so the page's CSP can forbid inline scripts.
# validatorUrl: null, or Swagger UI loads a badge image from validator.swagger.io
# (on any host but localhost), which the CSP blocks and which would leak the URL.
DOCS_INIT = """window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: {document_url},
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  }});
}});
"""


@bp.get("/docs")
def docs_page() -> Response:
    """Swagger UI for the OpenAPI document."""
    # Under a base path (API Gateway's stage, a proxy's prefix) the page's URLs keep it.
    base = html.escape(request.script_root)
    return Response(DOCS_PAGE.format(base=base), mimetype="text/html")


@bp.get("/docs/init.js")
def docs_init() -> Response:
    """Swagger UI's start-up script."""
    document_url = json.dumps(f"{request.script_root}/openapi.json")
    return Response(DOCS_INIT.format(document_url=document_url), mimetype="text/javascript")


@bp.get("/docs/<asset>")
def docs_asset(asset: str) -> Response:
    """Swagger UI's own files, shipped with flask-swagger-ui; nothing from a CDN."""
    if asset not in SWAGGER_UI_ASSETS:
        raise NotFound("No such documentation asset.")
    return send_from_directory(SWAGGER_UI_DIR, asset, max_age=3600)
