"""`python app.py` as a user runs it: granian on a loopback port, in its own process group.

Every process group started here is remembered until it is reaped, so that
`end_started_groups` can end what a test run leaves behind when it is itself stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent

# Processes started in sessions of their own: a signal to the test run's process group
# (Ctrl-C, `kill -- -PGID` of `make test`) does not reach them.
_STARTED: list[subprocess.Popen[Any]] = []


def start_in_own_group(args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """Popen `args` in a session of its own, so that a kill of its group reaches everything
    it starts; remembered for `end_started_groups`."""
    process: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **options)
    _STARTED[:] = [started for started in _STARTED if started.poll() is None]
    _STARTED.append(process)
    return process


def end_started_groups(grace: float = 5.0) -> None:
    """SIGTERM every group started here that still runs, then SIGKILL the groups whose
    first process has not ended after `grace` seconds: nothing a test started outlives
    the test run.

    Safe in a signal handler: it reaps with `os.waitpid` itself, never through a Popen,
    whose lock the interrupted code may hold. A Popen it reaped reports 0 afterwards.
    """
    waiting = {process.pid for process in _STARTED if process.returncode is None}
    _STARTED.clear()
    for pid in waiting:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            with contextlib.suppress(ChildProcessError):  # reaped already
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    continue
            waiting.discard(pid)
        time.sleep(0.05)
    for pid in waiting:
        _signal_group(pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.killpg(pgid, signum)


def processes_tagged(tag: str) -> list[int]:
    """Every live process whose environment holds `tag` (put it in a server's settings):
    each process hands its environment to those it starts, whatever their group or
    parent by now."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing uses on `host`; on `::`, nothing on any address, IPv4 ones included."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """The served app with `settings` on top of the environment, healthy once constructed.

    `command` starts it (`python app.py` unless told); it is told its port in PORT, or
    with `port_argument` on its command line. Its own process group, so a kill reaches
    granian's workers too; its stdout and stderr go to `output` when given. `wrapper`
    runs it under another command (a supervisor such as `timeout 120`); `healthy=False`
    returns at once, while it starts.
    """

    def __init__(
        self,
        settings: Mapping[str, str],
        *,
        output: Path | None = None,
        command: Sequence[str] = (sys.executable, "app.py"),
        port_argument: str | None = None,
        wrapper: Sequence[str] = (),
        healthy: bool = True,
    ) -> None:
        self.port = free_port(settings.get("HOST", "127.0.0.1"))
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LOG_LEVEL": "WARNING", **settings}
        args = list(command)
        if port_argument is None:
            env["PORT"] = str(self.port)
        else:
            args += [port_argument, str(self.port)]
        with open(output or os.devnull, "wb") as sink:
            self.process = start_in_own_group(
                [*wrapper, *args],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        if healthy:
            self.wait_until_healthy()

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.kill_hard()
        raise AssertionError("the server did not become healthy")

    def kill_hard(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=30)


def run_to_exit(
    args: list[str], settings: Mapping[str, str], *, timeout: float = 30
) -> tuple[int | None, str]:
    """Run `args` (a way of starting the service) from the project root until it exits.

    For starts that must fail: the exit code and everything written to stdout and
    stderr, or None as the code when it was still running after `timeout` seconds
    (it is then killed, with everything it started).
    """
    env = {**os.environ, "LOG_LEVEL": "WARNING", **settings}
    process = start_in_own_group(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # a command reading stdin (`import -`) finds it empty
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output.decode(errors="replace")
