"""The OpenAPI 3.1 document, assembled from what the views the app serves declare
(`customers.documented`) and the pydantic models that check requests.

The document is a contract that tools read: generated clients, Spectral and Redocly
(`make e2e` lints it), Swagger UI and schemathesis. So it is the same whether keys are
configured or not (a client generated from a development instance must still be able
to send one), every operation carries an id, a tag, a description, its security and
every response it can give, and every problem type the service sends is listed.

It says only what the server means: no `default` on a request member (a generator
reads one as "absent is this value"), one schema per answer, each parameter with the
form the server checks (read from the declaration the server checks it with), as
`required` every header that is always sent, and examples that are real answers.

Here: what no one view says. The info, tags and security schemes; each operation's
`security`, from the routes the key check leaves open; the `X-Request-ID` every
response carries; the schemas from the models; the problem types and an example of
each one the operations name. A route whose view declares nothing stops the build.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache, partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from customers.documented import FromModels, Operation, documented, operation_of
from customers.events_document import cloud_event_schema, webhooks
from customers.openapi_parts import (
    HEADER_REQUEST_ID,
    content,
    open_errors,
    ref,
)
from customers.web.problems import PROBLEM_JSON, TYPE_PREFIX
from customers.web.security import OPEN_PATHS

if TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"
API_VERSION = "1.0.0"
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")

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
            (Business, "serialization"),
            (HistoryEntry, "serialization"),
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
                "anyOf": [ref("Business"), {"type": "null"}],
            },
            "businessError": {
                **ref("Problem"),
                "description": "With include=business: why the lookup failed, when it did.",
            },
        },
        "required": list(customer["required"]),
    }
    components["Problem"] = _problem_schema()
    components["Health"] = {
        "type": "object",
        "required": ["status", "store"],
        "properties": {"status": {"const": "ok"}, "store": {"type": "string"}},
    }
    components["CloudEvent"] = cloud_event_schema()
    components["Readiness"] = {
        "type": "object",
        "required": ["status", "store", "register"],
        "properties": {
            "status": {"const": "ready"},
            "store": {
                "type": "object",
                "required": ["kind", "writable"],
                "properties": {"kind": {"type": "string"}, "writable": {"type": "boolean"}},
            },
            "register": {
                "type": "object",
                "required": ["breaker"],
                "properties": {"breaker": {"enum": ["closed", "open", "half-open"]}},
            },
        },
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


def _filled(value: Any, from_models: dict[str, dict[str, Any]]) -> Any:
    """`value` copied, with each FromModels part replaced by what the models give."""
    if isinstance(value, FromModels):
        return from_models[value.table][value.name]
    if isinstance(value, dict):
        return {key: _filled(item, from_models) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_filled(item, from_models) for item in value]
    return value


def _api_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `<customer_id>` is `{customerId}`."""

    def camel(match: re.Match[str]) -> str:
        first, *rest = match.group(1).split("_")
        return "{" + first + "".join(part.title() for part in rest) + "}"

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", camel, rule)


def _operation(path: str, operation: Operation, parameters: list[Any]) -> dict[str, Any]:
    """The operation as the document holds it; `parameters` without the path's own."""
    found: dict[str, Any] = {
        "operationId": operation.operation_id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": operation.description,
        "security": [] if path in OPEN_PATHS else KEY_REQUIRED,
    }
    if parameters:
        found["parameters"] = parameters
    if operation.body is not None:
        found["requestBody"] = operation.body
    found["responses"] = {
        status: {
            **response,
            "headers": {**response.get("headers", {}), "X-Request-ID": HEADER_REQUEST_ID},
        }
        for status, response in operation.responses.items()
    }
    return found


def _paths(app: Flask, from_models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every route the app serves, each from what its view declares.

    Raises UndocumentedRoute for a view that declares nothing, and ValueError for a
    declaration that does not fit its route: path parameters that are not the path's,
    or a view that serves more than one method.
    """
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        declared = operation_of(app.view_functions[rule.endpoint], rule.rule)
        if declared is None:
            continue
        methods = [method for method in METHODS if method in (rule.methods or ())]
        if len(methods) != 1:
            raise ValueError(f"{rule.rule}: a documented view serves one method, not {methods}")
        path = _api_path(rule.rule)
        operation = replace(
            declared,
            responses=_filled(declared.responses, from_models),
            parameters=_filled(declared.parameters, from_models),
            body=_filled(declared.body, from_models),
        )
        in_path = [p for p in operation.parameters if p["in"] == "path"]
        named = sorted(re.findall(r"\{([^}]+)\}", path))
        if sorted(p["name"] for p in in_path) != named:
            raise ValueError(f"{path}: {declared.operation_id} declares path parameters {in_path}")
        item = paths.setdefault(path, {})
        # A path parameter is the path's: every method on it shares it.
        if in_path and item.setdefault("parameters", in_path) != in_path:
            raise ValueError(
                f"{path}: {declared.operation_id} declares the path's parameters unlike the"
                " other methods"
            )
        others = [p for p in operation.parameters if p["in"] != "path"]
        item[methods[0].lower()] = _operation(path, operation, others)
    return paths


def build_document(app: Flask, *, base_path: str = "") -> dict[str, Any]:
    """The whole document for `app`; `base_path` is where it is mounted ('' at the root)."""
    from customers.openapi_examples import examples

    schemas = _schemas()
    paths = _paths(app, {"examples": examples(schemas), "fields": _parameter_schemas()})
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
        "webhooks": webhooks(),
        "components": {
            "schemas": schemas,
            "examples": _problem_examples(_used_problem_types(paths)),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _render(app: Flask, base_path: str) -> bytes:
    return app.json.dumps(build_document(app, base_path=base_path)).encode()


@bp.record_once
def _cache_per_app(state: BlueprintSetupState) -> None:
    """Each app's document, built on its first request and kept, for a few base paths."""
    app = cast("Flask", state.app)  # sansio's App as far as the types know; a Flask here
    app.extensions["openapi_document"] = lru_cache(maxsize=8)(partial(_render, app))


@bp.get("/openapi.json")
@documented(
    "getOpenApiDocument",
    tag="service",
    summary="This document",
    description="The OpenAPI 3.1 document of this service.",
    responses={
        "200": {
            "description": "The document.",
            "content": content(
                {"type": "object"},
                examples={
                    "start": {
                        "summary": "How it begins",
                        "value": {
                            "openapi": "3.1.0",
                            "info": {"title": "customer-api", "version": API_VERSION},
                        },
                    }
                },
            ),
        },
        **open_errors(),
    },
)
def openapi_json() -> Response:
    """The OpenAPI document."""
    document: bytes = current_app.extensions["openapi_document"](request.script_root)
    return Response(document, mimetype="application/json")
