"""What OpenTelemetry traces add to a get, served as `python app.py` serves it.

`.venv/bin/python -m bench.tracing_cost [requests]`: the service on one worker with
the in-memory store, traces off, then on (OTLP over HTTP to a sink on loopback, spans
sent in batches as a server sends them), alternating for three rounds. Each round
sends `requests` GETs of one customer, one after the other over one keep-alive
connection, and takes the median time of one. The cold start with traces on is
`python -m bench.cold_start`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import procs
from bench.cold_start import otlp_sink


def median_get_ms(base_url: str, count: int) -> float:
    """The median time of one GET /customers/<id> over a keep-alive session, in ms."""
    with requests.Session() as http:
        created = http.post(
            f"{base_url}/customers", json={"name": "Bench", "email": "bench@example.com"}
        )
        url = f"{base_url}/customers/{created.json()['id']}"
        for _ in range(200):  # warm up
            http.get(url)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            http.get(url)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    results: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as logs, otlp_sink() as otlp:
        kinds = {
            "off": procs.service_env({"WORKERS": "1"}),
            "on": procs.service_env({"WORKERS": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}),
        }
        for _ in range(3):
            for name, env in kinds.items():
                with procs.running(
                    f"tracing-{name}", procs.service_command(), cpu=None, env=env, logs=Path(logs)
                ) as server:
                    results[name].append(median_get_ms(server.base_url, count))
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"GET /customers/<id>, {count} sequential requests, median of 3 rounds' medians:")
    print(f"  traces off {off:6.3f} ms   on {on:6.3f} ms   added {on - off:6.3f} ms")


if __name__ == "__main__":
    main()
