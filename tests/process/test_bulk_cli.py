"""`flask customers import` and `export` on a sqlite file and on DynamoDB (moto's server).

Each test runs on both persistent stores through the `target` fixture: a store the
commands are pointed at by settings, as the environment would point them.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from click.testing import Result
from flask import Flask

from app import create_app
from customers import cli
from db import ListQuery
from tests.conftest import TEST_SETTINGS
from tests.dynamo import REGION
from tests.lossy_proxy import LossyProxy
from tests.served import ROOT, ServerProcess

FLASK = str(Path(sys.executable).parent / "flask")

GOOD_AND_BAD = """\
name,email,phone,businessId,id,createdAt,updatedAt
Maija Meikäläinen,maija@example.com,+358 40 123 4567,0112038-9,,,
,nameless@example.com,,,,,
Matti,not-an-email,,,,,
Liisa,liisa@example.com,,1234567-8,,,
Pekka,MAIJA@Example.com,,,,,
Taken,Taken@Example.com,,,,,
  Kept  ,kept@example.com,,,cust-1,2024-01-02T03:04:05Z,2024-02-03T04:05:06.5+02:00
Again,again@example.com,,,cust-1,,
Late,late@example.com,,,,,2024-01-01T00:00:00Z
,,x,,,,
"""
EXPECTED_REJECTIONS = [
    "line 3: name: is required",
    "line 4: email: is not a valid email address: An email address must have an @-sign.",
    "line 5: businessId: must be a Finnish business ID NNNNNNN-C with a valid check digit",
    "line 6: email: is already in use by line 2",  # an earlier row of the file has it
    "line 7: email: is already in use",  # a stored customer has it
    "line 9: id: is already in use by line 8",
    "line 10: updatedAt: needs createdAt",
    "line 11: name: is required",
    "line 11: email: is required",
    "line 11: phone: must be 1 to 32 digits, spaces and + - ( ), with at least one digit",
]


@dataclass
class Target:
    """A persistent store the commands run against: its app settings and environment."""

    settings: dict[str, Any]
    fresh: Callable[[], Target]
    apps: list[Flask] = field(default_factory=list)

    def app(self) -> Flask:
        application = create_app(self.settings)
        self.apps.append(application)
        return application

    def run(self, *args: str, input: bytes | str | None = None) -> Result:
        """The command in-process through Flask's CLI runner, on a fresh app."""
        return self.app().test_cli_runner().invoke(args=["customers", *args], input=input)

    def customers(self) -> list[dict[str, Any]]:
        store = self.app().extensions["customer_store"]
        return [record.to_public() for record in store.list_page(ListQuery(limit=500)).items]

    def environ(self) -> dict[str, str]:
        """The settings as the environment variables a process would read."""
        return {
            name: ("1" if value is True else str(value))
            for name, value in self.settings.items()
            if name not in ("TESTING",)
        }


