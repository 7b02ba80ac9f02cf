"""Start-up: every way of starting the service refuses what it cannot serve, and says why.

The servers and commands are started as a user starts them (`python app.py`, `make run`,
`flask run`, `flask customers …`, the installed `customer-api`, the Lambda handler's
import), as real processes on loopback ports.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
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
    assert_refused(code, output, f"customer-api: {named}=")


def assert_refused(code: int | None, output: str, start: str) -> None:
    """The way every entry point refuses what it was given: one line, exit status 2."""
    lines = output.strip().splitlines()
    assert (code, len(lines)) == (2, 1), output
    assert lines[0].startswith(start), output


FLASK = str(Path(sys.executable).parent / "flask")

# Every way of starting the service or one of its commands, as a user types it.
ENTRY_POINTS = {
    "python app.py": [sys.executable, "app.py"],
    "flask run": [FLASK, "run"],
    "flask run --debug": [FLASK, "run", "--debug"],
    "flask customers export": [FLASK, "customers", "export", "-", "--format", "jsonl"],
    "flask customers import": [FLASK, "customers", "import", "-", "--format", "jsonl"],
    "flask init-db": [FLASK, "init-db"],
    "customer-api": ["customer-api"],  # the installed script, see `installed`
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as `pip install .` installs it (no dependencies: .venv has them)."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return target


def command_of(
    entry_point: str, request: pytest.FixtureRequest
) -> tuple[list[str], dict[str, str]]:
    """The command line of `entry_point`, and what its environment needs besides."""
    if entry_point != "customer-api":
        return list(ENTRY_POINTS[entry_point]), {}
    target: Path = request.getfixturevalue("installed")
    script = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert script == {"customer-api": "customers.serving:main"}
    return [str(target / "bin" / "customer-api")], {"PYTHONPATH": str(target)}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("settings", "named"),
    [
        # Refused as the environment is read (tests/unit/test_config.py has the rest)...
        ({"CORS_ORIGINS": "https://app.example.com/"}, "CORS_ORIGINS"),
        # ... and as the store is opened.
        ({"SQLITE_PATH": "/nonexistent-directory/customers.db"}, "SQLITE_PATH"),
    ],
    ids=["origin-with-slash", "unopenable-path"],
)
def test_every_entry_point_stops_with_one_line_naming_the_setting(
    entry_point: str, settings: dict[str, str], named: str, request: pytest.FixtureRequest
) -> None:
    command, environ = command_of(entry_point, request)
    code, output = run_to_exit(command, {**settings, **environ, "PORT": str(free_port())})
    assert_refused(code, output, f"customer-api: {named}=")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"CORS_ORIGINS": "https://app.example.com/"}, "CORS_ORIGINS"),
        ({"SQLITE_PATH": "/nonexistent-directory/customers.db"}, "SQLITE_PATH"),
        ({"DYNAMODB_TABLE": "customers-prod"}, "DYNAMODB_TABLE"),
    ],
)
def test_lambda_stops_its_start_naming_the_setting(settings: dict[str, str], named: str) -> None:
    """A Lambda container imports the handler first; the runtime reports the exception
    raised there as the init error (`errorType`, `errorMessage`): the message names it."""
    code, output = run_to_exit(
        [sys.executable, "-c", "import customers.aws.lambda_handler"], settings
    )
    assert code not in (0, None)
    assert output.strip().splitlines()[-1].startswith(f"customers.config.ConfigError: {named}=")


def test_make_run_passes_the_line_on() -> None:
    """`make run` is `python app.py`; make adds its own line about the failed recipe."""
    code, output = run_to_exit(
        # -o: the virtualenv counts as installed, whatever the files' times say.
        ["make", "-s", "-o", ".venv/.run-installed", "run"],
        {"CORS_ORIGINS": "app.example.com", "PORT": str(free_port())},
    )
    assert code not in (0, None)
    assert output.splitlines()[0].startswith("customer-api: CORS_ORIGINS=")
    assert "Traceback" not in output


def test_a_host_must_be_an_ip_address() -> None:
    with pytest.raises(ConfigError, match=r"^HOST="):
        settings_from_env({"HOST": "localhost"})
    assert settings_from_env({"HOST": " ::1 "})["HOST"] == "::1"


def test_flask_run_tells_where_it_listens_and_the_debugger_pin(tmp_path: Path) -> None:
    """`make dev`: the lines a developer looks for, as Werkzeug prints them, and no second
    line per request."""
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
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        text = _wait_for(output, '"event":"request"')
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    lines = text.splitlines()
    # Werkzeug's banner as Werkzeug prints it: plain lines, not JSON strings.
    assert f" * Running on http://127.0.0.1:{port}" in lines
    assert any(line.startswith(" * Debugger PIN: ") for line in lines)
    assert "GET /health HTTP/1.1" not in text  # the access line stands for it
    assert "\x1b[" not in text  # no terminal colours in a file


def test_flask_run_shows_no_banner_above_info(tmp_path: Path) -> None:
    server = ServerProcess(
        {"LOG_LEVEL": "WARNING"}, command=[FLASK, "run"], output=tmp_path / "run.log"
    )
    try:
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        server.stop()
    text = (tmp_path / "run.log").read_text()
    assert "Running on" not in text and "development server" not in text, text


def _wait_for(output: Path, marker: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace")
        if marker in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{marker!r} never appeared in:\n{text}")


def test_customer_api_has_a_help(request: pytest.FixtureRequest) -> None:
    command, environ = command_of("customer-api", request)
    code, output = run_to_exit([*command, "--help"], environ)
    assert code == 0
    assert output.startswith("usage: customer-api")
    for flag in ("--host", "--port", "--workers", "--log-level"):
        assert flag in output


@pytest.mark.parametrize(
    ("arguments", "start"),
    [
        (["--prot", "8080"], "customer-api: unrecognized arguments: --prot 8080"),
        (["--po", "8080"], "customer-api: unrecognized arguments: --po 8080"),
        (["8080"], "customer-api: unrecognized arguments: 8080"),
        (["--port", "0"], "customer-api: argument --port: '0': must be between 1 and 65535"),
        (["--host", "localhost"], "customer-api: argument --host: 'localhost': must be an IP"),
        (["--workers", "two"], "customer-api: argument --workers: 'two': must be a whole"),
    ],
)
def test_customer_api_refuses_a_bad_argument_in_one_line(
    arguments: list[str], start: str, request: pytest.FixtureRequest
) -> None:
    command, environ = command_of("customer-api", request)
    code, output = run_to_exit([*command, *arguments], {**environ, "PORT": str(free_port())})
    assert_refused(code, output, start)


def test_customer_api_serves_where_its_arguments_say(request: pytest.FixtureRequest) -> None:
    """--port and --workers override PORT and WORKERS; the installed script, as pip makes it."""
    command, environ = command_of("customer-api", request)
    elsewhere = free_port()
    server = ServerProcess(
        {**environ, "PORT": str(elsewhere), "WORKERS": "5"},  # 5: refused in memory
        command=[*command, "--workers", "1"],
        port_argument="--port",
    )
    try:
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{elsewhere}/health", timeout=5)
    finally:
        assert server.stop() == 0


def test_flask_run_listens_on_port_as_python_app_py_does(tmp_path: Path) -> None:
    """PORT reaches `flask run` through .flaskenv; FLASK_RUN_PORT and --port come first."""
    server = ServerProcess({}, command=[FLASK, "run"], output=tmp_path / "run.log")
    try:
        assert requests.get(f"{server.url}/customers", timeout=5).status_code == 200
    finally:
        server.stop()
    assert "api_keys_off" in (tmp_path / "run.log").read_text()  # flask run serves: it warns
    preferred = free_port()
    code, output = run_to_exit(
        [FLASK, "run"], {"PORT": "0", "FLASK_RUN_PORT": str(preferred)}, timeout=5
    )
    assert_refused(code, output, "customer-api: PORT='0'")  # checked even when not used
