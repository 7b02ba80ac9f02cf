"""The register client against a real HTTP server on loopback (pytest-httpserver)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from business_client import (
    USER_AGENT,
    BusinessClient,
    BusinessError,
    BusinessNotFound,
    InvalidBusinessId,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_valid_business_id,
    normalize_business_id,
)
from tests.upstream_samples import (
    HeldRegister,
    company_found_body,
    company_not_found_body,
    error_body,
)

ID = "0112038-9"
VALID_IDS = [
    "0112038-9",
    "2331972-7",
    "0116297-6",
    "2077474-0",
    "1643256-1",
    "1854047-8",
    "2299022-8",
]
INVALID_IDS = [
    "0112038-8",
    "1234567-8",
    *[f"3141592-{digit}" for digit in range(10)],
    "0763619-9",
    "01120389",
    "0112038 9",
    "0112038-9X",
    "ABCDEFG-H",
    "112038-9",
    "../../etc",
    "0112038-9/../x",
    "0112038-9?x=1",
    "http://evil/",
    "\uff10\uff11\uff11\uff12\uff10\uff13\uff18-\uff19",  # fullwidth digits
    "",
]


class FakeClock:
    """A clock the test moves by hand, so expiry and cool-downs need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records the back-off waits instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(httpserver: HTTPServer, sleeps: Sleeps) -> Iterator[Any]:
    clients: list[BusinessClient] = []

    def make(**overrides: Any) -> BusinessClient:
        settings: dict[str, Any] = {
            "base_url": httpserver.url_for("/"),
            "connect_timeout": 0.5,
            "read_timeout": 0.4,
            "deadline": 1.5,
            "retries": 2,
            "sleep": sleeps,
            **overrides,
        }
        client = BusinessClient(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def expect_lookup(httpserver: HTTPServer, business_id: str = ID) -> Any:
    return httpserver.expect_ordered_request(
        "/companies", method="GET", query_string=f"businessId={business_id}"
    )


@pytest.mark.parametrize(
    "error",
    [InvalidBusinessId, BusinessNotFound, UpstreamError, UpstreamUnavailable, UpstreamTimeout],
)
def test_the_exceptions_are_one_family_without_http_answers(error: type[BusinessError]) -> None:
    assert issubclass(error, BusinessError)
    # what the service answers is decided by the views; the client's errors name failures only
    assert not {"status", "title", "code"} & set(dir(error))


@pytest.mark.parametrize("business_id", VALID_IDS)
def test_valid_ids(business_id: str) -> None:
    assert is_valid_business_id(business_id)
    assert normalize_business_id(f"  {business_id} ") == business_id


@pytest.mark.parametrize("business_id", INVALID_IDS)
def test_invalid_ids_never_reach_the_register(
    make_client: Any, httpserver: HTTPServer, business_id: str
) -> None:
    assert not is_valid_business_id(business_id)
    with pytest.raises(InvalidBusinessId):
        make_client().lookup(business_id)
    assert httpserver.log == []


def test_found_company_is_normalized(make_client: Any, httpserver: HTTPServer) -> None:
    expect_lookup(httpserver).respond_with_json(company_found_body(ID))
    business = make_client().lookup(f" {ID} ")
    assert business.model_dump(exclude={"fetchedAt"}) == {
        "businessId": ID,
        "name": "Revontuli Software Oy",
        "companyForm": {"code": "16", "description": "Limited company"},
        "mainBusinessLine": {"code": "62010", "description": "Computer programming activities"},
        "registrationDate": "2018-03-15",
        "status": "active",
        "situations": [],
        "website": "www.revontulisoftware.fi",
        "addresses": [
            {
                "type": "visiting",
                "street": "Mannerheimintie 12 B 5",
                "postCode": "00100",
                "city": "HELSINKI",
            },
            {"type": "postal", "street": "PL 1234", "postCode": "00101", "city": "HELSINKI"},
        ],
        "source": "Finnish Patent and Registration Office (PRH), YTJ open data, CC BY 4.0",
    }
    assert business.fetchedAt.endswith("Z")
    [(request, _)] = httpserver.log
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.path == "/companies"


def test_not_found(make_client: Any, httpserver: HTTPServer) -> None:
    expect_lookup(httpserver).respond_with_json(company_not_found_body())
    with pytest.raises(BusinessNotFound):
        make_client().lookup(ID)


def test_server_error_then_success_is_retried(
    make_client: Any, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    expect_lookup(httpserver).respond_with_json(error_body(), status=500)
    expect_lookup(httpserver).respond_with_json(company_found_body(ID))
    assert make_client().lookup(ID).businessId == ID
    assert len(httpserver.log) == 2
    assert len(sleeps.delays) == 1


def test_503_with_retry_after_is_honoured(
    make_client: Any, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    expect_lookup(httpserver).respond_with_json(
        error_body(), status=503, headers={"Retry-After": "1"}
    )
    expect_lookup(httpserver).respond_with_json(company_found_body(ID))
    make_client(deadline=5.0).lookup(ID)
    assert sleeps.delays == [1.0]


def test_429_after_the_retries_is_unavailable_with_retry_after(
    make_client: Any, httpserver: HTTPServer
) -> None:
    for _ in range(3):
        expect_lookup(httpserver).respond_with_data(
            "slow down", status=429, headers={"Retry-After": "0"}
        )
    with pytest.raises(UpstreamUnavailable) as raised:
        make_client().lookup(ID)
    assert raised.value.retry_after == 1
    assert len(httpserver.log) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 418])
def test_other_client_errors_are_not_retried(
    make_client: Any, httpserver: HTTPServer, status: int
) -> None:
    expect_lookup(httpserver).respond_with_json(error_body(), status=status)
    with pytest.raises(UpstreamError):
        make_client().lookup(ID)
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 200),
        ("<html><body>Bad gateway</body></html>", "text/html", 200),
        ("<html><body>Bad gateway</body></html>", "text/html", 502),
        ('"just a string"', "application/json", 200),
        ('{"companies": "x"}', "application/json", 200),
        ('{"something": "else"}', "application/json", 200),
        ("[]", "application/json", 200),
    ],
)
def test_bodies_that_are_not_the_registers_json(
    make_client: Any, httpserver: HTTPServer, body: str, content_type: str, status: int
) -> None:
    httpserver.expect_request("/companies").respond_with_data(
        body, status=status, content_type=content_type
    )
    with pytest.raises(UpstreamError):
        make_client().lookup(ID)
    if status == 200:
        assert len(httpserver.log) == 1  # a bad body is not retried


