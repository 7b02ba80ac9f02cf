"""The register's company JSON turned into the fields of the service's `Business`.

Every field of the register is optional in practice: absent, null, of another type,
or with extra members. Each reader below checks the shape it needs and yields None
or an empty list otherwise, so no upstream body can crash a lookup.
"""

from __future__ import annotations

from typing import Any

# The register's description languages, in the order the service prefers them.
LANGUAGE_ORDER = ("3", "1", "2")  # English, Finnish, Swedish
ADDRESS_TYPES = {"1": "visiting", "2": "postal"}
SITUATIONS = {"SANE": "restructuring", "SELTILA": "liquidation", "KONK": "bankruptcy"}
ACTIVE_TRADE_REGISTER_STATUS, CEASED_TRADE_REGISTER_STATUS = "1", "4"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _description(descriptions: Any) -> str | None:
    """The description in the first language of LANGUAGE_ORDER that has one."""
    by_language = {
        _text(entry.get("languageCode")): _text(entry.get("description"))
        for entry in _dicts(descriptions)
    }
    for language in LANGUAGE_ORDER:
        if by_language.get(language):
            return by_language[language]
    return next((text for text in by_language.values() if text), None)


def _code_description(entry: dict[str, Any]) -> dict[str, Any] | None:
    code = _text(entry.get("type"))
    if code is None:
        return None
    return {"code": code, "description": _description(entry.get("descriptions"))}


def _version(entry: dict[str, Any]) -> int:
    version = entry.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1_000


def _name(names: Any) -> str | None:
    """The current company name: type "1", no end date, version 1, latest registered."""
    entries = [entry for entry in _dicts(names) if _text(entry.get("name"))]
    current = [
        entry
        for entry in entries
        if _text(entry.get("type")) == "1" and not _text(entry.get("endDate"))
    ]
    if current:
        best = min(
            current,
            key=lambda entry: (_version(entry), _negated(_text(entry.get("registrationDate")))),
        )
        return _text(best.get("name"))
    return _text(entries[0].get("name")) if entries else None


def _negated(date: str | None) -> tuple[int, ...]:
    """A sort key that puts later ISO dates first."""
    return tuple(-ord(char) for char in date or "")


def _company_form(forms: Any) -> dict[str, Any] | None:
    current = [entry for entry in _dicts(forms) if not _text(entry.get("endDate"))]
    for entry in sorted(current, key=_version):
        form = _code_description(entry)
        if form is not None:
            return form
    return None


def _status(company: dict[str, Any]) -> str:
    trade_register = _text(company.get("tradeRegisterStatus"))
    if _text(company.get("endDate")) or trade_register == CEASED_TRADE_REGISTER_STATUS:
        return "ceased"
    if trade_register == ACTIVE_TRADE_REGISTER_STATUS:
        return "active"
    return "unknown"


def _situations(situations: Any) -> list[str]:
    open_ones = [entry for entry in _dicts(situations) if not _text(entry.get("endDate"))]
    codes = [_text(entry.get("type")) for entry in open_ones]
    return [SITUATIONS.get(code, code.lower()) for code in codes if code]


def _street(address: dict[str, Any]) -> str | None:
    parts = [
        _text(address.get(field))
        for field in ("street", "buildingNumber", "entrance", "apartmentNumber")
    ]
    line = " ".join(part for part in parts if part)
    suffix = _text(address.get("apartmentIdSuffix"))
    if line and suffix:
        line += suffix
    if line:
        return line
    box = _text(address.get("postOfficeBox"))
    return f"PL {box}" if box else _text(address.get("freeAddressLine"))


def _city(post_offices: Any) -> str | None:
    offices = [office for office in _dicts(post_offices) if _text(office.get("city"))]
    finnish = [office for office in offices if _text(office.get("languageCode")) == "1"]
    chosen = (finnish or offices or [{}])[0]
    return _text(chosen.get("city"))


def _addresses(addresses: Any) -> list[dict[str, Any]]:
    result = []
    for address in _dicts(addresses):
        kind = ADDRESS_TYPES.get(_text(address.get("type")) or "")
        if kind is None:
            continue
        result.append(
            {
                "type": kind,
                "street": _street(address),
                "postCode": _text(address.get("postCode")),
                "city": _city(address.get("postOffices")),
            }
        )
    return result


def normalize_company(company: dict[str, Any]) -> dict[str, Any]:
    """The `Business` fields (all but `source` and `fetchedAt`) for one company."""
    identifier = _dict(company.get("businessId"))
    line = _dict(company.get("mainBusinessLine"))
    return {
        "businessId": _text(identifier.get("value")),
        "name": _name(company.get("names")),
        "companyForm": _company_form(company.get("companyForms")),
        "mainBusinessLine": _code_description(line) if line else None,
        "registrationDate": _text(company.get("registrationDate"))
        or _text(identifier.get("registrationDate")),
        "status": _status(company),
        "situations": _situations(company.get("companySituations")),
        "website": _text(_dict(company.get("website")).get("url")),
        "addresses": _addresses(company.get("addresses")),
    }
