"""The Lambda entry point, fed real-shaped API Gateway v1, v2 and ALB events."""

from __future__ import annotations

import base64
import copy
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from tests.dynamo import REGION

EVENTS = Path(__file__).resolve().parents[1] / "events"
KINDS = ("apigw_v1", "apigw_v2", "alb")
API_GATEWAY_REQUEST_IDS = {
    "apigw_v1": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "apigw_v2": "Cq3xYFm0gi0EJdg=",
}


class Invoker:
    """Builds events of one kind from its template and invokes the handler with them."""

    def __init__(self, module: ModuleType, kind: str) -> None:
        self.module = module
        self.kind = kind
        self.template = json.loads((EVENTS / f"{kind}.json").read_text())
        self.invocations = 0

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
        if self.kind == "apigw_v2":
            event["rawPath"] = path
            event["rawQueryString"] = query
            event["requestContext"]["http"].update(method=method, path=path)
            event["headers"].update({name.lower(): value for name, value in headers.items()})
            event["body"] = text
        else:
            event["httpMethod"] = method
            event["path"] = path
            if self.kind == "apigw_v1":
                event["requestContext"].update(httpMethod=method, path=f"/prod{path}")
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


@pytest.fixture
def lambda_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """`lambda_handler` imported afresh, so its app is built from this test's environment."""
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    from customers.aws import lambda_handler

    module = importlib.reload(lambda_handler)
    yield module
    module.app.extensions["customer_store"].close()
    module.app.extensions["business_client"].close()


@pytest.fixture(params=KINDS)
def invoke(request: pytest.FixtureRequest, lambda_module: ModuleType) -> Invoker:
    return Invoker(lambda_module, request.param)


def create(invoke: Invoker, email: str, **kwargs: Any) -> Answer:
    body = json.dumps({"name": "Lambda Person", "email": email}).encode()
    return invoke("POST", "/customers", body=body, **kwargs)


def test_create_get_list_and_delete(invoke: Invoker) -> None:
    created = create(invoke, "one@example.com")
    assert created.status == 201
    customer = created.json()
    assert created.headers["location"] == f"/customers/{customer['id']}"
    assert created.headers["content-type"] == "application/json"
    second = create(invoke, "two@example.com", as_base64=True)
    assert second.status == 201 and second.json()["email"] == "two@example.com"

    got = invoke("GET", created.headers["location"])
    assert got.status == 200 and got.json() == customer
    assert got.headers["etag"] == '"1"'
    assert (
        invoke("GET", created.headers["location"], headers={"If-None-Match": '"1"'}).status == 304
    )

    first_page = invoke("GET", "/customers", query="limit=1")
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
    answer = invoke("POST", "/customers", body=b'{"name": "", "email": "x"}', as_base64=True)
    assert answer.status == 400
    assert answer.raw["isBase64Encoded"] is False
    assert {e["field"] for e in answer.json()["errors"]} == {"name", "email"}


def test_repeated_query_parameters_arrive_as_repeated(invoke: Invoker) -> None:
    answer = invoke("GET", "/customers", query="limit=1&limit=2")
    assert answer.status == 400
    assert answer.json()["errors"] == [{"field": "limit", "message": "must be given at most once"}]
    encoded = create(invoke, "a+b@example.com")
    assert encoded.status == 201
    found = invoke("GET", "/customers", query="email=A%2Bb%40example.com")
    assert [c["email"] for c in found.json()] == ["a+b@example.com"]


def test_request_id_is_the_invocation_id_unless_the_client_sent_one(invoke: Invoker) -> None:
    answer = invoke("GET", "/health")
    assert answer.headers["x-request-id"] == answer.aws_request_id
    echoed = invoke("GET", "/health", headers={"X-Request-ID": "client-id-1"})
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
    invoke = Invoker(lambda_module, "apigw_v2")
    page = invoke("GET", "/docs")
    assert page.raw["isBase64Encoded"] is False and "swagger-ui" in page.raw["body"]
    icon = invoke("GET", "/docs/favicon-32x32.png")
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
        invoke = Invoker(module, "apigw_v2")
        assert invoke("GET", "/customers").status == 401
        assert invoke("GET", "/customers", headers={"Authorization": "Bearer wrong"}).status == 401
        # The parameter is read at start only: changing it does not change a warm container.
        import boto3

        boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint).put_parameter(
            Name=ssm_parameter, Value="rotated", Type="SecureString", Overwrite=True
        )
        for key in ("first-key", "second-key"):
            ok = invoke("GET", "/customers", headers={"Authorization": f"Bearer {key}"})
            assert ok.status == 200
        assert invoke("GET", "/health").status == 200
    finally:
        module.app.extensions["customer_store"].close()
        module.app.extensions["business_client"].close()


def test_the_dynamodb_store_through_the_handler(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, dynamo_table_name: str, aws_environ: None
) -> None:
    for name, value in {
        "CUSTOMER_STORE": "dynamodb",
        "DYNAMODB_TABLE": dynamo_table_name,
        "DYNAMODB_CREATE_TABLE": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    from customers.aws import lambda_handler

    module = importlib.reload(lambda_handler)
    try:
        invoke = Invoker(module, "apigw_v1")
        created = create(invoke, "dynamo@example.com")
        assert created.status == 201
        assert create(invoke, "DYNAMO@example.com").status == 409
        assert invoke("GET", created.headers["location"]).json() == created.json()
        assert invoke("GET", "/health").json() == {"status": "ok", "store": "dynamodb"}
    finally:
        module.app.extensions["customer_store"].close()
        module.app.extensions["business_client"].close()


@pytest.fixture(params=KINDS)
def keyed_invoke(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Invoker:
    monkeypatch.setenv("API_KEYS", "lambda-key")
    return Invoker(request.getfixturevalue("lambda_module"), request.param)


def test_header_names_with_underscores_are_not_the_key_header(keyed_invoke: Invoker) -> None:
    """The event keeps `X_API_KEY` apart from `X-API-Key`; WSGI would fold them together."""
    assert keyed_invoke("GET", "/customers", headers={"X-API-Key": "lambda-key"}).status == 200
    assert keyed_invoke("GET", "/customers", headers={"X_API_KEY": "lambda-key"}).status == 401
    assert keyed_invoke("GET", "/customers", headers={"x_api_key": "lambda-key"}).status == 401


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
    invoke = Invoker(importlib.reload(lambda_module), kind)
    # WHEN one caller (source 203.0.113.7) puts a new address in front of X-Forwarded-For
    # each time; API Gateway and ALB append the address they saw
    answers = [
        invoke(
            "GET",
            "/customers",
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
    answer = invoke("POST", "/customers", body=body, as_base64=True, headers=FRAMINGS[framing])
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 413
    assert invoke("GET", "/customers", query="email=big@example.com").json() == []


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_base64_body_of_exactly_the_limit_is_read_whole(invoke: Invoker, framing: str) -> None:
    body = json.dumps({"name": "Whole", "email": "whole@example.com"}).encode().ljust(LIMIT)
    answer = invoke("POST", "/customers", body=body, as_base64=True, headers=FRAMINGS[framing])
    assert answer.status == 201
    listed = invoke("GET", "/customers", query="email=whole@example.com").json()
    assert listed == [answer.json()]
