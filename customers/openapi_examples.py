"""Examples for the OpenAPI document: a request body and an answer for every operation.

The customer's field values are the examples its pydantic fields declare (read from the
components, so a changed example changes every body and answer that shows it); what the
models do not declare, a company from the register and an id, is written once here.
Tests check every example against its schema, and the request examples against the
service itself.
"""

from __future__ import annotations

from typing import Any

from customers.fields import WRITABLE
from customers.web.problems import TYPE_PREFIX

CUSTOMER_ID = "019c1a2e-7f00-7d3e-9c41-5b0a8f2e6d17"
TIMESTAMP = "2026-01-31T12:00:00.000000Z"
COMPANY: dict[str, Any] = {
    "businessId": "0112038-9",
    "name": "Revontuli Software Oy",
    "companyForm": {"code": "16", "description": "Limited company"},
    "mainBusinessLine": {"code": "62010", "description": "Computer programming activities"},
    "registrationDate": "2018-03-15",
    "status": "active",
    "situations": [],
    "website": "www.revontulisoftware.fi",
    "addresses": [
        {
            "type": "visiting",
            "street": "Mannerheimintie 12 B 5",
            "postCode": "00100",
            "city": "HELSINKI",
        }
    ],
    "source": "Finnish Patent and Registration Office (PRH), YTJ open data, CC BY 4.0",
    "fetchedAt": "2026-01-31T12:00:00Z",
}


def field_example(schema: dict[str, Any]) -> Any:
    """The first example a field's schema declares, looking into `anyOf` branches."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("examples"):
            return branch["examples"][0]
    raise LookupError("the field declares no example")


# The writable fields a client may leave out or clear, from the declaration.
OPTIONAL = tuple(field.api for field in WRITABLE if not field.required)


def optional_fields() -> str:
    """The optional writable fields as a description names them: `a`, `b` and `c`."""
    names = [f"`{name}`" for name in OPTIONAL]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


def examples(schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Named examples, each under the name of what it shows, from the built components."""
    fields = {
        name: field_example(schema)
        for name, schema in schemas["CustomerCreate"]["properties"].items()
    }
    customer = {"id": CUSTOMER_ID, **fields, "createdAt": TIMESTAMP, "updatedAt": TIMESTAMP}
    minimal = {name: fields[name] for name in schemas["CustomerCreate"]["required"]}
    lookup_failed = {
        "type": f"{TYPE_PREFIX}upstream-timeout",
        "title": "Gateway Timeout",
        "status": 504,
        "detail": "The business register did not answer in time.",
    }
    return {
        "create": {
            "full": _example("Every field", fields),
            "minimal": _example("Only what is required", minimal),
        },
        "replace": {
            "full": _example("Every field", fields),
            "clearing": _example(f"{optional_fields()} left out, so cleared", minimal),
        },
        "patch": {
            "rename": _example("Change the name; the rest stays", {"name": fields["name"]}),
            f"clear{OPTIONAL[0][0].upper()}{OPTIONAL[0][1:]}": _example(
                f"Clear `{OPTIONAL[0]}`; the rest stays", {OPTIONAL[0]: None}
            ),
        },
        "customer": {"customer": _example("A customer", customer)},
        "page": {"page": _example("A page of one customer", [customer])},
        "history": {
            "history": _example(
                "A customer made, then its phone cleared",
                [
                    {
                        "version": 1,
                        "at": TIMESTAMP,
                        "action": "created",
                        "actor": "key:3f9a1c07",
                        "requestId": "4f0c2a9e",
                        "changes": {
                            name: {"from": None, "to": value}
                            for name, value in fields.items()
                            if value is not None
                        },
                    },
                    {
                        "version": 2,
                        "at": TIMESTAMP,
                        "action": "updated",
                        "actor": "key:3f9a1c07",
                        "requestId": "9b1d77e0",
                        "changes": {"phone": {"from": fields["phone"], "to": None}},
                    },
                ],
            )
        },
        "customerWithBusiness": {
            "plain": _example("Without include", customer),
            "withBusiness": _example("With include=business", {**customer, "business": COMPANY}),
            "lookupFailed": _example(
                "With include=business, the register not answering",
                {**customer, "business": None, "businessError": lookup_failed},
            ),
        },
        "business": {"company": _example("A company", COMPANY)},
        "health": {
            "ok": _example("Serving, on the sqlite store", {"status": "ok", "store": "sqlite"})
        },
        "readiness": {
            "ready": _example(
                "Ready, the register's breaker open",
                {
                    "status": "ready",
                    "store": {"kind": "sqlite", "writable": True},
                    "register": {"breaker": "open"},
                },
            )
        },
        "index": {
            "index": _example(
                "At the root",
                {
                    "name": "customer-api",
                    "links": {
                        "customers": {"href": "/customers"},
                        "openapi": {"href": "/openapi.json"},
                        "docs": {"href": "/docs"},
                    },
                },
            )
        },
    }
