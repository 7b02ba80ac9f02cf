"""A client generated from the served document does every operation with the right types.

openapi-python-client reads the document as any client generator would; the client it
writes then talks to the app on a real loopback server, with keys off and on. A gap in
the document shows here: a body sent with the wrong media type, a timestamp left a
string, the customer with its company read without it, a cursor only found
by parsing `Link`, or no way to send the key.
"""

from __future__ import annotations

import datetime
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from app import create_app
from tests.conftest import TEST_SETTINGS, LiveServer
from tests.upstream_samples import company_found_body

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "customer_api_client"
KEY = "generated-client-key"
BUSINESS_ID = "0112038-9"


def _served_document() -> dict[str, Any]:
    application = create_app(TEST_SETTINGS)
    try:
        document: dict[str, Any] = application.test_client().get("/openapi.json").get_json()
        return document
    finally:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported; generated once per module (about two seconds)."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(json.dumps(_served_document()))
    # No post-hooks: the generator would run ruff over its output, which adds nothing here.
    (root / "config.yaml").write_text("post_hooks: []\n")
    generated = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--config",
            str(root / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture(params=["keys off", "keys on"])
def keys(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return (KEY,) if request.param == "keys on" else ()


@pytest.fixture
def app_settings(httpserver: HTTPServer, keys: tuple[str, ...]) -> dict[str, Any]:
    """The app with the register stood in for on loopback, keys off or on."""
    httpserver.expect_request("/companies").respond_with_json(company_found_body(BUSINESS_ID))
    return {
        **TEST_SETTINGS,
        "BUSINESS_API_URL": httpserver.url_for("/"),
        "API_KEYS": keys,
    }


def test_a_generated_client_does_every_operation(
    api: ModuleType, live_server: LiveServer, keys: tuple[str, ...]
) -> None:
    models = _module("models")
    customers = "api.customers"
    create = _module(f"{customers}.create_customer")
    list_customers = _module(f"{customers}.list_customers")
    get = _module(f"{customers}.get_customer")
    patch = _module(f"{customers}.patch_customer")
    replace = _module(f"{customers}.replace_customer")
    delete = _module(f"{customers}.delete_customer")
    get_business = _module("api.businesses.get_business")
    get_customer_business = _module("api.businesses.get_customer_business")
    get_health = _module("api.service.get_health")

    # GIVEN the client the generator wrote, sending the key as X-API-Key when keys are on
    if keys:
        client = api.AuthenticatedClient(
            base_url=live_server.url, token=KEY, prefix="", auth_header_name="X-API-Key"
        )
        # THEN without the key, a data operation is refused with the documented problem
        anonymous = api.Client(base_url=live_server.url)
        refused = list_customers.sync_detailed(client=anonymous)
        assert refused.status_code == 401
        assert isinstance(refused.parsed, models.Problem)
        assert refused.parsed.type_ == "urn:customer-api:problem:unauthorized"
    else:
        client = api.Client(base_url=live_server.url)
    assert get_health.sync(client=client).status == "ok"

    # WHEN it creates two customers
    first = create.sync_detailed(
        client=client,
        body=models.CustomerCreate(
            name="Maija", email="maija@example.com", business_id=BUSINESS_ID
        ),
    )
    assert first.status_code == 201
    maija = first.parsed
    assert isinstance(maija, models.Customer)
    assert isinstance(maija.created_at, datetime.datetime)
    assert maija.created_at.tzinfo is not None
    assert first.headers["ETag"] == '"1"'
    matti = create.sync(
        client=client, body=models.CustomerCreate(name="Matti", email="matti@example.com")
    )
    assert isinstance(matti, models.Customer)

    # THEN it walks the list a page at a time with the Next-Cursor header
    page = list_customers.sync_detailed(client=client, limit=1)
    assert page.status_code == 200 and [c.id for c in page.parsed] == [maija.id]
    cursor = page.headers["Next-Cursor"]
    page = list_customers.sync_detailed(client=client, limit=1, cursor=cursor)
    assert [c.id for c in page.parsed] == [matti.id]
    assert "Next-Cursor" not in page.headers
    found = list_customers.sync(client=client, email="MAIJA@example.com")
    assert [c.id for c in found] == [maija.id]

    # AND gets one, plain (no `business` member) and with its company, in one shape
    plain = get.sync(maija.id, client=client)
    assert isinstance(plain, models.CustomerWithBusiness) and plain.email == "maija@example.com"
    assert isinstance(plain.business, api.types.Unset)
    rich = get.sync(maija.id, client=client, include=models.GetCustomerInclude.BUSINESS)
    assert isinstance(rich, models.CustomerWithBusiness)
    assert isinstance(rich.business, models.Business)
    assert rich.business.business_id == BUSINESS_ID
    assert isinstance(rich.business.fetched_at, datetime.datetime)
    assert rich.id == maija.id and isinstance(rich.updated_at, datetime.datetime)
    assert get_business.sync(BUSINESS_ID, client=client).business_id == BUSINESS_ID
    assert get_customer_business.sync(maija.id, client=client).business_id == BUSINESS_ID

    # AND patches it as a merge patch (null clears), replaces it, each with If-Match
    patched = patch.sync_detailed(
        maija.id,
        client=client,
        body=models.CustomerPatch(name="Maija M.", business_id=None),
        if_match='"1"',
    )
    assert patched.status_code == 200, patched.content
    assert patched.parsed.name == "Maija M." and patched.parsed.business_id is None
    assert patched.headers["ETag"] == '"2"'
    stale = patch.sync_detailed(
        maija.id, client=client, body=models.CustomerPatch(name="Late"), if_match='"1"'
    )
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Problem)
    replaced = replace.sync(
        maija.id,
        client=client,
        body=models.CustomerReplace(name="Maija Meikäläinen", email="maija@example.com"),
        if_match='"2"',
    )
    assert isinstance(replaced, models.Customer) and replaced.name == "Maija Meikäläinen"

    # AND deletes it with If-Match; then it is gone
    deleted = delete.sync_detailed(maija.id, client=client, if_match='"3"')
    assert deleted.status_code == 204 and deleted.content == b""
    gone = get.sync_detailed(maija.id, client=client)
    assert gone.status_code == 404 and isinstance(gone.parsed, models.Problem)
    assert gone.parsed.type_ == "urn:customer-api:problem:not-found"


def test_the_generated_client_sends_merge_patch(api: ModuleType) -> None:
    # The media type a generated client puts on a PATCH body is the document's first.
    patch = _module("api.customers.patch_customer")
    models = _module("models")
    request = patch._get_kwargs("an-id", body=models.CustomerPatch(phone=None))
    assert request["headers"]["Content-Type"] == "application/merge-patch+json"
    assert request["json"] == {"phone": None}
