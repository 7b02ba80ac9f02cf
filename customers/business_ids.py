"""The Finnish business ID (Y-tunnus) as arithmetic: its form and its check digit.

Beneath everything else, without imports that cost start-up: the field declaration's
rule checks it, and the register client normalizes IDs with it before asking.
"""

from __future__ import annotations

import re

ID_FORM = re.compile(r"[0-9]{7}-[0-9]", re.ASCII)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def check_digit(digits: str) -> int | None:
    """The check digit of seven digits by the register's modulus 11 rule; None when no ID
    is issued for such a base."""
    remainder = (
        sum(int(digit) * weight for digit, weight in zip(digits, _WEIGHTS, strict=True)) % 11
    )
    if remainder == 1:
        return None  # no ID is issued for such a base
    return 0 if remainder == 0 else 11 - remainder


def is_valid_business_id(value: str) -> bool:
    """Whether `value` is exactly NNNNNNN-C with the right check digit."""
    if not ID_FORM.fullmatch(value):
        return False
    return check_digit(value[:7]) == int(value[8])
