"""DynamoDB fixtures: moto's server on loopback, a fresh table per test, and `--store`.

`pytest --store=dynamodb` runs every test that builds its app from `app_settings` against
DynamoDB (moto in server mode, reached over real HTTP) instead of sqlite.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from customers.stores.dynamodb import DynamoStore

REGION = "eu-north-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("sqlite", "dynamodb"),
        default="sqlite",
        help="the store apps under test use (default: sqlite)",
    )


def _serialised(app: Any) -> Any:
    """`app` handling one request at a time.

    moto's backend is not thread-safe: a transaction checks its conditions, then writes,
    and rolls back by restoring a deep copy of the table, which would undo writes made
    meanwhile by other threads. DynamoDB itself serialises conflicting writes, so one
    lock keeps the double faithful where the concurrency tests look.
    """
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()

    return serialised


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of moto's DynamoDB on a free loopback port, for the whole session."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any) -> None:
            """No line per request: the tests' own logs stay readable."""

    class SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # moto's own, with the app serialised
            app = _serialised(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address,
                self._port,
                app,
                threaded=True,
                request_handler=QuietHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = SerialMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        assert server._server is not None
        server._server.server_close()  # stop() leaves the listening socket open


def make_client(endpoint_url: str) -> DynamoDBClient:
    """A client for moto with fake credentials; the caller closes it."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=REGION, **FAKE_CREDENTIALS)
    config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=20)
    return session.client("dynamodb", endpoint_url=endpoint_url, config=config)


@pytest.fixture(scope="session")
def dynamo_client(moto_endpoint: str) -> Iterator[DynamoDBClient]:
    client = make_client(moto_endpoint)
    yield client
    client.close()


@pytest.fixture
def dynamo_table_name(dynamo_client: DynamoDBClient) -> Iterator[str]:
    """A table name no other test uses; the table is deleted afterwards if it was made."""
    name = f"customers-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(dynamo_client.exceptions.ResourceNotFoundException):
        dynamo_client.delete_table(TableName=name)


@pytest.fixture
def dynamo_table(dynamo_client: DynamoDBClient, dynamo_table_name: str) -> str:
    """A fresh, empty table with both indexes, made the way the service makes it."""
    from customers.stores.dynamodb import DynamoStore

    DynamoStore(dynamo_table_name, client=dynamo_client).create_table_if_missing()
    return dynamo_table_name


@pytest.fixture
def dynamo_store(dynamo_client: DynamoDBClient, dynamo_table: str) -> Iterator[DynamoStore]:
    from customers.stores.dynamodb import DynamoStore

    store = DynamoStore(dynamo_table, client=dynamo_client)
    yield store
    store.close()


@pytest.fixture
def aws_environ() -> Iterator[None]:
    """Fake credentials in the environment, for clients the app builds itself."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        yield


@pytest.fixture(autouse=True)
def store_option(request: pytest.FixtureRequest) -> None:
    """With `--store=dynamodb`, point the settings of the test's app at a fresh table."""
    if request.config.getoption("--store") != "dynamodb":
        return
    if "app_settings" not in request.fixturenames:
        return
    request.getfixturevalue("aws_environ")
    settings: dict[str, Any] = request.getfixturevalue("app_settings")
    settings.update(
        CUSTOMER_STORE="dynamodb",
        DYNAMODB_TABLE=request.getfixturevalue("dynamo_table_name"),
        DYNAMODB_CREATE_TABLE=True,
        AWS_ENDPOINT_URL=request.getfixturevalue("moto_endpoint"),
        AWS_REGION=REGION,
    )


@pytest.fixture
def store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """A served app's store: sqlite, or with `--store=dynamodb` a fresh table in moto.

    The table is made here, before the server starts, so that no worker is still busy
    making it (and waiting for it) when a test has its answers and stops the server.
    """
    if request.config.getoption("--store") != "dynamodb":
        return {}
    request.getfixturevalue("aws_environ")  # the credentials reach the server's environment
    return {
        "CUSTOMER_STORE": "dynamodb",
        "DYNAMODB_TABLE": request.getfixturevalue("dynamo_table"),
        "AWS_ENDPOINT_URL": request.getfixturevalue("moto_endpoint"),
        "AWS_REGION": REGION,
    }


def file_or_table(store_settings: dict[str, str], path: Path) -> dict[str, str]:
    """The served app's store: a sqlite file at `path`, or the DynamoDB table of
    `store_settings` (the service refuses SQLITE_PATH beside CUSTOMER_STORE=dynamodb)."""
    return store_settings or {"SQLITE_PATH": str(path)}
