"""`make bench`: the service against three yardsticks, under wrk, on pinned cores.

The yardsticks: bare Flask on the same server (bench/yardstick.py), the floor of
what a Flask service can do; the seed's own stack, Express 4 on better-sqlite3
(bench/express), the service people compare this one with; and the Python peer,
the same contract in idiomatic async FastAPI on uvicorn (bench/fastapi_peer.py),
what a Python developer would pick instead.

Run from the repository root: `.venv/bin/python -m bench.run`. Environment:
BENCH_SECONDS (per measured run, default 10), BENCH_STARTUP_RUNS (default 5),
BENCH_MEMORY_CUSTOMERS (default 100000), BENCH_FILE_SEED (default 2000).

The order is chosen so that each number means one thing: start-up first, on an
idle machine; then the four servers seeded with 10,000 customers and, scenario by
scenario, the yardstick, Express, FastAPI and the service back to back (drift in the
machine hits all four); then the measured service is filled to 100,000 customers for its memory
growth; last the file store. Exit 1 on any non-2xx answer or socket error;
targets that are missed only print MISS.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import loadgen, procs
from bench.chart import CHART_NAME, draw_chart
from bench.loadgen import WrkResult
from bench.procs import Server
from bench.report import Comparison, FileStoreRun, Memory, Results, render
from bench.store_memory import store_memory
from bench.upstream import KNOWN_ID, running_register

RESULTS_DIR = Path(__file__).parent / "results"
SEEDED = 10_000
BUSINESS_ID = KNOWN_ID  # the company the register stand-in knows


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named load: which request mix of scenarios.lua, at which path, and its targets.

    `express_target` and `fastapi_target` are the service's ratios to Express and to
    the FastAPI peer it should reach; None where the peer has no such route (neither
    has a business register).
    """

    name: str
    mix: str
    path: str
    target_ratio: float
    express_target: float | None
    fastapi_target: float | None


SCENARIOS = (
    Scenario("get_one", "get_one", "/", 0.90, 0.90, 1.1),
    Scenario("list_page", "static", "/customers?limit=50", 0.75, 1.0, 1.1),
    Scenario("create", "create", "/", 0.90, 0.70, 1.0),
    Scenario("mixed", "mixed", "/", 0.90, 0.85, 1.1),
    Scenario("business_cached", "static", f"/businesses/{BUSINESS_ID}", 0.85, None, None),
)
# The peers measured beside the service, in the order they run; each has every route
# but the business register's.
PEERS = ("express", "fastapi")
FILE_STORE_SCENARIOS = ("get_one", "create")


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(slots=True)
class Bench:
    """What every step shares: cores, scratch space, unique emails, customers created."""

    seconds: float
    server_cpu: int | None
    client_cpu: int | None
    scratch: Path
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    runs: itertools.count[int] = field(default_factory=itertools.count)
    created: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def warmup(self) -> float:
        """An unmeasured second first: granian's threads spawned, the register cache filled."""
        return max(1.0, self.seconds / 10)

    def prefix(self) -> str:
        """An email prefix no other wrk run or seeding in this benchmark uses."""
        return f"b{self.token}r{next(self.runs)}"

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f} s] {message}", flush=True)

    def wrk(self, server: Server, scenario: Scenario, ids: Path | None) -> WrkResult:
        """One warm-up and one measured run of `scenario` against `server`."""
        self._run_wrk(server, scenario, ids, self.warmup)
        cpu_before = server.cpu_seconds()
        result = self._run_wrk(server, scenario, ids, self.seconds)
        result = replace(result, cpu_seconds=server.cpu_seconds() - cpu_before)
        server.check_alive()
        return result

    def _run_wrk(
        self, server: Server, scenario: Scenario, ids: Path | None, seconds: float
    ) -> WrkResult:
        result = loadgen.run_wrk(
            server.base_url + scenario.path,
            scenario.mix,
            seconds=seconds,
            cpu=self.client_cpu,
            ids_file=ids,
            prefix=self.prefix(),
        )
        self.created[server.name] += result.created
        return result

    def seed(self, server: Server, count: int) -> Path:
        """Create `count` customers; the file of their ids, for get_one and mixed."""
        ids = loadgen.seed(server.base_url, range(count), prefix=self.prefix())
        self.created[server.name] += count
        path = self.scratch / f"ids-{server.name}-{server.port}.txt"
        with path.open("a", encoding="ascii") as out:
            out.writelines(f"{customer_id}\n" for customer_id in ids)
        return path


