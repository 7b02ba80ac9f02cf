"""How SIGTERM and SIGINT stop the served processes: each process acts on the first one.

A stop signal often comes more than once, and to every process of the service: Ctrl-C,
`kill -- -PGID` and systemd signal the whole process group, a supervisor such as
`timeout` forwards what it gets to the group once more, and granian's main process then
sends each worker a SIGTERM of its own. granian 2.8.7 does not survive that:

- a worker's handler hands each signal to a channel of one slot in native code
  (`WorkerSignal.set`), which is read once. A third signal blocks the worker's main
  thread there for good, holding the GIL: the requests in flight never finish, the
  worker never exits, and the main process waits for it without a deadline;
- a signal that comes while a worker starts, before it has set its own handler, runs the
  handler the worker inherited from the main process and is lost;
- the main process's handler sets a `threading.Event`. A second signal that interrupts
  the first handler inside that event's lock deadlocks the main thread, and one that
  comes while the interpreter shuts down ends the process with the signal's exit code.

So no stop signal reaches a Python handler. `python app.py` holds (blocks) SIGINT and
SIGTERM before it imports anything else; every thread it starts and every worker it
forks inherits that. In each process one thread takes them with `sigwait`, acts on the
first and drops the rest. In the main process the first asks granian to stop; granian
then sends each worker one SIGTERM and waits for it. In a worker the first goes through,
once, to the handler granian set on the worker's event loop, as soon as that loop runs;
a worker still running DRAIN_TIMEOUT seconds after its first stop signal is ended by
the kernel.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def hold() -> None:
    """Block the stop signals in this thread; the threads and processes it starts inherit that."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def held() -> bool:
    """Whether this thread holds the stop signals (in a worker: whether its parent did)."""
    return STOP_SIGNALS.issubset(signal.pthread_sigmask(signal.SIG_BLOCK, ()))


class FirstStopSignal:
    """A thread that takes the stop signals: the first runs the callbacks given to `then`,
    the later ones are taken and dropped.

    Every thread of the process must hold the stop signals (see `hold`), or one that does
    not would get them instead. The callbacks run on this thread, never in a signal
    handler, so they may take locks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._came = False
        self._callbacks: list[Callable[[], object]] = []
        threading.Thread(target=self._take, name="stop-signals", daemon=True).start()

    @property
    def came(self) -> bool:
        with self._lock:
            return self._came

    def then(self, callback: Callable[[], object]) -> None:
        """Run `callback` when the first stop signal comes, or now if it has come."""
        with self._lock:
            if not self._came:
                self._callbacks.append(callback)
                return
        callback()

    def _take(self) -> None:
        signal.sigwait(STOP_SIGNALS)
        with self._lock:
            self._came = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        while True:
            signal.sigwait(STOP_SIGNALS)


def stop_worker_once(drain_timeout: int) -> None:
    """In a granian worker whose parent held the stop signals: hand granian the first one,
    once, when the worker's event loop runs, and end the worker if it is still running
    `drain_timeout` seconds later. Anywhere else (a test, granian's own command line)
    nothing changes.

    Called while the worker loads the app: granian has made the worker's event loop but
    not yet run it, nor set its handler on it. Those come before the loop's first turn.
    The deadline is the kernel's (`alarm`: SIGALRM ends the process), so it holds
    whatever the worker's threads are doing. granian's own deadline for its workers
    (`workers_kill_timeout`) is not used: its stop and its watcher thread both wait for
    the same worker, and the one that loses the race takes a worker that exited cleanly
    for one that refused to stop and "kills" its process ID again.
    """
    if not held():
        return
    loop = asyncio.get_event_loop()

    def begin_stop() -> None:
        signal.alarm(drain_timeout)
        loop.call_soon_threadsafe(_let_one_through)

    FirstStopSignal().then(begin_stop)


def _let_one_through() -> None:
    """In the event loop's thread: one SIGTERM through to the handler granian set there.

    Raised at this thread, where it waits while held, then taken the moment it is let
    through: the interpreter notes it and wakes the loop, which calls granian's handler.
    """
    signal.raise_signal(signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
