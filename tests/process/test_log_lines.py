"""Log lines batched off the request path: every one reaches stdout, in order, at any exit."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from customers.web import log_setup as logs
from customers.web.log_setup import LineWriter
from tests.served import ServerProcess


class FakeStdout:
    """A stdout whose binary buffer counts the writes made to it."""

    def __init__(self) -> None:
        self.buffer = CountingBuffer()


class CountingBuffer(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


def fake_stdout(monkeypatch: pytest.MonkeyPatch) -> FakeStdout:
    """Replace sys.stdout for the rest of the test (inside it: pytest resets it after set-up)."""
    fake = FakeStdout()
    monkeypatch.setattr(sys, "stdout", fake)
    return fake


@pytest.fixture
def buffered(monkeypatch: pytest.MonkeyPatch) -> Iterator[LineWriter]:
    """The process's writer replaced by a buffering one, flushed only when told."""
    writer = LineWriter()
    monkeypatch.setattr(writer, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(logs, "LINES", writer)
    writer.start_buffering()
    yield writer
    writer.stop_buffering()


def test_buffered_lines_wait_for_one_write_in_order(
    monkeypatch: pytest.MonkeyPatch, buffered: LineWriter
) -> None:
    stdout = fake_stdout(monkeypatch)
    for number in range(100):
        buffered.write(f"line {number}".encode())
    assert stdout.buffer.writes == 0
    buffered.flush()
    assert stdout.buffer.writes == 1
    assert stdout.buffer.getvalue().decode().splitlines() == [f"line {n}" for n in range(100)]


def test_an_urgent_line_is_written_at_once_after_those_before_it(
    monkeypatch: pytest.MonkeyPatch, buffered: LineWriter
) -> None:
    stdout = fake_stdout(monkeypatch)
    buffered.write(b"first")
    buffered.write(b"second", urgent=True)
    buffered.write(b"third")
    assert stdout.buffer.getvalue() == b"first\nsecond\n"
    buffered.stop_buffering()
    assert stdout.buffer.getvalue() == b"first\nsecond\nthird\n"


def test_pending_lines_are_bounded(monkeypatch: pytest.MonkeyPatch, buffered: LineWriter) -> None:
    stdout = fake_stdout(monkeypatch)
    buffered.stop_buffering()
    monkeypatch.setattr(buffered, "MAX_PENDING_BYTES", 100)
    buffered.start_buffering()
    for _ in range(10):
        buffered.write(b"x" * 9)  # ten bytes with the newline: the tenth fills the bound
    assert stdout.buffer.getvalue() == b"xxxxxxxxx\n" * 10
    buffered.write(b"y" * 95)
    buffered.write(b"z" * 10)  # does not fit beside the pending line: that one goes first
    assert stdout.buffer.getvalue() == b"xxxxxxxxx\n" * 10 + b"y" * 95 + b"\n"
    buffered.write(b"long" * 50)  # longer than the bound: written alone, after the rest
    assert stdout.buffer.getvalue().splitlines()[-2:] == [b"z" * 10, b"long" * 50]
    buffered.write(b"after")
    buffered.flush()
    assert stdout.buffer.getvalue().endswith(b"long" * 50 + b"\nafter\n")


def test_unbuffered_lines_are_written_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = fake_stdout(monkeypatch)
    writer = LineWriter()
    writer.write(b"one")
    writer.write(b"two")
    assert stdout.buffer.writes == 2
    assert stdout.buffer.getvalue() == b"one\ntwo\n"


def test_a_crashing_request_logs_its_error_and_access_line_in_order(
    monkeypatch: pytest.MonkeyPatch, buffered: LineWriter, app_settings: dict[str, Any]
) -> None:
    stdout = fake_stdout(monkeypatch)
    from app import create_app

    app: Flask = create_app({**app_settings, "PROPAGATE_EXCEPTIONS": False, "TESTING": False})
    try:

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

        client = app.test_client()
        assert client.get("/health", headers={"X-Request-ID": "before"}).status_code == 200
        app.extensions["customer_store"].get = broken
        assert client.get("/customers/x", headers={"X-Request-ID": "crash"}).status_code == 500
        # The error line went out at once, with the line before it.
        written = [json.loads(line) for line in stdout.buffer.getvalue().splitlines()]
        assert [
            (line["request_id"], line["level"]) for line in written if "request_id" in line
        ] == [
            ("before", "info"),
            ("crash", "error"),
        ]
        buffered.flush()
        written = [json.loads(line) for line in stdout.buffer.getvalue().splitlines()]
        assert written[-1]["request_id"] == "crash"
        assert (written[-1]["event"], written[-1]["status"]) == ("request", 500)
    finally:
        app.extensions["customer_store"].close()
        app.extensions["business_client"].close()


@pytest.mark.parametrize("stop", ["group", "main process"])
def test_the_served_app_writes_every_access_line_before_it_exits(tmp_path: Path, stop: str) -> None:
    """Requests, then SIGTERM at once: no line is left in the buffer, none out of order."""
    output = tmp_path / "output.log"
    server = ServerProcess({"LOG_LEVEL": "INFO"}, output=output)
    sent = [f"line-{number}" for number in range(300)]
    try:
        with requests.Session() as session:
            for number, request_id in enumerate(sent):
                headers = {"X-Request-ID": request_id}
                if number % 3:
                    answer = session.get(f"{server.url}/customers?limit=2", headers=headers)
                else:
                    answer = session.post(
                        f"{server.url}/customers",
                        json={"name": "Lined", "email": f"{request_id}@example.com"},
                        headers=headers,
                    )
                assert answer.ok
    finally:
        if stop == "group":
            # Each process gets the signal; the worker may then end before granian's main
            # process stops it, which granian counts as a failure in its exit code. What
            # this test checks is the worker's output, so its code is left aside here.
            server.stop()
        else:
            os.kill(server.process.pid, signal.SIGTERM)  # as a process manager does
            assert server.process.wait(timeout=30) == 0
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    logged = [
        record["request_id"]
        for record in records
        if record.get("event") == "request" and record["request_id"].startswith("line-")
    ]
    assert logged == sent
