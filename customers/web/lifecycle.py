"""What must run when a served process ends: the last log lines, the store's close."""

from __future__ import annotations

import atexit
import multiprocessing.util
from collections.abc import Callable


def at_exit(callback: Callable[[], object]) -> None:
    """Run `callback` when the process ends normally, a granian worker included.

    granian's workers are multiprocessing children, started by fork on Linux, and such a
    child ends with `os._exit`: handlers registered with `atexit` never run in it, while
    multiprocessing's own finalizers do. A process ending through the interpreter (the
    spawn start method, or no granian at all) runs `atexit` handlers instead; a callback
    may therefore run twice, so each is one that does nothing the second time.
    """
    atexit.register(callback)
    multiprocessing.util.Finalize(None, callback, exitpriority=0)
