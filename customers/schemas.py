"""The customer's shapes: one pydantic model per purpose, strict and closed, each
derived from the field declaration (`customers.fields`).

Strict types and `extra="forbid"` mean nothing is silently coerced and every
unknown or read-only field is named in a 400. The JSON Schema of these models
is what the OpenAPI document publishes, so the document and the checks agree:
each field's published pattern admits only what its validators accept, and a
request body publishes no `default` (see `_no_defaults`).

The models are made by `customer_model` from the declaration, as litestar derives
its create, patch and read shapes from one model: a field added there appears in
every body, in the document and in the errors without an edit here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import SkipJsonSchema

from customers.field_rules import BUSINESS_ID_FORMAT, BusinessId, Email, Rule, ServerTimestamp
from customers.fields import FIELDS, FILTERABLE, READ_ONLY_FIELDS, WRITABLE, CustomerField

# Re-exported: the import's models and the tests name them here, beside the models.
__all__ = ["BUSINESS_ID_FORMAT", "Email", "Rule"]


def _no_defaults(schema: dict[str, Any]) -> None:
    """Drop every member's `default` from a request model's schema.

    To a generator, a default says "absent is this value": openapi-typescript then makes
    the member required, and a client satisfying the type with `null` clears a field it
    never touched. What absence means is the operation's to say (a merge patch leaves
    the field as it is; a create or a replacement leaves it empty), so no member
    publishes one.
    """
    for member in schema.get("properties", {}).values():
        member.pop("default", None)


_STRICT = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_defaults)


def _written(field: CustomerField) -> Any:
    """The field's rule, with the declaration's example."""
    annotation = field.annotation()
    if field.example is None:
        return annotation
    return Annotated[annotation, Field(examples=[field.example])]


def _shown(field: CustomerField) -> Any:
    """The field as the API shows it: what the server made documents itself; a value a
    client wrote is shown as stored, `null` when unset."""
    if not field.writable:
        return field.annotation()
    return field.value_type if field.required else field.value_type | None


def _create_member(field: CustomerField) -> Any:
    return _written(field) if field.required else (_written(field) | None, None)


# `SkipJsonSchema[None]`: null is accepted by the type but not published. Subscripted at
# run time; mypy reads SkipJsonSchema as a type alias, which the value `Any` sets aside.
_SKIP_JSON_SCHEMA: Any = SkipJsonSchema
_NOT_OFFERED = _SKIP_JSON_SCHEMA[None]


def _patch_member(field: CustomerField) -> Any:
    # A required field cannot be cleared: null is a 400, so the schema does not offer
    # it; left out, it stays as it is.
    if field.required:
        return (_written(field) | _NOT_OFFERED, None)
    return (_written(field) | None, None)


def customer_model(
    title: str,
    doc: str,
    members: Mapping[str, Any],
    *,
    config: ConfigDict = _STRICT,
    validators: Mapping[str, Callable[..., Any]] | None = None,
) -> type[BaseModel]:
    """A model named `title` with `members` (API name -> type, or (type, default))."""
    return create_model(
        title,
        __config__=ConfigDict(**config, title=title),
        __doc__=doc,
        __module__=__name__,
        __validators__=dict(validators or {}),
        **members,
    )


CREATE_MEMBERS = {field.api: _create_member(field) for field in WRITABLE}
CustomerCreate = customer_model("CustomerCreate", "Body of `POST /customers`.", CREATE_MEMBERS)
CustomerReplace = customer_model(
    "CustomerReplace",
    "Body of `PUT /customers/{id}`: every writable field; an absent optional one is cleared.",
    CREATE_MEMBERS,
)
CustomerPatch = customer_model(
    "CustomerPatch",
    "Body of `PATCH /customers/{id}` (JSON merge patch): `null` clears an optional field.",
    {field.api: _patch_member(field) for field in WRITABLE},
)
Customer = customer_model(
    "Customer",
    "A customer as the API returns it; unset optional fields are `null`.",
    {field.api: _shown(field) for field in FIELDS},
    config=ConfigDict(),
)


class FieldChange(BaseModel):
    """One field's value before and after a change (`from` is `null` on `created`)."""

    model_config = ConfigDict(title="FieldChange", populate_by_name=True)

    from_: str | None = Field(alias="from")
    to: str | None


class HistoryEntry(BaseModel):
    """One change of a customer, as `GET /customers/{customerId}/history` lists it."""

    model_config = ConfigDict(title="HistoryEntry")

    version: int = Field(
        ge=1, description="The customer's version after the change: the number in its ETag."
    )
    at: ServerTimestamp = Field(description="When, RFC 3339 UTC.")
    action: Literal["created", "updated", "replaced", "imported"] = Field(
        description="POST, PATCH, PUT, or the bulk import."
    )
    actor: str | None = Field(
        description="Who: `key:<fingerprint>` of the API key, as the logs name it; `cli` for"
        " an import; `null` with API keys off."
    )
    requestId: str | None = Field(
        default=None, description="The `X-Request-ID` of the request; absent for imports."
    )
    changes: dict[str, FieldChange] = Field(
        description="Every field whose value changed, by its name in `Customer`."
    )


CustomerFilter = customer_model(
    "CustomerFilter",
    """The filters of `GET /customers`: each checked and trimmed as the field it names.

    A filter value the field would refuse can match no customer, so it is a 400 that
    names the parameter rather than an empty page; an equal value (trimmed, and for
    emails in any case) finds the customer.
    """,
    {field.api: (field.annotation() | None, None) for field in FILTERABLE},
)


class BusinessLookup(BaseModel):
    """The path of `GET /businesses/{businessId}`: checked and trimmed as the field is."""

    model_config = ConfigDict(**_STRICT, title="BusinessLookup")

    businessId: BusinessId


def _message(error: Any, member: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "is read-only" if member in READ_ONLY_FIELDS else "is not a known field"
    if kind == "missing":
        return "is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def json_path(location: tuple[int | str, ...], body: Any) -> str:
    """The JSON path (`address.postalCode`, `tags.0`) of an error's location in `body`.

    A location goes on past the JSON members into the validator's own names for the
    members of a union (`email.function-after[...]`), which are not part of the body:
    the path follows the location while it names a member of an object or an item of
    an array in `body`, and ends after a member that is missing or not allowed.
    """
    path: list[str] = []
    current = body
    for step in location:
        if isinstance(current, Mapping) and isinstance(step, str):
            path.append(step)
            if step not in current:
                break
            current = current[step]
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            path.append(str(step))
            current = current[step]
        else:
            break
    return ".".join(path) or "body"


def describe_errors(exc: ValidationError, body: Any) -> list[tuple[str, str]]:
    """(JSON path, message) for every bad member of `body`, each named once.

    The first error of a member is the one about its non-null form.
    """
    pairs: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = json_path(tuple(error["loc"]), body)
        pairs.setdefault(path, _message(error, path))
    return list(pairs.items())
