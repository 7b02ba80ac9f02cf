"""A file from every past schema version opens with the current store: the same schema
as a new file, every row kept, readable and writable; and released steps stay as released.

Each tests/data/schema-vN.sql is a file made by the store of the last commit where
version N was current, dumped as SQL (tests/data/make_schema_fixture.py makes them).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest

from customers.stores.sqlite import ALL_OWNERS, SqliteStore
from customers.stores.sqlite_migrations import SCHEMA_VERSION, STEPS, Step, migrate
from db import (
    CustomerRecord,
    EmailTaken,
    EventQuery,
    IdempotencyKeysExhausted,
    IdempotencyLimits,
    IdempotencyRecord,
    ListQuery,
)

DATA = Path(__file__).parents[1] / "data"
FIXTURES = {
    int(match[1]): path
    for path in DATA.glob("schema-v*.sql")
    if (match := re.fullmatch(r"schema-v(\d+)\.sql", path.name))
}
PAST_VERSIONS = list(range(1, SCHEMA_VERSION))
IDEMPOTENCY_VERSIONS = [version for version in PAST_VERSIONS if version >= 3]  # the table's
LIVE_UNTIL = 4_102_444_800  # the fixtures' live records expire in 2100

# SHA-256 of each released step's statements joined by NUL (see `step_hash`). Files out
# there were migrated by exactly these statements; record a new step here once released.
RELEASED_STEPS = {
    1: "a9090a1423674a6cc926dbfdaad562c91a788c562ea8c3fd5a4bd31b2d82c4e9",
    2: "0324005dca6e9322da90e3302fe55274fb2605f1c6e293a7af9cb38c2996fcd4",
    3: "755df54768a69f28cda0c8e0c2f8e5df30029430b0ced51b76ad083a72508c6f",
    4: "616f970e5cce149ec91ac940ece0e7ad5e84e166fa80e021db3e84ab5cf1283e",
    5: "f933cc8c865b0d571d58c2838c8d05abb7821f168ff0bb66587158264463d308",
    6: "c9551907aa86542b5ab473cf0a224e2f562564d73d91681a0100a18abf2abd33",
    7: "e2d2c7eefda4df28c3efeccd81b7772a224ffa316344aa9e767a84dcb064a906",
    8: "517628b12f8ae5cc1ba2aec7295fde31c3caac47af7ca3b2a37f524f94e0257b",
}


def step_hash(step: Step) -> str:
    return hashlib.sha256("\0".join(step.statements).encode()).hexdigest()


def load_fixture(version: int, directory: Path) -> Path:
    """A file database holding what the fixture of `version` holds."""
    assert version in FIXTURES, f"no tests/data/schema-v{version}.sql: make it (see its script)"
    path = directory / f"v{version}.db"
    conn = sqlite3.connect(path)
    try:
        conn.executescript(FIXTURES[version].read_text(encoding="utf-8"))
    finally:
        conn.close()
    return path


def read(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """The rows of `sql` on the file at `path`, each as a dict by column name."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def schema_of(path: Path) -> list[tuple[str, str, str, str | None]]:
    """`sqlite_master` without page numbers, its SQL with runs of white space as one."""
    rows = read(path, "SELECT type, name, tbl_name, sql FROM sqlite_master")
    return sorted(
        (row["type"], row["name"], row["tbl_name"], row["sql"] and " ".join(row["sql"].split()))
        for row in rows
    )


def dump(path: Path) -> list[str]:
    """Everything the file holds: its schema and rows as SQL, and its user_version."""
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        return [*conn.iterdump(), f"user_version {version}"]
    finally:
        conn.close()


def open_store(path: Path) -> SqliteStore:
    return SqliteStore(str(path))


def reopened(path: Path) -> None:
    """Open the file with the current store, and close it again."""
    open_store(path).close()


def new_file_schema(directory: Path) -> list[tuple[str, str, str, str | None]]:
    path = directory / "new.db"
    reopened(path)
    return schema_of(path)


