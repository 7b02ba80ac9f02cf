"""What one count of a limit covers: a key across every route; without a key, a client
(an IPv4 address, an IPv6 /64) and the block it is in (an IPv4 /24, an IPv6 /48).

Served by `python app.py` on loopback. Linux routes all of 127.0.0.0/8 to the loopback
interface, so a socket bound to 127.0.1.x before it connects is a caller with an
address of its own. IPv6 callers arrive behind one trusted proxy, their addresses in
`X-Forwarded-For`, as a load balancer would write them.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from customers.web.rate_limits import BLOCK_FACTOR
from customers.web.security import client_id
from tests.http.test_shared_limits import GOOD, KEY, WRONG, serve_two_workers
from tests.redis_server import RedisServer
from tests.served import ServerProcess

RATE = 5  # a minute; a block may make BLOCK_FACTOR times as many
BLOCK = RATE * BLOCK_FACTOR


def call(
    server: ServerProcess,
    *,
    method: str = "GET",
    path: str = "/customers",
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    host: str = "127.0.0.1",
) -> int:
    """The status of one request from the loopback address `source`, on a connection of its own."""
    connection = http.client.HTTPConnection(
        host, server.port, timeout=10, source_address=(source, 0)
    )
    try:
        body = "{}" if method in ("POST", "PUT", "PATCH") else None
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if body else {})}
        connection.request(method, path, body=body, headers=sent)
        return connection.getresponse().status
    finally:
        connection.close()


def via_proxy(server: ServerProcess, forwarded_for: str, headers: dict[str, str]) -> int:
    """A request as one trusted proxy passes it on for the caller at `forwarded_for`."""
    return call(server, headers={**headers, "X-Forwarded-For": forwarded_for})


@pytest.fixture(params=["memory", "redis"])
def limit_storage(request: pytest.FixtureRequest) -> str:
    """Where the counts live: this process's memory, or a Redis shared by every process."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def keyed_server(limit_storage: str, store_settings: dict[str, str]) -> Iterator[ServerProcess]:
    """One worker with a key and RATE_LIMIT; the address is the connection's."""
    server = ServerProcess(
        {
            "WORKERS": "1",
            "API_KEYS": KEY,
            "RATE_LIMIT": f"{RATE}/minute",
            "RATE_LIMIT_STORAGE_URI": limit_storage,
            **store_settings,
        }
    )
    yield server
    assert server.stop() == 0


def served(limit_storage: str, store_settings: dict[str, str], **settings: str) -> ServerProcess:
    return ServerProcess(
        {
            "WORKERS": "1",
            "RATE_LIMIT": f"{RATE}/minute",
            "RATE_LIMIT_STORAGE_URI": limit_storage,
            **store_settings,
            **settings,
        }
    )


# Routes of every kind: the list, one customer, a create, a delete, a business lookup
# refused before any call to the register, a path no route serves.
ROUTES = [
    ("GET", "/customers"),
    ("GET", "/customers/nobody"),
    ("POST", "/customers"),
    ("DELETE", "/customers/nobody"),
    ("GET", "/businesses/not-an-id"),
    ("GET", "/no/such/route"),
]


def test_a_key_has_one_count_across_every_route(keyed_server: ServerProcess) -> None:
    # GIVEN a key that has used its RATE_LIMIT on GET /customers
    assert [call(keyed_server, headers=GOOD) for _ in range(RATE)] == [200] * RATE
    # WHEN it calls every other route
    others = [call(keyed_server, method=m, path=p, headers=GOOD) for m, p in ROUTES]
    # THEN each is refused: the count is the key's, not the route's
    assert others == [429] * len(ROUTES)
    # and the open paths stay open
    assert call(keyed_server, path="/health", headers=GOOD) == 200


def test_requests_spread_over_routes_share_one_count(keyed_server: ServerProcess) -> None:
    answered = [
        call(keyed_server, method=m, path=p, headers=GOOD) for m, p in ROUTES * 2
    ]  # 12 requests, two on each route
    assert sum(status != 429 for status in answered) == RATE
    assert answered[RATE:] == [429] * (len(answered) - RATE)


def test_two_workers_count_a_key_once_across_routes(
    tmp_path: Path, redis_url: str, store_settings: dict[str, str]
) -> None:
    # GIVEN two worker processes sharing Redis, 6 requests a minute per key
    server = serve_two_workers(tmp_path, redis_url, "6/minute", store_settings)
    try:
        # WHEN 24 requests with the key arrive at once, four on each of six routes
        with ThreadPoolExecutor(max_workers=8) as pool:
            answered = list(
                pool.map(
                    lambda route: call(server, method=route[0], path=route[1], headers=GOOD),
                    ROUTES * 4,
                )
            )
    finally:
        assert server.stop() == 0
    # THEN 6 are served in all, not 6 per route or per worker
    assert 401 not in answered
    assert sum(status != 429 for status in answered) == 6
    # and Redis holds one count for the key, named after no route
    counts = [key for key in RedisServer.keys_at(redis_url) if client_id(KEY) in key]
    assert len(counts) == 1
    assert not any(name in counts[0] for name in ("customers", "businesses", "list"))


