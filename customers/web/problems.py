"""Errors as RFC 9457 problem documents, raised where they are known, rendered here.

Every error the service answers, its own or Werkzeug's (404 for unknown routes,
405 with `Allow`, 413 from `MAX_CONTENT_LENGTH`, 429 from the rate limiter), leaves
through `render`, so clients always get `application/problem+json` with `type`,
`title`, `status` and `detail`, and `type` is always one of the service's own
`urn:customer-api:problem:<slug>` types (the classes below, and `slug_for_status`
for the rest of Werkzeug's errors). Nothing about the exception itself (text,
stack, SQL) is echoed, and what is echoed of the request (the names in `errors`)
is bounded: a caller cannot size an error body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, InternalServerError

from customers.web.jsonio import json_response
from customers.web.request_context import current_request_id, current_route

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:customer-api:problem:"
# Bounds on what an error echoes of the request: the first entries of `errors` (the rest
# counted in `errorsOmitted`), and the first characters of each name and message.
MAX_LISTED = 20
MAX_FIELD_CHARS = 64
MAX_MESSAGE_CHARS = 200

log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error the client caused or must know about; subclasses set the HTTP meaning."""

    status = 500
    title = "Internal Server Error"
    slug = "internal-error"

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
            "type": TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors[:MAX_LISTED]
            if len(self.errors) > MAX_LISTED:
                body["errorsOmitted"] = len(self.errors) - MAX_LISTED
        body.update(self.extra)
        return body


class InternalError(Problem):
    """The server failed; the document carries the request id, never the cause."""

    status, title, slug = 500, "Internal Server Error", "internal-error"


class BadRequest(Problem):
    """Werkzeug could not make sense of the request itself (its own 400)."""

    status, title, slug = 400, "Bad Request", "bad-request"


class ValidationFailed(Problem):
    """The request's body, query or path is not acceptable; `errors` names each field."""

    status, title, slug = 400, "Invalid request", "validation-error"


class Unauthorized(Problem):
    """No valid API key was presented."""

    status, title, slug = 401, "Unauthorized", "unauthorized"


class NotFound(Problem):
    """The resource does not exist."""

    status, title, slug = 404, "Not Found", "not-found"


class EmailConflict(Problem):
    """Another customer already has this email."""

    status, title, slug = 409, "Email already in use", "email-taken"


class MethodNotAllowed(Problem):
    """The path exists but does not take the method; `Allow` lists those it takes."""

    status, title, slug = 405, "Method Not Allowed", "method-not-allowed"


class RequestTimeout(Problem):
    """The request (its body) did not arrive in time."""

    status, title, slug = 408, "Request Timeout", "request-timeout"


class IdempotencyKeyInUse(Problem):
    """A request with this Idempotency-Key is still running; retry after `Retry-After`."""

    status, title, slug = 409, "Request in progress", "idempotency-key-in-use"


class IdempotencyKeyReused(Problem):
    """This Idempotency-Key was first used with another request."""

    status, title, slug = 422, "Idempotency key reused", "idempotency-key-reused"


class CustomerDeleted(Problem):
    """The customer the request's `Idempotency-Key` created has been deleted since."""

    status, title, slug = 410, "Customer deleted", "customer-deleted"


class CursorExpired(Problem):
    """410: the feed no longer holds what came after the cursor; resynchronise."""

    status, title, slug = 410, "Cursor expired", "cursor-expired"


class IdempotencyKeyLimit(Problem):
    """The client holds as many live Idempotency-Key records as it may; see `Retry-After`."""

    status, title, slug = 429, "Too many idempotency keys", "idempotency-key-limit"


class IdempotencyKeysExhaustedProblem(Problem):
    """The service holds as many Idempotency-Key records as it may; see `Retry-After`."""

    status, title, slug = 503, "No room for idempotency keys", "idempotency-keys-exhausted"


