"""How many threads the service should run requests on: the same service at several counts.

Run from the repository root: `.venv/bin/python -m bench.threads [COUNT ...]` (default
1 2 4 8 32). Each count serves the app `app.served_app` builds, behind the ASGI
bridge (in-memory store, one process, the access line on), pinned to one core with
wrk on the other, seeded with 10,000 customers; every scenario runs on every count
back to back, in rounds (BENCH_ROUNDS, default 2), so drift in the machine's load
hits all counts alike. BENCH_SECONDS sets the length of a measured run (default 5).
config.SERVER_THREADS is chosen from this table.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import procs
from bench.loadgen import WrkResult
from bench.run import SCENARIOS, Bench, env_number, pick_cpus, show

COMPARED = ("get_one", "list_page", "create", "mixed")


def served_on_threads() -> Any:
    """granian's factory: the app behind the bridge, on BENCH_THREADS threads."""
    from app import answered_in_loop, served_app
    from customers.web.asgi_bridge import WsgiOverAsgi

    app = served_app()
    return WsgiOverAsgi(
        app,
        threads=int(os.environ["BENCH_THREADS"]),
        body_limit=app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_READ_TIMEOUT"],
        in_loop=answered_in_loop(app.config),
    )


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
    server_cpu, client_cpu = pick_cpus()
    env = procs.service_env({"LOG_LEVEL": "INFO", "HOST": "127.0.0.1"})
    rounds = int(env_number("BENCH_ROUNDS", 2))
    results: dict[tuple[str, int], list[WrkResult]] = defaultdict(list)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as scratch:
        bench = Bench(env_number("BENCH_SECONDS", 5), server_cpu, client_cpu, Path(scratch))
        servers = {}
        ids = {}
        contexts = []
        try:
            for count in counts:
                context = procs.running(
                    f"threads-{count}",
                    [procs.PYTHON, "-m", "bench.threads", "--serve", str(count)],
                    cpu=server_cpu,
                    env=env,
                    logs=bench.scratch,
                )
                servers[count] = context.__enter__()
                contexts.append(context)
            bench.say("seeding 10,000 customers into each server")
            for count, server in servers.items():
                ids[count] = bench.seed(server, 10_000)
            for round_number in range(rounds):
                for scenario in (s for s in SCENARIOS if s.name in COMPARED):
                    bench.say(f"round {round_number + 1}: {scenario.name}")
                    for count, server in servers.items():
                        result = bench.wrk(server, scenario, ids[count])
                        show(f"{count} threads", result)
                        results[(scenario.name, count)].append(result)
                        failures += result.errors
        finally:
            for context in reversed(contexts):
                context.__exit__(None, None, None)
    print("\nmedian of rounds: req/s, p50 ms, p99 ms, server CPU µs per request")
    print("scenario   " + "".join(f"{f'{count} threads':>34}" for count in counts))
    for name in COMPARED:
        cells = []
        for count in counts:
            runs = results[(name, count)]
            rps = statistics.median(run.rps for run in runs)
            p50 = statistics.median(run.p50_ms for run in runs)
            p99 = statistics.median(run.p99_ms for run in runs)
            cpu = statistics.median(run.cpu_us_per_request for run in runs)
            cells.append(f"{rps:>9,.0f} {p50:>6.2f} {p99:>7.2f} {cpu:>6.0f}")
        print(f"{name:<11}" + "".join(f"{cell:>34}" for cell in cells))
    if failures:
        print(f"{failures} non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main([int(arg) for arg in sys.argv[1:]] or [1, 2, 4, 8, 32]))
