"""Walk the shell examples of README.md and docs/ against the real service and check every status.

    python3 e2e/readme_walk.py          # make e2e runs it

The commands are read out of the documents themselves, so a change to a document is a
change to what this walks. Each (file, section) in WALKED is walked from a clean start,
in order; a section is a `#` or `##` heading and what follows it up to the next one:

- the ports the documents use (3000 the service, 8081 the register stub, 5000 moto) are
  swapped for free loopback ports;
- a command that ends in `&` starts a helper in the background, and one that runs
  `make run` starts the service (with whatever the line sets before it); the walk waits
  until it answers. "Try it with curl" assumes `make run` in another terminal, so the
  walk starts one itself, with the register stub the README's Troubleshooting suggests;
- `export NAME=...` and `NAME=$(...)` set NAME for the commands after them;
- every `curl -i` names the status it expects in its trailing comment (`# 201`), and
  gets it; any other command must exit 0.

Everything a section started is stopped when it ends. Standard library only.

Not walked: what needs more than a loopback port (the shared Redis and the file under
/var/lib in docs/security.md, AWS in docs/aws.md), changes the virtualenv (`pip install .`)
or runs a long time (`flask run`, the bulk commands, Postman).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALKED = (
    ("README.md", "Try it with curl"),
    ("README.md", "Troubleshooting"),
    ("docs/security.md", "Keys, rate limits and CORS"),
    ("docs/dynamodb.md", "A local endpoint"),
)
README_PORTS = {"3000": "service", "8081": "stub", "5000": "moto"}
# What a shell that follows the README has not set: the walk starts from the defaults.
CLEARED = (
    "SQLITE_PATH",
    "API_KEYS",
    "API_KEYS_SSM_PARAMETER",
    "REQUIRE_API_KEYS",
    "RATE_LIMIT",
    "CORS_ORIGINS",
    "AWS_ENDPOINT_URL",
    "CUSTOMER_STORE",
    "BUSINESS_API_URL",
    "WORKERS",
    "PORT",
    "HOST",
)
START_TIMEOUT = 300  # `make moto` may install the development requirements first
EXPECTED = re.compile(r"^#\s*([1-5][0-9][0-9])\b")
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(\S.*)$")


def comment_of(line: str) -> str:
    """The line's trailing shell comment ('' if none): from the first unquoted ` #`."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[index:]
    return ""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def sections(document: str) -> dict[str, list[str]]:
    """The logical lines (continuations joined) of the `sh` blocks of each `#`/`##` section."""
    found: dict[str, list[str]] = {}
    title = ""
    in_block = False
    pending = ""
    for line in document.splitlines():
        if not in_block and line.startswith(("# ", "## ")):
            title = line.split(" ", 1)[1].strip()
        elif line.strip() == "```sh":
            in_block = True
        elif in_block and line.strip() == "```":
            in_block = False
        elif in_block:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            found.setdefault(title, []).append(pending + line)
            pending = ""
    return found


class Walk:
    """One section: its ports, its variables, the servers it started, what went wrong."""

    def __init__(self, title: str, logs: Path) -> None:
        self.title = title
        service, stub, moto = free_ports(3)
        self.ports = {"service": service, "stub": stub, "moto": moto}
        self.env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []
        self.failures: list[str] = []
        self.checked = 0

    def localise(self, command: str) -> str:
        """The command with the documents' ports swapped for this walk's."""
        return re.sub(
            r"\b(3000|8081|5000)\b",
            lambda m: str(self.ports[README_PORTS[m.group(1)]]),
            command,
        )

    def run(self, line: str) -> None:
        command = self.localise(line.strip())
        if not command or command.startswith("#"):
            return
        background = re.match(r"^(.*?)&\s*(#.*)?$", command)
        if background and not background.group(1).rstrip().endswith("&"):
            self.start(background.group(1), wait_for=self.ports_in(background.group(1)))
        elif re.search(r"\bmake run\b", command):
            self.start(command, wait_for=[], service=True)
        elif assignment := ASSIGNMENT.match(command):
            self.assign(assignment.group(1), command)
        else:
            self.check(command, line)

    def ports_in(self, command: str) -> list[int]:
        return [port for port in self.ports.values() if re.search(rf"\b{port}\b", command)]

    def start(self, command: str, *, wait_for: list[int], service: bool = False) -> None:
        env = dict(self.env)
        if service:
            env.update(PORT=str(self.ports["service"]), HOST="127.0.0.1")
        with open(self.logs / f"{len(self.started)}.log", "wb") as log:
            self.started.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.started[-1].poll() is not None:
                break
            ready = self.healthy() if service else all(map(self.listening, wait_for))
            if ready:
                print(f"  started  {command}")
                return
            time.sleep(0.2)
        self.failures.append(f"did not start: {command}")
        raise RuntimeError(command)

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.ports['service']}/health"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    @staticmethod
    def listening(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def assign(self, name: str, command: str) -> None:
        done = self.shell(f'{command}\nprintf %s "${name}"')
        if done.returncode != 0 or not done.stdout:
            self.failures.append(f"{command}: exit {done.returncode}, {name} empty")
            return
        self.env[name] = done.stdout.decode()
        self.checked += 1
        print(f"  set      {name}")

    def check(self, command: str, original: str) -> None:
        done = self.shell(command)
        self.checked += 1
        if not re.search(r"\bcurl\b.*\s-i\b", command):
            verdict = "ok" if done.returncode == 0 else f"exit {done.returncode}"
            if done.returncode != 0:
                self.failures.append(f"{original.strip()}: exit {done.returncode}")
            print(f"  {verdict:<8} {command[:100]}")
            return
        expected = EXPECTED.match(comment_of(original))
        if expected is None:
            self.failures.append(f"no expected status in the comment: {original.strip()}")
            return
        status_line = done.stdout.split(b"\r\n", 1)[0].decode(errors="replace")
        got = status_line.split(" ")[1] if status_line.startswith("HTTP/") else status_line
        if got != expected.group(1):
            self.failures.append(f"{original.strip()}: {got or 'no answer'}, not {expected[1]}")
        print(f"  {got:<8} {command[:100]}")

    def shell(self, command: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.failures:
            for log in sorted(self.logs.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def walk(document: str, title: str, lines: list[str], logs: Path) -> Walk:
    print(f"{document}: {title}")
    section = Walk(title, logs)
    try:
        if title == "Try it with curl":
            section.run("python3 e2e/register_stub.py 8081 &")
            section.run("BUSINESS_API_URL=http://127.0.0.1:8081 make run")
        for line in lines:
            section.run(line)
    except RuntimeError:
        pass
    finally:
        section.stop()
    return section


def main() -> int:
    failures: list[str] = []
    checked = 0
    for document, title in WALKED:
        found = sections((ROOT / document).read_text(encoding="utf-8"))
        if title not in found:
            failures.append(f"{document} has no section '{title}' with an sh block")
            continue
        with tempfile.TemporaryDirectory() as logs:
            section = walk(document, title, found[title], Path(logs))
        checked += section.checked
        failures += [f"{document}: {title}: {failure}" for failure in section.failures]
    if failures:
        print("Documentation walk FAILED:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(f"Documentation walk: {checked} commands in {len(WALKED)} sections, each as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
