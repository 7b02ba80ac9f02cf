"""`python app.py` on an open network: what one attacker's machine can hold open or send.

Each attack (bench/attacks.py, also run by `python -m bench.hostile`) runs against the
served app while a probe asks `/health`; the service keeps answering it, a customer and
a page of customers within a second, closes what it should, and answers every request
that reaches it with one of its own problems.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench import attacks, procs
from customers.web.asgi_bridge import WsgiOverAsgi, wsgi_environ
from customers.web.bodies import REQUEST_PROBLEM
from tests.served import ServerProcess

# Short deadlines, so the test sees connections closed and bodies refused in seconds.
DEADLINES = {"HEADER_READ_TIMEOUT": "2", "BODY_READ_TIMEOUT": "2"}
SHAPES = {
    "memory, 1 worker": {"WORKERS": "1"},
    "file, 1 worker": {"WORKERS": "1", "SQLITE_PATH": "{tmp}/c.db"},
    "file, 2 workers": {"WORKERS": "2", "SQLITE_PATH": "{tmp}/c.db"},
}


@pytest.fixture(scope="module", autouse=True)
def open_files() -> None:
    if attacks.raise_open_files() < 12_000:
        pytest.fail("the hard open-file limit is below what these tests hold open")


@pytest.fixture(params=list(SHAPES))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    settings = {k: v.format(tmp=tmp_path) for k, v in SHAPES[request.param].items()}
    server = ServerProcess({**settings, **DEADLINES, "LOG_LEVEL": "INFO"}, output=tmp_path / "log")
    yield server
    assert server.stop() == 0


def assert_answers_fast(server: ServerProcess, customer_id: str) -> None:
    """/health, one customer and a page of customers each answer within a second."""
    for path in ("/health", f"/customers/{customer_id}", "/customers?limit=10"):
        started = time.monotonic()
        response = requests.get(server.url + path, timeout=5)
        assert response.status_code == 200, path
        assert time.monotonic() - started < 1.0, path


def create(server: ServerProcess) -> str:
    body = {"name": "Open Network", "email": f"o{time.monotonic_ns()}@example.com"}
    response = requests.post(server.url + "/customers", json=body, timeout=5)
    assert response.status_code == 201
    customer_id: str = response.json()["id"]
    return customer_id


def test_five_thousand_held_connections_never_stop_answers(served: ServerProcess) -> None:
    """Idle, slow-header and slow-body clients, 5,000 in all: the service answers
    throughout, closes the first two kinds at the header deadline and answers the third
    with 408 at the body deadline."""
    customer_id = create(served)
    with (
        attacks.idle_sockets(served.port, 2000) as idle,
        attacks.slow_headers(served.port, 1500) as partial,
        attacks.slow_bodies(served.port, 1500) as bodies,
    ):
        assert_answers_fast(served, customer_id)
        time.sleep(3.5)  # past both deadlines
        assert_answers_fast(served, customer_id)
        assert attacks.closed_by_server(idle) == len(idle)
        assert attacks.closed_by_server(partial) == len(partial)
        late = [sock.recv(4096).split(b"\r\n", 1)[0] for sock in bodies[:50]]
        assert set(late) == {b"HTTP/1.1 408 Request Timeout"}


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    served: ServerProcess,
) -> None:
    with attacks.idle_sockets(served.port, 1) as (sock,):
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert 1.5 < time.monotonic() - started < 5


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break  # the whole problem document; the connection may stay open
        return answer


@pytest.mark.parametrize("framing", list(attacks.BROKEN_FRAMINGS))
def test_a_broken_chunked_body_is_a_logged_400_problem(
    served: ServerProcess, framing: str, tmp_path: Path
) -> None:
    head = b"POST /customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer = raw_request(served.port, head + attacks.BROKEN_FRAMINGS[framing])
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 400 ")
    headers = head_part.lower()
    assert b"content-type: application/problem+json" in headers
    assert b"x-request-id: " in headers and b"x-content-type-options: nosniff" in headers
    # hyper reads `identity, chunked` as chunked (its last coding) and the body as `{}`:
    # then the answer is the body's own 400, validation-error.
    assert b'"urn:customer-api:problem:bad-request"' in body or (
        framing == "identity before chunked" and b"problem:validation-error" in body
    )
    request_id = headers.split(b"x-request-id: ")[1].split(b"\r\n")[0].decode()
    assert requests.get(served.url + "/customers", timeout=5).json() == []
    assert wait_for_lines(tmp_path / "log", request_id) == 1


def wait_for_lines(log: Path, text: str) -> int:
    """Lines of `log` holding `text`, once there is one (log lines are written in batches)."""
    deadline = time.monotonic() + 5
    while True:
        found = [line for line in log.read_text().splitlines() if text in line]
        if found or time.monotonic() > deadline:
            return len(found)
        time.sleep(0.05)


@pytest.fixture
def served_h2(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess({**DEADLINES, "HTTP2": "1"}, output=tmp_path / "log")
    yield server
    assert server.stop() == 0


def test_http2_is_off_unless_asked(tmp_path: Path) -> None:
    server = ServerProcess({}, output=tmp_path / "log")
    try:
        client = attacks.H2Client(server.port)
        client.request("/health")
        assert client.answers(timeout=5) == {}  # no HTTP/2 answer: the connection closed
        client.close()
    finally:
        assert server.stop() == 0


def test_http2_when_asked(served_h2: ServerProcess) -> None:
    client = attacks.H2Client(served_h2.port)
    stream = client.request("/health")
    assert client.answers(timeout=5) == {stream: 200}
    client.close()


def test_http2_header_count_and_size_are_bounded(served_h2: ServerProcess) -> None:
    """More fields than HTTP/1 takes is a 431; a header list of 450,000 one-byte copies
    is refused at the size bound, and /health keeps answering meanwhile."""
    client = attacks.H2Client(served_h2.port)
    stream = client.request("/health", extra=[("x-a", "b")] * 150)
    assert client.answers(timeout=5) == {stream: 431}
    client.close()
    with (
        attacks.HealthProbe(served_h2.url + "/health") as probe,
        attacks.h2_header_floods(served_h2.port, 6, 450_000) as floods,
    ):
        for flood in floods:
            assert 200 not in flood.answers(timeout=5).values()
        time.sleep(0.5)
    assert probe.failures == 0 and probe.worst < 1.0


def test_http2_bodies_are_bounded_in_memory(served_h2: ServerProcess) -> None:
    """40 connections x 32 streams of unfinished 65,000-byte bodies: memory stays within
    the windows, every stream is answered (408 at the deadline), /health answers."""
    before = procs.tree_rss_mb(served_h2.process.pid)
    with (
        attacks.HealthProbe(served_h2.url + "/health") as probe,
        attacks.h2_unfinished_bodies(served_h2.port, 40, 32) as clients,
    ):
        time.sleep(1)
        peak = procs.tree_rss_mb(served_h2.process.pid)
        statuses = [status for c in clients[:4] for status in c.answers(timeout=6).values()]
    assert set(statuses) <= {408, 503} and len(statuses) == 4 * 32
    # Each connection may send 256 KiB ahead of what is read: 10 MiB for all 40.
    assert peak - before < 64
    assert probe.failures == 0 and probe.worst < 1.0


def test_repeated_headers_are_joined_in_order() -> None:
    scope: dict[str, Any] = {
        "method": "GET",
        "path": "/",
        "headers": [
            (b"x-a", b"1"),
            (b"cookie", b"a=1"),
            (b"x-a", b"2"),
            (b"cookie", b"b=2"),
            (b"x-a", b"3"),
        ],
    }
    environ = wsgi_environ(scope)
    assert environ["HTTP_X_A"] == "1,2,3"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert REQUEST_PROBLEM not in environ


def test_more_header_fields_than_http1_takes_are_marked_431() -> None:
    scope: dict[str, Any] = {"method": "GET", "path": "/", "headers": [(b"x-a", b"b")] * 101}
    environ = wsgi_environ(scope)
    assert getattr(environ[REQUEST_PROBLEM], "code", None) == 431


def test_a_failure_around_the_app_is_still_a_logged_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A response header the server cannot encode fails outside Flask's error handling."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Name", "Ωmega")])
        return [b"{}"]

    bridge = WsgiOverAsgi(app, threads=1, body_limit=10, body_timeout=1, body_memory=100)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(bridge(scope, receive, send))
    assert sent[0]["status"] == 500
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
    assert b"internal-error" in sent[1]["body"]
    assert "unanswered_request" in capsys.readouterr().out
