"""Several builds of the same service, measured back to back in rounds on one core.

bench.threads and bench.loops each start one server per variant (a thread count, an
event loop), seed each with 10,000 customers, then run every scenario on every variant
in turn, in rounds (BENCH_ROUNDS, default 2), so drift in the machine's load hits all
variants alike. BENCH_SECONDS sets the length of a measured run (default 5). The table
is the median of the rounds; the server's CPU time per request is the figure other load
on a shared machine moves least.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from bench import procs
from bench.loadgen import WrkResult
from bench.run import SCENARIOS, Bench, env_number, pick_cpus, show

COMPARED = ("get_one", "list_page", "create", "mixed")


def compare(commands: dict[str, list[str]], prefix: str) -> int:
    """Serve each of `commands` (variant name to argv), measure, print; 1 on any error."""
    server_cpu, client_cpu = pick_cpus()
    env = procs.service_env({"LOG_LEVEL": "INFO", "HOST": "127.0.0.1"})
    rounds = int(env_number("BENCH_ROUNDS", 2))
    results: dict[tuple[str, str], list[WrkResult]] = defaultdict(list)
    failures = 0
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch, ExitStack() as stack:
        bench = Bench(env_number("BENCH_SECONDS", 5), server_cpu, client_cpu, Path(scratch))
        servers = {
            name: stack.enter_context(
                procs.running(name, command, cpu=server_cpu, env=env, logs=bench.scratch)
            )
            for name, command in commands.items()
        }
        bench.say("seeding 10,000 customers into each server")
        ids = {name: bench.seed(server, 10_000) for name, server in servers.items()}
        for round_number in range(rounds):
            for scenario in (s for s in SCENARIOS if s.name in COMPARED):
                bench.say(f"round {round_number + 1}: {scenario.name}")
                for name, server in servers.items():
                    result = bench.wrk(server, scenario, ids[name])
                    show(name, result)
                    results[(scenario.name, name)].append(result)
                    failures += result.errors
    print("\nmedian of rounds: req/s, p50 ms, p99 ms, server CPU µs per request")
    print("scenario   " + "".join(f"{name:>34}" for name in commands))
    for scenario_name in COMPARED:
        cells = []
        for name in commands:
            runs = results[(scenario_name, name)]
            rps = statistics.median(run.rps for run in runs)
            p50 = statistics.median(run.p50_ms for run in runs)
            p99 = statistics.median(run.p99_ms for run in runs)
            cpu = statistics.median(run.cpu_us_per_request for run in runs)
            cells.append(f"{rps:>9,.0f} {p50:>6.2f} {p99:>7.2f} {cpu:>6.0f}")
        print(f"{scenario_name:<11}" + "".join(f"{cell:>34}" for cell in cells))
    if failures:
        print(f"{failures} non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0
