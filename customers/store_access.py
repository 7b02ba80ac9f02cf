"""The app's customer store, the customer lookup the views share, and who a write is by.

A lookup raises the store's own CustomerNotFound, which `customers.web.errors` turns
into the 404 problem, so a view reads as parse, validate, call the store, answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, g, request

from customers.web.request_context import ENVIRON_REQUEST_ID
from db import CustomerNotFound, WrittenBy

if TYPE_CHECKING:
    from db import CustomerRecord, CustomerStore

# Longer than any id the stores make: such an id is a 404 without asking the store.
MAX_ID_LENGTH = 64
# What the OpenAPI document says of the path's id, and of the 404 when no customer has it.
CUSTOMER_ID = {
    "name": "customerId",
    "in": "path",
    "required": True,
    "description": "The id the service gave the customer (longer ids are never given: 404).",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
}
NO_CUSTOMER = ("404", "No customer has this id.", "not-found")


def store() -> CustomerStore:
    """The app's customer store."""
    customer_store: CustomerStore = current_app.extensions["customer_store"]
    return customer_store


def checked_id(customer_id: str) -> str:
    """`customer_id`, or CustomerNotFound when it is longer than any id the store makes."""
    if len(customer_id) > MAX_ID_LENGTH:
        raise CustomerNotFound(customer_id)
    return customer_id


def find(customer_id: str) -> CustomerRecord:
    """The customer with this id; raises CustomerNotFound."""
    return store().get(checked_id(customer_id))


def written_by() -> WrittenBy:
    """Who makes this request's change, for its history entry: the API key's fingerprint
    as the logs show it (None with keys off), and the request's X-Request-ID."""
    key = g.get("key_fingerprint")
    return WrittenBy(
        actor=f"key:{key}" if key else None, request_id=request.environ.get(ENVIRON_REQUEST_ID)
    )
