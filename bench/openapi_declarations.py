"""Operations declared on their views: our `documented` decorator against apiflask and
flask-openapi3, on what a Lambda container and a request pay, and on what they can say.

Run from the repository root: `.venv/bin/python -m bench.openapi_declarations [runs]`.
The libraries are not the service's dependencies, so they are measured in a virtualenv
of their own, `bench/.openapi-venv`: the runtime requirements (as `bench.cold_start`
uses them) plus the two libraries at the versions below, made again when either changes.

Printed:
- import: the milliseconds a fresh interpreter that has already imported the service
  (`import app`) spends importing each library, or our two modules; medians of runs that
  alternate, so that load on the machine weighs on each alike;
- request: µs per request of one GET route with a path parameter, called as WSGI, on
  Flask with `documented` (the view is returned as it is), on APIFlask with `@app.doc`,
  and on flask-openapi3 with its path model; the fastest round of any run, the kinds
  alternating (the least disturbed by other work on the machine);
- what they say: two of the served operations (`patchCustomer`, `getBusiness`)
  declared through each library's own API (models for the parameters and the body, raw
  objects for the responses, which both take as they are), and where the operation
  they put in their document differs from the one the service serves.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.cold_start import ROOT, runtime_python

VENV = ROOT / "bench" / ".openapi-venv"
LIBRARIES = ("apiflask==3.1.2", "flask-openapi3==4.3.2")


def _run(python: Path, source: str) -> str:
    return subprocess.run(
        [str(python), "-c", source],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


# --- import -----------------------------------------------------------------------------

_IMPORT = """
import time
import app
started = time.perf_counter()
import {module}
print((time.perf_counter() - started) * 1000)
"""
# customers.documented and openapi_parts are imported by `import app` itself now, so
# theirs is timed in an interpreter that has imported what they import and no more.
_OURS = """
import time
import flask, customers.web.problems
started = time.perf_counter()
import customers.documented, customers.openapi_parts
print((time.perf_counter() - started) * 1000)
"""
IMPORTS = {
    "apiflask": _IMPORT.format(module="apiflask"),
    "flask_openapi3": _IMPORT.format(module="flask_openapi3"),
    "documented": _OURS,
}


def import_costs(python: Path, runs: int) -> dict[str, tuple[float, float]]:
    for source in IMPORTS.values():
        _run(python, source)  # bytecode compiled once, as a deployed package ships it
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for _ in range(runs):
        for name, source in IMPORTS.items():
            times[name].append(float(_run(python, source).split()[-1]))
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


# --- per request ------------------------------------------------------------------------

_APPS = {
    "documented": """
from flask import Flask, Response
from customers.documented import documented
app = Flask(__name__)
@app.get("/items/<item_id>")
@documented("getItem", tag="items", summary="Get an item", description="The item.",
            responses={"200": {"description": "The item."}})
def get_item(item_id):
    return Response(b"{}", mimetype="application/json")
""",
    "apiflask": """
from apiflask import APIFlask
from flask import Response
app = APIFlask(__name__)
@app.get("/items/<item_id>")
@app.doc(summary="Get an item", operation_id="getItem", responses={200: "The item."})
def get_item(item_id):
    return Response(b"{}", mimetype="application/json")
""",
    "flask_openapi3": """
from flask import Response
from flask_openapi3 import OpenAPI
from pydantic import BaseModel
class ItemPath(BaseModel):
    item_id: str
app = OpenAPI(__name__)
@app.get("/items/<item_id>", summary="Get an item", operation_id="getItem",
         responses={200: {"description": "The item."}})
def get_item(path: ItemPath):
    return Response(b"{}", mimetype="application/json")
""",
}
_TIMED_REQUESTS = """
import time
from werkzeug.test import EnvironBuilder
{app}
environ = EnvironBuilder(path="/items/abc").get_environ()
def start_response(status, headers, exc_info=None):
    assert status.startswith("200"), status
def once():
    for _ in app(dict(environ), start_response):
        pass
for _ in range(2000):
    once()
rounds = []
for _ in range(5):
    started = time.perf_counter()
    for _ in range(2000):
        once()
    rounds.append((time.perf_counter() - started) / 2000 * 1e6)
print(min(rounds))
"""


def request_costs(python: Path, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in _APPS}
    for _ in range(runs):
        for name, source in _APPS.items():
            times[name].append(float(_run(python, _TIMED_REQUESTS.format(app=source))))
    return {name: min(values) for name, values in times.items()}


# --- what they say ----------------------------------------------------------------------

_SAID = """
import json
from typing import Optional
from flask import Response
from pydantic import BaseModel, Field
from app import create_app
from customers.schemas import BusinessId, CustomerPatch
served_app = create_app({{"TESTING": True, "SQLITE_PATH": ":memory:"}})
served = served_app.test_client().get("/openapi.json").get_json()
patch = served["paths"]["/customers/{{customerId}}"]["patch"]
patch_path = served["paths"]["/customers/{{customerId}}"]["parameters"][0]
lookup = served["paths"]["/businesses/{{businessId}}"]["get"]
lookup_path = served["paths"]["/businesses/{{businessId}}"]["parameters"][0]
if_match = patch["parameters"][0]
body = patch["requestBody"]["content"]["application/merge-patch+json"]
class CustomerPath(BaseModel):
    customer_id: str = Field(alias="customerId", min_length=1, max_length=64,
                             description=patch_path["description"])
class BusinessPath(BaseModel):
    business_id: BusinessId = Field(alias="businessId", description=lookup_path["description"])
