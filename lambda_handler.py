"""AWS Lambda entry point: API Gateway (REST v1, HTTP API v2) and ALB events to the app.

The app is built once per container, at import, so that warm invocations reuse the
store's client, the business-register session, its cache and its breaker; nothing
else survives between invocations. apig-wsgi turns each event into a WSGI environ
and the answer back into the event response; it puts the Lambda context and the API
Gateway request context in the environ, where the request-id middleware finds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apig_wsgi import make_lambda_handler

from app import create_app

app = create_app()


def _whole_event_body(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The app, told that the body ends where the event's does.

    apig-wsgi hands over the event's whole body, decoded from base64 when it came so.
    A `Transfer-Encoding: chunked` header passed on from the client would otherwise
    make Werkzeug ignore the length apig-wsgi sets and read no body at all.
    """
    environ["wsgi.input_terminated"] = True
    result: Iterable[bytes] = app(environ, start_response)
    return result


# Binary support on: JSON, problem documents, HTML, CSS and JavaScript still leave as
# text (`isBase64Encoded: false`, apig-wsgi's non-binary prefixes); only the docs
# page's icon is base64, as API Gateway expects binary bodies to be.
_serve = make_lambda_handler(
    _whole_event_body,
    binary_support=True,
    non_binary_content_type_prefixes=(
        "text/",
        "application/json",
        "application/problem+json",
        "application/javascript",
    ),
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one API Gateway or ALB event."""
    response: dict[str, Any] = _serve(event, context)
    return response
