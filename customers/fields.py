"""Every customer field, declared once: the one place that knows a customer's fields.

Everything else is derived from `FIELDS`: the record type (`db.CustomerRecord`), the
SQL and the DynamoDB items of both stores, the request and response models (and so
the OpenAPI document), the bulk files' columns, the mapping tables. A new field is a
new `CustomerField` here (and, for a file database, a migration step that adds its
column).

It sits beneath the store interface and imports nothing that costs start-up: the
pydantic type of a field's rule is named here and imported from
`customers.field_rules` by the first validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CustomerField:
    """What the service knows about one field of a customer.

    `api`: its name in JSON bodies, query strings, bulk files (CSV columns, JSON
    members) and DynamoDB items. `column`: its name in SQLite and on the record.
    `rule`: the type in `customers.field_rules` that checks a written value, or, for a
    field the server makes, documents it. `writable`: a client may give it. `required`:
    every customer has it; a create must give it (when writable) and it cannot be
    cleared. `filterable`: the list filters on it by equality. `personal`: personal
    data about a person, which logs, history and events must treat as such.
    `in_files`: bulk files carry it. `example`: a value the rule accepts.
    """

    api: str
    column: str
    rule: str
    value_type: type = str
    writable: bool = True
    required: bool = False
    filterable: bool = False
    personal: bool = False
    in_files: bool = True
    example: Any = None

    def annotation(self) -> Any:
        """The pydantic type of the field's rule; imports pydantic on first use."""
        import customers.field_rules as field_rules

        return getattr(field_rules, self.rule)


def _server_made(api: str, column: str, rule: str) -> CustomerField:
    return CustomerField(api, column, rule, writable=False, required=True)


# In the API's order: the order of a customer's members, of CSV columns and of records.
FIELDS: tuple[CustomerField, ...] = (
    _server_made("id", "id", "ServerId"),
    CustomerField(
        "name", "name", "Name", required=True, personal=True, example="Maija Meikäläinen"
    ),
    CustomerField(
        "email",
        "email",
        "Email",
        required=True,
        filterable=True,
        personal=True,
        example="maija@example.com",
    ),
    CustomerField("phone", "phone", "Phone", personal=True, example="+358 40 123 4567"),
    CustomerField("businessId", "business_id", "BusinessId", filterable=True, example="0112038-9"),
    _server_made("createdAt", "created_at", "ServerTimestamp"),
    _server_made("updatedAt", "updated_at", "ServerTimestamp"),
)

# Derived tables, for the code that needs one view of the declaration.
WRITABLE = tuple(field for field in FIELDS if field.writable)
FILTERABLE = tuple(field for field in FIELDS if field.filterable)
BY_API = {field.api: field for field in FIELDS}
# API name -> column, for every field the API shows.
PUBLIC_FIELDS = {field.api: field.column for field in FIELDS}
# API name -> column, for the fields a client may write.
COLUMN_OF = {field.api: field.column for field in WRITABLE}
WRITABLE_COLUMNS = tuple(COLUMN_OF.values())
READ_ONLY_FIELDS = tuple(field.api for field in FIELDS if not field.writable)
REQUIRED_FIELDS = tuple(field.api for field in WRITABLE if field.required)
FILE_FIELDS = tuple(field.api for field in FIELDS if field.in_files)
PERSONAL_FIELDS = tuple(field.api for field in FIELDS if field.personal)


def columns_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` by API name, as the store names them (its columns); unknown names raise."""
    return {BY_API[name].column: value for name, value in values.items()}
