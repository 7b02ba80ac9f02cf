"""What each attack from one machine costs the served app: `python -m bench.hostile`.

Each attack in bench/attacks.py runs for `--seconds` against a fresh `python app.py`
(in-memory store, one worker, HTTP/2 on for the HTTP/2 attacks) while a probe asks
`/health` every 50 ms. Printed per attack: /health's worst latency during it, how many
probes failed, and the server's resident memory (main process and workers) before,
at its peak, and `--settle` seconds after the attacker left (granian's allocator hands
freed memory back after about ten). The README's security section
quotes a run.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench import attacks, procs

Attack = Callable[[int], AbstractContextManager[Any]]


def broken_framings(port: int) -> AbstractContextManager[Any]:
    """Every broken chunked framing, sent over and over on new connections."""
    return _repeating(
        port,
        [
            b"POST /customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing
            for framing in attacks.BROKEN_FRAMINGS.values()
        ],
    )


class _repeating:
    """Sends each request in turn on a new connection, in a thread, until the block ends."""

    def __init__(self, port: int, requests: list[bytes]) -> None:
        self.port = port
        self.requests = requests
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _repeating:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.is_set():
            for data in self.requests:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(data)
                    sock.recv(65536)


ATTACKS: dict[str, tuple[Attack, dict[str, str]]] = {
    "5,000 idle connections": (lambda port: attacks.idle_sockets(port, 5000), {}),
    "5,000 slow request heads": (lambda port: attacks.slow_headers(port, 5000), {}),
    "2,000 slow bodies": (lambda port: attacks.slow_bodies(port, 2000), {}),
    "broken chunked framing, repeated": (broken_framings, {}),
    "HTTP/2: 6 x 450,000 header copies": (
        lambda port: attacks.h2_header_floods(port, 6, 450_000),
        {"HTTP2": "1"},
    ),
    "HTTP/2: 40 x 32 unfinished bodies": (
        lambda port: attacks.h2_unfinished_bodies(port, 40, 32),
        {"HTTP2": "1"},
    ),
}


def measure(
    name: str, attack: Attack, settings: dict[str, str], seconds: float, settle: float, logs: Path
) -> str:
    env = procs.service_env({"LOG_LEVEL": "WARNING", "WORKERS": "1", **settings})
    with procs.running("service", procs.service_command(), cpu=None, env=env, logs=logs) as server:
        pid = server.process.pid
        before = procs.tree_rss_mb(pid)
        peak = before
        with attacks.HealthProbe(server.base_url + "/health") as probe:
            with attack(server.port):
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    peak = max(peak, procs.tree_rss_mb(pid))
                    time.sleep(0.2)
            time.sleep(settle)
        after = procs.tree_rss_mb(pid)
    return (
        f"| {name} | {probe.worst * 1000:.0f} | {probe.failures} "
        f"| {before:.0f} | {peak:.0f} | {after:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each attack's length")
    parser.add_argument(
        "--settle", type=float, default=12.0, help="seconds after the attack before 'after'"
    )
    parser.add_argument("--only", help="run the attacks whose name holds this text")
    args = parser.parse_args()
    attacks.raise_open_files()
    print("| attack | /health worst (ms) | probes failed | RSS before (MiB) | peak | after |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as logs:
        for name, (attack, settings) in ATTACKS.items():
            if args.only and args.only not in name:
                continue
            print(
                measure(name, attack, settings, args.seconds, args.settle, Path(logs)), flush=True
            )


if __name__ == "__main__":
    main()
