"""Start-up: every way of starting the service refuses what it cannot serve, and says why.

The servers are started as a user starts them (`python app.py`, `flask run`), as real
processes on loopback ports.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from customers.config import ConfigError, settings_from_env
from customers.serving import worker_count
from customers.stores.sqlite import is_in_memory
from tests.served import ROOT, ServerProcess, free_port, run_to_exit, start_in_own_group

# Every way sqlite can be told to keep a database inside its process, and look-alikes
# that name files.
MEMORY_PATHS = [
    ":memory:",
    "",
    "file::memory:",
    "file::memory:?cache=shared",
    "file:customers?mode=memory",
    "file:customers?mode=memory&cache=shared",
    "file:customers?cache=shared&mode=%6demory",
    "file:%3Amemory%3A",
    "file:",
    "file:?cache=shared",
    "file://localhost",
    "file:/customers?vfs=memdb",
]
FILE_PATHS = [
    "customers.db",
    "memory",
    "file:customers.db",
    "file:customers.db?mode=rwc",
    "file:customers?mode=memory&mode=rwc",  # the last mode wins
    "file:customers?MODE=memory",  # names are case-sensitive
    "file:customers#?mode=memory",  # a fragment, not a query
    "file://localhost/:memory:",  # a file named ":memory:" in /
]


def sqlite_keeps_it_in_memory(path: str) -> bool:
    """sqlite's own answer: the database has no file, or lives in memory like a memdb one."""
    connection = sqlite3.connect(path, uri=path.startswith("file:"))
    try:
        (_, _, filename) = connection.execute("PRAGMA database_list").fetchone()
        (journal,) = connection.execute("PRAGMA journal_mode").fetchone()
    finally:
        connection.close()
    return filename == "" or journal == "memory"


@pytest.mark.parametrize(
    ("path", "expected"),
    [(path, True) for path in MEMORY_PATHS] + [(path, False) for path in FILE_PATHS],
)
def test_in_memory_means_what_sqlite_means(
    path: str, expected: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative names land here
    if path != "file://localhost/:memory:":  # sqlite would create it in /
        assert sqlite_keeps_it_in_memory(path) is expected
    assert is_in_memory(path) is expected


@pytest.mark.parametrize("path", MEMORY_PATHS)
def test_every_in_memory_form_refuses_several_workers(path: str) -> None:
    with pytest.raises(ConfigError, match="WORKERS=2"):
        worker_count({"WORKERS": 2, "CUSTOMER_STORE": "sqlite", "SQLITE_PATH": path})


def test_a_shared_cache_memory_database_stops_python_app_py() -> None:
    code, output = run_to_exit(
        [sys.executable, "app.py"],
        {"SQLITE_PATH": "file::memory:?cache=shared", "WORKERS": "2", "PORT": str(free_port())},
    )
    assert code not in (0, None)
    assert "WORKERS=2" in output


@pytest.fixture
def running() -> Iterator[ServerProcess]:
    """`python app.py` holding a port, as the first `make run` would."""
    server = ServerProcess({})
    yield server
    server.stop()


def test_python_app_py_refuses_a_port_already_served(running: ServerProcess) -> None:
    # GIVEN one instance serving, with a customer in its in-memory store
    created = requests.post(
        f"{running.url}/customers",
        json={"name": "First Instance", "email": "first@example.com"},
        timeout=5,
    )
    assert created.status_code == 201
    # WHEN a second instance starts on the same port
    code, output = run_to_exit([sys.executable, "app.py"], {"PORT": str(running.port)})
    # THEN it stops at once, naming the port, and the first one alone answers
    assert code not in (0, None)
    assert f"PORT={running.port}" in output and "in use" in output
    assert "Traceback" not in output
    listed = requests.get(f"{running.url}/customers?email=first@example.com", timeout=5)
    assert len(listed.json()) == 1


def test_flask_run_refuses_a_port_already_served(running: ServerProcess) -> None:
    code, output = run_to_exit(
        [sys.executable, "-m", "flask", "run", "--port", str(running.port)], {}
    )
    assert code not in (0, None)
    assert f"Port {running.port} is in use" in output


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"REQUIRE_API_KEYS": "1"}, "REQUIRE_API_KEYS"),
        ({"SQLITE_PATH": "/nonexistent-directory/customers.db"}, "SQLITE_PATH"),
        ({"HOST": "localhost"}, "HOST"),
        ({"HOST": "192.0.2.1"}, "HOST"),  # an address this machine does not have
        ({"DRAIN_TIMEOUT": "10"}, "DRAIN_TIMEOUT"),  # a request may take 5 + 8 s
    ],
)
def test_python_app_py_stops_with_one_line_naming_the_setting(
    settings: dict[str, str], named: str
) -> None:
    """Checked before granian starts its workers: no traceback per worker, no crash loop."""
    code, output = run_to_exit([sys.executable, "app.py"], {**settings, "PORT": str(free_port())})
    assert code not in (0, None)
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"customer-api: {named}="), output


def test_a_host_must_be_an_ip_address() -> None:
    with pytest.raises(ConfigError, match=r"^HOST="):
        settings_from_env({"HOST": "localhost"})
    assert settings_from_env({"HOST": " ::1 "})["HOST"] == "::1"


def test_flask_run_tells_where_it_listens_and_the_debugger_pin(tmp_path: Path) -> None:
    """`make dev`: the lines a developer looks for, and no second line per request."""
    port = free_port()
    output = tmp_path / "flask-run.log"
    with open(output, "wb") as sink:
        process = start_in_own_group(
            [sys.executable, "-m", "flask", "run", "--debug", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "INFO"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        text = _wait_for(output, "Debugger PIN")
        assert f"Running on http://127.0.0.1:{port}" in text
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        text = _wait_for(output, '"event":"request"')
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    assert "GET /health HTTP/1.1" not in text  # the access line stands for it
    assert "\\u001b[" not in text  # no terminal colours inside JSON lines


def _wait_for(output: Path, marker: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace")
        if marker in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{marker!r} never appeared in:\n{text}")
