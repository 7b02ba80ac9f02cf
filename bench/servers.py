"""Why granian: the same service under granian and under gunicorn's threaded worker.

Run from the repository root: `.venv/bin/python -m bench.servers`. Both serve the
app that `app.served_app` builds (in-memory store, one process, the same number
of threads), pinned to one core with wrk on the other, seeded with the same 10,000
customers; each scenario runs on each server back to back. BENCH_SECONDS sets the
length of a measured run (default 10). Exit 1 on any non-2xx answer or socket error.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import procs
from bench.run import SCENARIOS, Bench, env_number, pick_cpus, show
from customers.config import SERVER_THREADS

COMPARED = ("get_one", "list_page", "mixed")


def gunicorn_command() -> list[str]:
    """gunicorn's gthread worker: one process (the in-memory store), SERVER_THREADS threads.

    gunicorn takes its address as an argument, so a shell puts PORT into it.
    """
    return [
        "sh",
        "-c",
        'exec "$0" -m gunicorn --worker-class=gthread --workers=1 --threads="$1" '
        '--bind="127.0.0.1:$PORT" "app:served_app()"',
        procs.PYTHON,
        str(SERVER_THREADS),
    ]


def main() -> int:
    server_cpu, client_cpu = pick_cpus()
    env = procs.service_env({"LOG_LEVEL": "INFO"})
    commands = {"granian": procs.service_command(), "gunicorn": gunicorn_command()}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as scratch:
        bench = Bench(env_number("BENCH_SECONDS", 10), server_cpu, client_cpu, Path(scratch))
        rates: dict[str, dict[str, float]] = {name: {} for name in commands}
        running = {
            name: procs.running(name, command, cpu=server_cpu, env=env, logs=bench.scratch)
            for name, command in commands.items()
        }
        with running["granian"] as granian, running["gunicorn"] as gunicorn:
            bench.say("seeding 10,000 customers into each server")
            ids = {server.name: bench.seed(server, 10_000) for server in (granian, gunicorn)}
            for scenario in (s for s in SCENARIOS if s.name in COMPARED):
                bench.say(scenario.name)
                for server in (gunicorn, granian):
                    result = bench.wrk(server, scenario, ids[server.name])
                    show(server.name, result)
                    rates[server.name][scenario.name] = result.rps
                    failures += result.non_2xx + result.socket_errors
    print("\nscenario      granian req/s  gunicorn gthread req/s  granian / gunicorn")
    for name in COMPARED:
        fast, slow = rates["granian"][name], rates["gunicorn"][name]
        print(f"{name:<13} {fast:>13,.0f}  {slow:>22,.0f}  {fast / slow:>18.2f}")
    if failures:
        print(f"{failures} non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
