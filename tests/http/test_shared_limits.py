"""Limits that hold across workers and instances (Redis), and client addresses behind proxies.

The served tests run `python app.py` (granian) against a real redis-server on loopback,
on the sqlite store or, with `--store=dynamodb`, on a fresh table in moto's server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from app import create_app
from customers.config import DEFAULTS, ConfigError
from customers.serving import check_limit_storage
from customers.web.rate_limits import FailedKeyLimit, StorageOutageLog
from tests.dynamo import file_or_table
from tests.redis_server import RedisServer
from tests.served import ROOT, ServerProcess, start_in_own_group

KEY = "shared-limit-key"
GOOD = {"Authorization": f"Bearer {KEY}"}
WRONG = {"Authorization": "Bearer guess"}


def statuses(url: str, headers: dict[str, str], count: int) -> list[int]:
    """`count` GETs of /customers, eight at a time, each on a connection of its own.

    Fresh connections arriving together are what spreads requests over the workers.
    """

    def one(_: int) -> int:
        with requests.Session() as session:
            return session.get(f"{url}/customers", headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sorted(pool.map(one, range(count)))


def serve_two_workers(
    tmp_path: Path, redis_url: str, rate: str, store_settings: dict[str, str]
) -> ServerProcess:
    """The served app in two worker processes, both with their app built.

    /health answers as soon as one worker is up; a SIGTERM that reaches the other while
    it still builds its app, before granian has set its signal handlers, is lost and
    leaves that worker waiting forever. Each worker logs `api_keys_loaded` once built.
    """
    output = tmp_path / "served.log"
    server = ServerProcess(
        {
            "WORKERS": "2",
            "API_KEYS": KEY,
            "RATE_LIMIT": rate,
            "RATE_LIMIT_STORAGE_URI": redis_url,
            "LOG_LEVEL": "INFO",
            **file_or_table(store_settings, tmp_path / "customers.db"),
        },
        output=output,
    )
    deadline = time.monotonic() + 30
    while output.read_text().count('"api_keys_loaded"') < 2:
        if time.monotonic() > deadline:
            server.kill_hard()
            raise AssertionError("the second worker did not start")
        time.sleep(0.05)
    time.sleep(0.2)  # from building the app to granian's signal handlers: a few statements
    return server


def test_two_workers_enforce_one_limit(
    tmp_path: Path, redis_url: str, store_settings: dict[str, str]
) -> None:
    # GIVEN two worker processes sharing Redis, 6 requests a minute per key
    server = serve_two_workers(tmp_path, redis_url, "6/minute", store_settings)
    try:
        # WHEN 24 requests with the key arrive at once
        answered = statuses(server.url, GOOD, 24)
    finally:
        assert server.stop() == 0
    # THEN 6 pass in all, not 6 per worker
    assert answered == [200] * 6 + [429] * 18


def test_two_instances_enforce_one_limit(redis_url: str, store_settings: dict[str, str]) -> None:
    settings = {
        "WORKERS": "1",
        "API_KEYS": KEY,
        "RATE_LIMIT": "4/minute",
        "RATE_LIMIT_STORAGE_URI": redis_url,
        **store_settings,
    }
    first, second = ServerProcess(settings), ServerProcess(settings)
    try:
        with requests.Session() as session:
            answered = [
                session.get(f"{server.url}/customers", headers=GOOD, timeout=10)
                for server in (first, second) * 4
            ]
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    assert [r.status_code for r in answered] == [200] * 4 + [429] * 4
    assert [r.headers["RateLimit-Remaining"] for r in answered[:4]] == ["3", "2", "1", "0"]


def test_key_guessing_is_throttled_across_workers(
    tmp_path: Path, redis_url: str, store_settings: dict[str, str]
) -> None:
    server = serve_two_workers(tmp_path, redis_url, "5/minute", store_settings)
    try:
        guesses = statuses(server.url, WRONG, 20)
        with requests.Session() as session:
            valid = session.get(f"{server.url}/customers", headers=GOOD, timeout=10)
    finally:
        assert server.stop() == 0
    assert guesses == [401] * 5 + [429] * 15
    assert valid.status_code == 429  # the address is refused whatever key it sends
    # the count lives in Redis under the address, never under a key
    stored = " ".join(RedisServer.keys_at(redis_url))
    assert "failed-key" in stored and "127.0.0.1" in stored and "guess" not in stored


def test_forged_forwarded_for_is_ignored_without_trusted_proxies(
    redis_url: str, store_settings: dict[str, str]
) -> None:
    settings = {
        "WORKERS": "1",
        "API_KEYS": KEY,
        "RATE_LIMIT": "3/minute",
        "RATE_LIMIT_STORAGE_URI": redis_url,
        **store_settings,
    }
    direct = ServerProcess(settings)
    try:
        with requests.Session() as session:
            answered = [
                session.get(
                    f"{direct.url}/customers",
                    headers={**WRONG, "X-Forwarded-For": f"198.51.100.{n}"},
                    timeout=10,
                ).status_code
                for n in range(6)
            ]
    finally:
        assert direct.stop() == 0
    # every forged address is the one connection's address: one count, limited after 3
    assert answered == [401] * 3 + [429] * 3


def test_forwarded_for_is_honoured_behind_trusted_proxies(
    redis_url: str, store_settings: dict[str, str]
) -> None:
    settings = {
        "WORKERS": "1",
        "API_KEYS": KEY,
        "RATE_LIMIT": "3/minute",
        "RATE_LIMIT_STORAGE_URI": redis_url,
        "TRUSTED_PROXIES": "1",
        **store_settings,
    }
    proxied = ServerProcess(settings)
    try:
        with requests.Session() as session:

            def via_proxy(forwarded_for: str) -> int:
                headers = {**WRONG, "X-Forwarded-For": forwarded_for}
                return session.get(
                    f"{proxied.url}/customers", headers=headers, timeout=10
                ).status_code

            # six callers behind the proxy: each has its own count
            callers = [via_proxy(f"198.51.100.{n}") for n in range(6)]
            # one caller forging entries in front of what the proxy appended: still one count
            forger = [via_proxy(f"203.0.113.{n}, 192.0.2.9") for n in range(6)]
    finally:
        assert proxied.stop() == 0
    assert callers == [401] * 6
    assert forger == [401] * 3 + [429] * 3


def test_proxy_fix_applies_to_limits_in_process() -> None:
    app = create_app(
        {"TESTING": True, "API_KEYS": (KEY,), "RATE_LIMIT": "1/minute", "TRUSTED_PROXIES": 2}
    )
    client = app.test_client()
    # two proxies: the address is the one the outer proxy appended, second from the end
    first = client.get(
        "/customers", headers={**WRONG, "X-Forwarded-For": "1.1.1.1, 10.0.0.1, 10.0.0.2"}
    )
    second = client.get(
        "/customers", headers={**WRONG, "X-Forwarded-For": "2.2.2.2, 10.0.0.1, 10.0.0.2"}
    )
    other = client.get("/customers", headers={**WRONG, "X-Forwarded-For": "10.0.0.3, 10.0.0.2"})
    app.extensions["customer_store"].close()
    app.extensions["business_client"].close()
    assert [first.status_code, second.status_code, other.status_code] == [401, 429, 401]


@pytest.mark.parametrize(
    ("settings", "workers"),
    [
        ({"RATE_LIMIT": "", "RATE_LIMIT_STORAGE_URI": "memory://"}, 4),
        ({"RATE_LIMIT": "9/minute", "RATE_LIMIT_STORAGE_URI": "memory://"}, 1),
        ({"RATE_LIMIT": "9/minute", "RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}, 4),
    ],
)
def test_limit_storage_that_can_hold_the_limit_is_accepted(
    settings: dict[str, Any], workers: int
) -> None:
    check_limit_storage({**DEFAULTS, **settings}, workers)


def test_memory_limits_across_workers_are_refused_by_name() -> None:
    settings = {**DEFAULTS, "RATE_LIMIT": "9/minute"}
    with pytest.raises(ConfigError, match=r"RATE_LIMIT=9/minute.*RATE_LIMIT_STORAGE_URI=memory://"):
        check_limit_storage(settings, 2)


def test_python_app_py_refuses_memory_limits_with_two_workers(tmp_path: Path) -> None:
    process = start_in_own_group(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "SQLITE_PATH": str(tmp_path / "customers.db"),
            "WORKERS": "2",
            "RATE_LIMIT": "100/minute",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError("the service started instead of refusing") from None
    assert process.returncode != 0
    assert "RATE_LIMIT=100/minute" in stderr
    assert "RATE_LIMIT_STORAGE_URI=memory://" in stderr
    assert not (tmp_path / "customers.db").exists()  # refused before anything was served


def test_while_redis_is_down_keys_pass_guessing_stays_limited_and_one_line_is_logged(
    own_redis: RedisServer, tmp_path: Path, store_settings: dict[str, str]
) -> None:
    # GIVEN a served app counting in a Redis that then stops
    output = tmp_path / "served.log"
    server = ServerProcess(
        {
            "WORKERS": "1",
            "API_KEYS": KEY,
            "RATE_LIMIT": "3/minute",
            "RATE_LIMIT_STORAGE_URI": own_redis.url,
            "LOG_LEVEL": "INFO",
            **store_settings,
        },
        output=output,
    )
    own_redis.stop()
    try:
        with requests.Session() as session:
            # WHEN keys and guesses keep arriving
            valid = [
                session.get(f"{server.url}/customers", headers=GOOD, timeout=10).status_code
                for _ in range(5)
            ]
            guesses = [
                session.get(f"{server.url}/customers", headers=WRONG, timeout=10).status_code
                for _ in range(5)
            ]
    finally:
        assert server.stop() == 0
    # THEN both limits still count, in the process's memory, and the outage is one line
    assert valid == [200] * 3 + [429] * 2
    assert guesses == [401] * 3 + [429] * 2
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    outages = [line for line in lines if line.get("event") == "rate_limit_storage_unavailable"]
    assert len(outages) == 1
    assert outages[0]["level"] == "warning"
    assert own_redis.url not in output.read_text()
    assert not [line for line in lines if line.get("level") in ("error", "critical")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_outage_line_is_written_at_most_once_a_minute(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    outages = StorageOutageLog(clock)
    create_app({"TESTING": True}).extensions["customer_store"].close()  # JSON logging on
    capsys.readouterr()
    for step in (0, 1, 30, 59.9, 60.1, 61, 119, 121):
        clock.now = 1000.0 + step
        outages.note()
    logged = [line for line in capsys.readouterr().out.splitlines() if "rate_limit_storage" in line]
    assert len(logged) == 3  # at 0, 60.1 and 121


def test_failed_key_counts_return_to_redis_when_it_answers_again(own_redis: RedisServer) -> None:
    clock = Clock()
    limit = FailedKeyLimit("2/minute", storage_uri=own_redis.url, clock=clock)
    limit.count("192.0.2.1")
    assert own_redis.keys()  # counted in Redis
    own_redis.stop()
    limit.count("192.0.2.1")  # counted in memory while Redis is down
    own_redis.start()
    own_redis.flush()
    clock.now += FailedKeyLimit.RECHECK / 2
    limit.count("192.0.2.2")  # not retried yet: memory
    assert own_redis.keys() == []
    clock.now += FailedKeyLimit.RECHECK
    limit.count("192.0.2.2")
    limit.close()
    assert own_redis.keys()  # Redis again
