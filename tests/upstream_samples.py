"""The register's sample bodies (tests/data), adapted to the ID a test asks for."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


@cache
def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def company_found_body(business_id: str = "2891246-6") -> dict[str, Any]:
    """A one-company answer (v3-company-found.json) for `business_id`."""
    body: dict[str, Any] = copy.deepcopy(_load("v3-company-found.json"))
    body["companies"][0]["businessId"]["value"] = business_id
    return body


def company_not_found_body() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(_load("v3-company-not-found.json"))
    return body


def error_body() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(_load("v3-error.json"))
    return body
