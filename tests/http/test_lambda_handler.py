"""The Lambda entry point, fed real-shaped API Gateway v1, v2 and ALB events."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import pytest
from pytest_httpserver import HTTPServer

from customers.web.metrics import NAMESPACE
from tests.dynamo import REGION
from tests.served import ROOT
from tests.upstream_samples import HeldRegister, company_found_body, company_not_found_body

EVENTS = Path(__file__).resolve().parents[1] / "events"
KINDS = ("apigw_v1", "apigw_v2", "alb")
API_GATEWAY_REQUEST_IDS = {
    "apigw_v1": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "apigw_v2": "Cq3xYFm0gi0EJdg=",
}


EXECUTE_API = "abcdef1234.execute-api.eu-north-1.amazonaws.com"
CUSTOM_DOMAIN = "api.example.com"


@dataclass(frozen=True)
class Placement:
    """Where API Gateway (or an ALB) puts the app, and so what a client's path looks like.

    `base` is what the client's path has in front of the app's own routes: a named stage
    on the execute-api domain, a custom domain's API mapping key, or nothing. Every
    link the service writes must carry it.
    """

    kind: str
    base: str = ""
    stage: str = "prod"
    domain: str = EXECUTE_API
    # HTTP API routes: "proxy" is the template's pair `ANY /{proxy+}` and `ANY /`;
    # "default" is the `$default` route, which carries no template.
    routes: str = "proxy"


PLACEMENTS = {
    "http-api-default-stage": Placement("apigw_v2", stage="$default", routes="default"),
    "http-api-default-stage-proxy-route": Placement("apigw_v2", stage="$default"),
    "http-api-named-stage": Placement("apigw_v2", "/prod"),
    "http-api-named-stage-default-route": Placement("apigw_v2", "/prod", routes="default"),
    "http-api-custom-domain": Placement("apigw_v2", domain=CUSTOM_DOMAIN),
    "http-api-custom-domain-mapping-key": Placement("apigw_v2", "/v1", domain=CUSTOM_DOMAIN),
    "http-api-custom-domain-two-level-key": Placement(
        "apigw_v2", "/customer-api/v1", domain=CUSTOM_DOMAIN
    ),
    # A stage named like a route, reached without its name in the path: the route says so.
    "http-api-stage-named-customers": Placement(
        "apigw_v2", stage="customers", domain=CUSTOM_DOMAIN
    ),
    "rest-api-stage": Placement("apigw_v1", "/prod"),
    "rest-api-custom-domain": Placement("apigw_v1", domain=CUSTOM_DOMAIN),
    "rest-api-custom-domain-base-path": Placement("apigw_v1", "/v1", domain=CUSTOM_DOMAIN),
    "alb": Placement("alb"),
}
# The shapes the other tests run on: as the template deploys (HTTP API, named stage),
# a REST API's stage, and an ALB.
KIND_PLACEMENTS = {
    "apigw_v1": PLACEMENTS["rest-api-stage"],
    "apigw_v2": PLACEMENTS["http-api-named-stage"],
    "alb": PLACEMENTS["alb"],
}


class Invoker:
    """Builds events of one kind from its template and invokes the handler with them.

    Paths given to it are the paths a client calls, prefix included: `url()` makes one
    from an app path, and links the service wrote are followed as they are.
    """

    def __init__(self, module: ModuleType, placement: Placement) -> None:
        self.module = module
        self.placement = placement
        self.kind = placement.kind
        self.template = json.loads((EVENTS / f"{self.kind}.json").read_text())
        self.invocations = 0

    def url(self, app_path: str) -> str:
        """The path a client calls to reach `app_path`."""
        return self.placement.base + app_path

    def event(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        as_base64: bool = False,
    ) -> dict[str, Any]:
        place = self.placement
        assert path == place.base or path.startswith(f"{place.base}/"), path
        app_path = path[len(place.base) :] or "/"
        event = copy.deepcopy(self.template)
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        text = None
        if body is not None:
            text = base64.b64encode(body).decode() if as_base64 else body.decode()
        pairs = parse_qsl(query, keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        # API Gateway's path parameters are decoded; its paths are as the client sent them.
        proxy = {"proxy": unquote(app_path[1:])} if app_path != "/" else None
        if self.kind == "apigw_v2":
            context = event["requestContext"]
            if place.routes == "default":
                route_key = "$default"
            else:
                route_key = "ANY /{proxy+}" if proxy else "ANY /"
                if proxy:
                    event["pathParameters"] = proxy
            event["routeKey"] = context["routeKey"] = route_key
            event["rawPath"] = path
            event["rawQueryString"] = query
            context["http"].update(method=method, path=unquote(path))
            context.update(
                stage=place.stage, domainName=place.domain, domainPrefix=place.domain.split(".")[0]
            )
            event["headers"]["host"] = place.domain
            event["headers"].update({name.lower(): value for name, value in headers.items()})
            event["body"] = text
        else:
            event["httpMethod"] = method
            event["path"] = app_path
            if self.kind == "apigw_v1":
                context = event["requestContext"]
                resource = "/{proxy+}" if proxy else "/"
                event["resource"] = context["resourcePath"] = resource
                event["pathParameters"] = proxy
                context.update(
                    httpMethod=method,
                    path=path,
                    stage=place.stage,
                    domainName=place.domain,
                    domainPrefix=place.domain.split(".")[0],
                )
                event["headers"]["Host"] = place.domain
                event["multiValueHeaders"]["Host"] = [place.domain]
                event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} or None
                event["multiValueQueryStringParameters"] = multi or None
                event["headers"].update(headers)
            else:  # ALB with multi-value headers on: query values arrive URL-encoded
                event["multiValueQueryStringParameters"] = {
                    quote(k): [quote(v) for v in values] for k, values in multi.items()
                }
            for name, value in headers.items():
                event["multiValueHeaders"][name] = [value]
            event["body"] = text
        event["isBase64Encoded"] = as_base64
        return event

    def __call__(self, method: str, path: str, **kwargs: Any) -> Answer:
        self.invocations += 1
        context = SimpleNamespace(
            aws_request_id=f"0c3e2d1b-0000-4000-8000-{self.invocations:012d}",
            function_name="customer-api",
        )
        raw = self.module.handler(self.event(method, path, **kwargs), context)
        return Answer(raw, context.aws_request_id)


class Answer:
    """A handler response, with its headers merged into one case-insensitive view."""

    def __init__(self, raw: dict[str, Any], aws_request_id: str) -> None:
        self.raw = raw
        self.aws_request_id = aws_request_id
        self.status = raw["statusCode"]
        merged: dict[str, str] = {}
        for name, value in (raw.get("headers") or {}).items():
            merged[name.lower()] = value
        for name, values in (raw.get("multiValueHeaders") or {}).items():
            merged[name.lower()] = values[-1]
        self.headers = merged

    def json(self) -> Any:
        assert self.raw["isBase64Encoded"] is False
        return json.loads(self.raw["body"])


def use_dynamodb(monkeypatch: pytest.MonkeyPatch, endpoint: str, table: str) -> None:
    """The environment the template gives the function, pointed at moto's table."""
    for name, value in {
        "CUSTOMER_STORE": "dynamodb",
        "DYNAMODB_TABLE": table,
        "DYNAMODB_CREATE_TABLE": "1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def lambda_module(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """`lambda_handler` imported afresh, so its app is built from this test's environment.

    With `--store=dynamodb` the app keeps its customers in a fresh table in moto.
    """
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    if request.config.getoption("--store") == "dynamodb":
        request.getfixturevalue("aws_environ")
        use_dynamodb(
            monkeypatch,
            request.getfixturevalue("moto_endpoint"),
            request.getfixturevalue("dynamo_table_name"),
        )
    from customers.aws import lambda_handler

    module = importlib.reload(lambda_handler)
    yield module
    module.app.extensions["customer_store"].close()
    module.app.extensions["business_client"].close()


@pytest.fixture(params=KINDS)
def invoke(request: pytest.FixtureRequest, lambda_module: ModuleType) -> Invoker:
    return Invoker(lambda_module, KIND_PLACEMENTS[request.param])


def create(invoke: Invoker, email: str, **kwargs: Any) -> Answer:
    body = json.dumps({"name": "Lambda Person", "email": email}).encode()
    return invoke("POST", invoke.url("/customers"), body=body, **kwargs)


def test_create_get_list_and_delete(invoke: Invoker) -> None:
    created = create(invoke, "one@example.com")
    assert created.status == 201
    customer = created.json()
    assert created.headers["location"] == invoke.url(f"/customers/{customer['id']}")
    assert created.headers["content-type"] == "application/json"
    second = create(invoke, "two@example.com", as_base64=True)
    assert second.status == 201 and second.json()["email"] == "two@example.com"

    got = invoke("GET", created.headers["location"])
    assert got.status == 200 and got.json() == customer
    assert got.headers["etag"] == '"1"'
    assert (
        invoke("GET", created.headers["location"], headers={"If-None-Match": '"1"'}).status == 304
    )

    first_page = invoke("GET", invoke.url("/customers"), query="limit=1")
    assert first_page.status == 200 and first_page.json() == [customer]
    link = first_page.headers["link"]
    next_path, _, next_query = link[1 : link.index(">")].partition("?")
    rest = invoke("GET", next_path, query=next_query)
    assert rest.json() == [second.json()]
    assert "link" not in rest.headers

    deleted = invoke("DELETE", created.headers["location"])
    assert deleted.status == 204 and deleted.raw["body"] == ""
    assert "content-type" not in deleted.headers
    missing = invoke("GET", created.headers["location"])
    assert missing.status == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404


@pytest.mark.parametrize("if_match", ['"1\u00e4"', '"1"\u200b', '"\u00e4", "1"', ""])
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_if_match_that_cannot_be_read_is_412(
    invoke: Invoker, method: str, if_match: str
) -> None:
    # apig-wsgi puts the event's Unicode text into the environ as it is.
    location = create(invoke, "guarded@example.com").headers["location"]
    body = b'{"name": "Changed"}' if method == "PATCH" else None
    answer = invoke(method, location, body=body, headers={"If-Match": if_match})
    assert answer.status == 412
    assert answer.json()["type"] == "urn:customer-api:problem:precondition-failed"
    assert invoke("GET", location).json()["name"] == "Lambda Person"


def test_a_bad_body_is_a_400_problem_as_text(invoke: Invoker) -> None:
    body = b'{"name": "", "email": "x"}'
    answer = invoke("POST", invoke.url("/customers"), body=body, as_base64=True)
    assert answer.status == 400
    assert answer.raw["isBase64Encoded"] is False
    assert {e["field"] for e in answer.json()["errors"]} == {"name", "email"}


def test_repeated_query_parameters_arrive_as_repeated(invoke: Invoker) -> None:
    answer = invoke("GET", invoke.url("/customers"), query="limit=1&limit=2")
    assert answer.status == 400
    assert answer.json()["errors"] == [{"field": "limit", "message": "must be given at most once"}]
    encoded = create(invoke, "a+b@example.com")
    assert encoded.status == 201
    found = invoke("GET", invoke.url("/customers"), query="email=A%2Bb%40example.com")
    assert [c["email"] for c in found.json()] == ["a+b@example.com"]


def test_request_id_is_the_invocation_id_unless_the_client_sent_one(invoke: Invoker) -> None:
    answer = invoke("GET", invoke.url("/health"))
    assert answer.headers["x-request-id"] == answer.aws_request_id
    echoed = invoke("GET", invoke.url("/health"), headers={"X-Request-ID": "client-id-1"})
    assert echoed.headers["x-request-id"] == "client-id-1"


def test_log_lines_carry_the_invocation_and_no_customer_data(
    invoke: Invoker, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    answer = create(invoke, "private.person@example.com", headers={"X-Request-ID": "mine"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert lines, "the invocation logged nothing"
    for line in lines:
        assert line["aws_request_id"] == answer.aws_request_id
        assert line["request_id"] == "mine"
        if invoke.kind in API_GATEWAY_REQUEST_IDS:
            assert line["apigw_request_id"] == API_GATEWAY_REQUEST_IDS[invoke.kind]
    access = [line for line in lines if line["event"] == "request"]
    assert access[0]["route"] == "/customers" and access[0]["status"] == 201
    text = json.dumps(lines)
    assert "private.person" not in text and "Lambda Person" not in text


def test_docs_assets_leave_as_text_and_the_icon_as_base64(
    lambda_module: ModuleType,
) -> None:
    invoke = Invoker(lambda_module, KIND_PLACEMENTS["apigw_v2"])
    page = invoke("GET", invoke.url("/docs"))
    assert page.raw["isBase64Encoded"] is False and "swagger-ui" in page.raw["body"]
    icon = invoke("GET", invoke.url("/docs/favicon-32x32.png"))
    assert icon.raw["isBase64Encoded"] is True
    assert base64.b64decode(icon.raw["body"]).startswith(b"\x89PNG")


@pytest.fixture
def ssm_parameter(moto_endpoint: str, aws_environ: None) -> str:
    """A SecureString parameter holding two API keys, in moto's SSM."""
    import boto3

    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint)
    name = "/customer-api/test/api-keys"
    ssm.put_parameter(Name=name, Value="first-key, second-key", Type="SecureString", Overwrite=True)
    return name


