"""The customer's shapes: one pydantic model per purpose, strict and closed.

Strict types and `extra="forbid"` mean nothing is silently coerced and every
unknown or read-only field is named in a 400. The JSON Schema of these models
is what the OpenAPI document publishes, so the document and the checks agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from business_client import is_valid_business_id

READ_ONLY_FIELDS = ("id", "createdAt", "updatedAt")
# C0 and C1 control characters, NUL among them: never part of a name or an address.
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_PHONE = r"^[0-9 +()\-]{1,32}$"
# What pydantic's strip_whitespace removes (Rust's `str::trim`: Unicode White_Space), spelled
# out for published patterns: `\s` differs between ECMA-262, Python and Rust regexes.
_WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TRIMMED = f"[{_WHITE_SPACE}]"
_KEPT = f"[^{_WHITE_SPACE}{_CONTROLS}]"


# pydantic's errors for a broken length or pattern, which it words as "String should
# match pattern '^[0-9 +()\\-]{1,32}$'": a field with a Rule says its rule instead.
_CONSTRAINT_ERRORS = frozenset({"string_too_short", "string_too_long", "string_pattern_mismatch"})


@dataclass(frozen=True, slots=True)
class Rule:
    """What a field accepts, in words, declared with the field in its `Annotated`.

    A value that breaks the field's length or pattern is refused with "must be
    <words>", in the API's problems and the import's lines alike; the field's
    description quotes the same words.
    """

    words: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._in_words, handler(source))

    def _in_words(self, value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
        try:
            return validate(value)
        except ValidationError as exc:
            if any(error["type"] in _CONSTRAINT_ERRORS for error in exc.errors()):
                raise PydanticCustomError(
                    "field_rule", "must be {rule}", {"rule": self.words}
                ) from None
            raise


NAME_RULE = Rule("1 to 200 characters, without control characters")
EMAIL_RULE = Rule("an email address of 3 to 254 characters")
PHONE_RULE = Rule("1 to 32 digits, spaces and + - ( ), with at least one digit")
BUSINESS_ID_RULE = Rule("a Finnish business ID NNNNNNN-C with a valid check digit")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _email(value: str) -> str:
    # Imported on first use: email-validator builds large tables at import (about 50 ms),
    # which start-up and a Lambda cold start need not pay before the first write.
    from email_validator import EmailNotValidError, validate_email

    _no_control_characters(value)
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    return value


def _has_a_digit(value: str) -> str:
    if not any(character.isdigit() for character in value):
        raise ValueError("must hold at least one digit")
    return value


def _business_id(value: str) -> str:
    if not is_valid_business_id(value):
        raise ValueError(f"must be {BUSINESS_ID_RULE.words}")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
    NAME_RULE,
    Field(
        description=f"Trimmed; {NAME_RULE.words}.",
        examples=["Maija Meikäläinen"],
        # What the validators accept, for clients and fuzzers: once trimmed, it starts and
        # ends with a character that is neither trimmed nor a control, and holds no control.
        json_schema_extra={
            "pattern": rf"^{_TRIMMED}*{_KEPT}(?:[^{_CONTROLS}]*{_KEPT})?{_TRIMMED}*$"
        },
    ),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(_email),
    EMAIL_RULE,
    Field(
        json_schema_extra={"format": "email"},
        description="Unique among customers, compared case-insensitively; stored as given.",
        examples=["maija@example.com"],
    ),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=_PHONE),
    AfterValidator(_has_a_digit),
    PHONE_RULE,
    Field(
        description=f"Trimmed; then {PHONE_RULE.words}.",
        examples=["+358 40 123 4567"],
        # What the validators accept, for clients and fuzzers: the trimmed value starts and
        # ends with a non-space, holds a digit (the look-ahead) and is at most 32 long.
        json_schema_extra={
            "pattern": rf"^{_TRIMMED}*(?=[ +()\-]*[0-9])[0-9+()\-]"
            rf"(?:[0-9 +()\-]{{0,30}}[0-9+()\-])?{_TRIMMED}*$"
        },
    ),
]
BusinessId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{7}-[0-9]$"),
    AfterValidator(_business_id),
    BUSINESS_ID_RULE,
    Field(
        description=f"Trimmed; then {BUSINESS_ID_RULE.words}.",
        examples=["0112038-9"],
        json_schema_extra={"pattern": rf"^{_TRIMMED}*[0-9]{{7}}-[0-9]{_TRIMMED}*$"},
    ),
]


def _no_default(schema: dict[str, Any]) -> None:
    """Drop the `null` default a field that cannot be null would otherwise publish."""
    schema.pop("default", None)


_STRICT = ConfigDict(extra="forbid", strict=True)
# Timestamps are strings in RFC 3339 UTC; `format` lets generated clients parse them.
_DATE_TIME: dict[str, Any] = {"format": "date-time"}
_TIMESTAMP = "2026-01-31T12:00:00.000000Z"


class CustomerCreate(BaseModel):
    """Body of `POST /customers`."""

    model_config = ConfigDict(**_STRICT, title="CustomerCreate")

    name: Name
    email: Email
    phone: Phone | None = None
    businessId: BusinessId | None = None


class CustomerReplace(CustomerCreate):
    """Body of `PUT /customers/{id}`: every writable field; an absent optional one is cleared."""

    model_config = ConfigDict(**_STRICT, title="CustomerReplace")


class CustomerPatch(BaseModel):
    """Body of `PATCH /customers/{id}` (JSON merge patch): `null` clears an optional field."""

    model_config = ConfigDict(**_STRICT, title="CustomerPatch")

    # name and email cannot be cleared: null is a 400, so the schema offers neither null
    # nor a null default; left out, they stay as they are.
    name: Name | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    email: Email | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    phone: Phone | None = None
    businessId: BusinessId | None = None


class Customer(BaseModel):
    """A customer as the API returns it; unset optional fields are `null`."""

    model_config = ConfigDict(title="Customer")

    id: str = Field(description="Opaque id made by the server.")
    name: str
    email: str
    phone: str | None
    businessId: str | None
    createdAt: str = Field(
        description="RFC 3339 UTC.", examples=[_TIMESTAMP], json_schema_extra=_DATE_TIME
    )
    updatedAt: str = Field(
        description="RFC 3339 UTC.", examples=[_TIMESTAMP], json_schema_extra=_DATE_TIME
    )


class CustomerFilter(BaseModel):
    """The filters of `GET /customers`: each checked and trimmed as the field it names.

    A filter value the field would refuse can match no customer, so it is a 400 that
    names the parameter rather than an empty page; an equal value (trimmed, and for
    emails in any case) finds the customer.
    """

    model_config = ConfigDict(**_STRICT, title="CustomerFilter")

    email: Email | None = None
    businessId: BusinessId | None = None


class BusinessLookup(BaseModel):
    """The path of `GET /businesses/{businessId}`: checked and trimmed as the field is."""

    model_config = ConfigDict(**_STRICT, title="BusinessLookup")

    businessId: BusinessId


# API field name -> store column.
COLUMN_OF = {"name": "name", "email": "email", "phone": "phone", "businessId": "business_id"}
REQUIRED_FIELDS = ("name", "email")


def _message(error: Any) -> str:
    kind = error["type"]
    field = error["loc"][0] if error["loc"] else ""
    if kind == "extra_forbidden":
        return "is read-only" if field in READ_ONLY_FIELDS else "is not a known field"
    if kind == "missing":
        return "is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def describe_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for every bad field, each named once.

    The bodies are flat, closed objects of scalars, so the first element of an
    error's location is the JSON member; what follows it names a member of a
    union (`email.none`, `email.function-after[...]`), which is not a JSON path.
    The first error of a field is the one about its non-null form.
    """
    pairs: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "body"
        pairs.setdefault(field, _message(error))
    return list(pairs.items())
