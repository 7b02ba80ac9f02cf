"""Load: wrk for the measured runs, a small pool of keep-alive clients for seeding.

wrk is a real HTTP load generator (C, epoll, keep-alive), so the client is never
the bottleneck on its own core; bench/lua/scenarios.lua builds the requests and
prints the summary as JSON. Seeding needs the new ids back, which wrk does not
collect, so it goes through http.client from a thread pool instead.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).parent / "lua" / "scenarios.lua"
CONNECTIONS = 32
WRK_THREADS = 1  # one event loop saturates a core; a second would only share it
WRK_TIMEOUT = "5s"
RESULT_MARKER = "BENCH_RESULT "


class LoadError(RuntimeError):
    """The load generator could not run, or the server answered seeding with an error."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run's numbers; latencies in milliseconds."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    created: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float = 0.0  # the server's CPU time (user + system) during the run

    @property
    def cpu_us_per_request(self) -> float:
        """CPU time per answer: unlike req/s, barely moved by other load on the machine."""
        return self.cpu_seconds * 1e6 / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian when missing (the benchmark runs as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise LoadError("apt-get installed wrk but it is not on PATH")
    return found


def run_wrk(
    url: str,
    scenario: str,
    *,
    seconds: float,
    cpu: int | None,
    ids_file: Path | None = None,
    prefix: str = "bench",
) -> WrkResult:
    """Drive `url` with wrk for `seconds` (32 keep-alive connections) and parse its summary."""
    command = [
        ensure_wrk(),
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        scenario,
        str(ids_file) if ids_file else "-",
        prefix,
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LoadError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk_output(done.stdout)


def parse_wrk_output(stdout: str) -> WrkResult:
    """The numbers from the `done` line of scenarios.lua (wrk's own text is not stable)."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            raw = json.loads(line.removeprefix(RESULT_MARKER))
            return WrkResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                non_2xx=raw["non_2xx"],
                socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
                created=raw["created"],
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
            )
    raise LoadError(f"wrk printed no result line:\n{stdout}")


def customer_body(prefix: str, number: int) -> bytes:
    """A valid create body whose email is unique for (prefix, number)."""
    return json.dumps(
        {
            "name": f"Seeded Customer {number}",
            "email": f"{prefix}-{number}@example.com",
            "phone": "+358 40 765 4321",
            "businessId": "0112038-9",
        }
    ).encode()


class _Clients(threading.local):
    """One keep-alive connection per seeding thread."""

    connection: http.client.HTTPConnection | None = None


def seed(base_url: str, numbers: Iterable[int], *, prefix: str, threads: int = 16) -> list[str]:
    """Create one customer per number over HTTP, in parallel; their ids in creation order."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    clients = _Clients()
    opened: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    def create(number: int) -> str:
        if clients.connection is None:
            clients.connection = http.client.HTTPConnection(host, port, timeout=30)
            with lock:
                opened.append(clients.connection)
        connection = clients.connection
        connection.request(
            "POST",
            "/customers",
            body=customer_body(prefix, number),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        payload = response.read()
        if response.status != 201:
            raise LoadError(f"seeding got {response.status}: {payload[:300]!r}")
        return str(json.loads(payload)["id"])

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(create, numbers, chunksize=64))
    finally:
        for connection in opened:
            connection.close()