def test_a_body_missing_fields_does_not_crash(make_client: Any, httpserver: HTTPServer) -> None:
    expect_lookup(httpserver).respond_with_json(
        {
            "companies": [
                {
                    "businessId": {"value": ID},
                    "names": None,
                    "addresses": [None, 5, {"type": 9}],
                    "website": "x",
                }
            ]
        }
    )
    business = make_client().lookup(ID)
    assert business.name is None
    assert business.addresses == []
    assert business.status == "unknown"
    assert business.website is None


def test_another_companys_answer_is_an_upstream_error(
    make_client: Any, httpserver: HTTPServer
) -> None:
    expect_lookup(httpserver).respond_with_json(company_found_body("2331972-7"))
    with pytest.raises(UpstreamError):
        make_client().lookup(ID)


def test_a_redirect_is_not_followed(make_client: Any, httpserver: HTTPServer) -> None:
    expect_lookup(httpserver).respond_with_data(
        "", status=302, headers={"Location": "http://127.0.0.2/"}
    )
    with pytest.raises(UpstreamError):
        make_client().lookup(ID)
    assert len(httpserver.log) == 1


def test_a_slow_register_times_out_within_the_deadline(
    make_client: Any, httpserver: HTTPServer
) -> None:
    held = HeldRegister(httpserver, hold_seconds=3)
    httpserver.expect_request("/companies").respond_with_handler(held)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        make_client(read_timeout=0.3, deadline=1.0).lookup(ID)
    elapsed = time.monotonic() - started
    assert held.release() >= 1
    assert elapsed < 1.0 + 0.5


def test_a_retry_gets_only_what_is_left_of_the_deadline(
    make_client: Any, httpserver: HTTPServer
) -> None:
    held = HeldRegister(httpserver, hold_seconds=3)
    httpserver.expect_request("/companies").respond_with_handler(held)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        make_client(read_timeout=0.6, deadline=0.8, retries=1).lookup(ID)
    elapsed = time.monotonic() - started
    assert held.release() == 2
    assert elapsed < 0.8 + 0.25  # not two full read timeouts


@pytest.mark.parametrize(
    ("retry_after", "calls", "waits", "reported"),
    [
        ("soon", 3, 2, 30),  # not a number or a date: the usual back-off, then the default
        ("120", 1, 0, 120),  # longer than the deadline: no retry, the wait passed on
        ("Wed, 21 Oct 2015 07:28:00 GMT", 3, 2, 1),  # a date gone by
    ],
)
def test_retry_after_values(
    make_client: Any,
    httpserver: HTTPServer,
    sleeps: Sleeps,
    retry_after: str,
    calls: int,
    waits: int,
    reported: int,
) -> None:
    httpserver.expect_request("/companies").respond_with_json(
        error_body(), status=503, headers={"Retry-After": retry_after}
    )
    with pytest.raises(UpstreamUnavailable) as raised:
        make_client(deadline=3.0).lookup(ID)
    assert raised.value.retry_after == reported
    assert len(httpserver.log) == calls
    assert len(sleeps.delays) == waits
    assert all(delay <= 5.0 for delay in sleeps.delays)