@pytest.fixture(params=["file", "dynamodb"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    made: list[Target] = []

    def make() -> Target:
        if request.param == "file":
            path = tmp_path / f"customers-{len(made)}.db"
            settings = {**TEST_SETTINGS, "SQLITE_PATH": str(path)}
        else:
            request.getfixturevalue("aws_environ")
            table = f"customers-{uuid.uuid4().hex[:12]}"
            settings = {
                **TEST_SETTINGS,
                "CUSTOMER_STORE": "dynamodb",
                "DYNAMODB_TABLE": table,
                "DYNAMODB_CREATE_TABLE": True,
                "AWS_ENDPOINT_URL": request.getfixturevalue("moto_endpoint"),
                "AWS_REGION": REGION,
            }
        made.append(Target(settings, make))
        return made[-1]

    client = request.getfixturevalue("dynamo_client") if request.param == "dynamodb" else None
    yield make()
    for each in made:
        for application in each.apps:
            application.extensions["customer_store"].close()
            application.extensions["business_client"].close()
        if client is not None:
            client.delete_table(TableName=each.settings["DYNAMODB_TABLE"])


def rejections(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("line ")]


def last_line(result: Result) -> str:
    return result.stderr.splitlines()[-1]


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_good_rows_are_imported_and_each_bad_one_reported(target: Target, tmp_path: Path):
    # GIVEN a store holding one customer and a file with good and bad rows
    with target.app().test_client() as client:
        assert (
            client.post("/customers", json={"name": "T", "email": "taken@example.com"}).status_code
            == 201
        )
    source = write(tmp_path / "customers.csv", GOOD_AND_BAD)

    # WHEN it is imported
    result = target.run("import", str(source))

    # THEN every bad field is named with its line, the good rows are in, exit status 1
    assert result.exit_code == 1, result.stderr
    assert rejections(result) == EXPECTED_REJECTIONS
    assert last_line(result) == "read 10, imported 2, rejected 8"
    assert result.stdout == ""
    stored = {customer["email"]: customer for customer in target.customers()}
    assert set(stored) == {"taken@example.com", "maija@example.com", "kept@example.com"}
    assert stored["maija@example.com"]["name"] == "Maija Meikäläinen"
    assert stored["maija@example.com"]["phone"] == "+358 40 123 4567"
    assert stored["maija@example.com"]["businessId"] == "0112038-9"
    assert stored["kept@example.com"] == {
        "id": "cust-1",
        "name": "Kept",  # trimmed, as a POST trims it
        "email": "kept@example.com",
        "phone": None,
        "businessId": None,
        "createdAt": "2024-01-02T03:04:05.000000Z",
        "updatedAt": "2024-02-03T02:05:06.500000Z",
    }


def test_a_dry_run_reports_the_same_and_writes_nothing(target: Target, tmp_path: Path):
    source = write(tmp_path / "customers.csv", GOOD_AND_BAD.replace("Taken,", "Free,"))

    dry = target.run("import", str(source), "--dry-run")

    assert dry.exit_code == 1
    assert target.customers() == []
    assert last_line(dry) == ("read 10, would import 3, rejected 7 (dry run: nothing was written)")
    real = target.run("import", str(source))
    assert rejections(real) == rejections(dry)
    assert last_line(real) == "read 10, imported 3, rejected 7"


def test_a_file_with_only_good_rows_exits_0(target: Target, tmp_path: Path):
    source = write(tmp_path / "c.jsonl", '{"name": "A", "email": "a@example.com"}\n\n')
    result = target.run("import", str(source))
    assert (result.exit_code, last_line(result)) == (0, "read 1, imported 1, rejected 0")
    assert [c["email"] for c in target.customers()] == ["a@example.com"]


SAMPLE = [
    {"name": "Åsa Öberg", "email": "asa@example.com", "phone": "+46 8 123", "businessId": None},
    {
        "name": 'Quote "Q", comma',
        "email": "q@example.com",
        "phone": None,
        "businessId": "0112038-9",
    },
    {
        "name": "Same Time B",
        "email": "b@example.com",
        "id": "b",
        "createdAt": "2024-01-01T00:00:00Z",
    },
    {
        "name": "Same Time A",
        "email": "a@example.com",
        "id": "a",
        "createdAt": "2024-01-01T00:00:00Z",
    },
    {
        "name": "Edited",
        "email": "e@example.com",
        "id": "e",
        "createdAt": "2023-05-05T05:05:05.123456Z",
        "updatedAt": "2025-01-01T00:00:00Z",
    },
]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "ndjson", "json"])
def test_export_import_export_is_identical(target: Target, tmp_path: Path, suffix: str):
    # GIVEN a store with customers of every shape
    seed = write(tmp_path / "seed.jsonl", "".join(orjson.dumps(c).decode() + "\n" for c in SAMPLE))
    assert target.run("import", str(seed)).exit_code == 0

    # WHEN it is exported, imported into an empty store, and exported from there
    first, second = tmp_path / f"first.{suffix}", tmp_path / f"second.{suffix}"
    exported = target.run("export", str(first))
    other = target.fresh()
    imported = other.run("import", str(first))
    again = other.run("export", str(second))

    # THEN both exports are the same bytes, in list order, with every field
    assert (exported.exit_code, imported.exit_code, again.exit_code) == (0, 0, 0)
    assert last_line(exported) == "exported 5 customers"
    assert last_line(imported) == "read 5, imported 5, rejected 0"
    assert second.read_bytes() == first.read_bytes()
    assert other.customers() == target.customers()
    ids = [c["id"] for c in other.customers()]
    assert ids[:3] == ["e", "a", "b"]  # createdAt, then id


