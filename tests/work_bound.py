"""A bound on the CPU time some work may take, for tests of work that must stay linear.

The bound is generous (seconds, where the linear work takes milliseconds), so a busy
machine does not make a test fail, while quadratic work on the test's input needs far
more; the profiling timer stops the work at the bound instead of waiting it out.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


class WorkBoundExceeded(Exception):
    """The work used more CPU time than its bound."""


@contextlib.contextmanager
def cpu_seconds_at_most(seconds: float) -> Iterator[None]:
    """Raise WorkBoundExceeded inside the block once it has used `seconds` of CPU."""

    def over(signum: int, frame: FrameType | None) -> None:
        raise WorkBoundExceeded(f"more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, over)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
