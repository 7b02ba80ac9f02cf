"""`Idempotency-Key` on creates: a retried request gets the first one's answer, not a twin.

A request with a key is read and validated first, as any other: a refusal then (a
malformed key, 400, 413, 415) created nothing, depends on the request alone, and
reaches no store, so the store keeps nothing for it and a retry is answered the same
way by running again. A valid request then holds the key in the store (a record in
flight) and runs. Its answer is recorded under the key for a day when the store decided
it: a 201 in the same transaction as the customer it created, a 409 (the email is
taken) on its own. Any other answer (a 5xx) lets go of the key, so a retry runs again.
A later valid request with the key gets

  the recorded answer with `Idempotent-Replayed: true`, when its body is the same
    (compared as parsed JSON: whitespace and member order do not matter);
  a 410 problem (`customer-deleted`), when its body is the same but the customer the
    answer created has been deleted: the delete erased the answer with the person,
    leaving a tombstone that keeps the key taken for the rest of its day;
  a 422 problem, when its body differs;
  a 409 problem with `Retry-After: 1`, while the first one still runs.

Keys belong to a client: a record's scope is the API key's fingerprint (never the key),
or one shared scope when the service runs without keys. Records count against their
owner, the client as the rate limit knows it (the key's fingerprint, or without keys the
client's address): a new key past IDEMPOTENCY_KEYS_PER_CLIENT live records of its owner
is a 429, past IDEMPOTENCY_KEYS_TOTAL in the store a 503, both with Retry-After; a key
already held or answered is still answered. A hold ends by itself after
HOLD_SECONDS, so a request lost in a crash blocks its key only that long; a request
that outlives its hold cannot answer over the one that took the key over (the store
checks the holder's token), so a key never makes two customers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from customers.openapi_parts import pattern
from customers.web.problems import (
    CustomerDeleted,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Problem,
    ValidationFailed,
    field_errors,
)
from customers.web.rate_limits import rate_limit_key
from customers.web.request_context import record_idempotency
from db import ClaimLost, IdempotencyKeysExhausted, IdempotencyLimits, IdempotencyRecord, StoreError

if TYPE_CHECKING:
    from db import AnswerOf, CustomerRecord, CustomerStore

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEEP_SECONDS = 24 * 60 * 60
# Longer than any create runs (Lambda stops one at 15 s), short enough that a key whose
# request died in a crash is free again soon.
HOLD_SECONDS = 30
# The answers the store decided, which a retry must see again rather than run anew: the
# customer created, or its email taken. A 5xx is not kept; refusals before the store
# (400, 413, 415) never held the key.
RECORDED_STATUSES = frozenset({201, 409})
RECORDED_HEADERS = ("Content-Type", "Location", "ETag")
SHARED_SCOPE = "-"  # without API keys: one client
# Printable ASCII, no control characters; the OpenAPI document publishes this form.
VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")

# What the OpenAPI document says of the header and of a replayed answer.
KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A key of the client's choosing (a UUID, say) that makes retries safe: the first"
        " answer is recorded for 24 hours when the store decided it (201, 409 email taken),"
        " and a retry with the same key and body gets it again; a request refused before"
        " that (400, 413, 415) keeps nothing and runs again. The same key with another body"
        " is a 422; while the first request runs, a 409 with `Retry-After`; once the customer"
        " it created is deleted, a 410. A client's live"
        " keys, and all clients', are bounded: past the bound a new key is a 429 or 503."
    ),
    "schema": {"type": "string", "pattern": pattern(VALID_KEY)},
}
REPLAYED = {
    REPLAYED_HEADER: {
        "description": f"`true` on the recorded answer to an earlier request with this {HEADER}.",
        "schema": {"type": "string", "const": "true"},
    }
}


def parse_key(value: str) -> str:
    """The header's value as a key; raises the 400 problem naming the header."""
    if not VALID_KEY.fullmatch(value):
        raise ValidationFailed(
            f"The {HEADER} header is not valid.",
            errors=field_errors([(HEADER, "must be 1 to 255 printable ASCII characters")]),
        )
    return value


