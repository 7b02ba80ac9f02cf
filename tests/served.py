"""`python app.py` as a user runs it: granian on a loopback port, in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


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
    granian's workers too; its stdout and stderr go to `output` when given.
    """

    def __init__(
        self,
        settings: Mapping[str, str],
        *,
        output: Path | None = None,
        command: Sequence[str] = (sys.executable, "app.py"),
        port_argument: str | None = None,
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
            self.process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
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
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # a command reading stdin (`import -`) finds it empty
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output.decode(errors="replace")
