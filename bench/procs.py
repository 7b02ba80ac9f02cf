"""Server processes for the benchmark: started pinned to a core, timed, measured, stopped.

The service (`python app.py`), the bare-Flask yardstick (`python -m bench.yardstick`),
the seed's stack (`node bench/express/server.js`) and the Python peer (`python -m
bench.fastapi_peer`, FastAPI on uvicorn) run under `taskset -c <core>`,
so they share one core and the load generator owns the other. Each starts in its own
session, so stopping it stops its granian workers too, and nothing else.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from customers.config import CONVERTERS

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ServerError(RuntimeError):
    """A server did not come up, or died; the message ends with its log's tail."""


@dataclass(slots=True)
class Server:
    """A running server: its main process, address and log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """Granian's worker processes (its children), whose memory is the app's memory."""
        # Granian forks its workers; multiprocessing may add a resource tracker beside them.
        return [
            pid for pid in _children(self.process.pid) if b"resource_tracker" not in _cmdline(pid)
        ]

    def rss_mb(self) -> float:
        """Resident memory of the workers (VmRSS), in MiB."""
        pids = self.worker_pids()
        if not pids:
            raise ServerError(f"{self.name}: no granian worker found under {self.process.pid}")
        return sum(_vm_rss_kb(pid) for pid in pids) / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its workers."""
        return sum(_cpu_seconds(pid) for pid in (self.process.pid, *self.worker_pids()))

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise ServerError when the server has exited."""
        if self.process.poll() is not None:
            raise ServerError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment without any of the service's own settings, plus `overrides`.

    A developer's API_KEYS or SQLITE_PATH must not leak into the benchmark.
    """
    env = {name: value for name, value in os.environ.items() if name not in CONVERTERS}
    env.update(overrides)
    return env


def start(
    name: str,
    command: list[str],
    *,
    port: int,
    cpu: int | None,
    env: dict[str, str],
    logs: Path,
    root: Path = ROOT,
) -> Server:
    """Start `command` in `root` (pinned to `cpu`), its output to a log file; does not wait."""
    log_path = logs / f"{name}-{port}.log"
    pinned = ["taskset", "-c", str(cpu), *command] if cpu is not None else command
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            pinned,
            cwd=root,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, port, log_path)


def service_command() -> list[str]:
    return [PYTHON, "app.py"]


def yardstick_command() -> list[str]:
    return [PYTHON, "-m", "bench.yardstick"]


def fastapi_command() -> list[str]:
    return [PYTHON, "-m", "bench.fastapi_peer"]


EXPRESS_DIR = ROOT / "bench" / "express"


def express_command() -> list[str]:
    """The seed's stack (bench/express): node, its modules installed by `npm ci`."""
    if not (EXPRESS_DIR / "node_modules" / "better-sqlite3").is_dir():
        raise ServerError("bench/express has no node_modules: run `npm ci` there (make bench does)")
    return ["node", str(EXPRESS_DIR / "server.js")]


def wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Block until /health answers 200; raise ServerError if it dies or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        if _health_ok(server.port):
            return
        time.sleep(0.005)
    raise ServerError(f"{server.name} gave no 200 on /health in {timeout} s:\n{server.log_tail()}")


def _health_ok(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=READY_TIMEOUT)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def stop(server: Server, *, graceful: bool = True) -> None:
    """SIGTERM to granian's main process (a graceful stop), then SIGKILL to what is left.

    Only the main process gets SIGTERM: a signal to the whole session reaches the
    worker too, and granian then waits for a worker that no longer answers it.
    """
    if graceful and server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=STOP_TIMEOUT)
    # Whatever lingers: a hung main process, workers of one that died first.
    _signal_group(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=STOP_TIMEOUT)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@contextmanager
def running(
    name: str,
    command: list[str],
    *,
    cpu: int | None,
    env: dict[str, str],
    logs: Path,
    root: Path = ROOT,
) -> Iterator[Server]:
    """A started, healthy server for the block; stopped afterwards whatever happens."""
    server = start(name, command, port=free_port(), cpu=cpu, env=env, logs=logs, root=root)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


def time_to_first_200(
    name: str, command: list[str], *, cpu: int | None, env: dict[str, str], logs: Path
) -> float:
    """Seconds from starting the process to its first 200 on /health."""
    started = time.perf_counter()
    server = start(name, command, port=free_port(), cpu=cpu, env=env, logs=logs)
    try:
        wait_ready(server)
        return time.perf_counter() - started
    finally:
        stop(server, graceful=False)  # it served one request: nothing to finish


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children (granian's workers), in MiB."""
    total = 0
    for member in (pid, *_children(pid)):
        with suppress(ServerError, OSError):  # a process that has just exited
            total += _vm_rss_kb(member)
    return total / 1024


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name before it may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # utime and stime, fields 14 and 15, counted after the parenthesised command name.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ServerError(f"no VmRSS for {pid}")