def test_export_formats_are_what_they_say(target: Target, tmp_path: Path):
    seed = write(
        tmp_path / "seed.jsonl", "".join(orjson.dumps(c).decode() + "\n" for c in SAMPLE[2:4])
    )
    assert target.run("import", str(seed)).exit_code == 0
    rows = target.customers()

    as_json = target.run("export", "-", "--format", "json")
    as_lines = target.run("export", "-", "--format", "jsonl")
    as_csv = target.run("export", str(tmp_path / "out.csv"))

    assert (as_json.exit_code, as_lines.exit_code, as_csv.exit_code) == (0, 0, 0)
    assert orjson.loads(as_json.stdout_bytes) == rows
    assert [orjson.loads(line) for line in as_lines.stdout_bytes.splitlines()] == rows
    assert (tmp_path / "out.csv").read_bytes().decode().splitlines() == [
        "id,name,email,phone,businessId,createdAt,updatedAt",
        "a,Same Time A,a@example.com,,,2024-01-01T00:00:00.000000Z,2024-01-01T00:00:00.000000Z",
        "b,Same Time B,b@example.com,,,2024-01-01T00:00:00.000000Z,2024-01-01T00:00:00.000000Z",
    ]
    assert (tmp_path / "out.csv").stat().st_mode & 0o077 == 0  # personal data: owner only


def test_an_empty_store_exports_an_empty_file(target: Target, tmp_path: Path):
    assert target.run("export", str(tmp_path / "e.json")).exit_code == 0
    assert (tmp_path / "e.json").read_bytes() == b"[]\n"
    assert target.run("export", str(tmp_path / "e.csv")).exit_code == 0
    assert (
        tmp_path / "e.csv"
    ).read_bytes() == b"id,name,email,phone,businessId,createdAt,updatedAt\r\n"


def test_the_service_serves_imported_customers_with_their_ids_and_timestamps(
    target: Target, tmp_path: Path
):
    source = write(tmp_path / "c.jsonl", "".join(orjson.dumps(c).decode() + "\n" for c in SAMPLE))
    assert target.run("import", str(source)).exit_code == 0

    rows = target.customers()
    server = ServerProcess({**target.environ(), "WORKERS": "1"}, output=tmp_path / "server.log")
    try:
        one = requests.get(f"{server.url}/customers/e", timeout=5)
        listed = requests.get(f"{server.url}/customers", params={"limit": 2}, timeout=5)
        rest = requests.get(server.url + listed.links["next"]["url"], timeout=5)
    finally:
        assert server.stop() == 0

    assert one.status_code == 200
    assert one.json() == {
        "id": "e",
        "name": "Edited",
        "email": "e@example.com",
        "phone": None,
        "businessId": None,
        "createdAt": "2023-05-05T05:05:05.123456Z",
        "updatedAt": "2025-01-01T00:00:00.000000Z",
    }
    assert one.headers["ETag"] == '"1"'
    assert [c["id"] for c in listed.json()] == ["e", "a"]
    assert [c["id"] for c in rest.json()] == [row["id"] for row in rows[2:4]]


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("bom.csv", "name,email\nBom,bom@example.com\n", None),
        ("bom.jsonl", '{"name": "Bom", "email": "bom@example.com"}\n', None),
        ("bom.json", '[{"name": "Bom", "email": "bom@example.com"}]', None),
    ],
)
def test_a_file_with_a_byte_order_mark(target: Target, tmp_path: Path, name, content, fmt):
    result = target.run("import", str(write(tmp_path / name, content, bom=True)))
    assert (result.exit_code, last_line(result)) == (0, "read 1, imported 1, rejected 0")
    assert [c["name"] for c in target.customers()] == ["Bom"]


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl", "empty.ndjson", "empty.json"])
def test_an_empty_file_imports_nothing_and_succeeds(target: Target, tmp_path: Path, name: str):
    result = target.run("import", str(write(tmp_path / name, "")))
    assert (result.exit_code, last_line(result)) == (0, "read 0, imported 0, rejected 0")
    assert target.customers() == []


