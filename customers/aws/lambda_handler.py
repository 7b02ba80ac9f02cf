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

from app import WsgiApp, create_app
from customers.config import ConfigError

app = create_app()
if app.config["TRUSTED_PROXIES"]:
    raise ConfigError(
        "TRUSTED_PROXIES: leave it at 0 on Lambda, where the client address is the "
        "event's source IP and X-Forwarded-For is never trusted"
    )


def event_source_ip(environ: dict[str, Any]) -> str | None:
    """The caller's address as API Gateway or the load balancer saw it.

    apig-wsgi takes the first X-Forwarded-For entry of REST (v1) and ALB events, which
    is whatever the caller put there; API Gateway and ALB append the address they saw,
    so for ALB it is the last entry, and REST events carry it as `identity.sourceIp`
    (HTTP API v2 events as `http.sourceIp`, which apig-wsgi already uses).
    """
    context = environ.get("apig_wsgi.request_context")
    if not isinstance(context, dict):
        return None
    for source in (context.get("http"), context.get("identity")):
        if isinstance(source, dict) and source.get("sourceIp"):
            return str(source["sourceIp"])
    if "elb" in context:
        appended = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        return appended or None
    return None


def from_event_source(wsgi_app: WsgiApp) -> WsgiApp:
    """`wsgi_app` with REMOTE_ADDR set to the event's source IP, for limits and logs, and
    told that the body ends where the event's does.

    apig-wsgi hands over the event's whole body, decoded from base64 when it came so.
    A `Transfer-Encoding: chunked` header passed on from the client would otherwise
    make Werkzeug ignore the length apig-wsgi sets and read no body at all.
    """

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input_terminated"] = True
        address = event_source_ip(environ)
        if address is not None:
            environ["REMOTE_ADDR"] = address
        return wsgi_app(environ, start_response)

    return serve


# Binary support on: JSON, problem documents, HTML, CSS and JavaScript still leave as
# text (`isBase64Encoded: false`, apig-wsgi's non-binary prefixes); only the docs
# page's icon is base64, as API Gateway expects binary bodies to be.
_serve = make_lambda_handler(
    from_event_source(app),
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
