"""The WSGI app behind granian's ASGI interface: a request takes a thread once its body is in.

granian's WSGI interface gives the app a body stream that blocks its request thread
on the socket with no deadline, so clients that send headers and then stall hold
every thread for as long as they keep their connections open. Nor can a thread give
up on such a read and leave it to another: once the app has returned, granian takes
the body's lock while holding the GIL, and the whole process freezes.

Here the event loop reads each body, at most one byte past the size limit and before
a deadline; only then does the request go to one of `threads` threads, with the body
in memory. A stalled client costs a coroutine and a socket, never a thread, and after
the deadline it gets a 408 from the app. The response is collected in the thread and
sent from the loop, so a client that reads it slowly holds no thread either.

A request whose environ `in_loop` accepts skips the pool: the loop thread runs the app itself.
The hand-off to a pool thread and back wakes two threads, each of which has to win
the GIL again, and on one core that costs about as much as answering a get from the
in-memory store. Only requests that wait on nothing outside the process may be
accepted, since while one runs the loop serves nobody else; the caller decides which
(see `app.answered_in_loop`).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from customers.web.problems import RequestTimeout

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class StalledBody(io.RawIOBase):
    """`wsgi.input` of a request whose body did not arrive in time: reading it is a 408."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        raise RequestTimeout(f"The body did not arrive within {self.deadline:g} s.")


def never(environ: dict[str, Any]) -> bool:
    """Every request to the pool."""
    return False


class WsgiOverAsgi:
    """An ASGI app (HTTP only) serving `wsgi_app` from a pool of `threads` threads, or from
    the loop thread for the requests `in_loop` accepts."""

    def __init__(
        self,
        wsgi_app: WsgiApp,
        *,
        threads: int,
        body_limit: int | None,
        body_timeout: float,
        in_loop: Callable[[dict[str, Any]], bool] = never,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.body_limit = body_limit
        self.body_timeout = body_timeout
        self.in_loop = in_loop
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"only HTTP is served, not {scope['type']!r}")
        environ = wsgi_environ(scope)
        if not await self.read_body(environ, receive):
            return  # the client left before its body ended: nothing to answer, nothing to run
        if self.in_loop(environ):
            status, headers, payload = self.run(environ)
        else:
            loop = asyncio.get_running_loop()
            status, headers, payload = await loop.run_in_executor(self.pool, self.run, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def read_body(self, environ: dict[str, Any], receive: Receive) -> bool:
        """Put the request's body into `environ`; False if the client left before its end.

        A body that ends in time goes in whole, described by its length alone, so a
        chunked request reaches the app as if sent with `Content-Length`. Reading stops
        one byte past the limit, enough for the app's 413; a `Content-Length` over the
        limit is not read at all. A body still incomplete at the deadline becomes a
        `StalledBody`.
        """
        declared = environ.get("CONTENT_LENGTH", "")
        length = int(declared) if declared.isascii() and declared.isdigit() else None
        http1 = environ["SERVER_PROTOCOL"].startswith("HTTP/1")
        if http1 and "HTTP_TRANSFER_ENCODING" not in environ:
            if not length:
                return True  # HTTP/1 without Content-Length or Transfer-Encoding: no body
            if self.body_limit is not None and length > self.body_limit:
                return True  # the app answers 413 from Content-Length alone, unread
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return False
                    chunk: bytes = message.get("body", b"")
                    chunks.append(chunk)
                    received += len(chunk)
                    if not message.get("more_body", False):
                        break
                    if self.body_limit is not None and received > self.body_limit:
                        break
        except TimeoutError:
            environ.pop("CONTENT_LENGTH", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input"] = StalledBody(self.body_timeout)
            return True
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["CONTENT_LENGTH"] = str(received)
        environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        return True

    def run(self, environ: dict[str, Any]) -> Answer:
        """Call the WSGI app, in a pool thread or the loop's; its whole answer, ready to send."""
        started: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            # Nothing is sent before the app returns, so an error page may replace the headers.
            started[:] = [(status, headers)]
            return written.append

        result = self.wsgi_app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[0]
        encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return int(status[:3]), encoded, b"".join(written)


def wsgi_environ(scope: Scope) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope, with an empty body for now.

    Paths and headers are decoded as Latin-1, as PEP 3333 asks and as granian's WSGI
    interface does. The bridge ends every body stream (`wsgi.input_terminated`).
    A header whose name holds an underscore is dropped, as gunicorn and Werkzeug's
    server do: the environ folds `_` and `-` together, so `X_API_KEY` would pass for
    `X-API-Key` past a proxy that strips the real one.
    """
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    for raw_name, raw_value in scope["headers"]:
        if b"_" in raw_name:
            continue
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        if key in environ:
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue  # the first stands, as in granian's WSGI interface
            separator = "; " if name == "COOKIE" else ","
            value = f"{environ[key]}{separator}{value}"
        environ[key] = value
    return environ