def test_connection_refused_is_an_upstream_error(sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = BusinessClient(base_url=f"http://127.0.0.1:{port}", sleep=sleeps, deadline=2.0)
    with pytest.raises(UpstreamError):
        client.lookup(ID)
    client.close()
    assert len(sleeps.delays) == 2  # two retries after the first refusal


def test_breaker_opens_fails_fast_and_closes_after_a_good_probe(
    make_client: Any, httpserver: HTTPServer
) -> None:
    clock = FakeClock()
    client = make_client(retries=0, breaker_failures=3, breaker_cooldown=30, clock=clock)
    httpserver.expect_request("/companies").respond_with_json(error_body(), status=500)
    for _ in range(3):
        assert client.breaker_state == "closed"
        with pytest.raises(UpstreamError):
            client.lookup(ID)
    # open: no call reaches the register
    assert client.breaker_state == "open"
    with pytest.raises(UpstreamUnavailable) as raised:
        client.lookup(ID)
    assert raised.value.retry_after == 30
    assert len(httpserver.log) == 3
    # half-open after the cool-down: a failed probe opens it again
    clock.now += 30
    assert client.breaker_state == "half-open"
    with pytest.raises(UpstreamError):
        client.lookup(ID)
    assert len(httpserver.log) == 4
    with pytest.raises(UpstreamUnavailable):
        client.lookup(ID)
    # a good probe closes it
    clock.now += 30
    httpserver.clear_all_handlers()
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    assert client.lookup(ID).businessId == ID
    assert client.breaker_state == "closed"


def test_cache_serves_the_second_lookup(make_client: Any, httpserver: HTTPServer) -> None:
    clock = FakeClock()
    client = make_client(clock=clock, cache_ttl=60)
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    first, second = client.lookup(ID), client.lookup(f" {ID}")
    assert first == second
    assert len(httpserver.log) == 1
    clock.now += 61  # expired
    client.lookup(ID)
    assert len(httpserver.log) == 2


def test_not_found_is_cached_for_its_shorter_time(make_client: Any, httpserver: HTTPServer) -> None:
    clock = FakeClock()
    client = make_client(clock=clock, cache_ttl=3600, not_found_ttl=300)
    httpserver.expect_request("/companies").respond_with_json(company_not_found_body())
    for _ in range(2):
        with pytest.raises(BusinessNotFound):
            client.lookup(ID)
    assert len(httpserver.log) == 1
    clock.now += 301
    with pytest.raises(BusinessNotFound):
        client.lookup(ID)
    assert len(httpserver.log) == 2


def test_errors_are_never_cached(make_client: Any, httpserver: HTTPServer) -> None:
    client = make_client(retries=0)
    expect_lookup(httpserver).respond_with_json(error_body(), status=500)
    expect_lookup(httpserver).respond_with_json(company_found_body(ID))
    with pytest.raises(UpstreamError):
        client.lookup(ID)
    assert client.lookup(ID).businessId == ID


def test_cache_ttl_zero_disables_the_cache(make_client: Any, httpserver: HTTPServer) -> None:
    client = make_client(cache_ttl=0)
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    client.lookup(ID)
    client.lookup(ID)
    assert len(httpserver.log) == 2


def test_the_cache_is_bounded_and_evicts_the_least_recent(
    make_client: Any, httpserver: HTTPServer
) -> None:
    client = make_client(cache_size=2)
    ids = ["0112038-9", "2331972-7", "0116297-6"]
    for business_id in ids:
        httpserver.expect_request(
            "/companies", query_string=f"businessId={business_id}"
        ).respond_with_json(company_found_body(business_id))
    for business_id in ids:
        client.lookup(business_id)
    client.lookup(ids[2])  # still cached
    assert len(httpserver.log) == 3
    client.lookup(ids[0])  # evicted first
    assert len(httpserver.log) == 4


def test_lookups_beyond_the_concurrency_limit_fail_fast_without_a_call(
    make_client: Any, httpserver: HTTPServer
) -> None:
    held = HeldRegister(httpserver, hold_seconds=5)
    httpserver.expect_request("/companies").respond_with_handler(held)
    client = make_client(retries=0, read_timeout=3, deadline=4, max_concurrent=2)
    outcomes: list[str] = []

    def look_up() -> None:
        try:
            client.lookup(ID)
        except BusinessError as exc:
            outcomes.append(type(exc).__name__)

    waiting = [threading.Thread(target=look_up) for _ in range(2)]
    for thread in waiting:
        thread.start()
    settled = time.monotonic() + 5
    while len(held.received) < 2 and time.monotonic() < settled:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as raised:
        client.lookup(ID)
    assert time.monotonic() - started < 0.5
    assert raised.value.retry_after == 1
    assert len(held.received) == 2
    held.release()
    for thread in waiting:
        thread.join(timeout=5)
    assert outcomes == ["UpstreamError", "UpstreamError"]  # "{}" is not the register's JSON
    # the slots are free again, and being turned away was no failure of the register
    httpserver.clear_all_handlers()
    httpserver.expect_request("/companies").respond_with_json(company_found_body(ID))
    assert client.lookup(ID).businessId == ID