def test_api_keys_come_from_ssm_once_per_container(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, ssm_parameter: str
) -> None:
    monkeypatch.setenv("API_KEYS_SSM_PARAMETER", ssm_parameter)
    monkeypatch.setenv("REQUIRE_API_KEYS", "1")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    from customers.aws import lambda_handler

    module = importlib.reload(lambda_handler)
    try:
        invoke = Invoker(module, KIND_PLACEMENTS["apigw_v2"])
        customers = invoke.url("/customers")
        assert invoke("GET", customers).status == 401
        assert invoke("GET", customers, headers={"Authorization": "Bearer wrong"}).status == 401
        # The parameter is read at start only: changing it does not change a warm container.
        import boto3

        boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint).put_parameter(
            Name=ssm_parameter, Value="rotated", Type="SecureString", Overwrite=True
        )
        for key in ("first-key", "second-key"):
            ok = invoke("GET", invoke.url("/customers"), headers={"Authorization": f"Bearer {key}"})
            assert ok.status == 200
        assert invoke("GET", invoke.url("/health")).status == 200
    finally:
        module.app.extensions["customer_store"].close()
        module.app.extensions["business_client"].close()


def test_the_dynamodb_store_through_the_handler(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, dynamo_table_name: str, aws_environ: None
) -> None:
    use_dynamodb(monkeypatch, moto_endpoint, dynamo_table_name)
    from customers.aws import lambda_handler

    module = importlib.reload(lambda_handler)
    try:
        invoke = Invoker(module, KIND_PLACEMENTS["apigw_v1"])
        created = create(invoke, "dynamo@example.com")
        assert created.status == 201
        assert create(invoke, "DYNAMO@example.com").status == 409
        assert invoke("GET", created.headers["location"]).json() == created.json()
        assert invoke("GET", invoke.url("/health")).json() == {"status": "ok", "store": "dynamodb"}
    finally:
        module.app.extensions["customer_store"].close()
        module.app.extensions["business_client"].close()


