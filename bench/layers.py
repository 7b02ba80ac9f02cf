"""What each layer of the service costs a get and a create, in process: taken out one at a time.

    .venv/bin/python -m bench.layers

`make bench` gives the served app's CPU time per request; `make profile` says which
functions it is spent in. This says what the request would cost without each layer the
peers in `make bench` lack, so that a missed target can be set against the layers that
bound it. The app is built as `bench.profile` builds it (`create_app`, 10,000 customers,
prepared environs, the access line written to /dev/null) and timed whole, then with one
layer left out, round after round (BENCH_ROUNDS, default 7) so that the machine's drift
hits every variant alike; the figure is the median. Leaving a layer out here is a
measurement only: the service keeps every one of them.

The difference between the whole app here and the served CPU time per request in
`make bench` is the server's share: granian, the ASGI bridge, the thread hops.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

from bench.profile import (
    Requests,
    WSGIApp,
    build_service,
    call_all,
    log_sink,
    per_request_us,
    seed_service,
)
from bench.run import env_number
from bench.upstream import running_register

REQUESTS = 2000
Variant = Callable[[Any], Iterator[WSGIApp]]


@contextmanager
def whole(app: Any) -> Iterator[WSGIApp]:
    yield app


@contextmanager
def without_middleware(app: Any) -> Iterator[WSGIApp]:
    """Flask's own wsgi_app: no request id, access line, security headers or whole body."""
    yield app.wsgi_app


@contextmanager
def without_email_check(app: Any) -> Iterator[WSGIApp]:
    """email-validator's check of the address (the control-character check stays)."""
    import email_validator

    checked = email_validator.validate_email
    email_validator.validate_email = lambda *args, **kwargs: None
    try:
        yield app
    finally:
        email_validator.validate_email = checked


@contextmanager
def without_history(app: Any) -> Iterator[WSGIApp]:
    """The history entry and the change event that every write adds to its transaction."""
    store = app.extensions["customer_store"]
    store._record_changes = lambda *args, **kwargs: None
    try:
        yield app
    finally:
        del store._record_changes


VARIANTS: dict[str, Variant] = {
    "whole app": whole,
    "- WSGI middleware": without_middleware,
    "- email-validator": without_email_check,
    "- history and event": without_history,
}
SCENARIOS = {"get_one": ("whole app", "- WSGI middleware"), "create": tuple(VARIANTS)}


def main() -> None:
    rounds = int(env_number("BENCH_ROUNDS", 7))
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})
    out = sys.stdout
    times: dict[tuple[str, str], list[float]] = {}
    with running_register() as register, log_sink() as sink, redirect_stdout(sink):
        app = build_service(register.base_url)
        requests = Requests(seed_service(app, 10_000, "seed"), "layers")
        for scenario in SCENARIOS:
            call_all(app, requests.build(scenario, 300))  # imports, caches
        for _ in range(rounds):
            for scenario, variants in SCENARIOS.items():
                for name in variants:
                    with VARIANTS[name](app) as variant:
                        us, statuses = per_request_us(variant, requests.build(scenario, REQUESTS))
                    if not set(statuses) <= {200, 201}:
                        sys.exit(f"{scenario}, {name}: answered {dict(statuses)}")
                    times.setdefault((scenario, name), []).append(us)
    print(f"µs per request in process, median of {rounds} rounds of {REQUESTS:,}", file=out)
    for scenario, variants in SCENARIOS.items():
        whole_us = statistics.median(times[(scenario, "whole app")])
        print(f"\n{scenario}", file=out)
        for name in variants:
            us = statistics.median(times[(scenario, name)])
            saved = "" if name == "whole app" else f"  (the layer: {whole_us - us:5.1f} µs)"
            print(f"  {name:<22} {us:7.1f}{saved}", file=out)


if __name__ == "__main__":
    main()
