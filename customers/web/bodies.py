"""Request bodies: read to their end and within MAX_CONTENT_LENGTH, under every server.

Werkzeug checks a `Content-Length` against the limit before reading. A body without
one (`Transfer-Encoding: chunked`) it reads only up to the limit and takes what it
got as the whole body, so a valid prefix followed by anything passed as a complete
request. Here every body is read to its end, but never more than one byte past the
limit: a body over the limit is a 413 however it arrives, one that stops before its
end is a 400, and the app never sees part of a body as if it were all of it.

The deadline for reading a body is the server's business (see `asgi_bridge`), since
only the server can stop waiting on a socket without holding a thread. A request the
server could not read whole reaches the app with the problem it earned under
`REQUEST_PROBLEM` in its environ, and `init_app`'s hook answers with it before any
route runs: whether or not a view would have read the body, the answer is the same.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from flask import Flask, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

READ_SIZE = 64 * 1024

# The environ key under which a server leaves the problem of a request it could not read
# whole; a client's header can never name it (those are all HTTP_…).
REQUEST_PROBLEM = "customer_api.request_problem"


class WholeBody(io.RawIOBase):
    """`wsgi.input` read to its end on first use, then served from memory.

    `length` is the declared `Content-Length` (None when the body is chunked and
    the server ends the stream). Reading raises RequestEntityTooLarge when more
    than `limit` bytes arrive and ClientDisconnected when the body ends early or
    the server reports it broken.
    """

    def __init__(self, raw: IO[bytes], *, length: int | None, limit: int | None) -> None:
        super().__init__()
        self._raw = raw
        self._length = length
        self._limit = limit
        self._body: io.BytesIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._body is None:
            self._body = io.BytesIO(self._read_all())
        return self._body.readinto(buffer)

    def _read_all(self) -> bytes:
        limit = self._limit
        if self._length is not None and limit is not None and self._length > limit:
            raise RequestEntityTooLarge()
        # Past the limit, one byte more is enough to know; the rest is never read.
        wanted = self._length
        if wanted is None and limit is not None:
            wanted = limit + 1
        chunks: list[bytes] = []
        received = 0
        while wanted is None or received < wanted:
            size = READ_SIZE if wanted is None else min(READ_SIZE, wanted - received)
            try:
                chunk = self._raw.read(size)
            except (OSError, ValueError):
                raise ClientDisconnected() from None
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        if self._length is not None and received < self._length:
            raise ClientDisconnected()
        if limit is not None and received > limit:
            raise RequestEntityTooLarge()
        return b"".join(chunks)


class WholeBodyMiddleware:
    """WSGI middleware giving the app a `WholeBody` for every request that has a body.

    Without `Content-Length` or a stream the server ends (`wsgi.input_terminated`),
    a request has no body Werkzeug would read, and it is left as it is.
    """

    def __init__(self, wsgi_app: Any, *, limit: int | None) -> None:
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = get_content_length(environ)
        if length or (length is None and environ.get("wsgi.input_terminated")):
            environ["wsgi.input"] = WholeBody(
                environ["wsgi.input"], length=length, limit=self.limit
            )
        result: Iterable[bytes] = self.wsgi_app(environ, start_response)
        return result


def refuse_unread_request() -> None:
    """Answer a request the server could not read whole with its problem, on any route."""
    problem: Exception | None = request.environ.get(REQUEST_PROBLEM)
    if problem is not None:
        raise problem


def init_app(app: Flask) -> None:
    """Register the hook that answers unread requests; first, before any other work."""
    app.before_request(refuse_unread_request)
