"""The `flask` commands and the store they are pointed at: a command that reads refuses a
store that is not there, and makes none; only serving warns that routes are open.

Each command runs as a user runs it, `flask …` from the project root, in a process of
its own, with the settings in its environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.dynamo import REGION
from tests.served import run_to_exit

FLASK = str(Path(sys.executable).parent / "flask")


def flask(*args: str, settings: dict[str, str]) -> tuple[int | None, str]:
    """The command's exit status and output, at LOG_LEVEL=INFO unless `settings` say."""
    return run_to_exit([FLASK, *args], {"LOG_LEVEL": "INFO", **settings})


@pytest.mark.parametrize(
    "command",
    [("customers", "export", "{out}"), ("customers", "import", "{source}", "--dry-run")],
    ids=["export", "dry-run"],
)
def test_a_command_that_reads_refuses_a_database_that_is_not_there(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    # GIVEN a mistyped SQLITE_PATH, and a file to import
    missing = tmp_path / "custmers.db"
    source = tmp_path / "c.jsonl"
    source.write_text('{"name": "A", "email": "a@example.com"}\n')
    out = tmp_path / "backup.csv"
    args = [part.format(out=out, source=source) for part in command]
    # WHEN the command runs
    code, output = flask(*args, settings={"SQLITE_PATH": str(missing)})
    # THEN it stops with one line naming the setting, and nothing is created
    assert code == 2, output
    assert output.strip().splitlines() == [output.strip()], output
    assert output.startswith(f"customer-api: SQLITE_PATH='{missing}': no database there")
    assert not missing.exists() and not out.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.jsonl"]


@pytest.mark.parametrize(
    "command",
    [("customers", "export", "-", "--format", "csv"), ("init-db",)],
    ids=["export", "init-db"],
)
def test_a_command_refuses_the_in_memory_store_when_its_work_would_vanish(
    command: tuple[str, ...],
) -> None:
    code, output = flask(*command, settings={})
    assert code == 2, output
    assert output.strip().splitlines() == [output.strip()], output
    assert output.startswith("customer-api: SQLITE_PATH=':memory:': the store is in memory")


def test_commands_that_write_make_the_database_and_warn_of_nothing(tmp_path: Path) -> None:
    """`init-db` and an import make the file; no command says that routes are open."""
    database = tmp_path / "customers.db"
    source = tmp_path / "c.jsonl"
    source.write_text('{"name": "A", "email": "a@example.com"}\n')
    settings = {"SQLITE_PATH": str(database)}

    made = flask("init-db", settings=settings)
    imported = flask("customers", "import", str(source), settings=settings)
    exported = flask("customers", "export", str(tmp_path / "out.jsonl"), settings=settings)

    assert made == (0, "store ready: sqlite\n")
    assert imported == (0, "read 1, imported 1, rejected 0\n")
    assert exported == (0, "exported 1 customers\n")


def test_export_refuses_a_dynamodb_table_that_is_not_there_and_makes_none(
    moto_endpoint: str, dynamo_client, aws_environ: None, dynamo_table_name: str
) -> None:
    settings = {
        "CUSTOMER_STORE": "dynamodb",
        "DYNAMODB_TABLE": dynamo_table_name,
        "DYNAMODB_CREATE_TABLE": "1",  # for a read, no reason to make one
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
        "LOG_LEVEL": "WARNING",  # botocore says at INFO where it found the credentials
    }
    code, output = flask("customers", "export", "-", "--format", "jsonl", settings=settings)
    assert code == 2, output
    assert output.strip().splitlines() == [output.strip()], output
    assert output.startswith(f"customer-api: DYNAMODB_TABLE='{dynamo_table_name}': ")
    assert "ResourceNotFoundException" in output
    assert dynamo_table_name not in dynamo_client.list_tables()["TableNames"]
