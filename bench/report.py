"""The benchmark's results as markdown: the table people read and the targets it checks.

Misses against a target are reported, not fatal: only errors (non-2xx answers,
socket errors) fail the run, because a fast wrong answer is not a result.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.loadgen import CONNECTIONS, WrkResult

P99_OVER_P50 = 2.0  # the service's p99 at most this many times its p50
# The fill's slope may exceed the store alone's (the same rows, no server) by this share:
# how far two measurements of either slope differ on one machine.
MEMORY_TOLERANCE = 0.03


@dataclass(frozen=True, slots=True)
class Comparison:
    """One scenario measured on the yardstick, the peers (where they have the route) and the
    service."""

    scenario: str
    target_ratio: float
    service: WrkResult
    yardstick: WrkResult
    express: WrkResult | None = None
    express_target: float | None = None
    fastapi: WrkResult | None = None
    fastapi_target: float | None = None

    @property
    def ratio(self) -> float:
        return self.service.rps / self.yardstick.rps if self.yardstick.rps else 0.0

    @property
    def express_ratio(self) -> float | None:
        return self._ratio_to(self.express)

    @property
    def fastapi_ratio(self) -> float | None:
        return self._ratio_to(self.fastapi)

    def _ratio_to(self, peer: WrkResult | None) -> float | None:
        """The service's req/s over `peer`'s; None where the peer was not measured."""
        if peer is None or not peer.rps:
            return None
        return self.service.rps / peer.rps

    @property
    def express_cpu_ratio(self) -> float | None:
        """Express's CPU time per request over the service's: the ratio core for core.

        What req/s would be if each server had its core to itself; other load on the
        machine moves it far less than it moves req/s.
        """
        if self.express is None or not self.service.cpu_us_per_request:
            return None
        return self.express.cpu_us_per_request / self.service.cpu_us_per_request

    @property
    def tail_ok(self) -> bool:
        """p99 at most P99_OVER_P50 times p50, and below Express's p99 in the same run."""
        within = self.service.p99_ms <= P99_OVER_P50 * self.service.p50_ms
        return within and (self.express is None or self.service.p99_ms < self.express.p99_ms)

    def runs(self) -> list[tuple[str, WrkResult]]:
        """(server, result) for every server measured, yardsticks first."""
        named = [
            ("yardstick", self.yardstick),
            ("express", self.express),
            ("fastapi", self.fastapi),
            ("service", self.service),
        ]
        return [(name, run) for name, run in named if run is not None]


@dataclass(frozen=True, slots=True)
class FileStoreRun:
    """The service on a sqlite file with `workers` processes."""

    scenario: str
    workers: int
    result: WrkResult


@dataclass(slots=True)
class Memory:
    """VmRSS of the measured service's worker, in MiB, at points of its life."""

    empty: float = 0.0
    seeded: float = 0.0
    seeded_count: int = 0
    after_load: float = 0.0
    after_load_count: int = 0
    full: float = 0.0
    full_count: int = 0
    # The same creates in the store alone, MiB per 100,000 (see bench.store_memory).
    store_alone: float = 0.0

    @property
    def growth_per_100k(self) -> float:
        """From seeded to filled: the customers, and what the load added once."""
        added = self.full_count - self.seeded_count
        return (self.full - self.seeded) * 100_000 / added if added else 0.0

    @property
    def fill_per_100k(self) -> float:
        """From after the load to filled, every module imported: the customers alone."""
        added = self.full_count - self.after_load_count
        return (self.full - self.after_load) * 100_000 / added if added else 0.0


@dataclass(slots=True)
class Results:
    """Everything one run measured."""

    seconds: float
    comparisons: list[Comparison] = field(default_factory=list)
    file_store: list[FileStoreRun] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)
    startup_service: list[float] = field(default_factory=list)
    startup_yardstick: list[float] = field(default_factory=list)
    register_lookups: int = 0
    file_seeded: int = 0

    def error_count(self) -> int:
        runs = [run for c in self.comparisons for _, run in c.runs()]
        runs += [f.result for f in self.file_store]
        return sum(run.errors for run in runs)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def machine() -> str:
    """Date, architecture, cores, CPU model and the code measured, for comparing runs."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {platform.machine()} · "
        f"nproc {os.cpu_count()} · {model} · Python {platform.python_version()} · "
        f"granian {version('granian')} · commit {commit or 'unknown'}"
    )


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _against(ratio: float | None, target: float | None) -> str:
    """A ratio's target and whether it holds, or n/a."""
    if ratio is None or target is None:
        return "n/a"
    return f"≥ {target:.2f} {verdict(ratio >= target)}"


