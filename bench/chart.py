"""The benchmark as a picture: req/s, p50 and p99 per scenario for the four servers.

`make bench` draws it after every run into bench/results/bench.png, which the README
shows. matplotlib is imported here only, with its file-only backend, so the rest of
the benchmark runs without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report import Comparison

CHART_NAME = "bench.png"
# The same order and colours in both panels: the yardsticks first, the service last.
SERVERS = (
    ("yardstick", "bare Flask (yardstick)", "#9e9e9e"),
    ("express", "Express 4 + better-sqlite3", "#e69f00"),
    ("fastapi", "FastAPI + uvicorn (async)", "#009e73"),
    ("service", "customer-api", "#0072b2"),
)


def draw_chart(comparisons: list[Comparison], path: Path) -> Path:
    """Two panels, scenarios side by side: req/s on top, p50 (solid) and p99 (pale) below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [row.scenario for row in comparisons]
    width = 0.8 / len(SERVERS)
    figure, (rates, latencies) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    for index, (name, label, colour) in enumerate(SERVERS):
        runs = {row.scenario: dict(row.runs()).get(name) for row in comparisons}
        xs = [n + (index - (len(SERVERS) - 1) / 2) * width for n in range(len(scenarios))]
        shown = [(x, run) for x, run in zip(xs, runs.values(), strict=True) if run is not None]
        if not shown:
            continue
        positions = [x for x, _ in shown]
        bars = rates.bar(positions, [run.rps for _, run in shown], width, label=label, color=colour)
        rates.bar_label(bars, fmt="{:,.0f}", fontsize=7, padding=2)
        latencies.bar(positions, [run.p99_ms for _, run in shown], width, color=colour, alpha=0.35)
        latencies.bar(positions, [run.p50_ms for _, run in shown], width, color=colour)
    rates.set_ylabel("requests per second")
    rates.set_title("Throughput, one core each, wrk on the other (higher is better)")
    rates.legend(loc="upper right", fontsize=8)
    latencies.set_ylabel("latency, ms")
    latencies.set_title("p50 (solid) and p99 (pale) at 32 connections (lower is better)")
    latencies.set_xticks(range(len(scenarios)), scenarios)
    for axes in (rates, latencies):
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
