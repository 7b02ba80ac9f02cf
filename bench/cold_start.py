"""Lambda cold start: a fresh interpreter imports `lambda_handler` and serves its first event.

Run from the repository root: `.venv/bin/python -m bench.cold_start [runs]`. Each run is
a new process (as a new Lambda container is), timed from before the import to the
first response, with a bare Flask app doing the same for comparison. Interpreter
start-up itself is measured apart and left out of both. Prints medians in ms.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "tests" / "events" / "apigw_v2.json"

SERVICE = """
import json, time
started = time.perf_counter()
from customers.aws import lambda_handler
event = json.load(open({event!r}))
event["rawPath"] = event["requestContext"]["http"]["path"] = "/customers"
class Context:
    aws_request_id = "cold-start"
answer = lambda_handler.handler(event, Context())
assert answer["statusCode"] == 200, answer
print(json.dumps({{"ms": (time.perf_counter() - started) * 1000}}))
"""

BARE_FLASK = """
import json, time
started = time.perf_counter()
from flask import Flask, jsonify
app = Flask(__name__)
@app.get("/customers")
def customers():
    return jsonify([])
answer = app.test_client().get("/customers")
assert answer.status_code == 200
print(json.dumps({{"ms": (time.perf_counter() - started) * 1000}}))
"""


def run(source: str) -> float:
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "0"}
    output = subprocess.run(
        [sys.executable, "-c", source.format(event=str(EVENT))],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    last = output.strip().splitlines()[-1]
    return float(json.loads(last)["ms"])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    run(SERVICE)  # compile bytecode once, as a deployed package ships it
    service, bare = [], []
    for _ in range(runs):
        service.append(run(SERVICE))
        bare.append(run(BARE_FLASK))
    s, b = statistics.median(service), statistics.median(bare)
    print(f"cold start, median of {runs} fresh interpreters (import + first request):")
    print(f"  lambda_handler (service, sqlite in memory) {s:7.1f} ms")
    print(f"  bare Flask app                             {b:7.1f} ms")
    print(f"  ratio                                      {s / b:7.2f}")


if __name__ == "__main__":
    main()
