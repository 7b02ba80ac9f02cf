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

Every request that reaches the app gets an answer from it. One whose body cannot be read
to its end (the client left, or its chunked framing is broken, which granian reports the
same way), did not arrive in time, holds too many headers, or would take request bodies
past `body_memory` bytes held at once, reaches the app marked with the problem it earned
(see `bodies.REQUEST_PROBLEM`): the client gets that problem with a request id and an
access line, never a bare 500 from the server.

A request whose environ `in_loop` accepts skips the pool: the loop thread runs the app itself.
The hand-off to a pool thread and back wakes two threads, each of which has to win
the GIL again, and on one core that costs about as much as answering a get from the
in-memory store. Only requests that wait on nothing outside the process may be
accepted, since while one runs the loop serves nobody else; the caller decides which
(see `app.answered_in_loop`).
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

import structlog
from werkzeug.exceptions import RequestHeaderFieldsTooLarge

from customers.web.bodies import REQUEST_PROBLEM
from customers.web.problems import BadRequest, RequestTimeout, ServiceUnavailable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

# As many header fields as granian's HTTP/1 parser takes (hyper's limit, answered with a
# 431); HTTP/2 has no count of its own, only a size, so the bridge holds it to the same.
MAX_HEADERS = 100

# The answer when the app itself fails to produce one.
CRASHED: Answer = (
    500,
    [
        (b"content-type", b"application/problem+json"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    ],
    b'{"type":"urn:customer-api:problem:internal-error","title":"Internal Server Error",'
    b'"status":500,"detail":"The server could not complete the request."}',
)

log = structlog.get_logger(__name__)

# Bytes of bodies held at once past which their memory is handed back when all are done.
TRIM_AFTER = 4 * 1024 * 1024


def release_free_memory() -> None:
    """Return the C heap's free pages to the system, where the C library can (glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


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
        body_memory: int,
        in_loop: Callable[[dict[str, Any]], bool] = never,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.body_limit = body_limit
        self.body_timeout = body_timeout
        # Bytes of request bodies held by this process at once, across every request of
        # every connection; only the loop thread changes it, so it needs no lock.
        self.body_memory = body_memory
        self.bodies_held = 0
        self.body_peak = 0
        self.in_loop = in_loop
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")
        # Refused requests (a broken or late body, too many headers) get one thread of
        # their own: thousands can end at the same deadline, and on one thread they
        # contend with the loop for the GIL as one, not as the whole pool.
        self.refusals = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refusal")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"only HTTP is served, not {scope['type']!r}")
        environ = wsgi_environ(scope)
        held = await self.read_body(environ, receive)
        try:
            if REQUEST_PROBLEM in environ:
                pool: ThreadPoolExecutor | None = self.refusals
            else:
                pool = None if self.in_loop(environ) else self.pool
            if pool is None:
                status, headers, payload = self.run(environ)
            else:
                loop = asyncio.get_running_loop()
                status, headers, payload = await loop.run_in_executor(pool, self.run, environ)
        except Exception:
            # The app renders its own errors; this is a failure around it (a middleware,
            # a header that is not Latin-1). Logged, and still answered as a problem.
            log.exception("unanswered_request", method=environ["REQUEST_METHOD"])
            status, headers, payload = CRASHED
        finally:
            self.bodies_held -= held
            if held:
                self.body_memory_returned()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def body_memory_returned(self) -> None:
        """Once no body is held after many were, hand the freed memory back to the system.

        Bodies arrive as many small chunks; freed, they leave holes in the C heap that
        the allocator keeps for reuse, so an attack's peak would stay resident after the
        attacker left. `malloc_trim` releases them (glibc only; elsewhere nothing).
        """
        if self.bodies_held == 0 and self.body_peak > TRIM_AFTER:
            self.body_peak = 0
            release_free_memory()

    async def read_body(self, environ: dict[str, Any], receive: Receive) -> int:
        """Put the request's body into `environ`; the bytes of it now held in memory.

        A body that ends in time goes in whole, described by its length alone, so a
        chunked request reaches the app as if sent with `Content-Length`. Reading stops
        one byte past the limit, enough for the app's 413; a `Content-Length` over the
        limit is not read at all. A body that breaks off, is still incomplete at the
        deadline, or would take the process past `body_memory` leaves its problem in
        the environ instead (400, 408, 503), and what was read of it is dropped.
        """
        if REQUEST_PROBLEM in environ:
            return 0  # refused on its headers; its body is never read
        declared = environ.get("CONTENT_LENGTH", "")
        length = int(declared) if declared.isascii() and declared.isdigit() else None
        http1 = environ["SERVER_PROTOCOL"].startswith("HTTP/1")
        if http1 and "HTTP_TRANSFER_ENCODING" not in environ:
            if not length:
                return 0  # HTTP/1 without Content-Length or Transfer-Encoding: no body
            if self.body_limit is not None and length > self.body_limit:
                return 0  # the app answers 413 from Content-Length alone, unread
        # A body framed by its length is whole once that many bytes are in: granian would
        # otherwise hand it over as the bytes and then an empty last chunk, a second round
        # trip through the loop that every create would wait for. (The server ends a body
        # at its declared length, and refuses one that runs past it.)
        whole_at = length if "HTTP_TRANSFER_ENCODING" not in environ else None
        chunks: list[bytes] = []
        received = 0
        problem: Exception | None = None
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        problem = BadRequest(
                            "The body broke off before its end: the connection closed, or "
                            "its framing (Transfer-Encoding, chunk sizes) could not be read."
                        )
                        break
                    chunk: bytes = message.get("body", b"")
                    if self.bodies_held + len(chunk) > self.body_memory:
                        problem = ServiceUnavailable(
                            "The server holds as many request bodies as it can; retry shortly.",
                            headers={"Retry-After": "1"},
                        )
                        break
                    self.bodies_held += len(chunk)
                    self.body_peak = max(self.body_peak, self.bodies_held)
                    chunks.append(chunk)
                    received += len(chunk)
                    if not message.get("more_body", False) or received == whole_at:
                        break
                    if self.body_limit is not None and received > self.body_limit:
                        break
        except TimeoutError:
            problem = RequestTimeout(f"The body did not arrive within {self.body_timeout:g} s.")
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        if problem is not None:
            self.bodies_held -= received
            environ.pop("CONTENT_LENGTH", None)
            environ[REQUEST_PROBLEM] = problem
            return 0
        environ["CONTENT_LENGTH"] = str(received)
        environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        return received

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
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if len(headers) > MAX_HEADERS:
        environ[REQUEST_PROBLEM] = RequestHeaderFieldsTooLarge(
            f"A request may carry at most {MAX_HEADERS} header fields."
        )
        headers = headers[:MAX_HEADERS]
    # Repeated fields are joined once all are in: joining as they come would copy the
    # value so far for each repeat, quadratic in the number of repeats.
    repeated: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        if b"_" in raw_name:
            continue
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        if key in environ:
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):  # the first of those stands,
                repeated.setdefault(key, [environ[key]]).append(value)  # as in granian's WSGI
            continue
        environ[key] = value
    for key, values in repeated.items():
        environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    return environ
