"""Lambda cold start: a fresh interpreter imports `lambda_handler` and serves its first event.

Run from the repository root: `.venv/bin/python -m bench.cold_start [runs]`. Each run is
a new process (as a new Lambda container is), timed from before the first import to
the first response. The yardstick is a bare Flask app answering the same event through
apig-wsgi. Both run in a virtualenv holding only the runtime requirements, as the
Lambda package does (`bench/.runtime-venv`, made from requirements.txt less granian,
and made again when requirements.txt changes); the development `.venv` holds more,
and some of it (rich, for one) is imported when found.

The service is measured three times: with the in-memory SQLite store, the same with
OpenTelemetry traces on (OTLP over HTTP to a sink on loopback; the spans are flushed
before the handler returns, as on Lambda), and with `CUSTOMER_STORE=dynamodb` (boto3
imported, the first request a Query), against moto's server on loopback, run from
the development `.venv`. Interpreter start-up is left out
of every figure. The three kinds of run alternate, so that a machine whose load
changes during the run weighs on each alike. Printed: medians and the fastest runs
(the least disturbed by other work on the machine), their ratios, and the median of
each round's ratio.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import procs

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "tests" / "events" / "apigw_v2.json"
RUNTIME_VENV = ROOT / "bench" / ".runtime-venv"
TABLE = "cold-start"
REGION = "eu-north-1"
# moto takes any credentials; these keep the runs off whatever the machine has configured.
FAKE_CREDENTIALS = {"aws_access_key_id": "cold", "aws_secret_access_key": "start"}

# The first request of a new container: GET /customers on the HTTP API's named stage.
_TIMED = """
import json, time
started = time.perf_counter()
{imports}
event = json.load(open({event!r}))
event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /{{proxy+}}"
event["pathParameters"] = {{"proxy": "customers"}}
event["rawPath"] = event["requestContext"]["http"]["path"] = "/prod/customers"
event["requestContext"]["stage"] = "prod"
class Context:
    aws_request_id = "cold-start"
    function_name = "customer-api-cold-start"
answer = handler(event, Context())
assert answer["statusCode"] == 200, answer
print(json.dumps({{"ms": (time.perf_counter() - started) * 1000}}))
"""

SERVICE = _TIMED.format(
    imports="from customers.aws.lambda_handler import handler", event=str(EVENT)
)

BARE_FLASK = _TIMED.format(
    imports="""
from apig_wsgi import make_lambda_handler
from flask import Flask, jsonify
app = Flask(__name__)
@app.get("/prod/customers")
def customers():
    return jsonify([])
handler = make_lambda_handler(app)
""",
    event=str(EVENT),
)


def runtime_python(place: Path = RUNTIME_VENV, extra: tuple[str, ...] = ()) -> Path:
    """The interpreter of a virtualenv at `place` holding requirements.txt as the Lambda
    package installs it, plus `extra`; made (again) when either changed."""
    requirements = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        # the server for `make run` and its event loop; not on Lambda
        if not line.startswith(("granian==", "uvloop=="))
    ] + list(extra)
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    stamp = place / ".requirements.sha256"
    python = place / "bin" / "python"
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"making {place.relative_to(ROOT)} from requirements.txt ...", flush=True)
        venv.EnvBuilder(clear=True, with_pip=True).create(place)
        listed = place / "requirements.txt"
        listed.write_text("\n".join(requirements) + "\n")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(listed)], check=True)
        stamp.write_text(digest)
    return python


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's DynamoDB on loopback, with the service's table made; yields its URL."""
    port = procs.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        from customers.stores.dynamodb import DynamoStore

        client = boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=endpoint,
            **FAKE_CREDENTIALS,
        )
        for _ in range(200):
            try:
                DynamoStore(TABLE, client=client).create_table_if_missing()
                break
            except Exception:  # not listening yet
                time.sleep(0.05)
        client.close()
        yield endpoint
    finally:
        server.terminate()
        server.wait()


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint on loopback that takes every export and keeps nothing."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(python: Path, source: str, **env: str) -> float:
    environ = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "0",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    output = subprocess.run(
        [str(python), "-c", source],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    last = output.strip().splitlines()[-1]
    return float(json.loads(last)["ms"])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    python = runtime_python()
    with moto_server() as endpoint, otlp_sink() as otlp:
        dynamodb = {
            "CUSTOMER_STORE": "dynamodb",
            "DYNAMODB_TABLE": TABLE,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            **{name.upper(): value for name, value in FAKE_CREDENTIALS.items()},
        }
        kinds = {
            "sqlite": (SERVICE, {}),
            "traced": (SERVICE, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp}),
            "dynamodb": (SERVICE, dynamodb),
            "bare": (BARE_FLASK, {}),
        }
        for source, env in kinds.values():
            run(python, source, **env)  # compile bytecode once, as a deployed package ships it
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(runs):
            for name, (source, env) in kinds.items():
                times[name].append(run(python, source, **env))
    median = {name: statistics.median(values) for name, values in times.items()}
    least = {name: min(values) for name, values in times.items()}
    print(f"cold start, {runs} fresh interpreters each (import + first request),")
    print(f"runtime requirements only ({RUNTIME_VENV.relative_to(ROOT)}), runs alternating:")
    print("                                      median   fastest")
    labels = {
        "sqlite": "lambda_handler, sqlite in memory",
        "traced": "the same, traces on (OTLP)",
        "dynamodb": "lambda_handler, dynamodb (moto)",
        "bare": "bare Flask app behind apig-wsgi",
    }
    for name, label in labels.items():
        print(f"  {label:34s} {median[name]:7.1f}   {least[name]:7.1f} ms")
    for name in ("sqlite", "traced", "dynamodb"):
        # Each round's service run against the bare run beside it, so that load which
        # changes between rounds cancels out; then the median of those ratios.
        rounds = statistics.median(s / b for s, b in zip(times[name], times["bare"], strict=True))
        print(
            f"  ratio, {name:27s} {median[name] / median['bare']:7.2f}   "
            f"{least[name] / least['bare']:7.2f}   (median of the rounds' ratios {rounds:.2f})"
        )


if __name__ == "__main__":
    main()
