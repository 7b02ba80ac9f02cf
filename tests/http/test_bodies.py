"""Request bodies over real sockets: whole and within the limit under every server, and
clients that stall (on a body or on reading the answer) never take the service down."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from tests.conftest import LiveServer
from tests.served import ServerProcess

LIMIT = 64 * 1024
STALLED = 64  # twice the server's threads
KEY = "bodies-test-key-0123456789"


STORE_SETTINGS = (
    "CUSTOMER_STORE",
    "DYNAMODB_TABLE",
    "DYNAMODB_CREATE_TABLE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
)


@pytest.fixture
def store_environ(app_settings: dict[str, Any]) -> dict[str, str]:
    """The store `app_settings` names (DynamoDB under `--store=dynamodb`), as variables.

    One worker: a stop signal that lands while granian still starts a second worker
    leaves granian waiting for it, and these tests stop their server right away.
    """
    environ = {
        name: str(int(value)) if isinstance(value, bool) else str(value)
        for name in STORE_SETTINGS
        if (value := app_settings.get(name)) is not None
    }
    return {**environ, "WORKERS": "1"}


@pytest.fixture(params=["granian", "werkzeug"])
def server_url(
    request: pytest.FixtureRequest, app: Flask, store_environ: dict[str, str]
) -> Iterator[str]:
    """The app under `python app.py` (granian) and under `flask run`'s server (Werkzeug)."""
    if request.param == "granian":
        server = ServerProcess(store_environ)
        try:
            yield server.url
        finally:
            server.stop()
    else:
        with LiveServer(app) as live:
            yield live.url


