"""Which event loop granian should run the service on: asyncio's, uvloop and rloop.

Run from the repository root: `.venv/bin/python -m bench.loops [LOOP ...]` (default
asyncio uvloop). Each loop serves the app exactly as customers.serving.main does (the
ASGI bridge, in-memory store, one process, the access line on), with only granian's
`loop` changed, pinned to one core with wrk on the other, seeded with 10,000
customers, and measured as bench.variants describes. rloop is not in the pinned
requirements; install it into .venv to measure it.
"""

from __future__ import annotations

import os
import sys

from bench import procs, variants


def serve(loop: str) -> None:
    """The service as customers.serving.main serves it, on granian's `loop`."""
    from granian import Granian
    from granian.constants import Loops

    from customers.serving import granian_settings

    Granian(
        "app:served_asgi_app",
        factory=True,
        address="127.0.0.1",
        port=int(os.environ["PORT"]),
        workers=1,
        **{**granian_settings(), "loop": Loops(loop)},
    ).serve()


def main(loops: list[str]) -> int:
    commands = {loop: [procs.PYTHON, "-m", "bench.loops", "--serve", loop] for loop in loops}
    return variants.compare(commands, prefix="bench-loops-")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:] or ["asyncio", "uvloop"]))
