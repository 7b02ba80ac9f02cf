"""Where a request's time goes: cProfile in-process, or py-spy against the served app.

    .venv/bin/python -m bench.profile                 # cProfile, every scenario
    .venv/bin/python -m bench.profile get_one create  # cProfile, some scenarios
    .venv/bin/python -m bench.profile --py-spy mixed  # py-spy on granian's worker under wrk

cProfile mode builds the app with `create_app`, seeds 10,000 customers through the
store, and calls the WSGI app directly with prepared environs, so neither a test
client nor a socket shows up in the profile: only what the app does per request.
It first times the same requests on the service and on the yardstick without the
profiler, which says how much of the gap is the app's own work. The access log
is written, to /dev/null, because its cost is part of every request.

py-spy mode samples the real server (granian, SERVER_THREADS threads, GIL) while wrk drives
it, only threads holding the GIL (`--gil`), and sums the samples by function.
Run with `python -m`: as a script, this file would shadow the standard `profile`
module that cProfile imports.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from bench import loadgen, procs
from bench.upstream import running_register
from customers.config import CONVERTERS

RESULTS_DIR = Path(__file__).parent / "results"
SCENARIOS = ("get_one", "list_page", "create", "mixed", "business_cached")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# py-spy mode: which wrk mix and path each scenario is (as in bench/run.py).
WRK_LOADS = {
    "get_one": ("get_one", "/"),
    "list_page": ("static", "/customers?limit=50"),
    "create": ("create", "/"),
    "mixed": ("mixed", "/"),
    "business_cached": ("static", "/businesses/0112038-9"),
}


# --- requests, prepared before any clock starts ----------------------------------------


class Requests:
    """Builds WSGI environs for each scenario, with the same mix as scenarios.lua."""

    def __init__(self, ids: list[str], prefix: str) -> None:
        self.ids = ids
        self.prefix = prefix
        self.counter = 0
        self.random = random.Random(42)
        self.templates = {
            "get": EnvironBuilder(path="/customers/x").get_environ(),
            "list": EnvironBuilder(path="/customers", query_string="limit=50").get_environ(),
            "business": EnvironBuilder(path="/businesses/0112038-9").get_environ(),
            "create": EnvironBuilder(
                path="/customers", method="POST", content_type="application/json", data=b"{}"
            ).get_environ(),
        }

    def get_one(self) -> dict[str, Any]:
        path = "/customers/" + self.random.choice(self.ids)
        return {**self.templates["get"], "PATH_INFO": path, "REQUEST_URI": path}

    def list_page(self) -> dict[str, Any]:
        return dict(self.templates["list"])

    def business_cached(self) -> dict[str, Any]:
        return dict(self.templates["business"])

    def create(self) -> dict[str, Any]:
        self.counter += 1
        body = json.dumps(
            {
                "name": f"Profiled Customer {self.counter}",
                "email": f"{self.prefix}-{self.counter}@example.com",
                "phone": "+358 40 123 4567",
                "businessId": "0112038-9",
            }
        ).encode()
        return {
            **self.templates["create"],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }

    def mixed(self) -> dict[str, Any]:
        roll = self.random.random()
        if roll < 0.80:
            return self.get_one()
        return self.list_page() if roll < 0.95 else self.create()

    def build(self, scenario: str, count: int) -> list[dict[str, Any]]:
        make: Callable[[], dict[str, Any]] = getattr(self, scenario)
        return [make() for _ in range(count)]


def call_all(app: WSGIApp, environs: list[dict[str, Any]]) -> Counter[int]:
    """Call the app once per environ, the way a WSGI server does; the status counts."""
    statuses: Counter[int] = Counter()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses[int(status[:3])] += 1

    for environ in environs:
        body = app(environ, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return statuses


# --- the apps, in this process ---------------------------------------------------------


@contextmanager
def log_sink() -> Iterator[io.TextIOWrapper]:
    """/dev/null as a text stream, open for as long as the app that logs to it lives."""
    with open(os.devnull, "w") as sink:
        yield sink


def build_service(register_url: str) -> Any:
    """The service as `create_app` makes it, its settings from DEFAULTS only."""
    for name in CONVERTERS:
        os.environ.pop(name, None)
    from app import create_app

    return create_app({"BUSINESS_API_URL": register_url})


def seed_service(app: Any, count: int, prefix: str) -> list[str]:
    """Customers straight into the store (seeding is not what is profiled)."""
    store = app.extensions["customer_store"]
    return [
        store.create(
            name=f"Seeded {n}", email=f"{prefix}-{n}@example.com", phone=None, business_id=None
        ).id
        for n in range(count)
    ]


def seed_yardstick(app: WSGIApp, count: int, prefix: str) -> list[str]:
    """Customers through the yardstick's own POST (it has no store to reach into)."""
    builder = Requests([], prefix)

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("201"):
            raise RuntimeError(f"the yardstick answered a create with {status}")

    return [json.loads(b"".join(app(builder.create(), start_response)))["id"] for _ in range(count)]


def per_request_us(app: WSGIApp, environs: list[dict[str, Any]]) -> tuple[float, Counter[int]]:
    started = time.perf_counter()
    statuses = call_all(app, environs)
    return (time.perf_counter() - started) * 1e6 / len(environs), statuses


