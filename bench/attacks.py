"""What one attacker on one machine can do to a served instance, as context managers.

Each attack opens its connections on entry, holds them while the caller measures, and
closes them on exit. `bench.hostile` runs each one against `python app.py` and prints
what it cost; tests/process/test_open_network.py asserts on the same attacks. The
HTTP/2 attacks speak the protocol with the `h2` package over plain sockets.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import requests

# Ways to break a chunked body's framing; each must be answered with a 400 problem.
BROKEN_FRAMINGS = {
    "chunk size not hex": b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "identity before chunked": b"Transfer-Encoding: identity, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "chunk size overflows": (
        b"Transfer-Encoding: chunked\r\n\r\n10000000000000000000002b\r\n{}\r\n0\r\n\r\n"
    ),
    "negative chunk size": b"Transfer-Encoding: chunked\r\n\r\n-2b\r\n{}\r\n0\r\n\r\n",
    "bare LF chunk lines": b"Transfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n",
}


def raise_open_files() -> int:
    """Let this process hold as many sockets as its hard limit allows; the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


@contextmanager
def held(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that never send a byte."""
    with held([]) as sockets:
        for _ in range(count):
            sockets.append(_connect(port))
        yield sockets


@contextmanager
def slow_headers(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that send the start of a request head and then nothing."""
    with held([]) as sockets:
        for _ in range(count):
            sock = _connect(port)
            sock.sendall(b"GET /customers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(sock)
        yield sockets


@contextmanager
def slow_bodies(port: int, count: int, *, declared: int = 60_000) -> Iterator[list[socket.socket]]:
    """`count` POSTs that declare `declared` bytes of body and send a tenth of them."""
    head = (
        "POST /customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with held([]) as sockets:
        for _ in range(count):
            sock = _connect(port)
            sock.sendall(head + b" " * (declared // 10))
            sockets.append(sock)
        yield sockets


def closed_by_server(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has closed (read end of stream, or a reset)."""
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            while sock.recv(65536):
                pass
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


class H2Client:
    """One HTTP/2 connection with prior knowledge, as `curl --http2-prior-knowledge` opens."""

    def __init__(self, port: int) -> None:
        self.sock = _connect(port)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        # Send whatever the test asks for, however large; the server must set the bound.
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 2**31 - 1},
        )
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self, path: str, *, method: str = "GET", extra: list[tuple[str, str]] | None = None
    ) -> int:
        """Send a request's headers with no body to follow unless `method` is a POST."""
        stream = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "x")]
        if method == "POST":
            headers.append(("content-type", "application/json"))
        self.conn.send_headers(stream, headers + (extra or []), end_stream=method != "POST")
        self.flush()
        return stream

    def send_body(self, stream: int, data: bytes) -> None:
        """As much of `data` as flow control lets through now, leaving the stream open."""
        room = min(self.conn.local_flow_control_window(stream), len(data))
        frame = self.conn.max_outbound_frame_size
        for start in range(0, room, frame):
            self.conn.send_data(stream, data[start : min(start + frame, room)])
        self.flush()

    def answers(self, timeout: float) -> dict[int, int]:
        """Each stream's status, read until every opened stream ended or `timeout` passed."""
        statuses: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    statuses[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.StreamReset):
                    statuses.setdefault(event.stream_id, 0)
            self.flush()
            if self.conn.open_outbound_streams == 0 and self.conn.open_inbound_streams == 0:
                break
        return statuses

    def close(self) -> None:
        self.sock.close()


@contextmanager
def h2_header_floods(port: int, connections: int, repeats: int) -> Iterator[list[H2Client]]:
    """On each connection one request with `repeats` copies of `x-a: b` (HPACK makes each
    copy one byte on the wire)."""
    with ExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = H2Client(port)
            stack.callback(client.close)
            with suppress(OSError):  # the server may close the connection mid-send
                client.request("/health", extra=[("x-a", "b")] * repeats)
            clients.append(client)
        yield clients


@contextmanager
def h2_unfinished_bodies(
    port: int, connections: int, streams: int, size: int = 65_000
) -> Iterator[list[H2Client]]:
    """`connections` x `streams` POSTs, each sending `size` bytes of a body that never ends."""
    with ExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = H2Client(port)
            stack.callback(client.close)
            for _ in range(streams):
                try:
                    client.send_body(client.request("/customers", method="POST"), b" " * size)
                except (OSError, h2.exceptions.H2Error):  # refused, or the socket closed
                    break
            clients.append(client)
        yield clients


class HealthProbe:
    """GET `url` every `interval` seconds in a thread; the worst latency seen.

    A request that fails or takes longer than `timeout` counts as `timeout`.
    """

    def __init__(self, url: str, *, interval: float = 0.05, timeout: float = 5.0) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.worst = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = session.get(self.url, timeout=self.timeout).status_code == 200
                except requests.RequestException:
                    ok = False
                took = time.monotonic() - started if ok else self.timeout
                self.failures += not ok
                self.worst = max(self.worst, took)
                self._stop.wait(self.interval)
