"""The floor under each layer of the served service: a constant answer behind it, served alike.

    .venv/bin/python -m bench.floors

Each variant answers every request with the same 97-byte JSON body and the headers the
service sends with a customer, and does nothing else, served the way `make run` serves
the service (granian with `serving.granian_settings`, one worker) or, for the WSGI
variants, the way the bare-Flask yardstick is served (granian's WSGI interface):

- `asgi`: an ASGI app that answers at once: what granian's ASGI interface itself costs;
- `bridge`: a WSGI app behind the service's bridge (`asgi_bridge.WsgiOverAsgi`, run in
  the loop thread as the in-memory store's requests are): the bridge's share;
- `flask bridge`: a one-route Flask app behind the same bridge: the least a Flask app
  served as the service is can cost;
- `flask wsgi`: the same Flask app on granian's WSGI interface, with no bridge.

Each is pinned to one core with wrk on the other, in rounds (BENCH_ROUNDS, default 3;
BENCH_SECONDS per run, default 4), for a GET and for a POST with a 120-byte body (read
whole, as the service reads bodies). The figure is the server's CPU time per answer,
the median of the rounds; set it against `make bench`'s CPU per request for the service
and for its peers.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import loadgen, procs
from bench.run import env_number, pick_cpus

BODY = (
    b'{"id":"0190f5f2-6b9e-7c3a-9a7b-1b2c3d4e5f60","name":"Maija Meikalainen",'
    b'"email":"m@example.fi"}'
)
HEADERS = [
    ("Content-Type", "application/json"),
    ("ETag", '"1"'),
    ("X-Request-ID", "324afa79871a120dcc1cea02821b65a1"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
]
VARIANTS = ("asgi", "bridge", "flask bridge", "flask wsgi")
LOADS = {"GET": "static", "POST": "create"}  # scenarios.lua's mixes: a GET, a POST with a body


def constant_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["wsgi.input"].read()
    start_response("200 OK", [*HEADERS, ("Content-Length", str(len(BODY)))])
    return [BODY]


async def constant_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    encoded = [(name.lower().encode(), value.encode()) for name, value in HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": encoded})
    await send({"type": "http.response.body", "body": BODY})


def flask_app() -> Any:
    """One route for every path and method, answering the constant."""
    from flask import Flask, Response, request

    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def constant(path: str) -> Response:
        request.get_data()
        return Response(BODY, headers=HEADERS)

    return app


def behind_bridge(wsgi_app: Any) -> Any:
    from customers.web.asgi_bridge import WsgiOverAsgi

    return WsgiOverAsgi(
        wsgi_app,
        threads=8,
        body_limit=1 << 20,
        body_timeout=10,
        body_memory=32 << 20,
        in_loop=lambda environ: True,
    )


def bridge_app() -> Any:
    return behind_bridge(constant_wsgi)


def flask_bridge_app() -> Any:
    return behind_bridge(flask_app())


def asgi_app() -> Any:
    return constant_asgi


def serve(variant: str) -> None:
    """Serve `variant` on 127.0.0.1:PORT (run in the server's own process)."""
    from granian import Granian
    from granian.constants import Interfaces

    from customers.config import SERVER_THREADS
    from customers.serving import granian_settings

    port = int(os.environ["PORT"])
    if variant == "flask wsgi":
        Granian(
            "bench.floors:flask_app",
            factory=True,
            interface=Interfaces.WSGI,
            address="127.0.0.1",
            port=port,
            blocking_threads=SERVER_THREADS,
            log_access=False,
        ).serve()
        return
    factory = {"asgi": "asgi_app", "bridge": "bridge_app", "flask bridge": "flask_bridge_app"}
    Granian(
        f"bench.floors:{factory[variant]}",
        factory=True,
        address="127.0.0.1",
        port=port,
        **granian_settings(),
    ).serve()


def main() -> int:
    server_cpu, client_cpu = pick_cpus()
    rounds = int(env_number("BENCH_ROUNDS", 3))
    seconds = env_number("BENCH_SECONDS", 4)
    cpu: dict[tuple[str, str], list[float]] = {}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-floors-") as scratch:
        for _ in range(rounds):
            for variant in VARIANTS:
                command = [procs.PYTHON, "-m", "bench.floors", variant]
                with procs.running(
                    variant.replace(" ", "-"),
                    command,
                    cpu=server_cpu,
                    env=procs.service_env({}),
                    logs=Path(scratch),
                ) as server:
                    for method, mix in LOADS.items():
                        url = f"{server.base_url}/customers"
                        loadgen.run_wrk(url, mix, seconds=1, cpu=client_cpu, prefix="warm")
                        before = server.cpu_seconds()
                        result = loadgen.run_wrk(url, mix, seconds=seconds, cpu=client_cpu)
                        result = replace(result, cpu_seconds=server.cpu_seconds() - before)
                        cpu.setdefault((variant, method), []).append(result.cpu_us_per_request)
                        failures += result.errors
    print(f"server CPU µs per answer, median of {rounds} rounds")
    print(f"{'variant':<14}" + "".join(f"{method:>8}" for method in LOADS))
    for variant in VARIANTS:
        cells = "".join(f"{statistics.median(cpu[(variant, m)]):8.0f}" for m in LOADS)
        print(f"{variant:<14}{cells}")
    if failures:
        print(f"{failures} non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        serve(" ".join(sys.argv[1:]))
    else:
        sys.exit(main())