def cprofile_mode(scenarios: list[str], count: int, top: int) -> None:
    """Time each scenario on both apps, then profile it on the service and print the top."""
    from bench.yardstick import create_app as create_yardstick

    RESULTS_DIR.mkdir(exist_ok=True)
    out = sys.stdout
    # The access log writes to whatever sys.stdout is: the sink, while anything runs.
    with running_register() as register, log_sink() as sink, redirect_stdout(sink):
        service = build_service(register.base_url)
        yardstick = create_yardstick()
        service_requests = Requests(seed_service(service, 10_000, "seed"), "svc")
        yardstick_requests = Requests(seed_yardstick(yardstick, 10_000, "seed"), "yard")
        for scenario in scenarios:
            # Warm both (imports, the business cache), then time without the profiler.
            call_all(service, service_requests.build(scenario, 50))
            call_all(yardstick, yardstick_requests.build(scenario, 50))
            service_us, statuses = per_request_us(service, service_requests.build(scenario, count))
            yardstick_us, _ = per_request_us(yardstick, yardstick_requests.build(scenario, count))
            print(f"\n=== {scenario}: {count} requests, statuses {dict(statuses)}", file=out)
            print(
                f"in-process, unprofiled: service {service_us:.0f} µs/request, yardstick "
                f"{yardstick_us:.0f} µs/request (ratio {yardstick_us / service_us:.2f})",
                file=out,
            )
            profile_one(service, service_requests.build(scenario, count), scenario, top, out)


def profile_one(
    app: WSGIApp, environs: list[dict[str, Any]], scenario: str, top: int, out: Any
) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    call_all(app, environs)
    profiler.disable()
    path = RESULTS_DIR / f"profile-{scenario}.prof"
    profiler.dump_stats(path)
    for order in ("cumulative", "tottime"):
        print(f"\n--- {scenario}: top {top} by {order} (saved: {path})", file=out)
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats(order).print_stats(top)


# --- py-spy against the served app -----------------------------------------------------


def py_spy_mode(scenarios: list[str], seconds: float, top: int) -> None:
    """Serve the service pinned to a core, drive it with wrk, and sample it with py-spy."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        sys.exit("py-spy is not installed: .venv/bin/python -m pip install py-spy")
    cores = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cores[0], cores[1]) if len(cores) > 1 else (None, None)
    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch,
        running_register() as register,
    ):
        env = procs.service_env({"HOST": "127.0.0.1", "BUSINESS_API_URL": register.base_url})
        with procs.running(
            "service", procs.service_command(), cpu=server_cpu, env=env, logs=Path(scratch)
        ) as service:
            ids = loadgen.seed(service.base_url, range(10_000), prefix="seed")
            ids_file = Path(scratch) / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n", encoding="ascii")
            for number, scenario in enumerate(scenarios):
                mix, path = WRK_LOADS[scenario]
                url = service.base_url + path
                loadgen.run_wrk(
                    url, mix, seconds=1, cpu=client_cpu, ids_file=ids_file, prefix=f"warm{number}"
                )
                raw = Path(scratch) / f"{scenario}.txt"
                sampler = subprocess.Popen(
                    [
                        str(py_spy),
                        "record",
                        "--pid",
                        str(service.worker_pids()[0]),
                        "--gil",
                        "--nonblocking",
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--duration",
                        str(round(seconds)),
                        "--output",
                        str(raw),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)  # py-spy attaches before the load starts
                result = loadgen.run_wrk(
                    url,
                    mix,
                    seconds=seconds,
                    cpu=client_cpu,
                    ids_file=ids_file,
                    prefix=f"spy{number}",
                )
                sampler.wait(timeout=seconds + 30)
                print(
                    f"\n=== {scenario} under py-spy: {result.rps:,.0f} req/s (slowed by sampling)"
                )
                print_collapsed(raw, top)


def print_collapsed(path: Path, top: int) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function_of(frame) for frame in stack.split(";")[1:]]  # [0] is the thread
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        print("py-spy recorded no samples")
        return
    for title, counts in (("inclusive (cumulative)", inclusive), ("self (total time)", own)):
        print(f"\n--- top {top} by {title}, {total} samples")
        for frame, count in counts.most_common(top):
            print(f"{100 * count / total:6.1f} %  {frame}")


def _function_of(frame: str) -> str:
    """'name (path/to/file.py:123)' without the line number and the site-packages prefix."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({file.split('site-packages/')[-1]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)}")
    parser.add_argument("--requests", type=int, default=3000, help="per scenario (cProfile)")
    parser.add_argument("--top", type=int, default=25, help="functions to print per table")
    parser.add_argument("--py-spy", action="store_true", help="sample the served app instead")
    parser.add_argument("--seconds", type=float, default=10, help="per scenario (py-spy)")
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    scenarios = args.scenarios or list(SCENARIOS)
    if args.py_spy:
        py_spy_mode(scenarios, args.seconds, args.top)
    else:
        cprofile_mode(scenarios, args.requests, args.top)


if __name__ == "__main__":
    main()
