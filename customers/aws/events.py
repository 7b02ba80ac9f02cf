"""Lambda events read before apig-wsgi reads them: every field it and the handler use.

apig-wsgi trusts the event it is given: without `rawPath`, `headers` or `httpMethod`,
with a body that is not base64, with a number where a string belongs, it raises
(KeyError, binascii.Error, TypeError...) out of the handler, and Lambda answers with an
error of its own that the service never logs or counts. `readable_event` checks each
field apig-wsgi (2.x: `get_environ_v1`, `get_environ_v2`, `get_body`) and the handler
read, as they read it, and raises EventRefused naming the first that will not do, never
its value. A body longer than the limit allows is refused by its length, before
anything decodes or copies it.

`stand_in` makes the event that carries a refusal through the app instead: the same
kind (payload 1.0 or 2.0, ALB), so the answer has the shape the caller expects, and
nothing of the original but its method and API Gateway's request id.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from customers.web.problems import BadRequest, BodyTooLarge, Problem

# The key under which a stand-in event carries its refusal to the app; no event from API
# Gateway or a load balancer has it.
REFUSAL = "customer_api.refusal"
_METHOD = re.compile(r"[A-Za-z]{1,20}")
# What a client sends of a path or query beyond ASCII, as the bytes it sent (see _wire).
_WIRE_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))


class EventRefused(Exception):
    """An event the handler will not hand to the app: `problem` answers it, `reason`
    says why for the log (a field's name and what is wrong with it, never its value)."""

    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason


def _unreadable(reason: str) -> EventRefused:
    return EventRefused(BadRequest("The request could not be understood."), reason)


def kind_of(event: dict[str, Any]) -> str:
    """ "alb", "1.0" or "2.0", decided as apig-wsgi decides it (anything else is refused)."""
    context = event.get("requestContext")
    if isinstance(context, dict) and "elb" in context:
        return "alb"
    version = event.get("version", "1.0")
    return version if version in ("1.0", "2.0") else "unknown"


def _text(value: Any) -> bool:
    """A string that UTF-8 can encode: JSON may hold lone surrogates, which it cannot."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _texts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_text(item) for item in value)


def _check_map(event: dict[str, Any], field: str, values: Callable[[Any], bool]) -> None:
    """`field`, when present and not null, maps strings to what `values` accepts."""
    mapping = event.get(field)
    if mapping is None:
        return
    if not isinstance(mapping, dict) or not all(
        _text(name) and values(value) for name, value in mapping.items()
    ):
        raise _unreadable(f"`{field}` is not an object of strings")


def _required_text(holder: dict[str, Any], field: str, where: str = "") -> str:
    value = holder.get(field)
    if not _text(value):
        state = "missing" if value is None else "not a string"
        raise _unreadable(f"`{where}{field}` is {state}")
    return str(value)


def _check_context(context: dict[str, Any]) -> dict[str, Any]:
    """`requestContext`'s fields the handler reads, each a string when present: the request
    id (logged), the source address (the client's, for limits and idempotency records),
    and a REST API's `path` (where it puts the app), which is returned as on the wire."""
    identity = context.get("identity")
    present = {
        "requestContext.requestId": context.get("requestId"),
        "requestContext.path": context.get("path"),
        "requestContext.identity.sourceIp": (
            identity.get("sourceIp") if isinstance(identity, dict) else None
        ),
    }
    for field, value in present.items():
        if value is not None and not _text(value):
            raise _unreadable(f"`{field}` is not a string")
    path = present["requestContext.path"]
    if path is not None and not path.isascii():
        return {**context, "path": _wire(path)}
    return context


def _wire(text: str) -> str:
    """`text` with every character beyond ASCII as the percent-encoded UTF-8 a client sends.

    API Gateway hands over a path or query string a client sent in raw UTF-8 as text;
    WSGI and apig-wsgi expect it as sent on the wire, and would fail on the text.
    """
    return text if text.isascii() else quote(text, safe=_WIRE_SAFE)


def _check_body(event: dict[str, Any], *, limit: int) -> None:
    """The body is text (base64 when flagged so) no longer than `limit` bytes allow."""
    body = event.get("body")
    flagged = event.get("isBase64Encoded", False)
    if not isinstance(flagged, bool) and flagged is not None:
        raise _unreadable("`isBase64Encoded` is not true or false")
    if body is None or body == "":
        return
    if not isinstance(body, str):
        raise _unreadable("`body` is not a string")
    # Base64 of `limit` bytes is at most this long; text of more characters than `limit`
    # is more than `limit` bytes in UTF-8. Either way the length alone refuses it.
    longest = 4 * math.ceil(limit / 3) if flagged else limit
    if len(body) > longest:
        raise EventRefused(
            BodyTooLarge("The body exceeds the size limit."),
            f"`body` is longer than {limit} bytes allow",
        )
    if flagged:
        try:
            binascii.a2b_base64(body.encode("ascii"), strict_mode=True)
        except (UnicodeEncodeError, binascii.Error):
            raise _unreadable("`body` is not base64") from None
    elif not _text(body):
        raise _unreadable("`body` is not UTF-8 text")


def _readable_v1(event: dict[str, Any]) -> dict[str, Any]:
    """Payload 1.0 (REST API) and ALB: what `get_environ_v1` and the handler read."""
    _required_text(event, "httpMethod")
    path = _required_text(event, "path")
    _check_map(event, "headers", _text)
    _check_map(event, "multiValueHeaders", _texts)
    _check_map(event, "queryStringParameters", _text)
    _check_map(event, "multiValueQueryStringParameters", _texts)
    context = event.get("requestContext")
    if context is None:
        return event if path.isascii() else {**event, "path": _wire(path)}
    if not isinstance(context, dict):
        raise _unreadable("`requestContext` is not an object")
    return {**event, "path": _wire(path), "requestContext": _check_context(context)}


def _readable_v2(event: dict[str, Any]) -> dict[str, Any]:
    """Payload 2.0 (HTTP API): what `get_environ_v2` and the handler read."""
    path = _required_text(event, "rawPath")
    query = _required_text(event, "rawQueryString")
    if not isinstance(event.get("headers"), dict):
        raise _unreadable("`headers` is missing or not an object")
    _check_map(event, "headers", _text)
    _check_map(event, "pathParameters", _text)
    cookies = event.get("cookies", [])
    if not isinstance(cookies, list) or not all(_text(cookie) for cookie in cookies):
        raise _unreadable("`cookies` is not a list of strings")
    context = event.get("requestContext")
    if not isinstance(context, dict):
        raise _unreadable("`requestContext` is missing or not an object")
    http = context.get("http")
    if not isinstance(http, dict):
        raise _unreadable("`requestContext.http` is missing or not an object")
    for field in ("method", "protocol", "sourceIp"):
        _required_text(http, field, "requestContext.http.")
    _check_context(context)
    if path.isascii() and query.isascii():
        return event
    return {**event, "rawPath": _wire(path), "rawQueryString": _wire(query)}


def readable_event(event: Any, *, body_limit: int) -> dict[str, Any]:
    """`event` as apig-wsgi can read it (a path or query beyond ASCII percent-encoded).

    Raises EventRefused: a 400 for an event it cannot read, a 413 for a body over
    `body_limit` bytes, told by its length.
    """
    if not isinstance(event, dict):
        raise _unreadable("the event is not an object")
    kind = kind_of(event)
    if kind == "unknown":
        raise _unreadable("`version` is not 1.0 or 2.0")
    _check_body(event, limit=body_limit)
    return _readable_v2(event) if kind == "2.0" else _readable_v1(event)


def stand_in(event: Any, refusal: EventRefused) -> dict[str, Any]:
    """An event of the refused one's kind that carries `refusal` through the app to the
    client: a request for `/` with no headers and no body."""
    original = event if isinstance(event, dict) else {}
    kind = kind_of(original)
    method = original.get("httpMethod")
    context = original.get("requestContext")
    context = context if isinstance(context, dict) else {}
    if kind == "2.0":
        http = context.get("http")
        method = http.get("method") if isinstance(http, dict) else None
    method = method.upper() if isinstance(method, str) and _METHOD.fullmatch(method) else "GET"
    request_id = context.get("requestId")
    kept = {"requestId": request_id} if _text(request_id) else {}
    if kind == "2.0":
        # The address apig-wsgi itself gives an event that names none; nothing reads it
        # before the refusal.
        http = {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"}
        return {
            "version": "2.0",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": {},
            "requestContext": {**kept, "http": http},
            REFUSAL: refusal,
        }
    stand: dict[str, Any] = {"httpMethod": method, "path": "/", "headers": {}}
    if "multiValueHeaders" in original:  # answered in multi-value form, as it must be then
        stand["multiValueHeaders"] = {}
    stand["requestContext"] = {"elb": {}} if kind == "alb" else kept
    return {**stand, REFUSAL: refusal}