def as_before(rows: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with only the columns the rows `before` a migration had."""
    return [{column: row[column] for column in before[0]} for row in rows]


def as_record(row: dict[str, Any]) -> CustomerRecord:
    """The customer a stored row holds, its fields taken by name."""
    return CustomerRecord(**{field.name: row[field.name] for field in fields(CustomerRecord)})


def test_every_past_schema_version_has_a_fixture_made_by_its_own_code() -> None:
    assert sorted(FIXTURES) == PAST_VERSIONS, (
        "every schema version before the current one needs tests/data/schema-vN.sql, made"
        " with tests/data/make_schema_fixture.py from the last commit at version N"
    )
    for version, path in FIXTURES.items():
        text = path.read_text(encoding="utf-8")
        assert "made by the code of commit" in text.splitlines()[0]
        assert text.rstrip().endswith(f"PRAGMA user_version = {version};")


@pytest.mark.parametrize("version", PAST_VERSIONS, ids=lambda version: f"v{version}")
def test_a_past_file_gets_the_schema_of_a_new_one(version: int, tmp_path: Path) -> None:
    # GIVEN a file as the release at `version` left it
    path = load_fixture(version, tmp_path)
    assert dump(path)[-1] == f"user_version {version}"
    # WHEN the current store opens it
    store = open_store(path)
    try:
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    # THEN it holds what a new file holds, at the current version
    assert schema_of(path) == new_file_schema(tmp_path)
    assert dump(path)[-1] == f"user_version {SCHEMA_VERSION}"


@pytest.mark.parametrize("version", PAST_VERSIONS, ids=lambda version: f"v{version}")
def test_a_past_file_keeps_every_customer_readable_and_writable(
    version: int, tmp_path: Path
) -> None:
    # GIVEN a past file's customers, every column as that release stored them
    path = load_fixture(version, tmp_path)
    before = read(path, "SELECT * FROM customers ORDER BY id")
    assert len(before) >= 5
    expected = sorted(map(as_record, before), key=lambda record: (record.created_at, record.id))
    store = open_store(path)
    try:
        # THEN every row is there with the same values
        assert as_before(read(path, "SELECT * FROM customers ORDER BY id"), before) == before
        # AND the store reads each, lists them all in order, filters by email and business
        for record in expected:
            assert store.get(record.id) == record
        assert store.list_page(ListQuery(limit=500)).items == expected
        page = store.list_json(ListQuery(limit=500))
        assert orjson.loads(page.body) == [record.to_public() for record in expected]
        business_id = next(record.business_id for record in expected if record.business_id)
        same_business = store.list_page(ListQuery(limit=500, business_id=business_id)).items
        assert same_business == [r for r in expected if r.business_id == business_id]
        first = expected[0]
        by_email = store.list_page(ListQuery(limit=500, email=first.email.upper())).items
        assert by_email == [first]
        with pytest.raises(EmailTaken):
            store.create(name="Again", email=first.email.upper(), phone=None, business_id=None)

        # AND it writes: a merge patch pinned to the version read, then a new customer
        changed = store.update(
            first.id, changes={"phone": "+358 50 7654321"}, expected_version=first.version
        )
        assert (changed.phone, changed.version) == ("+358 50 7654321", first.version + 1)
        assert store.get(first.id) == changed
        made = store.create(
            name="Åsa Öberg", email="asa@example.se", phone=None, business_id="0112038-9"
        )
        assert store.get(made.id) == made
        assert made in store.list_page(ListQuery(limit=500)).items
    finally:
        store.close()


@pytest.mark.parametrize("version", IDEMPOTENCY_VERSIONS, ids=lambda version: f"v{version}")
def test_a_past_file_keeps_its_idempotency_records_counted_against_their_owner(
    version: int, tmp_path: Path
) -> None:
    # GIVEN a past file's idempotency records: answered, running and expired ones
    path = load_fixture(version, tmp_path)
    before = read(path, "SELECT * FROM idempotency_keys")
    assert {row["status"] for row in before} >= {None, 201}
    assert min(row["expires_at"] for row in before) < LIVE_UNTIL
    store = open_store(path)
    try:
        # THEN each keeps its values; one that named no owner counts against its scope
        after = read(path, "SELECT * FROM idempotency_keys")
        owners = {(row["scope"], row["key"]): row["owner"] for row in after}
        assert as_before(after, before) == before
        for row in before:
            assert owners[row["scope"], row["key"]] == row.get("owner", row["scope"])
        # AND the counts the bounds read hold every record, per owner and in all
        assert read_counts(path) == {**Counter(owners.values()), ALL_OWNERS: len(after)}

        # AND the store finds each as the current record type
        for row in before:
            owner = owners[row["scope"], row["key"]]
            again = IdempotencyRecord(
                row["scope"], row["key"], "another", "another", LIVE_UNTIL, owner=owner
            )
            assert store.claim_idempotency_key(again, now=0) == IdempotencyRecord(
                **{
                    **row,
                    "headers": tuple(tuple(pair) for pair in orjson.loads(row["headers"])),
                    "owner": owner,
                }
            )

        # AND the next claim purges the expired ones, uncounted, and is counted itself
        expired = [row for row in after if row["expires_at"] < LIVE_UNTIL]
        now = max(row["expires_at"] for row in expired)
        newcomer = IdempotencyRecord("newcomer", "k", "f", "t", LIVE_UNTIL, owner="newcomer")
        assert store.claim_idempotency_key(newcomer, now=now) is None
        kept = Counter(row["owner"] for row in read(path, "SELECT owner FROM idempotency_keys"))
        assert kept.total() == len(after) - len(expired) + 1
        assert read_counts(path) == {**kept, ALL_OWNERS: kept.total()}
        # AND the bound per client holds for the busiest owner
        busiest, live = kept.most_common(1)[0]
        limits = IdempotencyLimits(per_client=live, total=10_000, lifetime=LIVE_UNTIL)
        with pytest.raises(IdempotencyKeysExhausted):
            store.claim_idempotency_key(
                IdempotencyRecord(busiest, "one-more", "f", "t", LIVE_UNTIL, owner=busiest),
                now=now,
                limits=limits,
            )
    finally:
        store.close()


def read_counts(path: Path) -> dict[str, int]:
    """The live records per owner, and of all, as the store's triggers keep them."""
    return {row["owner"]: row["live"] for row in read(path, "SELECT * FROM idempotency_counts")}


def test_a_version_7_file_keeps_its_events_and_never_hands_a_number_out_again(
    tmp_path: Path,
) -> None:
    """Step 8 copies the events table: every event keeps its number and contents, and the
    sequence's high-water mark comes along, past the newest events purged before the copy."""
    path = load_fixture(7, tmp_path)
    events = read(path, "SELECT * FROM events ORDER BY seq")
    assert len(events) >= 2
    newest = events.pop()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM events WHERE seq = ?", (newest["seq"],))  # purged
    conn.close()
    store = open_store(path)
    try:
        page = store.events_page(EventQuery(after=None, limit=100, type=None, subject=None))
        created = store.create(
            name="After Step Eight", email="eight@example.fi", phone=None, business_id=None
        )
    finally:
        store.close()
    kept = read(path, "SELECT * FROM events WHERE seq <= ? ORDER BY seq", (events[-1]["seq"],))
    assert kept == events
    assert [event.id for event in page.items] == [event["id"] for event in events]
    (made,) = read(path, "SELECT seq, subject FROM events WHERE seq > ?", (newest["seq"] - 1,))
    assert made == {"seq": newest["seq"] + 1, "subject": created.id}


@pytest.mark.parametrize("version", PAST_VERSIONS, ids=lambda version: f"v{version}")
def test_opening_a_migrated_file_again_changes_nothing(version: int, tmp_path: Path) -> None:
    path = load_fixture(version, tmp_path)
    reopened(path)
    migrated = dump(path)
    reopened(path)
    assert dump(path) == migrated


def test_a_failing_step_rolls_back_every_step_before_it(tmp_path: Path) -> None:
    # GIVEN a version 1 file that also holds a table step 4 would create
    path = load_fixture(1, tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE idempotency_counts (owner TEXT)")
    conn.commit()
    conn.close()
    before = dump(path)
    # WHEN steps 2 and 3 have run and step 4 fails
    with pytest.raises(sqlite3.OperationalError, match="idempotency_counts"):
        open_store(path)
    # THEN the file is as it was: still version 1, its rows in their rowid table
    assert dump(path) == before


def test_a_step_added_later_migrates_every_past_file_as_it_builds_a_new_one(
    tmp_path: Path,
) -> None:
    """A new column, the change the steps exist for: every past file and a new one end
    with the same schema (the 1->2 step once pasted in the current CREATE TABLE, which
    a later ADD COLUMN would then have met twice)."""
    later = (
        *STEPS,
        Step(
            SCHEMA_VERSION + 1,
            (
                "ALTER TABLE customers ADD COLUMN probe_added_later TEXT",
                "CREATE INDEX customers_probe ON customers (probe_added_later)",
            ),
        ),
    )
    current = tmp_path / "current.db"
    reopened(current)
    paths = {
        0: tmp_path / "new.db",
        **{version: load_fixture(version, tmp_path) for version in PAST_VERSIONS},
        SCHEMA_VERSION: current,
    }
    for path in paths.values():
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            migrate(conn, name=str(path), steps=later)
        finally:
            conn.close()
        assert dump(path)[-1] == f"user_version {SCHEMA_VERSION + 1}"
    schemas = {version: schema_of(path) for version, path in paths.items()}
    assert all(schema == schemas[0] for schema in schemas.values())
    assert "customers_probe" in {name for _, name, _, _ in schemas[0]}


def test_several_stores_opening_one_old_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Each store has its own connection, as each worker process has: one runs the
    steps, the others wait for its transaction and find nothing left to do."""
    path = load_fixture(1, tmp_path)
    customers = read(path, "SELECT * FROM customers ORDER BY id")
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def open_at_once() -> None:
        start.wait()
        try:
            reopened(path)
        except BaseException as exc:  # reported below, from the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=open_at_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert schema_of(path) == new_file_schema(tmp_path)
    assert as_before(read(path, "SELECT * FROM customers ORDER BY id"), customers) == customers


@pytest.mark.parametrize("version", [0, 1], ids=["new file", "v1 file"])
def test_a_store_opens_a_file_once_another_connection_has_written_to_it(
    version: int, tmp_path: Path
) -> None:
    """A file not yet in WAL mode, while another process writes to it (builds the
    schema, say): the store waits for that write as for any other, not failing at once."""
    path = load_fixture(version, tmp_path) if version else tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    done = threading.Timer(0.2, writer.execute, ("COMMIT",))
    done.start()
    try:
        reopened(path)
    finally:
        done.join()
        writer.close()
    assert dump(path)[-1] == f"user_version {SCHEMA_VERSION}"


def test_a_store_gives_up_on_a_file_held_past_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            SqliteStore(str(path), busy_timeout_ms=50)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_steps_are_numbered_one_by_one_from_1() -> None:
    assert [step.version for step in STEPS] == list(range(1, len(STEPS) + 1))


@pytest.mark.parametrize("step", STEPS, ids=lambda step: f"step{step.version}")
def test_released_steps_are_never_edited(step: Step) -> None:
    recorded = RELEASED_STEPS.get(step.version)
    assert recorded is not None, (
        f"step {step.version} is new: once it is released, record its hash here:"
        f" {step.version}: {step_hash(step)!r}"
    )
    assert step_hash(step) == recorded, (
        f"step {step.version} of customers/stores/sqlite_migrations.py was edited after"
        " its release. Released steps are frozen: files out there were migrated by the"
        " statements as released, so an edit would leave them with another schema than a"
        " new file. Put the step back as it was and add the change as a new step"
        f" {len(STEPS) + 1}."
    )
