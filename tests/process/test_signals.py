"""A stop signal stops `python app.py` whoever sends it, however often, whenever it comes.

SIGTERM or SIGINT, to the main process or to its whole process group (as Ctrl-C,
`kill -- -PGID` and systemd do), once or twice, while the service starts, while it
idles, or while a request waits on the business register: the request gets its answer
(here the register never answers, so a 504), every process of the service exits, the
store is closed and the exit code is 0. Under a supervisor that forwards signals
(`timeout`), the main process gets the signal twice and the workers get it directly too.

Every case runs once on each store and worker count and once at each moment, 36 tries in
all: the hang this guards against came in a third to a half of the tries of a case, and
without customers.web.stop_signals most cases fail in every try.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from tests.served import ServerProcess, processes_tagged
from tests.upstream_samples import HeldRegister

BUSINESS_ID = "0112038-9"
DRAIN_TIMEOUT = 8  # seconds: a stop that takes longer has hung
MOMENTS = ("starting", "idle", "in flight")
STORES = ("memory", "file, 1 worker", "file, 2 workers")


@dataclass(frozen=True)
class Sender:
    """Who signals the service, and how: `kill PID`, `kill -- -PGID`, or the latter with
    the service under `timeout`, which forwards what it gets to its child and its group."""

    name: str
    to_group: bool
    supervised: bool


SENDERS = (
    Sender("pid", to_group=False, supervised=False),
    Sender("group", to_group=True, supervised=False),
    Sender("group, under timeout", to_group=True, supervised=True),
)


def wait_until_importing(tag: str) -> None:
    """Until the service imports its libraries (one is mapped from site-packages): from
    then on its own code runs. Before, the interpreter starts, with the system's defaults
    for signals: a SIGTERM ends it at once, with nothing started."""
    settled = time.monotonic() + 10
    while time.monotonic() < settled:
        for pid in processes_tagged(tag):
            try:
                if "site-packages" in Path(f"/proc/{pid}/maps").read_text():
                    return
            except OSError:  # ended meanwhile
                continue
        time.sleep(0.005)
    raise AssertionError("the service never started importing")


def store_settings(store: str, tmp_path: Path) -> dict[str, str]:
    if store == "memory":
        return {"WORKERS": "1"}
    workers = "2" if store.endswith("2 workers") else "1"
    return {"WORKERS": workers, "SQLITE_PATH": str(tmp_path / "customers.db")}


def send(server: ServerProcess, sender: Sender, stop_signal: signal.Signals) -> None:
    if sender.to_group:
        os.killpg(server.process.pid, stop_signal)
    else:
        server.process.send_signal(stop_signal)


def stop_once(
    *,
    stop_signal: signal.Signals,
    sender: Sender,
    times: int,
    store: str,
    moment: str,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    """One try, with a business register of its own that holds every lookup."""
    tmp_path.mkdir()
    with HTTPServer(host="127.0.0.1", port=0, threaded=True) as register:
        held = HeldRegister(register, hold_seconds=10)
        register.expect_request("/companies").respond_with_handler(held)
        try:
            stop_at(
                stop_signal=stop_signal,
                sender=sender,
                times=times,
                settings=store_settings(store, tmp_path),
                moment=moment,
                register_url=register.url_for("/"),
                held=held,
                tmp_path=tmp_path,
                rng=rng,
            )
        except AssertionError as failed:
            raise AssertionError(f"{store}, {moment}: {failed}") from failed
        finally:
            held.release()


def stop_at(
    *,
    stop_signal: signal.Signals,
    sender: Sender,
    times: int,
    settings: dict[str, str],
    moment: str,
    register_url: str,
    held: HeldRegister,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    """Serve with `settings`, bring the service to `moment`, signal it, check how it ended."""
    tag = f"customer-api-signal-test-{uuid.uuid4()}"
    output = tmp_path / f"{tag}.log"
    settings = {
        **settings,
        "TEST_PROCESS_TAG": tag,
        "DRAIN_TIMEOUT": str(DRAIN_TIMEOUT),
        "BODY_READ_TIMEOUT": "2",
        "BUSINESS_API_URL": register_url,
        "BUSINESS_CONNECT_TIMEOUT": "0.5",
        "BUSINESS_READ_TIMEOUT": "1",
        "BUSINESS_DEADLINE": "1",
        "BUSINESS_RETRIES": "0",
    }
    server = ServerProcess(
        settings,
        output=output,
        wrapper=("timeout", "120") if sender.supervised else (),
        healthy=moment != "starting",
    )
    answers: list[int | str] = []

    def look_up() -> None:
        try:
            answers.append(
                requests.get(f"{server.url}/businesses/{BUSINESS_ID}", timeout=30).status_code
            )
        except requests.RequestException as exc:
            answers.append(repr(exc))

    lookup = threading.Thread(target=look_up)
    try:
        # GIVEN the service at `moment`
        if moment == "starting":
            wait_until_importing(tag)
            time.sleep(rng.uniform(0.0, 1.0))  # from the imports to the first request
        elif moment == "idle":
            made = requests.post(
                f"{server.url}/customers", json={"name": "n", "email": "n@example.com"}, timeout=5
            )
            assert made.status_code == 201
            assert requests.get(f"{server.url}/customers", timeout=5).status_code == 200
        else:
            lookup.start()
            held.wait_for()

        # WHEN the signal comes, once or twice
        signalled = time.monotonic()
        send(server, sender, stop_signal)
        for _ in range(times - 1):
            time.sleep(rng.uniform(0.0, 0.1))
            send(server, sender, stop_signal)

        # THEN the request in flight gets its answer, and every process ends, with 0
        if lookup.is_alive():
            lookup.join(timeout=DRAIN_TIMEOUT + 5)
            assert answers == [504], f"the request in flight got {answers or 'no answer'}"
        try:
            code: int | None = server.process.wait(timeout=DRAIN_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - signalled
        left = processes_tagged(tag)
        log = output.read_text(errors="replace")
        assert code == 0 and not left, f"exit code {code}, left running: {left}\n{log}"
        assert took < DRAIN_TIMEOUT, f"stopped by the deadline only, after {took:.1f} s"
        if "SQLITE_PATH" in settings:  # the last connection to close removes the WAL file
            assert not Path(f"{settings['SQLITE_PATH']}-wal").exists(), "a store was left open"
    finally:
        held.release()  # before the join: a lookup still waiting gets its answer
        for pid in processes_tagged(tag):
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        if lookup.ident is not None:
            lookup.join(timeout=10)


CASES = [
    (stop_signal, sender, times)
    for stop_signal in (signal.SIGTERM, signal.SIGINT)
    for sender in SENDERS
    for times in (1, 2)
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_signal", "sender", "times"),
    CASES,
    ids=[f"{sig.name}-{sender.name}-{times}x" for sig, sender, times in CASES],
)
def test_a_stop_signal_ends_every_process_and_answers_every_request(
    stop_signal: signal.Signals, sender: Sender, times: int, tmp_path: Path
) -> None:
    case = CASES.index((stop_signal, sender, times))
    # Each store once and each moment once, the pairing turned by the case's place; the
    # three tries at once, each with a register of its own.
    with ThreadPoolExecutor(max_workers=len(STORES)) as pool:
        tries = [
            pool.submit(
                stop_once,
                stop_signal=stop_signal,
                sender=sender,
                times=times,
                store=store,
                moment=MOMENTS[(attempt + case) % len(MOMENTS)],
                tmp_path=tmp_path / f"try-{attempt}",
                rng=random.Random(20261214 + case * len(STORES) + attempt),
            )
            for attempt, store in enumerate(STORES)
        ]
    for done in tries:
        done.result()


@pytest.mark.slow
def test_a_request_that_never_finishes_holds_a_stop_no_longer_than_the_drain_time() -> None:
    # GIVEN a client that has sent half of its request's headers, and nothing since
    drain = 3
    tag = f"customer-api-signal-test-{uuid.uuid4()}"
    server = ServerProcess(
        {
            "WORKERS": "1",
            "TEST_PROCESS_TAG": tag,
            "BODY_READ_TIMEOUT": "1",
            "BUSINESS_CONNECT_TIMEOUT": "0.5",
            "BUSINESS_DEADLINE": "1",
            "DRAIN_TIMEOUT": str(drain),
        }
    )
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as stalled:
            stalled.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.3)
            # WHEN the service is told to stop
            os.killpg(server.process.pid, signal.SIGTERM)
            # THEN it ends once the drain time is up, with 0, and nothing of it is left
            code = server.process.wait(timeout=drain + 5)
    finally:
        for pid in processes_tagged(tag):
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    assert code == 0
    assert processes_tagged(tag) == []
