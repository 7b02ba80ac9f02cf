"""The docs page: Swagger UI for the OpenAPI document, every file served by the service.

Its start-up script and Swagger UI's own files are served here too, but are no part of
the API, so the document leaves them out (`undocumented`).
"""

from __future__ import annotations

import html
import json
from importlib.util import find_spec
from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

from customers.documented import documented, undocumented
from customers.openapi_parts import content, open_errors
from customers.web.problems import NotFound

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
@documented(
    "getDocsPage",
    tag="service",
    summary="The docs page",
    description="Swagger UI for this document, every asset served by the service itself.",
    responses={
        "200": {
            "description": "The page.",
            "content": content(
                {"type": "string"},
                "text/html",
                examples={"page": {"summary": "The page", "value": DOCS_PAGE.format(base="")}},
            ),
        },
        **open_errors(),
    },
)
def docs_page() -> Response:
    """Swagger UI for the OpenAPI document."""
    # Under a base path (API Gateway's stage, a proxy's prefix) the page's URLs keep it.
    base = html.escape(request.script_root)
    return Response(DOCS_PAGE.format(base=base), mimetype="text/html")


@bp.get("/docs/init.js")
@undocumented
def docs_init() -> Response:
    """Swagger UI's start-up script."""
    document_url = json.dumps(f"{request.script_root}/openapi.json")
    return Response(DOCS_INIT.format(document_url=document_url), mimetype="text/javascript")


@bp.get("/docs/<asset>")
@undocumented
def docs_asset(asset: str) -> Response:
    """Swagger UI's own files, shipped with flask-swagger-ui; nothing from a CDN."""
    if asset not in SWAGGER_UI_ASSETS:
        raise NotFound("No such documentation asset.")
    return send_from_directory(SWAGGER_UI_DIR, asset, max_age=3600)