def pick_cpus() -> tuple[int | None, int | None]:
    """(server core, client core): the first two cores this process may use."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print("one core only: running unpinned; numbers will be noisy", file=sys.stderr)
        return None, None
    return cores[0], cores[1]


def show(label: str, result: WrkResult) -> None:
    print(
        f"        {label:<28} {result.rps:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
        f"p99 {result.p99_ms:6.2f} ms  CPU {result.cpu_us_per_request:5.0f} µs/req  "
        f"non-2xx {result.non_2xx}  socket errors {result.socket_errors}",
        flush=True,
    )


def measure_startup(bench: Bench, env: dict[str, str], runs: int, results: Results) -> None:
    """Time to the first 200 on /health, yardstick and service alternating."""
    bench.say(f"start-up: {runs} runs each")
    for _ in range(runs):
        for name, command, samples in (
            ("yardstick", procs.yardstick_command(), results.startup_yardstick),
            ("service", procs.service_command(), results.startup_service),
        ):
            samples.append(
                procs.time_to_first_200(
                    name, command, cpu=bench.server_cpu, env=env, logs=bench.scratch
                )
            )


def compare(bench: Bench, env: dict[str, str], total: int, results: Results) -> None:
    """Seed the four servers, run each scenario on each back to back, then fill the service."""
    commands = {
        "yardstick": procs.yardstick_command(),
        "express": procs.express_command(),
        "fastapi": procs.fastapi_command(),
        "service": procs.service_command(),
    }
    running = {
        name: procs.running(name, command, cpu=bench.server_cpu, env=env, logs=bench.scratch)
        for name, command in commands.items()
    }
    with (
        running["yardstick"] as yardstick,
        running["express"] as express,
        running["fastapi"] as fastapi,
        running["service"] as service,
    ):
        results.memory.empty = service.rss_mb()
        servers = (yardstick, express, fastapi, service)
        bench.say(f"seeding {SEEDED:,} customers into each server")
        ids = {server.name: bench.seed(server, SEEDED) for server in servers}
        results.memory.seeded, results.memory.seeded_count = service.rss_mb(), SEEDED
        for scenario in SCENARIOS:
            bench.say(scenario.name)
            measured = {
                server.name: bench.wrk(server, scenario, ids[server.name])
                for server in servers
                if server.name not in PEERS or scenario.express_target is not None
            }
            for name, result in measured.items():
                show(name, result)
            results.comparisons.append(
                Comparison(
                    scenario.name,
                    scenario.target_ratio,
                    service=measured["service"],
                    yardstick=measured["yardstick"],
                    express=measured.get("express"),
                    express_target=scenario.express_target,
                    fastapi=measured.get("fastapi"),
                    fastapi_target=scenario.fastapi_target,
                )
            )
        results.memory.after_load = service.rss_mb()
        results.memory.after_load_count = bench.created["service"]
        fill(bench, service, total, results.memory)
    memory = results.memory
    bench.say("memory: the same creates in the store alone")
    memory.store_alone = store_memory(memory.full_count - memory.after_load_count).rss


def fill(bench: Bench, service: Server, total: int, memory: Memory) -> None:
    """Create customers until the service holds about `total`, then read its memory."""
    missing = total - bench.created[service.name]
    if missing > 0:
        bench.say(f"memory: filling the service up to {total:,} customers")
        bench.seed(service, missing)
    memory.full = service.rss_mb()
    memory.full_count = bench.created[service.name]
    bench.say(
        f"memory: {memory.seeded_count:,}: {memory.seeded:.1f} MiB, "
        f"{memory.full_count:,}: {memory.full:.1f} MiB"
    )


def file_store(bench: Bench, env: dict[str, str], seed_count: int, results: Results) -> None:
    """The service on one sqlite file (WAL, synchronous=FULL), with one and two workers."""
    database = bench.scratch / "bench.db"
    ids: Path | None = None
    by_name = {scenario.name: scenario for scenario in SCENARIOS}
    for workers in (1, 2):
        file_env = {**env, "SQLITE_PATH": str(database), "WORKERS": str(workers)}
        with procs.running(
            f"service-file-w{workers}",
            procs.service_command(),
            cpu=bench.server_cpu,
            env=file_env,
            logs=bench.scratch,
        ) as service:
            if ids is None:
                bench.say(f"file store: seeding {seed_count:,} customers")
                ids = bench.seed(service, seed_count)
                results.file_seeded = seed_count
            for name in FILE_STORE_SCENARIOS:
                bench.say(f"file store, WORKERS={workers}: {name}")
                result = bench.wrk(service, by_name[name], ids)
                show("service", result)
                results.file_store.append(FileStoreRun(name, workers, result))


def run_all(bench: Bench, results: Results) -> None:
    """Every step, with the register stand-in up throughout."""
    with running_register() as register:
        env = procs.service_env({"HOST": "127.0.0.1", "BUSINESS_API_URL": register.base_url})
        measure_startup(bench, env, int(env_number("BENCH_STARTUP_RUNS", 5)), results)
        compare(bench, env, int(env_number("BENCH_MEMORY_CUSTOMERS", 100_000)), results)
        file_store(bench, env, int(env_number("BENCH_FILE_SEED", 2000)), results)
        results.register_lookups = register.lookups


def main() -> int:
    """Run every step, print and save the report; 1 when any answer was an error."""
    seconds = env_number("BENCH_SECONDS", 10)
    server_cpu, client_cpu = pick_cpus()
    if client_cpu is not None:
        # Seeding and the register stand-in run in this process: keep them off the server's core.
        os.sched_setaffinity(0, {client_cpu})
    loadgen.ensure_wrk()
    results = Results(seconds=seconds)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        bench = Bench(seconds, server_cpu, client_cpu, Path(scratch))
        try:
            run_all(bench, results)
        except (procs.ServerError, loadgen.LoadError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        bench.say("done")
    report = render(results)
    print()
    print(report)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(report, encoding="utf-8")
    chart_path = draw_chart(results.comparisons, RESULTS_DIR / CHART_NAME)
    print(f"chart: {chart_path}")
    errors = results.error_count()
    if errors:
        print(f"FAIL: {errors} error(s) (non-2xx answers or socket errors)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
