"""Make tests/data/schema-vN.sql: a file database at schema version N, made by the code
of the last commit where N was current, dumped as text.

    .venv/bin/python tests/data/make_schema_fixture.py N

The commit is checked out into a temporary worktree (`git worktree add --detach`,
removed afterwards); this script then runs itself there, under that tree's own code, to
open a new file with that version's `SqliteStore` and write the customers below (and,
from version 3, idempotency records) through the store's own methods. What it writes is
dumped with `sqlite3`'s `iterdump` plus the file's `PRAGMA user_version`, so loading the
fixture with `executescript` gives back the file as that release left it.

Ids and timestamps come from the clock, as the store makes them, so a fixture made again
differs in those and nothing else. tests/unit/test_sqlite_migrations.py opens each
fixture with the current store. When a release adds schema version N + 1, make the
fixture of version N from the last commit before it and add that commit below.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Per released schema version: the last commit where it was current, and the module
# holding that commit's SqliteStore (the store left db.py with the tree's reorganisation).
RELEASED: dict[int, tuple[str, str]] = {
    1: ("9ed3694", "db"),  # the parent of d033297, which brought version 2
    2: ("ffa5266", "db"),  # the main line just before f9e8fcf merged version 3 (62f7df9)
    3: ("1931d4f", "customers.stores.sqlite"),  # just before e2faa37 merged version 4 (1278e86)
    4: ("0c4bbb4", "customers.stores.sqlite"),  # just before version 5 (erasure's index) merged
    5: ("d76c241", "customers.stores.sqlite"),  # just before version 6 (the change history) merged
    6: ("87f0f36", "customers.stores.sqlite"),  # just before version 7 (the change events)
    7: ("6bf5e30", "customers.stores.sqlite"),  # just before version 8 (events' indexes)
}

# Several customers, with and without a phone and a business ID, names beyond ASCII.
CUSTOMERS: list[dict[str, str | None]] = [
    {
        "name": "Aino Mäkelä",
        "email": "Aino.Makela@Example.fi",
        "phone": "+358 40 1234567",
        "business_id": "0112038-9",
    },
    {"name": "Bob Builder", "email": "bob@example.com", "phone": None, "business_id": None},
    {
        "name": "Jürgen Groß",
        "email": "juergen@example.de",
        "phone": "+49 30 1234567",
        "business_id": None,
    },
    {
        "name": "陈伟 (Chen Wei)",
        "email": "chen.wei@example.cn",
        "phone": None,
        "business_id": "2331972-7",
    },
    {"name": "Dana O'Neil", "email": "dana@example.ie", "phone": None, "business_id": None},
]
# Live until 2100-01-01; the expired record below is past its time at any `now` above 10.
LIVE_UNTIL = 4_102_444_800


def populate(path: str, module_name: str, version: int) -> None:
    """Write the fixture's rows through the store of the tree this process runs in."""
    store_module = importlib.import_module(module_name)
    store = store_module.SqliteStore(path)
    try:
        made = [store.create(**customer) for customer in CUSTOMERS]
        # A customer changed twice (a PATCH, then another), so its version is 3.
        dana = made[-1]
        store.update(dana.id, changes={"phone": "+353 1 234 5678"}, expected_version=1)
        store.update(dana.id, changes={"name": "Dana Ó Néill"}, expected_version=2)
        if version >= 3:
            write_idempotency_records(store, importlib.import_module("db"))
    finally:
        store.close()


def write_idempotency_records(store: Any, db: Any) -> None:
    """A create answered and replayable, one still running, a refusal kept, one expired."""
    record = db.IdempotencyRecord
    answered_create = record("key-fp-alpha", "create-1", "fp-create-1", "token-1", LIVE_UNTIL)
    assert store.claim_idempotency_key(answered_create, now=0) is None

    def answer_of(customer: Any) -> Any:
        return record(
            answered_create.scope,
            answered_create.key,
            answered_create.fingerprint,
            answered_create.token,
            LIVE_UNTIL,
            201,
            (("Location", f"/customers/{customer.id}"), ("Content-Type", "application/json")),
            f'{{"id":"{customer.id}","name":"Eeva Idempotent"}}'.encode(),
            customer.id,
        )

    store.create(
        name="Eeva Idempotent",
        email="eeva@example.fi",
        phone=None,
        business_id=None,
        idempotency=answer_of,
    )
    running = record("key-fp-alpha", "create-2", "fp-create-2", "token-2", LIVE_UNTIL)
    assert store.claim_idempotency_key(running, now=0) is None
    refused = record("-", "create-3", "fp-create-3", "token-3", LIVE_UNTIL)
    assert store.claim_idempotency_key(refused, now=0) is None
    store.complete_idempotency_key(
        record(
            "-",
            "create-3",
            "fp-create-3",
            "token-3",
            LIVE_UNTIL,
            409,
            (("Content-Type", "application/problem+json"),),
            b'{"title":"Email already in use","status":409}',
            None,
        )
    )
    expired = record("key-fp-beta", "create-4", "fp-create-4", "token-4", 10)
    assert store.claim_idempotency_key(expired, now=0) is None


def dump(path: Path, version: int, commit: str) -> str:
    """The file as SQL text: a header, `iterdump`, then its user_version."""
    conn = sqlite3.connect(path)
    try:
        (user_version,) = conn.execute("PRAGMA user_version").fetchone()
        lines = list(conn.iterdump())
    finally:
        conn.close()
    if user_version != version:
        raise SystemExit(f"{commit} made a file at version {user_version}, not {version}")
    header = [
        f"-- Schema version {version}, made by the code of commit {commit}",
        f"-- with tests/data/make_schema_fixture.py {version}; do not edit by hand.",
    ]
    return "\n".join([*header, *lines, f"PRAGMA user_version = {user_version};", ""])


def make(version: int) -> Path:
    """Check out the version's commit, populate a file with its code, write the fixture."""
    commit, module_name = RELEASED[version]
    with tempfile.TemporaryDirectory(prefix=f"schema-v{version}-") as scratch:
        tree = Path(scratch) / "tree"
        database = Path(scratch) / "customers.db"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
            check=True,
        )
        try:
            populate_there = ["--populate", str(database), module_name, str(version)]
            subprocess.run(
                [sys.executable, __file__, *populate_there],
                check=True,
                cwd=tree,
                env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
        fixture = HERE / f"schema-v{version}.sql"
        fixture.write_text(dump(database, version, commit), encoding="utf-8")
    return fixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", type=int, choices=sorted(RELEASED), nargs="?")
    parser.add_argument("--populate", nargs=3, metavar=("PATH", "MODULE", "VERSION"))
    arguments = parser.parse_args()
    if arguments.populate:
        path, module_name, version = arguments.populate
        populate(path, module_name, int(version))
    elif arguments.version is None:
        parser.error("name the schema version to make")
    else:
        print(make(arguments.version))


if __name__ == "__main__":
    main()
