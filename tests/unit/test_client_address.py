"""Whom an address counts as: its client and its block, however the address is written."""

from __future__ import annotations

import pytest

from customers.web.client_address import block_of, client_of


@pytest.mark.parametrize(
    ("address", "client", "block"),
    [
        ("192.0.2.7", "192.0.2.7", "192.0.2.0/24"),
        ("::ffff:192.0.2.7", "192.0.2.7", "192.0.2.0/24"),
        ("::ffff:c000:207", "192.0.2.7", "192.0.2.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("2001:0DB8:0001:0002::ffff", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("::1", "::/64", "::/48"),
        ("fe80::1%eth0", "fe80::/64", "fe80::/48"),
        ("unknown", "unknown", "unknown"),
        ("", "", ""),
    ],
)
def test_client_and_block(address: str, client: str, block: str) -> None:
    assert (client_of(address), block_of(address)) == (client, block)