def in_chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    """A generator body, which requests sends with `Transfer-Encoding: chunked`."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def post_chunked(url: str, data: bytes) -> requests.Response:
    return requests.post(
        f"{url}/customers",
        data=in_chunks(data),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def found(url: str, email: str) -> list[dict[str, Any]]:
    response = requests.get(f"{url}/customers", params={"email": email}, timeout=5)
    assert response.status_code == 200
    listed: list[dict[str, Any]] = response.json()
    return listed


def assert_too_large(response: requests.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 413


def test_chunked_body_with_junk_after_a_valid_first_64_kib_is_413(server_url: str) -> None:
    # GIVEN a body whose first 64 KiB are a valid customer, followed by junk
    customer = json.dumps({"name": "Prefix", "email": "prefix@example.com"}).encode()
    head = customer + b" " * (LIMIT - len(customer))
    # WHEN it is sent chunked
    response = post_chunked(server_url, head + b"junk" * 100)
    # THEN it is too large, and the prefix was not taken for the whole body
    assert_too_large(response)
    assert found(server_url, "prefix@example.com") == []


def test_valid_json_padded_past_the_limit_sent_chunked_is_413(server_url: str) -> None:
    body = b'{"name": "Padded", "email": "padded@example.com"' + b" " * LIMIT + b"}"
    assert json.loads(body)["name"] == "Padded"
    assert_too_large(post_chunked(server_url, body))
    assert found(server_url, "padded@example.com") == []


def test_chunked_body_of_exactly_the_limit_is_read_whole(server_url: str) -> None:
    customer = json.dumps({"name": "Whole", "email": "whole@example.com"}).encode()
    response = post_chunked(server_url, customer + b" " * (LIMIT - len(customer)))
    assert response.status_code == 201, response.text
    assert found(server_url, "whole@example.com") == [response.json()]


def test_chunked_body_cut_short_creates_nothing(server_url: str) -> None:
    # GIVEN a chunked body whose first chunk is a whole, valid customer
    customer = json.dumps({"name": "Cut", "email": "cut@example.com"}).encode()
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(customer)
            + customer
            + b"\r\n"
        )
        time.sleep(0.2)
        # WHEN the client goes away before the last chunk
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(4096)
    # THEN nothing was created from that part of a body
    assert not answer.startswith(b"HTTP/1.1 201")
    time.sleep(0.2)
    assert found(server_url, "cut@example.com") == []


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """`count` HTTP/1.1 answers from `sock`, each framed by its Content-Length."""
    answers: list[tuple[int, bytes]] = []
    buffered = b""
    while len(answers) < count:
        while b"\r\n\r\n" not in buffered:
            more = sock.recv(65536)
            assert more, f"the connection closed after {len(answers)} answers"
            buffered += more
        head, _, buffered = buffered.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields.get("content-length", "0"))
        while len(buffered) < length:
            more = sock.recv(65536)
            assert more, "the connection closed inside an answer"
            buffered += more
        answers.append((int(lines[0].split()[1]), buffered[:length]))
        buffered = buffered[length:]
    return answers


def post_request(email: str) -> tuple[bytes, bytes]:
    """A create's head (with Content-Length) and body."""
    body = json.dumps({"name": "Kept Alive", "email": email}).encode()
    head = (
        b"POST /customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head, body


def test_bodies_by_length_keep_the_connection_and_the_next_request_whole(
    store_environ: dict[str, str],
) -> None:
    """One kept-alive connection to `python app.py`: a body in one write, one split across
    writes, one sent in the same write as the request after it. Each is read to its
    length and no further. (Werkzeug's development server closes after each answer.)"""
    server = ServerProcess(store_environ)
    try:
        answers = send_on_one_connection(server.port)
    finally:
        server.stop()
    assert [status for status, _ in answers] == [201, 201, 201, 200]
    emails = [json.loads(answer)["email"] for _, answer in answers[:3]]
    assert emails == ["kept-1@example.com", "kept-2@example.com", "kept-3@example.com"]
    assert json.loads(answers[3][1]) == [json.loads(answers[2][1])]


def send_on_one_connection(port: int) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head, body = post_request("kept-1@example.com")
        sock.sendall(head + body)
        head, body = post_request("kept-2@example.com")
        sock.sendall(head + body[:10])
        time.sleep(0.2)
        sock.sendall(body[10:])
        head, body = post_request("kept-3@example.com")
        sock.sendall(
            head + body + b"GET /customers?email=kept-3%40example.com HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n\r\n"
        )
        return read_answers(sock, 4)


# --- clients that stall ----------------------------------------------------------------


def stall_on_body(port: int, headers: str = "") -> socket.socket:
    """A POST whose headers and first bytes are sent, and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            "POST /customers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n"
            f"{headers}\r\n"
            '{"name": "Stalled"'
        ).encode()
    )
    return sock


def stall_on_answer(port: int, path: str) -> socket.socket:
    """A GET for a large answer, on a socket with a small buffer that is never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def stall_on_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def assert_quick_answers(url: str, customer_id: str, headers: dict[str, str]) -> None:
    """/health, a get and a list each answer 200 within a second."""
    with requests.Session() as session:
        session.headers.update(headers)
        for path in ("/health", f"/customers/{customer_id}", "/customers?limit=5"):
            started = time.monotonic()
            response = session.get(f"{url}{path}", timeout=5)
            assert response.status_code == 200, path
            assert time.monotonic() - started < 1.0, path


@pytest.mark.slow
@pytest.mark.parametrize("keys", [False, True], ids=["open", "with-keys"])
def test_stalled_bodies_hold_no_thread_and_get_408_after_the_deadline(
    store_environ: dict[str, str], keys: bool
) -> None:
    settings = {**store_environ, "BODY_READ_TIMEOUT": "2"}
    headers = {}
    if keys:
        settings |= {"API_KEYS": KEY, "RATE_LIMIT": "1000/minute"}
        headers = {"X-API-Key": KEY}
    server = ServerProcess(settings)
    stalled: list[socket.socket] = []
    try:
        created = requests.post(
            f"{server.url}/customers",
            json={"name": "Present", "email": "present@example.com"},
            headers=headers,
            timeout=5,
        )
        assert created.status_code == 201
        # GIVEN twice as many stalled bodies as the server has threads
        opened = time.monotonic()
        key_header = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        stalled = [stall_on_body(server.port, key_header) for _ in range(STALLED)]
        time.sleep(0.3)
        # THEN everything else still answers at once
        assert_quick_answers(server.url, created.json()["id"], headers)
        # AND each stalled client gets a 408 problem once the deadline has passed
        for sock in stalled:
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            assert answer.status == 408
            assert answer.getheader("Content-Type") == "application/problem+json"
            assert json.loads(answer.read())["type"] == "urn:customer-api:problem:request-timeout"
        assert 1.5 < time.monotonic() - opened < 8
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


@pytest.mark.slow
def test_slow_readers_and_slow_headers_hold_no_thread(store_environ: dict[str, str]) -> None:
    server = ServerProcess(store_environ)
    stalled: list[socket.socket] = []
    try:
        created = requests.post(
            f"{server.url}/customers",
            json={"name": "Present", "email": "present@example.com"},
            timeout=5,
        )
        assert created.status_code == 201
        # GIVEN clients that never read a large answer, and clients that never end their headers
        stalled = [
            stall_on_answer(server.port, "/docs/swagger-ui-bundle.js") for _ in range(STALLED)
        ]
        stalled += [stall_on_headers(server.port) for _ in range(STALLED)]
        time.sleep(0.5)
        # THEN everything else still answers at once
        assert_quick_answers(server.url, created.json()["id"], {})
    finally:
        for sock in stalled:
            sock.close()
        server.stop()