def test_wrong_keys_spread_over_a_24_are_refused(keyed_server: ServerProcess) -> None:
    # GIVEN 30 callers of one /24, one wrong key each
    guesses = [call(keyed_server, headers=WRONG, source=f"127.0.1.{n}") for n in range(1, 31)]
    # THEN the block may fail BLOCK times, then every address in it gets 429
    assert guesses == [401] * BLOCK + [429] * (30 - BLOCK)
    # the right key too: a 200 among the 429s would tell a guesser it had found the key
    assert call(keyed_server, headers=GOOD, source="127.0.1.200") == 429
    # another /24 has a count of its own, and its callers are served
    assert call(keyed_server, headers=WRONG, source="127.0.2.1") == 401
    assert call(keyed_server, headers=GOOD, source="127.0.2.2") == 200


def test_one_address_is_still_limited_on_its_own(keyed_server: ServerProcess) -> None:
    guesses = [call(keyed_server, headers=WRONG, source="127.0.3.1") for _ in range(RATE + 2)]
    assert guesses == [401] * RATE + [429] * 2
    # its neighbours in the /24 are not: one typo-prone machine locks out no office
    assert call(keyed_server, headers=WRONG, source="127.0.3.2") == 401
    assert call(keyed_server, headers=GOOD, source="127.0.3.3") == 200


def test_ipv6_callers_are_counted_by_their_64_and_their_48(
    limit_storage: str, store_settings: dict[str, str]
) -> None:
    server = served(limit_storage, store_settings, API_KEYS=KEY, TRUSTED_PROXIES="1")
    try:
        # one /64: every address in it is the same caller
        one_64 = [via_proxy(server, f"2001:db8:0:1::{n:x}", WRONG) for n in range(1, 9)]
        # the same /64 written another way is still it
        spelled_out = via_proxy(server, "2001:0db8:0000:0001:ffff:ffff:ffff:ffff", WRONG)
        # the /64s of one /48: the block is counted too
        one_48 = [via_proxy(server, f"2001:db8:0:{n:x}::1", WRONG) for n in range(2, 32)]
        other_48 = via_proxy(server, "2001:db8:1:1::1", WRONG)
        served_48 = via_proxy(server, "2001:db8:1:1::2", GOOD)
    finally:
        assert server.stop() == 0
    assert one_64 == [401] * RATE + [429] * 3
    assert spelled_out == 429
    # the /48 has had RATE failures from its first /64 already
    assert one_48 == [401] * (BLOCK - RATE) + [429] * (30 - (BLOCK - RATE))
    assert (other_48, served_48) == (401, 200)


def test_ipv4_mapped_addresses_count_as_their_ipv4(
    limit_storage: str, store_settings: dict[str, str]
) -> None:
    # GIVEN a dual-stack listener, which sees an IPv4 caller as ::ffff:a.b.c.d
    server = served(limit_storage, store_settings, API_KEYS=KEY, HOST="::")
    try:
        # WHEN one IPv4 address fails past the limit
        first = [call(server, headers=WRONG, source="127.0.4.1") for _ in range(RATE + 1)]
        # THEN its neighbour has a count of its own, as over IPv4, not one /64 with it
        neighbour = call(server, headers=WRONG, source="127.0.4.2")
        # and the addresses of a /24 are one block, as over IPv4
        block = [call(server, headers=WRONG, source=f"127.0.6.{n}") for n in range(1, 31)]
    finally:
        assert server.stop() == 0
    assert first == [401] * RATE + [429]
    assert neighbour == 401
    assert block == [401] * BLOCK + [429] * (30 - BLOCK)


def test_a_mapped_and_a_plain_ipv4_address_are_one_caller(
    limit_storage: str, store_settings: dict[str, str]
) -> None:
    server = served(limit_storage, store_settings, API_KEYS=KEY, TRUSTED_PROXIES="1")
    try:
        answered = [
            via_proxy(server, address, WRONG)
            for address in ("198.51.100.7", "::ffff:198.51.100.7") * 3
        ]
    finally:
        assert server.stop() == 0
    assert answered == [401] * RATE + [429]


def test_without_keys_a_64_and_a_24_are_each_one_count(
    limit_storage: str, store_settings: dict[str, str]
) -> None:
    # GIVEN an open API (no keys) limited per caller
    server = served(limit_storage, store_settings, TRUSTED_PROXIES="1")
    try:
        # an IPv6 /64, whatever address in it a request comes from
        one_64 = [via_proxy(server, f"2001:db8:5:5::{n:x}", {}) for n in range(1, 9)]
        # the IPv4 addresses of one /24, one request each
        one_24 = [via_proxy(server, f"203.0.113.{n}", {}) for n in range(1, 31)]
        other_24 = via_proxy(server, "203.0.114.1", {})
    finally:
        assert server.stop() == 0
    assert one_64 == [200] * RATE + [429] * 3
    assert one_24 == [200] * BLOCK + [429] * (30 - BLOCK)
    assert other_24 == 200


def test_every_limit_rate_limit_lists_holds_for_failed_keys(
    limit_storage: str, store_settings: dict[str, str]
) -> None:
    # GIVEN a RATE_LIMIT of two limits, the first of them loose
    server = served(limit_storage, store_settings, API_KEYS=KEY, RATE_LIMIT="50/minute;3/hour")
    try:
        guesses = [call(server, headers=WRONG) for _ in range(4)]
        keyed = [call(server, headers=GOOD, source="127.0.7.1") for _ in range(4)]
    finally:
        assert server.stop() == 0
    # THEN the tighter one bounds guessing as it bounds a key
    assert guesses == [401] * 3 + [429]
    assert keyed == [200] * 3 + [429]
