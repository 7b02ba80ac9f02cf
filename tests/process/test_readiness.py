"""Readiness over a real server: a full disk under the database makes /health/ready 503,
and /health, the liveness check, stays 200 throughout."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.served import ServerProcess

# Small enough to fill at once, large enough for the schema and a WAL.
TMPFS_SIZE = "2m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_SIZE mounted for the test, unmounted after it.

    Mounting needs root, which the test runs have: a run that cannot mount fails here,
    since a skipped check of a full disk would say nothing.
    """
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(directory: Path) -> Path:
    """Write a file in `directory` until its filesystem has no byte left; the file."""
    filler = directory / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as sink:
        try:
            while True:
                sink.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        # The last partial block, byte by byte, until nothing fits.
        try:
            while True:
                sink.write(b"\0")
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_ready_answers_503_on_a_full_disk_and_200_once_there_is_room(small_disk: Path) -> None:
    # GIVEN the service on a database in a small filesystem
    server = ServerProcess({"SQLITE_PATH": str(small_disk / "customers.db"), "WORKERS": "1"})
    try:
        with requests.Session() as http:
            ready = http.get(f"{server.url}/health/ready", timeout=10)
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ready",
                "store": {"kind": "sqlite", "writable": True},
                "register": {"breaker": "closed"},
            }

            # WHEN the filesystem fills up
            filler = fill(small_disk)

            # THEN a write fails, readiness says why, and liveness still answers 200
            create = http.post(
                f"{server.url}/customers",
                json={"name": "Full", "email": "full@example.com"},
                timeout=10,
            )
            assert create.status_code >= 500
            not_ready = http.get(f"{server.url}/health/ready", timeout=10)
            assert not_ready.status_code == 503
            assert not_ready.headers["Content-Type"] == "application/problem+json"
            problem = not_ready.json()
            assert problem["type"] == "urn:customer-api:problem:service-unavailable"
            assert problem["detail"] == "The store cannot take a write (SQLITE_FULL)."
            assert problem["store"] == {"kind": "sqlite", "writable": False, "error": "SQLITE_FULL"}
            assert problem["register"] == {"breaker": "closed"}
            assert http.get(f"{server.url}/health", timeout=10).status_code == 200

            # WHEN there is room again, THEN it is ready again, and writes succeed
            filler.unlink()
            assert http.get(f"{server.url}/health/ready", timeout=10).status_code == 200
            assert http.get(f"{server.url}/health", timeout=10).status_code == 200
            create = http.post(
                f"{server.url}/customers",
                json={"name": "Room", "email": "room@example.com"},
                timeout=10,
            )
            assert create.status_code == 201
    finally:
        server.stop()
