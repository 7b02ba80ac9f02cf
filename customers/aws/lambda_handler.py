"""AWS Lambda entry point: API Gateway (REST v1, HTTP API v2) and ALB events to the app.

The app is built once per container, at import, so that warm invocations reuse the
store's client, the business-register session, its cache and its breaker; nothing
else survives between invocations. apig-wsgi turns each event into a WSGI environ
and the answer back into the event response; it puts the Lambda context and the API
Gateway request context in the environ, where the request-id middleware finds them.
"""

from __future__ import annotations

from typing import Any

from apig_wsgi import make_lambda_handler

from app import create_app

app = create_app()

# Binary support on: JSON, problem documents, HTML, CSS and JavaScript still leave as
# text (`isBase64Encoded: false`, apig-wsgi's non-binary prefixes); only the docs
# page's icon is base64, as API Gateway expects binary bodies to be.
_serve = make_lambda_handler(
    app,
    binary_support=True,
    non_binary_content_type_prefixes=(
        "text/",
        "application/json",
        "application/problem+json",
        "application/javascript",
    ),
)


def without_underscored_headers(event: dict[str, Any]) -> dict[str, Any]:
    """The event less any header whose name holds an underscore.

    WSGI names headers `HTTP_X_API_KEY` whether they arrived as `X-API-Key` or as
    `X_API_KEY`, so a proxy in front that strips one spelling would let the other
    through as the same header. The event still has the names as sent; such headers
    are dropped here, as nginx, gunicorn and Werkzeug's server drop them.
    """
    cleaned = event
    for field in ("headers", "multiValueHeaders"):
        headers = event.get(field)
        if isinstance(headers, dict) and any("_" in name for name in headers):
            if cleaned is event:
                cleaned = dict(event)
            cleaned[field] = {name: value for name, value in headers.items() if "_" not in name}
    return cleaned


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one API Gateway or ALB event."""
    response: dict[str, Any] = _serve(without_underscored_headers(event), context)
    return response