def test_stdin_with_a_format(target: Target):
    result = target.run("import", "-", "--format", "csv", input="name,email\nA,a@example.com\n")
    assert (result.exit_code, last_line(result)) == (0, "read 1, imported 1, rejected 0")


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["-"], None, "cannot tell the format of stdin or stdout: use --format"),
        (["{dir}/c.txt"], "name,email\n", "cannot tell the format of"),
        (["{dir}/missing.csv"], None, "does not exist"),
        (["{dir}/c.csv", "--format", "xml"], "", "'xml' is not one of"),
        (["{dir}/c.csv"], "name,mail\nA,a@example.com\n", "line 1: unknown column 'mail'"),
        (["{dir}/c.csv"], "email\na@example.com\n", "line 1: column 'name' is required"),
        (["{dir}/c.csv"], "name,email,name\n", "line 1: column 'name' is given more than once"),
        (["{dir}/c.json"], '{"name": "A"}', "line 1: the file is not a JSON array"),
        (
            ["{dir}/c.json"],
            '[\n{"name": "A", "email": "a@example.com"},\n{"name"',
            "line 3: the array is not closed",
        ),
    ],
)
def test_usage_errors_and_unreadable_files_exit_2(
    target: Target, tmp_path: Path, args, content, message
):
    args = [arg.format(dir=tmp_path) for arg in args]
    if content is not None:
        write(Path(args[0]), content)
    result = target.run("import", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_rows_before_an_unreadable_point_are_imported_and_counted(target: Target, tmp_path: Path):
    source = write(
        tmp_path / "c.json", '[{"name": "A", "email": "a@example.com"}, "x", {"name": "B"'
    )
    result = target.run("import", str(source))
    assert result.exit_code == 2
    assert rejections(result) == ["line 1: row: must be a JSON object"]
    assert result.stderr.splitlines()[-1].endswith(
        "c.json: line 1: the array is not closed; before that, read 2, imported 1, rejected 1"
    )
    assert [c["name"] for c in target.customers()] == ["A"]


def test_a_csv_saved_by_excel_with_finnish_settings_is_imported(target: Target, tmp_path: Path):
    # Excel's "CSV UTF-8" with Finnish settings: a byte order mark, ';' and CRLF.
    source = write(
        tmp_path / "asiakkaat.csv",
        "name;email;phone;businessId\r\n"
        "Maija Meikäläinen;maija@example.com;+358 40 123 4567;0112038-9\r\n"
        '"Virtanen; Oy";virtanen@example.com;;\r\n',
        bom=True,
    )
    result = target.run("import", str(source))
    assert (result.exit_code, last_line(result)) == (0, "read 2, imported 2, rejected 0")
    assert {c["name"]: c["phone"] for c in target.customers()} == {
        "Maija Meikäläinen": "+358 40 123 4567",
        "Virtanen; Oy": None,
    }


def file_store_run(tmp_path: Path, *args: str) -> Result:
    """A command on a sqlite file store of its own: for what needs no second store."""
    application = create_app({**TEST_SETTINGS, "SQLITE_PATH": str(tmp_path / "c.db")})
    try:
        return application.test_cli_runner().invoke(args=["customers", *args])
    finally:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()


def test_a_stray_quote_costs_its_row_not_the_rest_of_the_file(tmp_path: Path):
    lines = [f"C{number},c{number}@example.com\n" for number in range(1, 501)]
    lines[1] = '"Stray,stray@example.com\n'  # line 3 of the file
    source = write(tmp_path / "c.csv", "name,email\n" + "".join(lines))
    result = file_store_run(tmp_path, "import", str(source))
    assert rejections(result) == [
        'line 3: row: the quote (") opened on line 3 is never closed; '
        "the lines after line 3 are read as rows of their own"
    ]
    assert (result.exit_code, last_line(result)) == (1, "read 500, imported 499, rejected 1")


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (
            ["--delimiter", ","],
            "name;email\nA;a@example.com\n",
            "line 1: the header looks separated by ';', not by ',': use --delimiter ';'; "
            "nothing was imported",
        ),
        (
            ["--delimiter", "ab"],
            "",
            "Invalid value for '--delimiter': give one character (such as ',', ';', tab)",
        ),
        (
            [],
            "name,email,note\nA,a@example.com,x\n",
            "line 1: unknown column 'note' (--ignore-unknown-columns leaves such columns out); "
            "the columns are id, name, email, phone, businessId, createdAt, updatedAt; "
            "nothing was imported",
        ),
    ],
)
def test_header_errors_say_how_to_read_the_file(tmp_path: Path, args, content, message):
    source = write(tmp_path / "c.csv", content)
    result = file_store_run(tmp_path, "import", str(source), *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].endswith(message)


def test_unknown_columns_and_members_are_left_out_when_asked(tmp_path: Path):
    csv_file = write(tmp_path / "c.csv", "name,Asiakasnumero,email\nA,17,a@example.com\n")
    json_file = write(tmp_path / "c.jsonl", '{"name": "B", "email": "b@example.com", "n": 1}\n')
    for source in (csv_file, json_file):
        result = file_store_run(tmp_path, "import", str(source), "--ignore-unknown-columns")
        assert (result.exit_code, last_line(result)) == (0, "read 1, imported 1, rejected 0")


