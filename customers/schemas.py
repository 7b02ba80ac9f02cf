"""The customer's shapes: one pydantic model per purpose, strict and closed.

Strict types and `extra="forbid"` mean nothing is silently coerced and every
unknown or read-only field is named in a 400. The JSON Schema of these models
is what the OpenAPI document publishes, so the document and the checks agree:
each field's published pattern admits only what its validators accept, and a
request body publishes no `default` (see `_no_defaults`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

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


def _ascii_class(characters: str) -> str:
    """`characters` as a character class body that ECMA-262 (with or without the `u` flag)
    and Python read alike: runs as ranges, and only `\\`, `]`, `[`, `^` and `-` escaped."""

    def spelled(character: str) -> str:
        return f"\\{character}" if character in "\\[]^-" else character

    codes = sorted(set(map(ord, characters)))
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][-1] + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return "".join(
        f"{spelled(chr(run[0]))}-{spelled(chr(run[-1]))}"
        if len(run) > 2
        else "".join(spelled(chr(code)) for code in run)
        for run in runs
    )


def _email_schema(schema: dict[str, Any]) -> None:
    """The rule `_email` applies, for people and validators: the ASCII addresses it accepts
    as a pattern, built from email-validator's own constants, and the rule in words.

    Not `format: email`: that is RFC 5321's Mailbox, which takes quoted local parts, IP
    literals, dotless and special-use domains (refused here) and no surrounding white
    space (trimmed here). Called when the schema is built, so email-validator is still
    imported only by the first address checked or the first document served.
    """
    from email_validator import SPECIAL_USE_DOMAIN_NAMES
    from email_validator.rfc_constants import ATEXT, DNS_LABEL_LENGTH_LIMIT

    atext = re.compile(f"[{ATEXT}]")
    local_class = _ascii_class("".join(c for c in map(chr, range(0x21, 0x7F)) if atext.match(c)))
    local = f"[{local_class}]+(?:\\.[{local_class}]+)*"
    inner = DNS_LABEL_LENGTH_LIMIT - 2
    # email-validator refuses labels whose third and fourth characters are `--` (Punycode's
    # `xn--` only when it decodes, which a pattern cannot tell), so none are admitted.
    no_double_hyphen = "(?![a-zA-Z0-9-]{2}--)"
    label = f"{no_double_hyphen}[a-zA-Z0-9](?:[a-zA-Z0-9-]{{0,{inner}}}[a-zA-Z0-9])?"
    top_level = f"{no_double_hyphen}(?:[a-zA-Z0-9][a-zA-Z0-9-]{{0,{inner}}})?[a-zA-Z]"
    reserved = "|".join(
        "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)
        for name in SPECIAL_USE_DOMAIN_NAMES
    )
    not_reserved = f"(?!(?:[a-zA-Z0-9-]+\\.)*(?:{reserved}){_TRIMMED}*$)"
    schema["pattern"] = f"^{_TRIMMED}*{local}@{not_reserved}(?:{label}\\.)+{top_level}{_TRIMMED}*$"
    names = ", ".join(f"`{name}`" for name in SPECIAL_USE_DOMAIN_NAMES)
    schema["description"] = (
        "An email address as email-validator checks it, without a DNS lookup. Before the"
        " `@`: letters, digits and ``!#$%&'*+-/=?^_`{|}~`` in runs joined by single dots."
        " After it: a domain name of at least two labels joined by dots, each of letters,"
        f" digits and inner hyphens, at most {DNS_LABEL_LENGTH_LIMIT} long, the last ending"
        f" in a letter; never a special-use name or under one ({names}). White space around"
        " it is trimmed; at most 254 characters. `pattern` is this rule for addresses in"
        " ASCII; internationalized addresses (RFC 6531, IDNA) are accepted as well when"
        " email-validator accepts them. Unique among customers, compared"
        " case-insensitively; stored trimmed, in the case given."
    )


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(_email),
    EMAIL_RULE,
    Field(json_schema_extra=_email_schema, examples=["maija@example.com"]),
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
# The check digit is arithmetic that no pattern states, so the schema names it as a format
# of its own (unknown formats are annotations to validators); a tool that knows the format
# can check it, or generate IDs that pass (the e2e Schemathesis run does).
BUSINESS_ID_FORMAT = "fi-business-id"
BusinessId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{7}-[0-9]$"),
    AfterValidator(_business_id),
    BUSINESS_ID_RULE,
    Field(
        description=f"Trimmed; then {BUSINESS_ID_RULE.words} (Y-tunnus: seven digits, a"
        " hyphen and the check digit the register's modulus 11 rule gives for them).",
        examples=["0112038-9"],
        json_schema_extra={
            "pattern": rf"^{_TRIMMED}*[0-9]{{7}}-[0-9]{_TRIMMED}*$",
            "format": BUSINESS_ID_FORMAT,
        },
    ),
]


def _no_defaults(schema: dict[str, Any]) -> None:
    """Drop every member's `default` from a request model's schema.

    To a generator, a default says "absent is this value": openapi-typescript then makes
    the member required, and a client satisfying the type with `null` clears a phone it
    never touched. What absence means is the operation's to say (a merge patch leaves
    the field as it is; a create or a replacement leaves it empty), so no member
    publishes one.
    """
    for member in schema.get("properties", {}).values():
        member.pop("default", None)


_STRICT = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_defaults)
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

    # name and email cannot be cleared: null is a 400, so the schema does not offer it;
    # left out, they stay as they are.
    name: Name | SkipJsonSchema[None] = None
    email: Email | SkipJsonSchema[None] = None
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
    at: str = Field(
        description="When, RFC 3339 UTC.", examples=[_TIMESTAMP], json_schema_extra=_DATE_TIME
    )
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
