"""The service's own view of a company in the business register, as clients see it.

Apart from the client (`business_client`), which makes these only once a lookup
answers, so that pydantic is imported by the first request that needs it rather than
by every cold start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CodeDescription(BaseModel):
    """A code from one of the register's code lists, with its description."""

    model_config = ConfigDict(frozen=True)
    code: str
    description: str | None


class Address(BaseModel):
    """A visiting or postal address as one printable street line."""

    model_config = ConfigDict(frozen=True)
    type: Literal["visiting", "postal"]
    street: str | None
    postCode: str | None
    city: str | None


class Business(BaseModel):
    """The service's compact view of a company in the register."""

    model_config = ConfigDict(frozen=True, title="Business")
    businessId: str
    name: str | None
    companyForm: CodeDescription | None
    mainBusinessLine: CodeDescription | None
    registrationDate: str | None
    status: Literal["active", "ceased", "unknown"]
    situations: list[str]
    website: str | None
    addresses: list[Address]
    source: str
    fetchedAt: str = Field(json_schema_extra={"format": "date-time"})
