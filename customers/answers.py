"""The answers that hold a customer: its body, its ETag and, for a create, its Location;
and, beside them, how the OpenAPI document describes such an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, request

from customers.documented import examples
from customers.openapi_parts import content, header, ref
from customers.preconditions import etag_of
from customers.web.jsonio import json_response

if TYPE_CHECKING:
    from db import CustomerRecord

ETAG_DESCRIPTION = 'The customer\'s current version, a strong tag such as `"3"`.'
HEADER_ETAG = header(ETAG_DESCRIPTION, required=True)


def customer_response(record: CustomerRecord, status: int = 200) -> Response:
    """The customer and its ETag."""
    response = json_response(record.to_public(), status)
    response.set_etag(etag_of(record))
    return response


def created_response(record: CustomerRecord) -> Response:
    """The 201 of a create: the customer, its ETag and Location."""
    response = customer_response(record, 201)
    # Ids are made by the server (UUIDs): nothing in them needs the quoting and rule
    # lookup of url_for, which cost a few µs on every create.
    response.headers["Location"] = f"{request.script_root}/customers/{record.id}"
    return response


def _link(operation_id: str, description: str, *, if_match: bool) -> dict[str, Any]:
    """A link to an operation on the customer in the answer, with its ETag as If-Match."""
    parameters = {"customerId": "$response.body#/id"}
    if if_match:
        parameters["header.If-Match"] = "$response.header.ETag"
    return {"operationId": operation_id, "parameters": parameters, "description": description}


# From an answer that holds a customer and its ETag to what can be done with it next.
CUSTOMER_LINKS = {
    "getCustomer": _link("getCustomer", "The customer, by its `id`.", if_match=False),
    "patchCustomer": _link(
        "patchCustomer", "Change some fields, only if it is still this version.", if_match=True
    ),
    "replaceCustomer": _link(
        "replaceCustomer", "Replace it, only if it is still this version.", if_match=True
    ),
    "deleteCustomer": _link(
        "deleteCustomer", "Delete it, only if it is still this version.", if_match=True
    ),
}


def described_customer_answer(status: str, description: str, **headers: Any) -> dict[str, Any]:
    """An answer that holds the customer and its ETag, linked to what can be done next."""
    return {
        status: {
            "description": description,
            "headers": {"ETag": HEADER_ETAG, **headers},
            "content": content(ref("Customer"), examples=examples("customer")),
            "links": CUSTOMER_LINKS,
        }
    }