def test_a_json_file_with_a_bad_byte_says_what_was_handled(tmp_path: Path):
    first = tmp_path / "first.json"
    first.write_bytes(b'[{"name": "\xff", "email": "a@example.com"}]')
    later = tmp_path / "later.json"
    later.write_bytes(b'[{"name": "A", "email": "a@example.com"},\n{"name": "\xff"}]')

    at_once = file_store_run(tmp_path, "import", str(first))
    after_one = file_store_run(tmp_path, "import", str(later))

    assert at_once.exit_code == after_one.exit_code == 2
    assert at_once.stderr.splitlines()[-1].endswith(
        "first.json: line 1: the file is not valid UTF-8; nothing was imported"
    )
    assert after_one.stderr.splitlines()[-1].endswith(
        "later.json: line 2: the file is not valid UTF-8; "
        "before that, read 1, imported 1, rejected 0"
    )


def test_a_row_with_a_thousand_problems_reports_twenty(tmp_path: Path):
    members = ", ".join(f'"m{number}": 1' for number in range(1000))
    source = write(tmp_path / "c.jsonl", f'{{"name": "A", "email": "a@example.com", {members}}}\n')
    result = file_store_run(tmp_path, "import", str(source))
    assert rejections(result) == [
        *[f"line 1: m{number}: is not a known field" for number in range(20)],
        "line 1: row: has 980 more problems, not listed",
    ]


def test_an_export_for_excel(tmp_path: Path):
    seed = write(tmp_path / "seed.jsonl", '{"name": "=1+1", "email": "a@example.com"}\n')
    assert file_store_run(tmp_path, "import", str(seed)).exit_code == 0

    excel = file_store_run(tmp_path, "export", str(tmp_path / "excel.csv"), "--excel")
    not_csv = file_store_run(tmp_path, "export", str(tmp_path / "excel.json"), "--excel")

    assert excel.exit_code == 0
    data = (tmp_path / "excel.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid;name;email;phone;businessId;createdAt;updatedAt\r\n")
    assert b";'=1+1;a@example.com;" in data
    assert not_csv.exit_code == 2
    assert "--excel writes CSV, not json" in not_csv.stderr


def test_no_import_into_the_in_memory_store(tmp_path: Path):
    application = create_app(TEST_SETTINGS)
    try:
        source = write(tmp_path / "c.csv", "name,email\nA,a@example.com\n")
        result = application.test_cli_runner().invoke(args=["customers", "import", str(source)])
        checked = application.test_cli_runner().invoke(
            args=["customers", "import", str(source), "--dry-run"]
        )
    finally:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()
    assert result.exit_code == 2
    assert "SQLITE_PATH" in result.stderr
    assert "in memory" in result.stderr
    # Checking a file needs no store to keep: a dry run is allowed.
    assert (checked.exit_code, last_line(checked)) == (
        0,
        "read 1, would import 1, rejected 0 (dry run: nothing was written)",
    )


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path, monkeypatch):
    # On the file store only: moto copies its whole table in every transaction.
    monkeypatch.setattr(cli, "PROGRESS_EVERY", 0.0)
    application = create_app({**TEST_SETTINGS, "SQLITE_PATH": str(tmp_path / "c.db")})
    lines = "".join(f"C{i},c{i}@example.com\n" for i in range(2500))
    source = write(tmp_path / "c.csv", "name,email\n" + lines)
    try:
        result = application.test_cli_runner().invoke(args=["customers", "import", str(source)])
    finally:
        application.extensions["customer_store"].close()
        application.extensions["business_client"].close()
    progress = [line for line in result.stderr.splitlines() if line.startswith("importing: ")]
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [line.split(" rows")[0] for line in progress] == [
        "importing: 1,000",
        "importing: 2,000",
        "importing: 2,500",
    ]
    assert all(line.endswith(" rows/s") for line in progress)


def test_a_progress_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = cli.Progress("importing", total_bytes=1000, stream=stream)
    progress.update(250, 500)
    progress.echo("line 3: name: is required")
    progress.update(500, 1000)
    progress.close()
    shown = stream.getvalue()
    assert "importing" in shown
    assert "50%" in shown and "100%" in shown
    assert "500 rows, " in shown and " rows/s" in shown
    assert "\x1b[2Kline 3: name: is required\n" in shown

    # Without a size (stdin, an export) the bar pulses and still counts rows.
    stream = Terminal()
    progress = cli.Progress("exporting", total_bytes=None, stream=stream)
    progress.update(2000)
    progress.close()
    assert "exporting" in stream.getvalue()
    assert "2,000 rows, " in stream.getvalue()