def comparison_table(comparisons: list[Comparison]) -> list[str]:
    lines = [
        "| scenario | service req/s | yardstick req/s | Express req/s | FastAPI req/s "
        "| ÷ yardstick | ÷ Express | ÷ FastAPI | ÷ Express by CPU | p50 ms | p99 ms "
        "| Express p99 ms | FastAPI p99 ms | errors | ÷ yardstick target | ÷ Express target "
        "| ÷ FastAPI target | p99 ≤ 2 p50 and < Express |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for row in comparisons:
        service, express, fastapi = row.service, row.express, row.fastapi
        lines.append(
            f"| {row.scenario} | {service.rps:,.0f} | {row.yardstick.rps:,.0f} "
            f"| {_number(express and express.rps, ',.0f')} "
            f"| {_number(fastapi and fastapi.rps, ',.0f')} | {row.ratio:.2f} "
            f"| {_number(row.express_ratio, '.2f')} | {_number(row.fastapi_ratio, '.2f')} "
            f"| {_number(row.express_cpu_ratio, '.2f')} "
            f"| {_ms(service.p50_ms)} | {_ms(service.p99_ms)} "
            f"| {_number(express and express.p99_ms, '.2f')} "
            f"| {_number(fastapi and fastapi.p99_ms, '.2f')} | {service.errors} "
            f"| ≥ {row.target_ratio:.2f} {verdict(row.ratio >= row.target_ratio)} "
            f"| {_against(row.express_ratio, row.express_target)} "
            f"| {_against(row.fastapi_ratio, row.fastapi_target)} | {verdict(row.tail_ok)} |"
        )
    return lines


def latency_table(comparisons: list[Comparison]) -> list[str]:
    lines = [
        "| scenario | server | req/s | p50 ms | p90 ms | p99 ms | max ms | p99 / p50 "
        "| CPU µs / request | non-2xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in comparisons:
        for name, run in row.runs():
            spread = run.p99_ms / run.p50_ms if run.p50_ms else 0.0
            lines.append(
                f"| {row.scenario} | {name} | {run.rps:,.0f} | {_ms(run.p50_ms)} "
                f"| {_ms(run.p90_ms)} | {_ms(run.p99_ms)} | {_ms(run.max_ms)} | {spread:.1f} "
                f"| {run.cpu_us_per_request:.0f} | {run.non_2xx} | {run.socket_errors} |"
            )
    return lines


def file_store_table(runs: list[FileStoreRun], comparisons: list[Comparison]) -> list[str]:
    in_memory = {row.scenario: row.service.rps for row in comparisons}
    lines = [
        "| scenario | WORKERS | req/s | vs in-memory | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        base = in_memory.get(run.scenario)
        versus = f"{run.result.rps / base:.2f}" if base else "n/a"
        lines.append(
            f"| {run.scenario} | {run.workers} | {run.result.rps:,.0f} | {versus} "
            f"| {_ms(run.result.p50_ms)} | {_ms(run.result.p99_ms)} | {run.result.errors} |"
        )
    return lines


def memory_holds(memory: Memory) -> bool:
    """Whether the served fill grows by no more than the store's own rows."""
    return memory.fill_per_100k <= memory.store_alone * (1 + MEMORY_TOLERANCE)


def memory_lines(memory: Memory) -> list[str]:
    growth = memory.growth_per_100k
    return [
        "| point | customers | VmRSS MiB |",
        "|---|---:|---:|",
        f"| started | 0 | {memory.empty:.1f} |",
        f"| seeded | {memory.seeded_count:,} | {memory.seeded:.1f} |",
        f"| after every scenario | ≈ {memory.after_load_count:,} | {memory.after_load:.1f} |",
        f"| filled | ≈ {memory.full_count:,} | {memory.full:.1f} |",
        "",
        f"Growth: **{growth:.1f} MiB per 100,000 customers**, from seeded to filled. It adds"
        " what is paid once: modules imported on first use, caches warmed. Counts after"
        " the load are from wrk's requests sent, so they are exact to within a few dozen.",
        "",
        f"The customers alone, the slope of the fill after the load (every module imported):"
        f" **{memory.fill_per_100k:.1f} MiB per 100,000**. The same creates in the store"
        f" alone, each customer with its history entry and event, in a fresh process with"
        f" no server: {memory.store_alone:.1f} MiB (`python -m bench.memory` splits it by"
        " table). Target: the service holds nothing per customer beyond those rows (within"
        f" {MEMORY_TOLERANCE:.0%}): {verdict(memory_holds(memory))}.",
    ]


def startup_lines(service: list[float], yardstick: list[float]) -> list[str]:
    def cell(samples: list[float]) -> str:
        runs = ", ".join(f"{s * 1000:.0f}" for s in samples)
        return f"{statistics.median(samples) * 1000:.0f} ms (runs: {runs})"

    return [
        "| server | median time to first 200 on /health |",
        "|---|---|",
        f"| service | {cell(service)} |",
        f"| yardstick | {cell(yardstick)} |",
    ]


def render(results: Results) -> str:
    """The whole report as markdown."""
    comparisons = results.comparisons
    parts = [
        "# Benchmark: service vs bare Flask, Express + better-sqlite3 and FastAPI",
        "",
        machine(),
        "",
        f"wrk, {CONNECTIONS} keep-alive connections, {results.seconds:g} s per scenario, "
        "server on one core and wrk on the other; in-memory store seeded with 10,000 "
        "customers; the four servers measured back to back, scenario by scenario. p50/p99 "
        "are the service's unless named.",
        "",
        *comparison_table(comparisons),
        "",
        "## Latency, every server",
        "",
        *latency_table(comparisons),
        "",
        f"business_cached: the register stand-in was asked {results.register_lookups} "
        "time(s) in all; every other answer came from the service's cache.",
        "",
        f"## File store (SQLITE_PATH=<temp file>, {results.file_seeded:,} customers seeded)",
        "",
        *file_store_table(results.file_store, comparisons),
        "",
        "## Memory (the measured service, in-memory store, VmRSS of its granian worker)",
        "",
        *memory_lines(results.memory),
        "",
        "## Start-up",
        "",
        *startup_lines(results.startup_service, results.startup_yardstick),
        "",
        f"Errors in all runs: **{results.error_count()}**"
        + (" (FAIL)" if results.error_count() else ""),
    ]
    return "\n".join(parts) + "\n"
