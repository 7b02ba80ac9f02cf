"""Memory per customer of the served app, at one or more git revisions, measured alike.

`make bench` reports the service's memory from seeding to 100,000 customers, and that
figure also counts what the load adds once: modules imported on first use (pydantic, the
schemas and email-validator at the first write, requests at the first business lookup),
caches warmed. An app that imports less at start-up shows the same memory as growth.
Here each revision is served from a worktree of its own (the working tree for "."),
seeded with 10,000 customers, put through every scenario of `make bench`, then filled to
100,000 customers. The slope of the fill, when everything is loaded, is the memory the
customers themselves take; the whole run's slope is `make bench`'s figure. Last, the
same customers in the store alone, in a fresh process (bench.store_memory), with and
without the history entry and event of each create: what those rows themselves take.

Run from the repository root: `.venv/bin/python -m bench.memory [REV ...]` (default
"."), for example `python -m bench.memory ffa5266 .`. Every revision runs on this .venv;
BENCH_SECONDS sets each scenario's run (default 5).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import procs
from bench.report import Memory
from bench.run import SCENARIOS, SEEDED, Bench, env_number, fill, pick_cpus
from bench.store_memory import store_memory
from bench.upstream import running_register

FILLED = 100_000


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The tree to serve `revision` from: the working tree for ".", else a worktree."""
    if revision == ".":
        yield procs.ROOT
        return
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as parent:
        tree = Path(parent) / "tree"
        git = ["git", "-C", str(procs.ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)


def measure(bench: Bench, number: int, revision: str, env: dict[str, str]) -> Memory:
    """The curve of `revision` (the `number`th measured): started, seeded, after every
    scenario, filled."""
    with (
        checkout(revision) as tree,
        procs.running(
            f"service-{number}",
            procs.service_command(),
            cpu=bench.server_cpu,
            env=env,
            logs=bench.scratch,
            root=tree,
        ) as service,
    ):
        memory = Memory(empty=service.rss_mb())
        ids = bench.seed(service, SEEDED)
        memory.seeded, memory.seeded_count = service.rss_mb(), SEEDED
        for scenario in SCENARIOS:
            bench.say(f"{revision}: {scenario.name}")
            bench.wrk(service, scenario, ids)
        memory.after_load, memory.after_load_count = service.rss_mb(), bench.created[service.name]
        fill(bench, service, FILLED, memory)
        return memory


def main(revisions: list[str]) -> int:
    server_cpu, client_cpu = pick_cpus()
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch,
        running_register() as register,
    ):
        bench = Bench(env_number("BENCH_SECONDS", 5), server_cpu, client_cpu, Path(scratch))
        env = procs.service_env({"HOST": "127.0.0.1", "BUSINESS_API_URL": register.base_url})
        curves = [
            (revision, measure(bench, number, revision, env))
            for number, revision in enumerate(revisions)
        ]
    print("\nVmRSS MiB of the granian worker; MiB per 100,000 customers")
    print(
        f"{'revision':>10} {'started':>8} {'seeded':>8} {'after load':>16} {'filled':>16}"
        f" {'whole run':>10} {'fill':>6}"
    )
    for revision, curve in curves:
        print(
            f"{revision:>10} {curve.empty:8.1f} {curve.seeded:8.1f}"
            f" {curve.after_load:7.1f} @ {curve.after_load_count:6,}"
            f" {curve.full:7.1f} @ {curve.full_count:6,}"
            f" {curve.growth_per_100k:10.1f} {curve.fill_per_100k:6.1f}"
        )
    rows = {history: store_memory(FILLED - SEEDED, history=history) for history in (True, False)}
    print("\nThe store alone (this tree), MiB per 100,000 creates: VmRSS, sqlite's heap, pages")
    for history, label in ((True, "with history and events"), (False, "customers only")):
        cost = rows[history]
        pages = ", ".join(f"{table} {size:.1f}" for table, size in cost.pages.items())
        print(f"{label:>24} {cost.rss:7.1f} {cost.sqlite_heap:7.1f}  ({pages})")
    print(
        f"{'their history and events':>24} {rows[True].rss - rows[False].rss:7.1f}"
        f" {rows[True].sqlite_heap - rows[False].sqlite_heap:7.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
