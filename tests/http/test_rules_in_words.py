"""A refused value is answered with its field's rule in words, never a regex.

The words are declared once, with the field (`customers.schemas.Rule`); the import
command reports the same words (tests/process/test_bulk_cli.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer

GOOD = {"name": "Maija", "email": "maija@example.com"}
PHONE = "must be 1 to 32 digits, spaces and + - ( ), with at least one digit"
NAME = "must be 1 to 200 characters, without control characters"
EMAIL = "must be an email address of 3 to 254 characters"
BUSINESS_ID = "must be a Finnish business ID NNNNNNN-C with a valid check digit"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "040-ABC", PHONE),
        ("phone", "1" * 33, PHONE),
        ("name", "x" * 201, NAME),
        ("name", "   ", NAME),
        ("email", "a" * 300 + "@example.com", EMAIL),
        ("businessId", "123", BUSINESS_ID),
    ],
)
def test_each_write_answers_the_rule_in_words(live_server: LiveServer, field, value, message):
    session, url = live_server.session, live_server.url
    created = session.post(f"{url}/customers", json=GOOD, timeout=5).json()
    answers = [
        session.post(f"{url}/customers", json=GOOD | {field: value}, timeout=5),
        session.put(f"{url}/customers/{created['id']}", json=GOOD | {field: value}, timeout=5),
        session.patch(
            f"{url}/customers/{created['id']}",
            json={field: value},
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=5,
        ),
    ]
    for answer in answers:
        assert answer.status_code == 400
        assert answer.json()["errors"] == [{"field": field, "message": message}]


def test_a_filter_answers_the_rule_in_words(live_server: LiveServer):
    answer = live_server.session.get(
        f"{live_server.url}/customers", params={"businessId": "0112038"}, timeout=5
    )
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"field": "businessId", "message": BUSINESS_ID}]