class PreconditionFailed(Problem):
    """`If-Match` does not match the current version."""

    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class BodyTooLarge(Problem):
    """The body is over the size limit."""

    status, title, slug = 413, "Content Too Large", "body-too-large"


class UnsupportedMediaType(Problem):
    """The body is not of a media type the route takes."""

    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class RateLimited(Problem):
    """Over the rate limit; `Retry-After` says when to try again."""

    status, title, slug = 429, "Too Many Requests", "rate-limited"


class ServiceUnavailable(Problem):
    """A dependency (the store, the business register) cannot answer now."""

    status, title, slug = 503, "Service Unavailable", "service-unavailable"


class BadGateway(Problem):
    """The register answered with an error or with something that is not its JSON."""

    status, title, slug = 502, "Bad Gateway", "upstream-error"


class UpstreamUnavailableProblem(Problem):
    """The register is unavailable for now, or the breaker keeps calls away from it."""

    status, title, slug = 503, "Service Unavailable", "upstream-unavailable"


class GatewayTimeout(Problem):
    """The register did not answer within the deadline."""

    status, title, slug = 504, "Gateway Timeout", "upstream-timeout"


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_errors(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """`[{field, message}]` from (field, message) pairs; long names and messages clipped.

    Field names can be the client's own (unknown members and query parameters), so
    each is clipped here; `Problem.to_dict` bounds how many are sent.
    """
    return [
        {
            "field": _clipped(field, MAX_FIELD_CHARS),
            "message": _clipped(message, MAX_MESSAGE_CHARS),
        }
        for field, message in pairs
    ]


def render(problem: Problem) -> Response:
    """The problem as a response, with its headers and the problem media type."""
    response = json_response(problem.to_dict(), problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


# The problem class of each status Werkzeug (or flask-limiter) raises that has a type of
# its own; other statuses get a type named after their reason phrase (slug_for_status).
FOR_STATUS: dict[int, type[Problem]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    412: PreconditionFailed,
    413: BodyTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    500: InternalError,
    503: ServiceUnavailable,
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def slug_for_status(status: int) -> str:
    """The problem type's slug for an HTTP error status: its class's, else its phrase's."""
    known = FOR_STATUS.get(status)
    if known is not None:
        return known.slug
    slug = re.sub(r"[^a-z0-9]+", "-", _phrase(status).lower()).strip("-")
    return slug if slug != "error" else "http-error"


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    # Werkzeug's own descriptions talk about browsers; flask-limiter's names the limit.
    detail = _DETAILS.get(status) or exc.description or _phrase(status)
    known = FOR_STATUS.get(status)
    if known is not None:
        problem = known(detail)
    else:
        problem = Problem(detail)
        problem.status, problem.title, problem.slug = (
            status,
            _phrase(status),
            slug_for_status(status),
        )
    response = render(problem)
    # Keep what Werkzeug knows about the error (Allow on 405, Retry-After on 503).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _internal_error(exc: InternalServerError) -> Response:
    original = exc.original_exception or exc
    # The route's template, not the path: a path carries ids and whatever a caller put in it.
    log.error(
        "unhandled_exception",
        request_id=current_request_id(),
        method=request.method,
        route=current_route(),
        error=type(original).__name__,
        exc_info=original,
    )
    problem = InternalError("The server could not complete the request. Quote the request id.")
    problem.extra["requestId"] = current_request_id()
    return render(problem)


# Details for Werkzeug's errors: its own texts talk about browsers and URLs.
_DETAILS = {
    400: "The request could not be understood.",
    404: "No resource lives at this path.",
    401: "Send a valid API key.",
    405: "This path does not take this method; see the Allow header.",
    408: "The request did not arrive in time.",
    413: "The body exceeds the size limit.",
    415: "The body is not of a media type this route takes.",
    429: "Too many requests; slow down and retry after the time in Retry-After.",
}


def init_app(app: Flask) -> None:
    """Route every error through `render`."""
    app.register_error_handler(Problem, render)
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(HTTPException, _from_http_exception)
