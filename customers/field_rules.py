"""Each customer field's type and rule, as pydantic reads them, with the rule in words.

The field declaration (`customers.fields`) names one of these types per field; the
request and response models (`customers.schemas`) are derived from the declaration.
Imported on first validation, not at start-up: pydantic costs a cold start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from customers.business_ids import is_valid_business_id

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
    Field(json_schema_extra=_email_schema),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=_PHONE),
    AfterValidator(_has_a_digit),
    PHONE_RULE,
    Field(
        description=f"Trimmed; then {PHONE_RULE.words}.",
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
        json_schema_extra={
            "pattern": rf"^{_TRIMMED}*[0-9]{{7}}-[0-9]{_TRIMMED}*$",
            "format": BUSINESS_ID_FORMAT,
        },
    ),
]
# The fields the server makes, as the API documents them.
ServerId = Annotated[str, Field(description="Opaque id made by the server.")]
ServerTimestamp = Annotated[
    str,
    Field(
        description="RFC 3339 UTC.",
        examples=["2026-01-31T12:00:00.000000Z"],
        # `format` lets generated clients parse them.
        json_schema_extra={"format": "date-time"},
    ),
]
