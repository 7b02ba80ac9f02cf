"""Whom the limits count for a request without a key: its client and the block it is in.

An IPv4 client is its address: one machine, or one office behind NAT. An IPv6 host
picks as many addresses as it likes within its /64 (temporary addresses, RFC 8981,
change every day; anyone holding the prefix can use all 2**64), so an IPv6 client is
its /64, the size of one network (RFC 7421). An IPv4-mapped IPv6 address
(`::ffff:192.0.2.1`, what a dual-stack listener reports for an IPv4 peer) is that
IPv4 address.

Whoever holds a whole block holds many clients: an IPv4 /24, the smallest block routed
between networks, is 256 addresses; an IPv6 /48, the usual assignment to one site
(RFC 6177), is 65,536 /64s. So the limits count each block too, at a higher threshold
(`rate_limits.BLOCK_FACTOR`), and a block spread over many clients is still one count.
A value that is not an IP address is its own client and its own block.
"""

from __future__ import annotations

import functools
import ipaddress

IPV6_CLIENT_PREFIX = 64
IPV4_BLOCK_PREFIX = 24
IPV6_BLOCK_PREFIX = 48


def _parsed(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, an IPv4-mapped one as its IPv4; None for what is not an address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int) -> str:
    return str(ipaddress.ip_network((address, prefix), strict=False))


# Both run on every counted request; a cache keeps the parsing off the repeat callers.
@functools.lru_cache(maxsize=4096)
def client_of(address: str) -> str:
    """The client `address` belongs to: an IPv4 address as it is, an IPv6 one's /64."""
    parsed = _parsed(address)
    if parsed is None:
        return address
    if parsed.version == 4:
        return str(parsed)
    return _network(parsed, IPV6_CLIENT_PREFIX)


@functools.lru_cache(maxsize=4096)
def block_of(address: str) -> str:
    """The block `address` belongs to: its IPv4 /24 or its IPv6 /48."""
    parsed = _parsed(address)
    if parsed is None:
        return address
    return _network(parsed, IPV4_BLOCK_PREFIX if parsed.version == 4 else IPV6_BLOCK_PREFIX)
