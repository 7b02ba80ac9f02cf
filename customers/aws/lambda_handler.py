"""AWS Lambda entry point: API Gateway (REST v1, HTTP API v2) and ALB events to the app.

The app is built once per container, at import, so that warm invocations reuse the
store's client, the business-register session, its cache and its breaker; nothing
else survives between invocations. apig-wsgi turns each event into a WSGI environ
and the answer back into the event response; it puts the Lambda context and the API
Gateway request context in the environ, where the request-id middleware finds them.

Where API Gateway puts the app decides the path it hands over. An HTTP API (payload
2.0) keeps a named stage (`/prod/customers`) or a custom domain's API mapping key
(`/v1/customers`) in `rawPath`; a REST API (payload 1.0) leaves them out of `path` but
the client called them (`requestContext.path`). `mount` takes that prefix out of the
path the app routes on and makes it the WSGI `SCRIPT_NAME`, so routes match and every
link the app writes (`request.script_root`) carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import structlog
from apig_wsgi import make_lambda_handler
from flask import request

from app import WsgiApp, create_app
from customers.aws.events import REFUSAL, EventRefused, readable_event, stand_in
from customers.config import ConfigError

log = structlog.get_logger(__name__)

# CloudWatch Logs reads the access line's Embedded Metric Format here, whatever METRICS says.
app = create_app({"METRICS": "emf"})
if app.config["TRUSTED_PROXIES"]:
    raise ConfigError(
        "TRUSTED_PROXIES: leave it at 0 on Lambda, where the client address is the "
        "event's source IP and X-Forwarded-For is never trusted"
    )


def refuse_unreadable_event() -> None:
    """Raise the problem a stand-in event carries (see `handler`), logging why."""
    event = request.environ.get("apig_wsgi.full_event")
    refusal = event.get(REFUSAL) if isinstance(event, dict) else None
    if not isinstance(refusal, EventRefused):
        return
    request.url_rule = None  # nothing of the event was routed: the access line names no route
    log.warning("lambda_event_refused", status=refusal.problem.status, reason=refusal.reason)
    raise refusal.problem


# Before every other hook: the key check and the limits need a request that could be read.
app.before_request_funcs.setdefault(None, []).insert(0, refuse_unreadable_event)


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


def _prefix_before(path: str, tail: str) -> str | None:
    """What precedes `tail` at the end of `path` ('' for none); None if `tail` is not there.

    The app's root (`/`) is reached as `/prod` as well as `/prod/`.
    """
    if tail == "/":
        return path.rstrip("/")
    if tail.startswith("/") and path.endswith(tail):
        prefix = path[: len(path) - len(tail)]
        if not prefix.endswith("/"):
            return prefix
    return None


def _routed_path(route_key: str, parameters: dict[str, str]) -> str | None:
    """The path an HTTP API route matched: its template with the path parameters filled in.

    `ANY /{proxy+}` with `{"proxy": "customers/7"}` is `/customers/7`. None for the
    `$default` route (no template) or a parameter missing from the event.
    """
    _, _, template = route_key.partition(" ")
    if not template.startswith("/"):
        return None
    segments = []
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            value = parameters.get(segment[1:-1].removesuffix("+"))
            if value is None:
                return None
            # As apig-wsgi decodes the path: UTF-8 bytes, one character per byte (PEP 3333).
            segment = value.encode("utf-8").decode("latin-1")
        segments.append(segment)
    return "/".join(segments)


def http_api_prefix(event: dict[str, Any], path: str) -> str:
    """The part of an HTTP API's `rawPath` (decoded as `path`) in front of the app's routes.

    The route and its path parameters say what the app's part is: what precedes it is
    the stage or the API mapping key. The `$default` route has no template; its prefix
    is a named stage the path begins with (the execute-api URL of a named stage), else
    nothing (the `$default` stage, or a custom domain without a mapping key).
    """
    context = event.get("requestContext") or {}
    routed = _routed_path(str(event.get("routeKey") or ""), event.get("pathParameters") or {})
    if routed is not None:
        prefix = _prefix_before(path, routed)
        if prefix is not None:
            return prefix
    stage = str(context.get("stage") or "$default")
    if stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        return f"/{stage}"
    return ""


def rest_api_prefix(event: dict[str, Any]) -> str:
    """The part of the path a REST API's client called in front of `path`: the stage on the
    execute-api URL, a base path mapping on a custom domain, '' without either."""
    called = (event.get("requestContext") or {}).get("path")
    path = event.get("path")
    if not isinstance(called, str) or not isinstance(path, str):
        return ""
    prefix = _prefix_before(called, path)
    if prefix is None:  # one of them percent-encoded where the other is not
        prefix = _prefix_before(unquote(called), unquote(path))
    return prefix or ""


def mount(environ: dict[str, Any]) -> None:
    """Split the event's path into `SCRIPT_NAME` (where API Gateway put the app) and
    `PATH_INFO` (what the app routes on). ALB hands over the path as called: nothing to do."""
    event = environ["apig_wsgi.full_event"]
    context = event.get("requestContext")
    if not isinstance(context, dict) or "elb" in context:
        return
    if event.get("version") == "2.0":
        path: str = environ["PATH_INFO"]
        prefix = http_api_prefix(event, path)
        environ["PATH_INFO"] = path[len(prefix) :] or "/"
    else:
        prefix = rest_api_prefix(event)
    environ["SCRIPT_NAME"] = prefix


def mounted_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The app, reached at the path API Gateway put it under."""
    mount(environ)
    result: Iterable[bytes] = app(environ, start_response)
    return result


# Binary support on: JSON, problem documents, HTML, CSS and JavaScript still leave as
# text (`isBase64Encoded: false`, apig-wsgi's non-binary prefixes); only the docs
# page's icon is base64, as API Gateway expects binary bodies to be.
_serve = make_lambda_handler(
    from_event_source(mounted_app),
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


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Serve one API Gateway or ALB event, whatever it holds.

    An event apig-wsgi could not read, or with a body over the limit, is answered by the
    app all the same, as a stand-in of its kind carrying its 400 or 413 problem: with a
    request id, the security headers and an access line, like any other answer.
    """
    try:
        readable = readable_event(event, body_limit=app.config["MAX_CONTENT_LENGTH"])
    except EventRefused as refusal:
        readable = stand_in(event, refusal)
    try:
        response: dict[str, Any] = _serve(without_underscored_headers(readable), context)
    finally:
        if "tracing" in app.extensions:
            # A container may be frozen once the answer is out: its spans go now.
            from customers.web import tracing

            tracing.flush(app)
    return response
