"""How many threads the service should run requests on: the same service at several counts.

Run from the repository root: `.venv/bin/python -m bench.threads [COUNT ...]` (default
1 2 4 8 32). Each count serves the app `app.served_app` builds, behind the ASGI
bridge (in-memory store, one process, the access line on), pinned to one core with
wrk on the other, seeded with 10,000 customers, and measured as bench.variants
describes. config.SERVER_THREADS is chosen from this table.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bench import procs, variants


def served_on_threads() -> Any:
    """granian's factory: the app behind the bridge, on BENCH_THREADS threads."""
    from app import served_asgi_app

    return served_asgi_app(threads=int(os.environ["BENCH_THREADS"]))


def serve(threads: int) -> None:
    """The service as customers.serving.main serves it, but on `threads` threads."""
    from granian import Granian

    from customers.serving import granian_settings

    os.environ["BENCH_THREADS"] = str(threads)
    Granian(
        "bench.threads:served_on_threads",
        factory=True,
        address="127.0.0.1",
        port=int(os.environ["PORT"]),
        workers=1,
        **granian_settings(),
    ).serve()


def main(counts: list[int]) -> int:
    commands = {
        f"{count} threads": [procs.PYTHON, "-m", "bench.threads", "--serve", str(count)]
        for count in counts
    }
    return variants.compare(commands, prefix="bench-threads-")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main([int(arg) for arg in sys.argv[1:]] or [1, 2, 4, 8, 32]))
