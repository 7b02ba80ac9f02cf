"""What the field declaration gives the rest: records by name, JSON paths of errors, and
merge patches of objects (RFC 7396) written with the store's compare-and-set."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from customers.fields import FIELDS, PERSONAL_FIELDS, WRITABLE_COLUMNS
from customers.schemas import Customer, CustomerCreate, describe_errors
from db import CustomerNotFound, CustomerRecord, VersionMismatch, merge_patch, merge_update


def test_a_record_is_built_by_name_whatever_the_column_order() -> None:
    columns = [field.column for field in reversed(FIELDS)] + ["version"]
    values = {column: f"v-{column}" for column in columns} | {"version": 3}
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    select = ", ".join(f"? AS {column}" for column in columns)
    row = conn.execute(f"SELECT {select}", [values[column] for column in columns]).fetchone()
    record = CustomerRecord.from_row(row)
    assert record.email == "v-email" and record.id == "v-id" and record.version == 3
    with pytest.raises(TypeError):
        CustomerRecord(*[values[column] for column in columns])  # never by position


def test_the_models_follow_the_declaration() -> None:
    assert list(Customer.model_fields) == [field.api for field in FIELDS]
    assert list(CustomerCreate.model_fields) == [f.api for f in FIELDS if f.writable]
    assert len(WRITABLE_COLUMNS) == len(CustomerCreate.model_fields)
    assert set(PERSONAL_FIELDS) == {"name", "email", "phone"}


class _Address(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    street: str
    postalCode: str


class _WithAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    email: str | int
    address: _Address | None = None
    tags: list[int] = []


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        _WithAddress.model_validate(body)
    return describe_errors(caught.value, body)


def test_errors_of_nested_members_are_named_by_json_path() -> None:
    body = {"email": "a@x.io", "address": {"street": "Katu 1", "postalCode": 100, "floor": 2}}
    assert _errors(body) == [
        ("address.postalCode", "Input should be a valid string"),
        ("address.floor", "is not a known field"),
    ]
    assert _errors({"email": "a@x.io", "address": {"street": "Katu 1"}}) == [
        ("address.postalCode", "is required")
    ]
    assert _errors({"email": "a@x.io", "tags": [1, "2"]}) == [
        ("tags.1", "Input should be a valid integer")
    ]


def test_a_union_member_name_is_not_part_of_the_path() -> None:
    # pydantic locates these at email.str and email.int: the body has only `email`.
    assert [path for path, _ in _errors({"email": 1.5})] == ["email"]


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7396, Appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not changed


class _RacedStore:
    """A store of one customer with an object-valued column, whose every compare-and-set
    write finds that `races` other writes came in since the read."""

    def __init__(self, races: int) -> None:
        self.record = {"address": {"street": "Katu 1", "city": "Oulu"}, "version": 1}
        self.races = races
        self.writes = 0

    def get(self, customer_id: str) -> Any:
        if customer_id != "c1":
            raise CustomerNotFound(customer_id)
        return type("Record", (), dict(self.record))()

    def update(
        self, customer_id: str, *, changes: Any, expected_version: Any = None, by: Any = None
    ) -> Any:
        if self.races:
            self.races -= 1
            self.record = self.record | {"version": self.record["version"] + 1}
        if expected_version is not None and expected_version != self.record["version"]:
            raise VersionMismatch(self.get(customer_id))
        self.writes += 1
        self.record = self.record | dict(changes) | {"version": self.record["version"] + 1}
        return self.get(customer_id)


def test_a_merge_patch_of_an_object_merges_into_the_stored_one() -> None:
    store = _RacedStore(races=2)
    merged = merge_update(store, "c1", {"address": {"city": "Turku", "street": None}})
    assert merged.address == {"city": "Turku"}
    assert store.writes == 1


def test_a_merge_pinned_by_the_caller_is_not_tried_again() -> None:
    store = _RacedStore(races=1)
    with pytest.raises(VersionMismatch):
        merge_update(store, "c1", {"address": {"city": "Turku"}}, expected_version=1)
    assert store.writes == 0
