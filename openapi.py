"""The OpenAPI 3.1 document, built from the same pydantic models that check requests,
and the Swagger UI page that shows it with assets served from this service.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, send_from_directory

from customers.routes import DEFAULT_LIMIT, MAX_LIMIT
from problems import NotFound

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
API_VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": _json(_ref("Problem"), "application/problem+json"),
    }


HEADER_REQUEST_ID = {
    "description": "The request's id: the client's when sane, else a new one.",
    "schema": {"type": "string"},
}
HEADER_ETAG = {"description": "The customer's current version.", "schema": {"type": "string"}}
HEADER_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "string"},
}

# Answers any route may give, whatever its own.
COMMON_ERRORS = {
    "429": _problem("Too many requests (when rate limiting is on)."),
    "500": _problem("Unexpected error; the problem carries the request id."),
}


def _responses(ok: dict[str, Any], *errors: tuple[str, str]) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    responses.update({status: _problem(text) for status, text in errors})
    responses.update(COMMON_ERRORS)
    for response in responses.values():
        response.setdefault("headers", {})["X-Request-ID"] = HEADER_REQUEST_ID
    return responses


BAD_QUERY = ("400", "Unknown or invalid query parameter.")
BAD_BODY = ("400", "Invalid, unknown or read-only fields; `errors` names each.")
NO_CUSTOMER = ("404", "No customer has this id.")
TAKEN = ("409", "Another customer already uses this email.")
STALE = ("412", "If-Match does not match the current ETag.")
TOO_BIG = ("413", "The body is larger than 64 KiB.")
NOT_JSON = ("415", "The body is not JSON.")
UPSTREAM = (
    (
        "502",
        "The business register was unreachable, or answered with an error or an unexpected body.",
    ),
    (
        "503",
        "The register is unavailable, the breaker is open, or too many lookups wait on it;"
        " see Retry-After.",
    ),
    ("504", "The register did not answer in time."),
)


def _body(name: str, *media: str) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": _ref(name)} for m in media}}


def _customer_ok(status: str, description: str, **headers: Any) -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "headers": {"ETag": HEADER_ETAG, **headers},
            "content": _json(_ref("Customer")),
        }
    }


def _customer_paths() -> dict[str, Any]:
    path_id = {"name": "customerId", "in": "path", "required": True, "schema": {"type": "string"}}
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "Change only if the customer still has this ETag.",
        "schema": {"type": "string"},
    }
    query = [
        {
            "name": "limit",
            "in": "query",
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
            "description": "From the `next` link of the previous page.",
            "schema": {"type": "string"},
        },
        {
            "name": "email",
            "in": "query",
            "description": "Exact, case-insensitive.",
            "schema": {"type": "string"},
        },
        {
            "name": "businessId",
            "in": "query",
            "description": "Exact.",
            "schema": {"type": "string"},
        },
    ]
    return {
        "/customers": {
            "post": {
                "operationId": "createCustomer",
                "summary": "Create a customer",
                "requestBody": _body("CustomerCreate", "application/json"),
                "responses": _responses(
                    _customer_ok("201", "Created.", Location={"schema": {"type": "string"}}),
                    BAD_BODY,
                    TAKEN,
                    TOO_BIG,
                    NOT_JSON,
                ),
            },
            "get": {
                "operationId": "listCustomers",
                "summary": "List customers, oldest first (createdAt, then id)",
                "parameters": query,
                "responses": _responses(
                    {
                        "200": {
                            "description": 'A page; `Link: <...>; rel="next"` when more follow.',
                            "headers": {"Link": {"schema": {"type": "string"}}},
                            "content": _json({"type": "array", "items": _ref("Customer")}),
                        }
                    },
                    BAD_QUERY,
                ),
            },
        },
        "/customers/{customerId}": {
            "parameters": [path_id],
            "get": {
                "operationId": "getCustomer",
                "summary": "Get a customer",
                "parameters": [
                    {
                        "name": "include",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["business"]},
                    },
                    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": _responses(
                    {
                        "200": {
                            "description": "The customer; with include=business, its company too.",
                            "headers": {"ETag": HEADER_ETAG},
                            "content": _json(
                                {"anyOf": [_ref("Customer"), _ref("CustomerWithBusiness")]}
                            ),
                        },
                        "304": {"description": "Not modified since the ETag given."},
                    },
                    BAD_QUERY,
                    NO_CUSTOMER,
                ),
            },
            "patch": {
                "operationId": "patchCustomer",
                "summary": "Change some fields (JSON merge patch)",
                "parameters": [if_match],
                "requestBody": _body(
                    "CustomerPatch", "application/merge-patch+json", "application/json"
                ),
                "responses": _responses(
                    _customer_ok("200", "Changed."),
                    BAD_BODY,
                    NO_CUSTOMER,
                    TAKEN,
                    STALE,
                    TOO_BIG,
                    NOT_JSON,
                ),
            },
            "put": {
                "operationId": "replaceCustomer",
                "summary": "Replace the writable fields",
                "parameters": [if_match],
                "requestBody": _body("CustomerReplace", "application/json"),
                "responses": _responses(
                    _customer_ok("200", "Replaced."),
                    BAD_BODY,
                    NO_CUSTOMER,
                    TAKEN,
                    STALE,
                    TOO_BIG,
                    NOT_JSON,
                ),
            },
            "delete": {
                "operationId": "deleteCustomer",
                "summary": "Delete a customer",
                "parameters": [if_match],
                "responses": _responses(
                    {"204": {"description": "Deleted."}}, BAD_QUERY, NO_CUSTOMER, STALE
                ),
            },
        },
    }


def _business_paths() -> dict[str, Any]:
    ok = {"200": {"description": "The company.", "content": _json(_ref("Business"))}}
    return {
        "/businesses/{businessId}": {
            "get": {
                "operationId": "getBusiness",
                "summary": "Look a company up in the Finnish business register",
                "parameters": [
                    {
                        "name": "businessId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "0112038-9",
                    }
                ],
                "responses": _responses(
                    ok,
                    ("400", "Not a valid business ID (no lookup made)."),
                    ("404", "No such company."),
                    *UPSTREAM,
                ),
            }
        },
        "/customers/{customerId}/business": {
            "get": {
                "operationId": "getCustomerBusiness",
                "summary": "The company of a customer's business ID",
                "parameters": [
                    {
                        "name": "customerId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(
                    ok,
                    BAD_QUERY,
                    ("404", "No such customer, no business ID, or no such company."),
                    *UPSTREAM,
                ),
            }
        },
    }


def _components() -> dict[str, Any]:
    # Imported here, when the document is first asked for: pydantic and the models are
    # left out of the start-up of a container whose first request does not need them.
    from pydantic.json_schema import models_json_schema

    from business_models import Business
    from customers.schemas import Customer, CustomerCreate, CustomerPatch, CustomerReplace

    _, schemas = models_json_schema(
        [
            (CustomerCreate, "validation"),
            (CustomerReplace, "validation"),
            (CustomerPatch, "validation"),
            (Customer, "serialization"),
            (Business, "serialization"),
        ],
        ref_template=REF,
    )
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    components["CustomerWithBusiness"] = {
        "allOf": [
            _ref("Customer"),
            {
                "type": "object",
                "required": ["business"],
                "properties": {
                    "business": {"anyOf": [_ref("Business"), {"type": "null"}]},
                    "businessError": _ref("Problem"),
                },
            },
        ]
    }
    components["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            "requestId": {"type": "string"},
        },
    }
    components["Health"] = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}, "store": {"type": "string"}},
    }
    return {"schemas": components}


def build_document(*, keys_required: bool, base_path: str = "") -> dict[str, Any]:
    """The whole document; with keys on, every route but /health asks for one.

    `base_path` is where the service is mounted ('' at the root; API Gateway's stage).
    """
    paths = {**_customer_paths(), **_business_paths()}
    components = _components()
    if keys_required:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path in paths.values():
            for name, operation in path.items():
                if name != "parameters":
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
                    operation["responses"]["401"] = _problem("No valid API key.")
                    operation["responses"]["401"]["headers"] = {
                        "WWW-Authenticate": {"schema": {"type": "string"}},
                        "X-Request-ID": HEADER_REQUEST_ID,
                    }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Liveness and store check",
            "responses": {
                "200": {"description": "Serving.", "content": _json(_ref("Health"))},
                "503": _problem("The store does not answer."),
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "customer-api",
            "version": API_VERSION,
            "description": (
                "Customer records, with company details from the Finnish business register."
            ),
        },
        "servers": [{"url": base_path or "/", "description": "This service."}],
        "paths": paths,
        "components": components,
    }


@cache
def _document_bytes(keys_required: bool, base_path: str) -> bytes:
    document = build_document(keys_required=keys_required, base_path=base_path)
    return current_app.json.dumps(document).encode()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document."""
    keys_required = bool(current_app.config.get("API_KEYS"))
    return Response(
        _document_bytes(keys_required, request.script_root), mimetype="application/json"
    )


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
