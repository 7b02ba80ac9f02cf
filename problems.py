"""Errors as RFC 9457 problem documents, raised where they are known, rendered here.

Every error the service answers, its own or Werkzeug's (404 for unknown routes,
405 with `Allow`, 413 from `MAX_CONTENT_LENGTH`), leaves through `render`, so
clients always get `application/problem+json` with `type`, `title`, `status`
and `detail`. Nothing about the exception itself (text, stack, SQL) is echoed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError

from jsonio import json_response
from logs import current_request_id

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:customer-api:problem:"

log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error the client caused or must know about; subclasses set the HTTP meaning."""

    status = 500
    title = "Internal Server Error"
    slug = ""  # "" means about:blank: the status code says it all

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_dict(self) -> dict[str, Any]:
        """The problem document's members."""
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug if self.slug else "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationFailed(Problem):
    """The request's body, query or path is not acceptable; `errors` names each field."""

    status, title, slug = 400, "Invalid request", "validation-error"


class Unauthorized(Problem):
    """No valid API key was presented."""

    status, title, slug = 401, "Unauthorized", "unauthorized"


class NotFound(Problem):
    """The resource does not exist."""

    status, title, slug = 404, "Not Found", "not-found"


class RequestTimeout(Problem):
    """The request's body did not arrive before the deadline."""

    status, title, slug = 408, "Request Timeout", "request-timeout"


class EmailConflict(Problem):
    """Another customer already has this email."""

    status, title, slug = 409, "Email already in use", "email-taken"


class PreconditionFailed(Problem):
    """`If-Match` does not match the current version."""

    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class UnsupportedMediaType(Problem):
    """The body is not of a media type the route takes."""

    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ServiceUnavailable(Problem):
    """A dependency (the store, the business register) cannot answer now."""

    status, title, slug = 503, "Service Unavailable", "service-unavailable"


def field_errors(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """`[{field, message}]` from (field, message) pairs."""
    return [{"field": field, "message": message} for field, message in pairs]


def render(problem: Problem) -> Response:
    """The problem as a response, with its headers and the problem media type."""
    response = json_response(problem.to_dict(), problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    problem = Problem(_DETAILS.get(status) or exc.description or HTTPStatus(status).phrase)
    problem.status = status
    problem.title = HTTPStatus(status).phrase
    response = render(problem)
    # Keep what Werkzeug knows about the error (Allow on 405, Retry-After on 503).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _internal_error(exc: InternalServerError) -> Response:
    original = exc.original_exception or exc
    log.error(
        "unhandled_exception",
        request_id=current_request_id(),
        error=type(original).__name__,
        exc_info=original,
    )
    problem = Problem("The server could not complete the request. Quote the request id.")
    problem.extra["requestId"] = current_request_id()
    return render(problem)


# Details for Werkzeug's errors: its own texts talk about browsers and URLs.
_DETAILS = {
    400: "The request could not be understood.",
    404: "No resource lives at this path.",
    405: "This path does not take this method; see the Allow header.",
    413: "The body exceeds the size limit.",
    429: "Too many requests; slow down and retry after the time in Retry-After.",
}


def init_app(app: Flask) -> None:
    """Route every error through `render`."""
    app.register_error_handler(Problem, render)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(HTTPException, _from_http_exception)