@pytest.fixture(params=KINDS)
def keyed_invoke(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Invoker:
    monkeypatch.setenv("API_KEYS", "lambda-key")
    return Invoker(request.getfixturevalue("lambda_module"), KIND_PLACEMENTS[request.param])


def test_header_names_with_underscores_are_not_the_key_header(keyed_invoke: Invoker) -> None:
    """The event keeps `X_API_KEY` apart from `X-API-Key`; WSGI would fold them together."""
    customers = keyed_invoke.url("/customers")
    assert keyed_invoke("GET", customers, headers={"X-API-Key": "lambda-key"}).status == 200
    assert keyed_invoke("GET", customers, headers={"X_API_KEY": "lambda-key"}).status == 401
    assert keyed_invoke("GET", customers, headers={"x_api_key": "lambda-key"}).status == 401


# The header as each event kind's template spells it, so a test's value replaces the template's.
FORWARDED_FOR = {
    "apigw_v1": "X-Forwarded-For",
    "apigw_v2": "x-forwarded-for",
    "alb": "x-forwarded-for",
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_client_address_is_the_event_source_not_a_forged_forwarded_for(
    monkeypatch: pytest.MonkeyPatch, lambda_module: ModuleType, kind: str
) -> None:
    # GIVEN keys and a limit of 2 failed attempts a minute per address
    monkeypatch.setenv("API_KEYS", "lambda-key")
    monkeypatch.setenv("RATE_LIMIT", "2/minute")
    lambda_module.app.extensions["customer_store"].close()
    lambda_module.app.extensions["business_client"].close()
    invoke = Invoker(importlib.reload(lambda_module), KIND_PLACEMENTS[kind])
    # WHEN one caller (source 203.0.113.7) puts a new address in front of X-Forwarded-For
    # each time; API Gateway and ALB append the address they saw
    answers = [
        invoke(
            "GET",
            invoke.url("/customers"),
            headers={
                "Authorization": "Bearer guess",
                FORWARDED_FOR[kind]: f"198.51.100.{n}, 203.0.113.7",
            },
        ).status
        for n in range(4)
    ]
    # THEN its attempts are counted together, under the address the event vouches for
    assert answers == [401, 401, 429, 429]


def test_trusted_proxies_are_refused_on_lambda(
    monkeypatch: pytest.MonkeyPatch, lambda_module: ModuleType
) -> None:
    from customers.config import ConfigError

    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    lambda_module.app.extensions["customer_store"].close()
    lambda_module.app.extensions["business_client"].close()
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        importlib.reload(lambda_module)


LIMIT = 64 * 1024
OVER_THE_LIMIT = {
    # the first 64 KiB are a valid customer, then junk
    "junk-after-a-valid-prefix": json.dumps({"name": "Big", "email": "big@example.com"})
    .encode()
    .ljust(LIMIT)
    + b"junk",
    # valid JSON, padded past the limit
    "padded-valid-json": b'{"name": "Big", "email": "big@example.com"' + b" " * LIMIT + b"}",
}
# API Gateway may pass on the client's Transfer-Encoding; the event still holds the whole body.
FRAMINGS = {"content-length": {}, "transfer-encoding": {"Transfer-Encoding": "chunked"}}


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("shape", OVER_THE_LIMIT)
def test_a_base64_body_over_the_limit_is_413_and_creates_nothing(
    invoke: Invoker, shape: str, framing: str
) -> None:
    body = OVER_THE_LIMIT[shape]
    answer = invoke(
        "POST", invoke.url("/customers"), body=body, as_base64=True, headers=FRAMINGS[framing]
    )
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 413
    assert invoke("GET", invoke.url("/customers"), query="email=big@example.com").json() == []


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_base64_body_of_exactly_the_limit_is_read_whole(invoke: Invoker, framing: str) -> None:
    body = json.dumps({"name": "Whole", "email": "whole@example.com"}).encode().ljust(LIMIT)
    answer = invoke(
        "POST", invoke.url("/customers"), body=body, as_base64=True, headers=FRAMINGS[framing]
    )
    assert answer.status == 201
    listed = invoke("GET", invoke.url("/customers"), query="email=whole@example.com").json()
    assert listed == [answer.json()]


# --- wherever API Gateway puts the app ------------------------------------------------


@pytest.fixture(params=list(PLACEMENTS))
def placed(request: pytest.FixtureRequest, lambda_module: ModuleType) -> Invoker:
    return Invoker(lambda_module, PLACEMENTS[request.param])


def test_routes_match_and_links_carry_the_prefix(placed: Invoker) -> None:
    base = placed.placement.base
    # GIVEN a customer created through the placement
    created = create(placed, "placed@example.com")
    assert created.status == 201
    customer = created.json()
    # THEN its Location is where this client finds it
    assert created.headers["location"] == f"{base}/customers/{customer['id']}"
    assert placed("GET", created.headers["location"]).json() == customer
    # AND the next page's Link is a path this client can call
    second = create(placed, "second.placed@example.com").json()
    first_page = placed("GET", placed.url("/customers"), query="limit=1")
    assert first_page.json() == [customer]
    link = first_page.headers["link"]
    target, _, query = link[1 : link.index(">")].partition("?")
    assert target == f"{base}/customers"
    assert placed("GET", target, query=query).json() == [second]
    # AND paths the app does not know, encoded ones included, are its own 404 problems
    for path in ("/nowhere", "/customers/caf%C3%A9", "/customers/a%2Fb"):
        missing = placed("GET", placed.url(path))
        assert missing.status == 404, path
        assert missing.json()["type"] == "urn:customer-api:problem:not-found"
    assert placed("DELETE", created.headers["location"]).status == 204


def test_the_base_url_and_the_docs_carry_the_prefix(placed: Invoker) -> None:
    base = placed.placement.base
    roots = [placed.url("/")] + ([base] if base else [])
    for root in roots:
        index = placed("GET", root)
        assert index.status == 200, root
        assert index.json()["links"] == {
            "customers": {"href": f"{base}/customers"},
            "openapi": {"href": f"{base}/openapi.json"},
            "docs": {"href": f"{base}/docs"},
        }
    links = index.json()["links"]
    assert placed("GET", links["customers"]["href"]).json() == []
    document = placed("GET", links["openapi"]["href"])
    assert document.json()["servers"][0]["url"] == (base or "/")

    page = placed("GET", links["docs"]["href"])
    assert page.status == 200
    urls = re.findall(r'(?:href|src)="([^"]+)"', page.raw["body"])
    assert len(urls) == 6
    for url in urls:
        assert url.startswith(f"{base}/docs/"), url
        asset = placed("GET", url)
        assert asset.status == 200, url
    script = placed("GET", f"{base}/docs/init.js").raw["body"]
    assert f'url: "{base}/openapi.json"' in script


# --- metrics: CloudWatch Embedded Metric Format in the access line ------------------------

# CloudWatch's units (PutMetricData's StandardUnit), which EMF metric definitions take.
EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_data_points(
    line: dict[str, Any],
) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], Any]:
    """The metric data points CloudWatch would extract from `line`, checked against the EMF
    specification: {(namespace, metric name, ((dimension, value), ...)): value}."""
    aws = line["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    points: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}
    for directive in directives:
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and 1 <= len(namespace) <= 1024
        assert 1 <= len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(line[key], str) and line[key], key
            dimensions = tuple((key, line[key]) for key in dimension_set)
            for metric in directive["Metrics"]:
                assert set(metric) <= {"Name", "Unit", "StorageResolution"}
                assert metric.get("Unit", "None") in EMF_UNITS
                value = line[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                assert 1 <= len(values) <= 100
                assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
                points[(namespace, metric["Name"], dimensions)] = value
    return points


class Recorder:
    """Invokes, then hands back the answer and the request's access line."""

    def __init__(self, invoke: Invoker, capsys: pytest.CaptureFixture[str]) -> None:
        self.invoke, self.capsys = invoke, capsys

    def __call__(self, method: str, path: str, **kwargs: Any) -> tuple[Answer, dict[str, Any]]:
        self.capsys.readouterr()
        answer = self.invoke(method, self.invoke.url(path), **kwargs)
        lines = [json.loads(line) for line in self.capsys.readouterr().out.splitlines() if line]
        (access,) = [line for line in lines if line.get("event") == "request"]
        return answer, access


@pytest.fixture
def register_env(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> HTTPServer:
    """The function's register settings: a stub register, no cache, no retries, short waits."""
    for name, value in {
        "BUSINESS_API_URL": httpserver.url_for("/"),
        "BUSINESS_RETRIES": "0",
        "BUSINESS_CACHE_TTL": "0",
        "BUSINESS_CONNECT_TIMEOUT": "0.3",
        "BUSINESS_READ_TIMEOUT": "0.3",
        "BUSINESS_DEADLINE": "0.5",
        "BUSINESS_BREAKER_FAILURES": "2",
    }.items():
        monkeypatch.setenv(name, value)
    return httpserver


def test_requests_are_metrics_by_route_and_status_class(
    register_env: HTTPServer, lambda_module: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    record = Recorder(Invoker(lambda_module, PLACEMENTS["http-api-named-stage"]), capsys)
    service = (("Service", "customer-api"),)

    created, line = record("POST", "/customers", body=b'{"name": "M", "email": "m@example.com"}')
    assert created.status == 201
    points = emf_data_points(line)
    by_route = (*service, ("Route", "/customers"), ("StatusClass", "2xx"))
    assert points[(NAMESPACE, "Requests", by_route)] == 1
    assert points[(NAMESPACE, "Requests", service)] == 1
    assert points[(NAMESPACE, "Latency", by_route)] == line["duration_ms"] > 0
    assert points[(NAMESPACE, "StoreErrors", service)] == 0
    assert not any(name.startswith("Register") for _, name, _ in points)

    missing, line = record("GET", "/customers/nobody")
    assert missing.status == 404
    by_route = (*service, ("Route", "/customers/<customer_id>"), ("StatusClass", "4xx"))
    assert emf_data_points(line)[(NAMESPACE, "Requests", by_route)] == 1

    _, line = record("GET", "/no/such/route")
    unmatched = (*service, ("Route", "unmatched"), ("StatusClass", "4xx"))
    assert emf_data_points(line)[(NAMESPACE, "Requests", unmatched)] == 1


REGISTER_ID = "0112038-9"


def test_register_outcomes_are_metrics(
    register_env: HTTPServer, lambda_module: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    record = Recorder(Invoker(lambda_module, PLACEMENTS["http-api-named-stage"]), capsys)
    service = (("Service", "customer-api"),)
    path = f"/businesses/{REGISTER_ID}"
    held = HeldRegister(register_env, hold_seconds=5)
    # (what the register does, the answer's status, the outcome counted)
    steps: list[tuple[Callable[[], None], int, str]] = [
        (lambda: register_env.expect_request("/companies").respond_with_json(
            company_found_body(REGISTER_ID)), 200, "RegisterOk"),
        (lambda: register_env.expect_request("/companies").respond_with_json(
            company_not_found_body()), 404, "RegisterNotFound"),
        (lambda: register_env.expect_request("/companies").respond_with_data(
            "busy", status=429, headers={"Retry-After": "0"}), 503, "RegisterUnavailable"),
        (lambda: register_env.expect_request("/companies").respond_with_handler(held),
            504, "RegisterTimeout"),
        # two failures in a row: the breaker is open and no call is made
        (lambda: None, 503, "RegisterBreakerOpen"),
    ]  # fmt: skip
    try:
        for arrange, status, outcome in steps:
            register_env.clear()
            arrange()
            answer, line = record("GET", path)
            assert answer.status == status, outcome
            points = emf_data_points(line)
            counts = {name: value for (_, name, _), value in points.items() if name in OUTCOMES}
            assert counts == {name: int(name == outcome) for name in OUTCOMES}, outcome
            latency = points[(NAMESPACE, "RegisterLatency", service)]
            assert latency == [line["upstream"][0]["duration_ms"]]
    finally:
        held.release()


OUTCOMES = {
    "RegisterOk",
    "RegisterNotFound",
    "RegisterTimeout",
    "RegisterUnavailable",
    "RegisterBreakerOpen",
    "RegisterError",
}


@pytest.fixture
def break_store(request: pytest.FixtureRequest) -> Callable[[ModuleType], None]:
    """Makes the app's store fail for real: SQLite's connection closed, the table deleted."""

    def broken(module: ModuleType) -> None:
        if request.config.getoption("--store") == "dynamodb":
            client = request.getfixturevalue("dynamo_client")
            client.delete_table(TableName=module.app.config["DYNAMODB_TABLE"])
        else:
            module.app.extensions["customer_store"].close()

    return broken


def test_a_failing_store_is_a_metric(
    lambda_module: ModuleType,
    break_store: Callable[[ModuleType], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = Recorder(Invoker(lambda_module, PLACEMENTS["http-api-named-stage"]), capsys)
    service = (("Service", "customer-api"),)
    ok, line = record("GET", "/customers")
    assert ok.status == 200 and emf_data_points(line)[(NAMESPACE, "StoreErrors", service)] == 0
    break_store(lambda_module)
    failed, line = record("GET", "/customers")
    assert failed.status == 500
    points = emf_data_points(line)
    by_route = (*service, ("Route", "/customers"), ("StatusClass", "5xx"))
    assert points[(NAMESPACE, "StoreErrors", by_route)] == 1
    assert points[(NAMESPACE, "Requests", by_route)] == 1
    health, line = record("GET", "/health")
    assert health.status == 503
    assert emf_data_points(line)[(NAMESPACE, "StoreErrors", service)] == 1


def test_a_cold_container_imports_only_what_its_first_request_needs() -> None:
    """The handler's import (the app built, sqlite store) leaves out what can wait: the
    models and pydantic, the register's HTTP client, bulk import, a server's machinery."""
    deferred = (
        "pydantic",
        "email_validator",
        "requests",
        "customers.schemas",
        "customers.bulk",
        "customers.web.asgi_bridge",
        "multiprocessing",
        "boto3",
    )
    probe = (
        "import sys, customers.aws.lambda_handler; "
        f"print(','.join(name for name in {deferred!r} if name in sys.modules))"
    )
    env = {key: value for key, value in os.environ.items() if key != "CUSTOMER_STORE"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "ERROR"},
    )
    assert done.stdout.strip() == ""


# --- events the handler cannot read -------------------------------------------------------

SECRET = "s3cret-value"  # in the bad field where the shape allows: never in a log line
NOT_BASE64 = f"{SECRET}!not*base64"


def _drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        holder = event
        for name in path[:-1]:
            holder = holder[name]
        del holder[path[-1]]

    return mutate


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        holder = event
        for name in path[:-1]:
            holder = holder[name]
        holder[path[-1]] = value

    return mutate


def _header(value: Any) -> Callable[[dict[str, Any]], None]:
    """A header `x-odd` with `value`, in whichever header field the event reads."""

    def mutate(event: dict[str, Any]) -> None:
        field = "multiValueHeaders" if "multiValueHeaders" in event else "headers"
        event[field]["x-odd"] = value

    return mutate


def _body(text: Any, *, as_base64: bool) -> Callable[[dict[str, Any]], None]:
    return (
        _set("body", value=text)
        if not as_base64
        else _both(_set("body", value=text), _set("isBase64Encoded", value=True))
    )


def _both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(event)

    return mutate


V1_KINDS, ALL_KINDS = ("apigw_v1", "alb"), KINDS
# (what is wrong, the kinds it applies to, how, the status, what the log line says)
MALFORMED: list[tuple[str, tuple[str, ...], Callable[[dict[str, Any]], None], int, str]] = [
    ("body not base64", ALL_KINDS, _body(NOT_BASE64, as_base64=True), 400, "`body` is not base64"),
    ("body badly padded", ALL_KINDS, _body("e30", as_base64=True), 400, "`body` is not base64"),
    ("body beyond ASCII as base64", ALL_KINDS, _body("e30=\u00e4", as_base64=True), 400, "`body` is not base64"),
    ("body not a string", ALL_KINDS, _set("body", value={"name": SECRET}), 400, "`body` is not a string"),
    ("body with a lone surrogate", ALL_KINDS, _body(SECRET + "\ud800", as_base64=False), 400, "`body` is not UTF-8 text"),
    ("isBase64Encoded not a boolean", ALL_KINDS, _set("isBase64Encoded", value="yes"), 400, "`isBase64Encoded`"),
    ("50 MiB of base64", ALL_KINDS, _body("QUFB" * (50 * 2**20 // 4), as_base64=True), 413, "`body` is longer than 65536 bytes"),
    ("50 MiB of non-base64, told by length", ALL_KINDS, _body("!" * 50 * 2**20, as_base64=True), 413, "`body` is longer"),
    ("text body over the limit", ALL_KINDS, _body("x" * (LIMIT + 1), as_base64=False), 413, "`body` is longer"),
    ("header value not a string", ALL_KINDS, _header(7), 400, "is not an object of strings"),
    ("header value with a lone surrogate", ALL_KINDS, _header(SECRET + "\udc80"), 400, "is not an object of strings"),
    ("headers not an object", ALL_KINDS, _set("headers", value=[SECRET]), 400, "`headers`"),
    ("no httpMethod", V1_KINDS, _drop("httpMethod"), 400, "`httpMethod` is missing"),
    ("httpMethod not a string", V1_KINDS, _set("httpMethod", value=["GET"]), 400, "`httpMethod` is not a string"),
    ("no path", V1_KINDS, _drop("path"), 400, "`path` is missing"),
    ("multi-value header not a list", V1_KINDS, _header(SECRET), 400, "`multiValueHeaders`"),
    ("multi-value header an empty list", V1_KINDS, _header([]), 400, "`multiValueHeaders`"),
    ("query parameters not an object", V1_KINDS, _both(_drop("multiValueQueryStringParameters"), _set("queryStringParameters", value=[SECRET])), 400, "`queryStringParameters`"),
    ("multi-value query not lists", V1_KINDS, _set("multiValueQueryStringParameters", value={"limit": 1}), 400, "`multiValueQueryStringParameters`"),
    ("requestContext not an object", ("apigw_v1",), _set("requestContext", value=SECRET), 400, "`requestContext` is not an object"),
    ("an unknown payload version", ("apigw_v1",), _set("version", value="3.0"), 400, "`version`"),
    ("request id with a lone surrogate", ("apigw_v1", "apigw_v2"), _set("requestContext", "requestId", value=SECRET + "\ud800"), 400, "`requestContext.requestId` is not a string"),
    ("source address not a string", ("apigw_v1",), _set("requestContext", "identity", "sourceIp", value=7), 400, "`requestContext.identity.sourceIp` is not a string"),
    ("called path with a lone surrogate", ("apigw_v1",), _set("requestContext", "path", value=f"/prod/{SECRET}\udc80"), 400, "`requestContext.path` is not a string"),
    ("no rawPath", ("apigw_v2",), _drop("rawPath"), 400, "`rawPath` is missing"),
    ("no rawQueryString", ("apigw_v2",), _drop("rawQueryString"), 400, "`rawQueryString` is missing"),
    ("no headers", ("apigw_v2",), _drop("headers"), 400, "`headers` is missing"),
    ("no requestContext", ("apigw_v2",), _drop("requestContext"), 400, "`requestContext` is missing"),
    ("no requestContext.http", ("apigw_v2",), _drop("requestContext", "http"), 400, "`requestContext.http` is missing"),
    ("no method", ("apigw_v2",), _drop("requestContext", "http", "method"), 400, "`requestContext.http.method` is missing"),
    ("no protocol", ("apigw_v2",), _drop("requestContext", "http", "protocol"), 400, "`requestContext.http.protocol` is missing"),
    ("no sourceIp", ("apigw_v2",), _drop("requestContext", "http", "sourceIp"), 400, "`requestContext.http.sourceIp` is missing"),
    ("cookies not a list", ("apigw_v2",), _set("cookies", value=SECRET), 400, "`cookies`"),
    ("path parameters not strings", ("apigw_v2",), _set("pathParameters", value={"proxy": 7}), 400, "`pathParameters`"),
]  # fmt: skip
MALFORMED_CASES = [
    pytest.param(kind, mutate, status, reason, id=f"{kind}: {what}")
    for what, kinds, mutate, status, reason in MALFORMED
    for kind in kinds
]


def response_fields(event: dict[str, Any], kind: str) -> set[str]:
    """The members of the answer the event's kind expects (multi-value when it is)."""
    if kind == "apigw_v2":
        return {"statusCode", "headers", "cookies", "body", "isBase64Encoded"}
    headers = "multiValueHeaders" if "multiValueHeaders" in event else "headers"
    return {"statusCode", headers, "body", "isBase64Encoded"}


def assert_refused(answer: Answer, lines: list[dict[str, Any]], status: int, reason: str) -> None:
    """The answer is the service's problem with its usual headers, and the log says why."""
    assert answer.status == status
    problem = answer.json()
    slug = "bad-request" if status == 400 else "body-too-large"
    assert problem["type"] == f"urn:customer-api:problem:{slug}"
    assert problem["status"] == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == answer.aws_request_id
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    (refused,) = [line for line in lines if line["event"] == "lambda_event_refused"]
    assert reason in refused["reason"], refused["reason"]
    assert refused["level"] == "warning" and refused["status"] == status
    assert refused["aws_request_id"] == answer.aws_request_id
    (access,) = [line for line in lines if line["event"] == "request"]
    assert (access["status"], access["route"]) == (status, None)


def call_handler(
    module: ModuleType, event: Any, capsys: pytest.CaptureFixture[str]
) -> tuple[Answer, list[dict[str, Any]], str]:
    """The handler's answer to `event`, the lines it logged, and all it wrote."""
    context = SimpleNamespace(
        aws_request_id="0c3e2d1b-0000-4000-8000-0000000000ee", function_name="customer-api"
    )
    capsys.readouterr()
    raw = module.handler(event, context)
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return Answer(raw, context.aws_request_id), lines, out


@pytest.mark.parametrize(("kind", "mutate", "status", "reason"), MALFORMED_CASES)
def test_every_malformed_event_gets_its_problem_and_a_log_line_saying_why(
    lambda_module: ModuleType,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    mutate: Callable[[dict[str, Any]], None],
    status: int,
    reason: str,
) -> None:
    invoke = Invoker(lambda_module, KIND_PLACEMENTS[kind])
    body = json.dumps({"name": "Never", "email": "never@example.com"}).encode()
    event = invoke.event("POST", invoke.url("/customers"), body=body)
    mutate(event)
    answer, lines, out = call_handler(lambda_module, event, capsys)
    assert_refused(answer, lines, status, reason)
    assert set(answer.raw) == response_fields(event, kind)
    assert SECRET not in out
    assert invoke("GET", invoke.url("/customers")).json() == []


@pytest.mark.parametrize("event", [None, [], "text", 7, {}], ids=repr)
def test_an_event_that_is_no_request_at_all_is_a_400(
    lambda_module: ModuleType, capsys: pytest.CaptureFixture[str], event: Any
) -> None:
    answer, lines, _ = call_handler(lambda_module, event, capsys)
    assert_refused(answer, lines, 400, "")
    assert set(answer.raw) == {"statusCode", "headers", "body", "isBase64Encoded"}


def test_a_path_beyond_ascii_is_read_as_its_utf8(invoke: Invoker) -> None:
    """API Gateway hands over a path sent in raw UTF-8 as text: the app gets its bytes."""
    missing = invoke("GET", invoke.url("/customers/caf\u00e9\u20ac"))
    assert missing.status == 404
    assert missing.json()["type"] == "urn:customer-api:problem:not-found"


def test_a_query_beyond_ascii_is_read_as_its_utf8(lambda_module: ModuleType) -> None:
    invoke = Invoker(lambda_module, KIND_PLACEMENTS["apigw_v2"])
    created = create(invoke, "caf\u00e9@example.com")
    assert created.status == 201
    found = invoke("GET", invoke.url("/customers"), query="email=caf\u00e9@example.com")
    assert found.status == 200 and found.json() == [created.json()]
