"""The OpenAPI document: valid 3.1, complete, true to behaviour; the docs page is self-hosted."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Customers

# Served by the service, deliberately outside the versioned contract (the words).
UNDOCUMENTED = {"/", "/openapi.json", "/docs", "/docs/init.js", "/docs/{asset}"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_documented_with_its_methods(app: Flask, document: dict[str, Any]) -> None:
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        served.setdefault(path, set()).update(methods)

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    documented = {
        shape(path): {m for m in item if m != "parameters"}
        for path, item in document["paths"].items()
    }
    for path, methods in served.items():
        if path in UNDOCUMENTED:
            continue
        assert documented.get(shape(path)) == methods, path
    assert len(documented) == len(set(map(shape, served)) - set(map(shape, UNDOCUMENTED)))


def test_every_operation_documents_its_problems(document: dict[str, Any]) -> None:
    expected = {
        ("/customers", "post"): {"201", "400", "409", "413", "415", "422"},
        ("/customers", "get"): {"200", "400"},
        ("/customers/{customerId}", "get"): {"200", "304", "404"},
        ("/customers/{customerId}", "patch"): {"200", "400", "404", "409", "412", "415"},
        ("/customers/{customerId}", "put"): {"200", "400", "404", "409", "412", "415"},
        ("/customers/{customerId}", "delete"): {"204", "404", "412"},
        ("/businesses/{businessId}", "get"): {"200", "400", "404", "502", "503", "504"},
        ("/customers/{customerId}/business", "get"): {"200", "404", "502", "503", "504"},
        ("/health", "get"): {"200", "503"},
    }
    for (path, method), statuses in expected.items():
        responses = document["paths"][path][method]["responses"]
        assert statuses <= set(responses), (path, method)
        for status, response in responses.items():
            if status[0] in "45":
                assert "application/problem+json" in response["content"], (path, status)


def test_every_unsafe_operation_takes_if_match(document: dict[str, Any]) -> None:
    operations = document["paths"]["/customers/{customerId}"]
    for method in ("patch", "put", "delete"):
        names = {parameter["name"] for parameter in operations[method].get("parameters", [])}
        assert "If-Match" in names, method
        assert "412" in operations[method]["responses"], method


class Conformance:
    """Checks an answer against the schema the document gives for its path, method, status."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:doc", resource)

    def check(self, path: str, method: str, response: Any) -> None:
        documented = self.document["paths"][path][method]["responses"]
        assert str(response.status_code) in documented, (path, method, response.status_code)
        content = documented[str(response.status_code)].get("content")
        if not content:
            assert response.data == b""
            return
        assert response.mimetype in content
        schema = _rebase(content[response.mimetype]["schema"])
        Draft202012Validator(schema, registry=self.registry).validate(response.get_json())


def _rebase(schema: Any) -> Any:
    """`schema` with local `#/components/...` references pointed into the registered document."""
    if isinstance(schema, dict):
        return {
            key: (f"urn:doc{value}" if key == "$ref" and value.startswith("#") else _rebase(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item) for item in schema]
    return schema


def test_answers_match_the_documented_schemas(
    client: FlaskClient, customers: Customers, document: dict[str, Any]
) -> None:
    conformance = Conformance(document)
    one = "/customers/{customerId}"
    created = client.post("/customers", json={"name": "A", "email": "a@example.com"})
    conformance.check("/customers", "post", created)
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    customers.create()
    conformance.check("/customers", "post", client.post("/customers", json={}))
    conformance.check("/customers", "post", client.post("/customers", data="x"))
    conformance.check(
        "/customers",
        "post",
        client.post("/customers", json={"name": "B", "email": "A@example.com"}),
    )
    conformance.check("/customers", "get", client.get("/customers?limit=1"))
    conformance.check("/customers", "get", client.get("/customers?limit=0"))
    conformance.check(one, "get", client.get(url))
    conformance.check(one, "get", client.get(url, headers={"If-None-Match": etag}))
    conformance.check(one, "get", client.get("/customers/missing"))
    conformance.check(one, "patch", client.patch(url, json={"phone": "123"}))
    conformance.check(
        one, "patch", client.patch(url, json={"name": "C"}, headers={"If-Match": etag})
    )
    conformance.check(one, "put", client.put(url, json={"name": "D", "email": "d@example.com"}))
    conformance.check(one, "delete", client.delete(url, headers={"If-Match": etag}))
    conformance.check(one, "delete", client.delete(url))
    conformance.check(one, "delete", client.delete(url))
    conformance.check("/health", "get", client.get("/health"))
    conformance.check("/businesses/{businessId}", "get", client.get("/businesses/123"))


def test_create_declares_idempotency_key_and_its_answers(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    create = document["paths"]["/customers"]["post"]
    (parameter,) = create["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "Idempotency-Key",
        "header",
        False,
    )
    assert parameter["schema"]["maxLength"] == 255
    responses = create["responses"]
    assert "Retry-After" in responses["409"]["headers"]
    for status in ("201", "400", "409", "422"):
        assert "Idempotent-Replayed" in responses[status]["headers"], status
    # and the answers are as documented
    conformance = Conformance(document)
    keyed = {"Idempotency-Key": "doc-key"}
    body = {"name": "A", "email": "a@example.com"}
    conformance.check("/customers", "post", client.post("/customers", json=body, headers=keyed))
    replay = client.post("/customers", json=body, headers=keyed)
    assert replay.headers["Idempotent-Replayed"] == "true"
    conformance.check("/customers", "post", replay)
    conformance.check("/customers", "post", client.post("/customers", json={}, headers=keyed))
    bad_key = client.post("/customers", json=body, headers={"Idempotency-Key": ""})
    conformance.check("/customers", "post", bad_key)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_docs_page_loads_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    parser = _Assets()
    parser.feed(page.get_data(as_text=True))
    assert len(parser.urls) >= 4
    types = {
        ".js": "text/javascript",
        ".css": "text/css",
        ".png": "image/png",
    }
    for url in parser.urls:
        assert url.startswith("/docs/"), url
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            assert asset.mimetype == types[url[url.rindex(".") :]], url
    assert client.get("/docs/../app.py").status_code == 404
    assert client.get("/docs/not-an-asset.js").status_code == 404
    assert "http" not in client.get("/docs/init.js").get_data(as_text=True)