class IfMatch(BaseModel):
    if_match: Optional[str] = Field(None, alias="If-Match", description=if_match["description"],
                                    pattern=if_match["schema"]["pattern"])
{declare}
def by_name(operation):
    # parameters keyed by where and what, so that their order does not count
    listed = operation.get("parameters", [])
    return {{**operation, "parameters": {{p["in"] + ":" + p["name"]: p for p in listed}}}}
found = []
def walk(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                found.append("missing " + path + "/" + key)
            elif key not in a:
                found.append("added " + path + "/" + key)
            else:
                walk(a[key], b[key], path + "/" + key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            walk(x, y, path + "/" + str(index))
    elif a != b:
        found.append("differs " + path)
walk(by_name(expected), by_name(made), "")
print(json.dumps(found))
"""
# Each sets `expected` (the served operation, with its path's parameters) and `made`.
_DECLARED = {
    ("apiflask", "patchCustomer"): """
from apiflask import APIFlask
app = APIFlask(__name__, title="customer-api", version="1.0.0", docs_path=None)
# its own error responses off: the service answers with problem documents
app.config.update(AUTO_404_RESPONSE=False, AUTO_VALIDATION_ERROR_RESPONSE=False)
@app.patch("/customers/<customer_id>")
@app.input(IfMatch, location="headers", arg_name="headers")
@app.input(CustomerPatch, location="json", content_type="application/merge-patch+json",
           examples=body["examples"], arg_name="patch")
@app.doc(operation_id="patchCustomer", tags=patch["tags"], summary=patch["summary"],
         description=patch["description"], security=patch["security"],
         responses=patch["responses"])
def patch_customer(customer_id, headers, patch):
    return Response(b"{}")
made = app._get_spec("json", force_update=True)["paths"]["/customers/{customer_id}"]["patch"]
expected = {**patch, "parameters": [patch_path, if_match]}
""",
    ("apiflask", "getBusiness"): """
from apiflask import APIFlask
app = APIFlask(__name__, title="customer-api", version="1.0.0", docs_path=None)
# its own error responses off: the service answers with problem documents
app.config.update(AUTO_404_RESPONSE=False, AUTO_VALIDATION_ERROR_RESPONSE=False)
@app.get("/businesses/<business_id>")
@app.doc(operation_id="getBusiness", tags=lookup["tags"], summary=lookup["summary"],
         description=lookup["description"], security=lookup["security"],
         responses=lookup["responses"])
def get_business(business_id):
    return Response(b"{}")
made = app._get_spec("json", force_update=True)["paths"]["/businesses/{business_id}"]["get"]
expected = {**lookup, "parameters": [lookup_path]}
""",
    ("flask_openapi3", "patchCustomer"): """
from flask_openapi3 import Info, OpenAPI, Tag
app = OpenAPI(__name__, info=Info(title="customer-api", version="1.0.0"))
@app.patch("/customers/<customer_id>", operation_id="patchCustomer",
           tags=[Tag(name=t) for t in patch["tags"]], summary=patch["summary"],
           description=patch["description"], security=patch["security"],
           responses=patch["responses"])
def patch_customer(path: CustomerPath, header: IfMatch, body: CustomerPatch):
    return Response(b"{}")
made = app.api_doc["paths"]["/customers/{customer_id}"]["patch"]
expected = {**patch, "parameters": [patch_path, if_match]}
""",
    ("flask_openapi3", "getBusiness"): """
from flask_openapi3 import Info, OpenAPI, Tag
app = OpenAPI(__name__, info=Info(title="customer-api", version="1.0.0"))
@app.get("/businesses/<business_id>", operation_id="getBusiness",
         tags=[Tag(name=t) for t in lookup["tags"]], summary=lookup["summary"],
         description=lookup["description"], security=lookup["security"],
         responses=lookup["responses"])
def get_business(path: BusinessPath):
    return Response(b"{}")
made = app.api_doc["paths"]["/businesses/{business_id}"]["get"]
expected = {**lookup, "parameters": [lookup_path]}
""",
}


def what_they_say(python: Path) -> dict[tuple[str, str], list[str] | str]:
    """Per library and operation, where its document differs; or why it could not say it."""
    found: dict[tuple[str, str], list[str] | str] = {}
    for (name, operation), declare in _DECLARED.items():
        try:
            source = _SAID.format(declare=declare)
            found[name, operation] = json.loads(_run(python, source).splitlines()[-1])
        except subprocess.CalledProcessError as exc:
            found[name, operation] = " / ".join(exc.stderr.strip().splitlines()[-3:])
    return found


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    python = runtime_python(VENV, LIBRARIES)
    imports = import_costs(python, runs)
    print(f"import after `import app`, {runs} fresh interpreters each, median and fastest:")
    for name, (median, fastest) in imports.items():
        print(f"  {name:16s} {median:7.1f}   {fastest:7.1f} ms")
    requests = request_costs(python, runs)
    print("one GET with a path parameter, as WSGI, fastest round:")
    for name, us in requests.items():
        extra = us - requests["documented"]
        print(f"  {name:16s} {us:7.1f} µs   (+{extra:.1f} µs over documented)")
    print("the served operations declared through each library, where its document differs:")
    for (name, operation), found in what_they_say(python).items():
        said = f"fails: {found}" if isinstance(found, str) else ", ".join(found) or "nowhere"
        print(f"  {name}, {operation}: {said}")


if __name__ == "__main__":
    main()
