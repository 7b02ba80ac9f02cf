"""How the ASGI bridge reads a body from granian's `receive`, message by message.

granian hands a body over as its bytes with `more_body` set, then an empty last message;
these feed the bridge the same messages, in the same shapes, and see what the app gets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from customers.web.asgi_bridge import WsgiOverAsgi
from customers.web.bodies import REQUEST_PROBLEM
from customers.web.problems import BadRequest, RequestTimeout

DEADLINE = 1.0


def serve(
    messages: Iterable[dict[str, Any]], headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes | Exception, float]:
    """POST through the bridge, `messages` then silence from the client: the status, the
    body the app read (or the problem it was marked with), and the seconds it took."""
    seen: list[bytes | Exception] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        problem = environ.get(REQUEST_PROBLEM)
        seen.append(problem if problem is not None else environ["wsgi.input"].read())
        start_response("400 Bad Request" if problem else "200 OK", [])
        return [b""]

    bridge = WsgiOverAsgi(
        app, threads=1, body_limit=1024, body_timeout=DEADLINE, body_memory=1 << 20
    )
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # the client sends nothing more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    started = time.monotonic()
    asyncio.run(bridge(scope, receive, send))
    return sent[0]["status"], seen[0], time.monotonic() - started


def chunk(body: bytes, *, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_body_of_its_declared_length_is_whole_without_waiting_for_the_last_message() -> None:
    status, body, took = serve([chunk(b'{"a":1}')], [(b"content-length", b"7")])
    assert (status, body) == (200, b'{"a":1}')
    assert took < DEADLINE / 2


def test_a_declared_length_in_several_messages_is_read_to_its_end() -> None:
    messages = [chunk(b'{"a"'), chunk(b":"), chunk(b"1}")]
    status, body, _ = serve(messages, [(b"content-length", b"7")])
    assert (status, body) == (200, b'{"a":1}')


def test_a_chunked_body_is_read_to_its_last_message() -> None:
    messages = [chunk(b'{"a"'), chunk(b":1}"), chunk(b"", more=False)]
    status, body, _ = serve(messages, [(b"transfer-encoding", b"chunked")])
    assert (status, body) == (200, b'{"a":1}')


def test_a_chunked_body_still_open_at_the_deadline_is_a_408() -> None:
    status, problem, took = serve([chunk(b'{"a":1}')], [(b"transfer-encoding", b"chunked")])
    assert status == 400 and isinstance(problem, RequestTimeout)
    assert took >= DEADLINE


def test_a_body_shorter_than_its_declared_length_is_a_problem() -> None:
    messages = [chunk(b'{"a":1}'), {"type": "http.disconnect"}]
    status, problem, _ = serve(messages, [(b"content-length", b"70")])
    assert status == 400 and isinstance(problem, BadRequest)
