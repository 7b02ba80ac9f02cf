"""The business register's stand-in (`e2e/register_stub.py`), in a thread on loopback.

No benchmark touches PRH: the service's BUSINESS_API_URL points here. The service
caches answers, so after the first lookup the stand-in is idle; its `lookups` count
shows that the cache, not the stand-in, answered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from e2e.register_stub import KNOWN_ID, RegisterStub

__all__ = ["KNOWN_ID", "RegisterStub", "running_register"]


@contextmanager
def running_register() -> Iterator[RegisterStub]:
    """The stand-in, serving in a daemon thread until the block ends."""
    server = RegisterStub()
    thread = threading.Thread(target=server.serve_forever, name="register-stand-in", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