def test_dynamodb_losing_answers_imports_what_the_file_store_imports(
    tmp_path: Path, moto_endpoint: str, dynamo_client, aws_environ
):
    # GIVEN a file of good and bad rows, long enough for several DynamoDB transactions
    extra = "".join(f"Extra {number},extra{number}@example.com,,,,,\n" for number in range(110))
    source = write(tmp_path / "c.csv", GOOD_AND_BAD + extra)
    on_file = file_store_run(tmp_path, "import", str(source))

    # WHEN DynamoDB applies every transaction but the first answer to each is lost
    table = f"customers-{uuid.uuid4().hex[:12]}"
    with LossyProxy(moto_endpoint) as proxy:
        proxy.lose_every_first("TransactWriteItems")
        settings = {
            **TEST_SETTINGS,
            "CUSTOMER_STORE": "dynamodb",
            "DYNAMODB_TABLE": table,
            "DYNAMODB_CREATE_TABLE": True,
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_REGION": REGION,
        }
        application = create_app(settings)
        try:
            on_dynamodb = application.test_cli_runner().invoke(
                args=["customers", "import", str(source)]
            )
            store = application.extensions["customer_store"]
            stored = store.list_page(ListQuery(limit=500)).items
        finally:
            application.extensions["customer_store"].close()
            application.extensions["business_client"].close()
            dynamo_client.delete_table(TableName=table)

    # THEN it reports and holds what the file store does: no row rejected for its own write
    assert len(proxy.lost) >= 3
    assert isinstance(on_dynamodb.exception, SystemExit)  # no traceback
    assert on_dynamodb.exit_code == on_file.exit_code == 1
    assert rejections(on_dynamodb) == rejections(on_file)
    assert last_line(on_dynamodb) == last_line(on_file) == "read 120, imported 113, rejected 7"
    file_store = create_app({**TEST_SETTINGS, "SQLITE_PATH": str(tmp_path / "c.db")})
    try:
        on_file_stored = file_store.extensions["customer_store"].list_page(ListQuery(limit=500))
    finally:
        file_store.extensions["customer_store"].close()
        file_store.extensions["business_client"].close()
    assert sorted(c.email for c in stored) == sorted(c.email for c in on_file_stored.items)


# --- the real command, as a user runs it ------------------------------------------------


def flask(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [FLASK, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_commands_as_a_user_runs_them(target: Target, tmp_path: Path):
    source = write(tmp_path / "c.csv", GOOD_AND_BAD)
    env = target.environ()

    imported = flask("--app", "app", "customers", "import", str(source), env=env)
    # `flask customers` finds the app through .flaskenv; stdout carries the data alone.
    exported = flask("customers", "export", "-", "--format", "jsonl", env=env)

    assert imported.returncode == 1
    assert imported.stdout == b""
    assert imported.stderr.decode().splitlines()[-1] == "read 10, imported 3, rejected 7"
    assert exported.returncode == 0
    rows = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert [row["email"] for row in rows] == [
        "kept@example.com",
        "maija@example.com",
        "Taken@Example.com",
    ]


def test_a_store_that_fails_ends_in_one_line_and_exit_status_3(tmp_path: Path, aws_environ):
    # GIVEN a DynamoDB endpoint where nothing listens
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{unused.getsockname()[1]}"
    env = {"CUSTOMER_STORE": "dynamodb", "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION}
    source = write(tmp_path / "c.csv", "name,email\nA,a@example.com\n")

    # WHEN the commands run against it
    imported = flask("customers", "import", str(source), env=env)
    exported = flask("customers", "export", str(tmp_path / "out.csv"), env=env)

    # THEN each says what happened and what to do, in one line, without a traceback
    assert (imported.returncode, exported.returncode) == (3, 3)
    for result in (imported, exported):
        assert b"Traceback" not in result.stderr
    assert imported.stderr.decode().splitlines()[-1] == (
        f"Error: {source}: the store failed: Could not connect to the endpoint URL: "
        f'"{endpoint}/"; nothing was imported; import the file again once the store answers '
        "(rows already in are then reported as in use)"
    )
    assert exported.stderr.decode().splitlines()[-1] == (
        f'Error: the store failed: Could not connect to the endpoint URL: "{endpoint}/"; '
        f"{tmp_path / 'out.csv'} was left as it was; export again once the store answers"
    )
    assert not (tmp_path / "out.csv").exists()