def request_fingerprint(mimetype: str, query: bytes, body: bytes) -> str:
    """What tells one request from another under the same key: a SHA-256 hex digest.

    A JSON body counts as its parsed value, members in name order, so a retry that
    serialises the same object differently is the same request. Any other body counts
    byte for byte.
    """
    digest = hashlib.sha256()
    for part in (mimetype.encode(), query, _canonical_body(body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _sorted_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # An object becomes {"{}": [[name, value], ...]} in name order, duplicates kept in
    # their order: a body with a member twice (a 400) is not the body with it once, and
    # no array can stand for an object.
    return {"{}": sorted(pairs, key=lambda pair: pair[0])}


def _canonical_body(body: bytes) -> bytes:
    try:
        parsed = json.loads(body.decode("utf-8"), object_pairs_hook=_sorted_members)
        return b"json:" + json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    except (UnicodeError, ValueError, RecursionError):
        return b"bytes:" + body


def _scope() -> str:
    """The client the key belongs to: its API key's fingerprint, or the one shared scope."""
    client_key: str | None = g.get("client_key")
    return client_key or SHARED_SCOPE


def _limits() -> IdempotencyLimits:
    """The bounds on live records the settings give; a record lives its hold, then a day."""
    return IdempotencyLimits(
        per_client=current_app.config["IDEMPOTENCY_KEYS_PER_CLIENT"],
        total=current_app.config["IDEMPOTENCY_KEYS_TOTAL"],
        lifetime=HOLD_SECONDS + KEEP_SECONDS,
    )


def _store() -> CustomerStore:
    store: CustomerStore = current_app.extensions["customer_store"]
    return store


class _Hold:
    """The key this request holds, and whether the store wrote the answer with a customer."""

    def __init__(self, claim: IdempotencyRecord) -> None:
        self.claim = claim
        self.answered_in_create = False

    def answered(self, response: Response) -> IdempotencyRecord:
        """The claim completed with `response`, kept KEEP_SECONDS from now."""
        return replace(
            self.claim,
            expires_at=int(time.time()) + KEEP_SECONDS,
            status=response.status_code,
            headers=tuple(
                (name, response.headers[name])
                for name in RECORDED_HEADERS
                if name in response.headers
            ),
            body=response.get_data(),
        )


class _Settled(Exception):
    """The key was held or answered before: `response` answers this request instead."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered under the key before")
        self.response = response


def _hold_key() -> _Hold:
    """Hold the request's key in the store; raises _Settled, or the 409/422 problem, when
    another request holds or answered it, and IdempotencyKeysExhausted when there is no
    room for another."""
    fingerprint = request_fingerprint(
        request.mimetype, request.query_string, request.get_data(cache=True)
    )
    now = int(time.time())
    claim = IdempotencyRecord(
        scope=_scope(),
        key=g.idempotency_key,
        fingerprint=fingerprint,
        token=os.urandom(16).hex(),
        expires_at=now + HOLD_SECONDS,
        owner=rate_limit_key(),
    )
    try:
        holder = _store().claim_idempotency_key(claim, now=now, limits=_limits())
    except IdempotencyKeysExhausted:
        record_idempotency("limited")
        raise
    if holder is not None:
        raise _Settled(_answer_from(holder, fingerprint))
    record_idempotency("new")
    hold: _Hold = _Hold(claim)
    g.idempotency_hold = hold
    return hold


def recorded(build: Callable[[CustomerRecord], Response]) -> AnswerOf | None:
    """For `store.create`, once the request is valid: its key held, and the answer `build`
    makes of the new customer, to record with it.

    None when the request has no key. Raises as `_hold_key` does when it cannot hold it.
    """
    if g.get("idempotency_key") is None:
        return None
    hold = _hold_key()

    def answer_of(customer: CustomerRecord) -> IdempotencyRecord:
        hold.answered_in_create = True
        return replace(hold.answered(build(customer)), customer_id=customer.id)

    return answer_of


def _answer_from(holder: IdempotencyRecord | None, fingerprint: str) -> Response:
    """The answer for a request whose key another request holds or has answered."""
    if holder is not None and holder.fingerprint != fingerprint:
        record_idempotency("mismatch")
        raise IdempotencyKeyReused(
            f"This {HEADER} was used for another request; use a new key for this one."
        )
    if holder is None or holder.in_flight:
        record_idempotency("conflict")
        raise IdempotencyKeyInUse(
            f"A request with this {HEADER} is still running; retry after Retry-After seconds.",
            headers={"Retry-After": "1"},
        )
    if holder.erased:
        # The answer named the person, and went with them: what is left says only that.
        record_idempotency("deleted")
        raise CustomerDeleted(
            f"The customer this {HEADER} created has been deleted; its answer is not kept.",
            headers={REPLAYED_HEADER: "true"},
        )
    record_idempotency("replayed")
    response = Response(holder.body, status=holder.status)
    for name, value in holder.headers:
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotent(view: Callable[[], Response]) -> Callable[[], Response]:
    """`view` honouring `Idempotency-Key`; without the header it runs as it is.

    The view reads and validates the request, then calls `recorded`, which holds the key:
    a request refused before that never reaches the store, and leaves nothing in it.
    """

    @functools.wraps(view)
    def with_key() -> Response:
        given = request.headers.get(HEADER)
        if given is None:
            return view()
        g.idempotency_key = parse_key(given)
        try:
            try:
                response = view()
            except _Settled as settled:
                return settled.response
            except ClaimLost:
                raise
            except (Problem, HTTPException, StoreError) as error:
                if g.get("idempotency_hold") is None:
                    raise  # refused before the key was held: there is nothing to let go
                # Rendered here by the app's own handlers, so that it can be recorded.
                response = current_app.make_response(current_app.handle_user_exception(error))
                if response.status_code not in RECORDED_STATUSES:
                    raise
            hold: _Hold | None = g.get("idempotency_hold")
            if hold is None:
                return response  # a view that never held the key
            if response.status_code not in RECORDED_STATUSES:
                _store().release_idempotency_key(hold.claim)
            elif not (hold.answered_in_create and response.status_code == 201):
                _store().complete_idempotency_key(hold.answered(response))
        except ClaimLost as lost:
            # Held past HOLD_SECONDS and taken over: answer as a retry would be answered.
            return _answer_from(lost.current, g.idempotency_hold.claim.fingerprint)
        except BaseException:
            held: _Hold | None = g.get("idempotency_hold")
            if held is not None:
                _store().release_idempotency_key(held.claim)
            raise
        return response

    return with_key
