"""A real Redis server on loopback, started by the tests: Debian's redis-server.

`make test` installs the package when it is missing. Nothing is saved to disk
(`--save ''`, no append-only file), so a server leaves nothing behind.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.served import free_port


class RedisServer:
    """`redis-server` on a free loopback port; `stop` and `start` again on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: `make test` installs it")
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        with redis.Redis.from_url(self.url) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        self.stop()
                        raise
                    time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def keys(self) -> list[str]:
        return self.keys_at(self.url)

    @staticmethod
    def keys_at(url: str) -> list[str]:
        """Every key stored in the Redis at `url`."""
        with redis.Redis.from_url(url, decode_responses=True) as client:
            return sorted(client.keys())


@pytest.fixture(scope="session")
def redis_session_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session_server: RedisServer) -> str:
    """The session's Redis, emptied for this test: no counts carried over from another."""
    redis_session_server.flush()
    return redis_session_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and start."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()
