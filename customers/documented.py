"""Each operation's OpenAPI description, declared on its view: `@documented(...)`.

A view and what the document says of it sit together; `customers.openapi` assembles
the document from the views the app serves, and refuses a route whose view declares
nothing (`undocumented` marks the few files served that are not part of the API).

Why a decorator of our own and not apiflask 3.1.2 or flask-openapi3 4.3.2, measured with
`python -m bench.openapi_declarations` and `python -m bench.cold_start` on 2 shared cores
(fastest runs, which other work on the machine disturbs least; medians run 2x higher):

- Cold start. After `import app`, `import apiflask` takes another 170-270 ms
  (marshmallow, apispec, webargs, pydantic) and `import flask_openapi3` 180-210 ms
  (pydantic, which the service leaves to the first request that validates something):
  about as long again as the whole service's import (190 ms), so either would nearly
  double a Lambda cold start (bench.cold_start: 193 ms before the views carried their
  descriptions, 198 ms after, within the noise; `import app` 189 ms before, 188 after).
  This module and `customers.openapi_parts` import in under 3 ms.
- Per request. A GET with a path parameter, as WSGI: 82 µs on Flask with `documented`,
  which returns the view as it is; +2 to +5 µs on APIFlask (`@app.doc` only); +13 to
  +23 µs on flask-openapi3, which validates the path, query and headers through its
  models before every call.
- What they can say. Both take raw response objects, so problem responses and required
  headers pass through (APIFlask drops a raw response's `links`, and adds an `HTTPError`
  JSON body to the 401). What they make themselves is what this document must not say:
  a body only as `application/json` (no `application/merge-patch+json`, no description;
  APIFlask drops `required` too), parameters from a model as `anyOf [.., null]` with
  `default: null` and a `title` (a generator reads the default as "absent is null"),
  APIFlask's path parameter under the view's argument name (`customer_id`, where the API
  says `customerId`) without its description or length, and a 422 `ValidationError` the
  service never sends (flask-openapi3). flask-openapi3 cannot take the service's own
  business-ID type as a path parameter at all: it moves the schema's `examples` list
  into the Parameter object, which wants a map, and fails at start. And both would take
  over request parsing and error answers, which the service does itself (strict JSON,
  RFC 9457 problems, 400 not 422).

So the decorator only records plain OpenAPI objects, built from the shared parts in
`customers.openapi_parts`. What the pydantic models give (a field's schema, the named
examples made from the fields' own) is not known at import, when pydantic is not yet
loaded: a declaration names it with `examples(...)` or `field_schema(...)`, and the
assembler fills it in when the document is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

ATTRIBUTE = "openapi_operation"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class FromModels:
    """A part of a declaration that the assembler takes from the models' own schemas:
    `examples` by name (see `customers.openapi_examples`), or a field's schema."""

    table: Literal["examples", "fields"]
    name: str


def examples(name: str) -> FromModels:
    """The named examples `customers.openapi_examples` builds under `name`."""
    return FromModels("examples", name)


def field_schema(name: str) -> FromModels:
    """The schema of the field `name` as the models that check it publish it."""
    return FromModels("fields", name)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, less what the assembler adds to every one: its
    `security` (from the routes that need no key) and the `X-Request-ID` header of
    every response. Path parameters go to the path, which every method shares."""

    operation_id: str
    tag: str
    summary: str
    description: str
    responses: Mapping[str, dict[str, Any]]
    parameters: Sequence[dict[str, Any]] = ()
    body: dict[str, Any] | None = None


def documented(
    operation_id: str,
    *,
    tag: str,
    summary: str,
    description: str,
    responses: Mapping[str, dict[str, Any]],
    parameters: Sequence[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
) -> Callable[[View], View]:
    """Record the operation on the view, which is returned as it is: nothing per request."""
    operation = Operation(
        operation_id, tag, summary, description, responses, tuple(parameters), body
    )

    def record(view: View) -> View:
        setattr(view, ATTRIBUTE, operation)
        return view

    return record


def undocumented(view: View) -> View:
    """A route served but not part of the API (a page's own asset): left out on purpose."""
    setattr(view, ATTRIBUTE, None)
    return view


class UndocumentedRoute(LookupError):
    """A route's view declares no operation: every route is documented or says it is not."""


def operation_of(view: Callable[..., Any], rule: str) -> Operation | None:
    """The view's operation; None for an `undocumented` one. Raises UndocumentedRoute."""
    try:
        operation: Operation | None = getattr(view, ATTRIBUTE)
    except AttributeError:
        raise UndocumentedRoute(f"{rule} is not documented: decorate its view") from None
    return operation
