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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc being visible ASCII but DQUOTE.
# (The RFC's obs-text, bytes 0x80-0xFF, is left out: the servers disagree on it.)
_TAG = r'(W/)?"([\x21\x23-\x7e]*)"'
_TAG_LIST = re.compile(rf"[ \t]*{_TAG}(?:[ \t]*,[ \t]*{_TAG})*[ \t]*")
_ONE_TAG = re.compile(_TAG)
# Every readable field value: `*` or a tag list. The OpenAPI document publishes it as the
# pattern of If-Match and If-None-Match.
READABLE = re.compile(rf"[ \t]*\*[ \t]*|{_TAG_LIST.pattern}")


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
