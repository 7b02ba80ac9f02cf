"""`If-Match` and `If-None-Match` read strictly (RFC 9110 §8.8.3, §13.1.1, §13.1.2).

A precondition guards a write against lost updates, so a field that is present but
cannot be read must never let the write through, and must never break it either.
What reaches the app for an odd value depends on the server: Werkzeug's server hands
over non-ASCII bytes decoded as latin-1, apig-wsgi the Lambda event's Unicode text,
and granian an empty string (and with several lines of one field, an empty element in
the list it joins them into). Werkzeug's own parser (`request.if_match`) is lenient on
purpose: it takes unquoted tokens and skips what it cannot read, which suits a cache but
not a guard. So here a field value is readable only when it is `*` or a list of entity
tags in the RFC's grammar, in ASCII and without empty list elements. Anything else is
read as `UNREADABLE`, a condition no ETag satisfies.

A customer's ETag is its version, and `expected_version` turns a write's conditions into
the version the store must find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import request

from customers.openapi_parts import pattern
from customers.store_access import find
from customers.web.problems import PreconditionFailed
from db import MAX_VERSION

if TYPE_CHECKING:
    from db import CustomerRecord

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc being visible ASCII but DQUOTE.
# (The RFC's obs-text, bytes 0x80-0xFF, is left out: the servers disagree on it.)
_TAG = r'(W/)?"([\x21\x23-\x7e]*)"'
_TAG_LIST = re.compile(rf"[ \t]*{_TAG}(?:[ \t]*,[ \t]*{_TAG})*[ \t]*")
_ONE_TAG = re.compile(_TAG)
# Every readable field value: `*` or a tag list. The OpenAPI document publishes it as the
# pattern of If-Match and If-None-Match.
READABLE = re.compile(rf"[ \t]*\*[ \t]*|{_TAG_LIST.pattern}")
# What the OpenAPI document says a client may send: the readable values. Any other is read
# as matching no ETag (412).
ENTITY_TAGS = {"type": "string", "pattern": pattern(READABLE), "examples": ['"1"']}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Act only if the customer still has one of these ETags (`*`: any); else 412."
    " Strong tags only match: `W/` tags never do.",
    "schema": ENTITY_TAGS,
}
STALE = ("412", "If-Match names no current version; nothing changed.", "precondition-failed")
# The ETag of a version: its decimal digits, without leading zeros (see etag_of).
VERSION_TAG = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class EntityTags:
    """One field's value: `*`, or opaque tags with the weak ones kept apart."""

    readable: bool
    star: bool = False
    strong: frozenset[str] = frozenset()
    weak: frozenset[str] = frozenset()

    def matches_strongly(self, etag: str) -> bool:
        """If-Match's comparison: a weak tag never matches (RFC 9110 §8.8.3.2)."""
        return self.star or etag in self.strong

    def matches_weakly(self, etag: str) -> bool:
        """If-None-Match's comparison: a weak tag matches its strong twin."""
        return self.star or etag in self.strong or etag in self.weak


UNREADABLE = EntityTags(readable=False)
STAR = EntityTags(readable=True, star=True)


def read_entity_tags(value: str | None) -> EntityTags | None:
    """The field value's tags: None when the field is absent, UNREADABLE when malformed."""
    if value is None:
        return None
    if not READABLE.fullmatch(value):
        return UNREADABLE
    if value.strip(" \t") == "*":
        return STAR
    strong: set[str] = set()
    weak: set[str] = set()
    # The whole value is a tag list and an opaque tag holds no DQUOTE, so the tags
    # found one after another are exactly the list's elements.
    for match in _ONE_TAG.finditer(value):
        (weak if match.group(1) else strong).add(match.group(2))
    return EntityTags(readable=True, strong=frozenset(strong), weak=frozenset(weak))


def expected_version(customer_id: str) -> int | None:
    """The version a write must find, from `If-Match` and `If-None-Match`; None without them.

    Raises the 412 problem when a condition is false or cannot be read, and the 404
    problem first when the customer does not exist: RFC 9110 §13.2.1 has preconditions
    ignored when the request would fail without them. One strong tag goes to the store,
    which compares it atomically; other conditions are checked against a read, and the
    write is pinned to the version read, so a change in between is a 412 as well.
    """
    if_match = read_entity_tags(request.headers.get("If-Match"))
    if_none_match = read_entity_tags(request.headers.get("If-None-Match"))
    if if_none_match is None:
        if if_match is None or if_match.star:  # `*`: any version; the store answers 404
            return None
        if len(if_match.strong) == 1:
            version = version_of(next(iter(if_match.strong)))
            if version is not None:
                return version
    current = find(customer_id)
    etag = etag_of(current)
    if if_match is not None and not if_match.matches_strongly(etag):
        raise PreconditionFailed(
            "If-Match does not match the customer's current ETag."
            if if_match.readable
            else "If-Match is not a list of entity tags, so it matches no ETag."
        )
    if if_none_match is not None and (
        not if_none_match.readable or if_none_match.matches_weakly(etag)
    ):
        raise PreconditionFailed(
            "If-None-Match matches the customer's current ETag."
            if if_none_match.readable
            else "If-None-Match is not a list of entity tags, so it cannot be evaluated."
        )
    return current.version


def etag_of(record: CustomerRecord) -> str:
    """The strong entity tag of the customer's current version."""
    return str(record.version)


def version_of(etag: str) -> int | None:
    """The version whose ETag is `etag`; None when no version can have it.

    Compared as text, as a strong comparison must be: "01" is not the ETag of version 1,
    and digits beyond any version are never converted (int() refuses 4301 digits).
    """
    if VERSION_TAG.fullmatch(etag) and (version := int(etag)) <= MAX_VERSION:
        return version
    return None
