"""The bulk-import benchmark's yardstick loads the rows it is given into the store's schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.bulk_import import write_csv, yardstick


def test_yardstick_inserts_every_row_by_column(tmp_path: Path) -> None:
    # GIVEN a file of 30 rows, some without a phone or a business ID
    source = tmp_path / "rows.csv"
    write_csv(source, 30)
    # WHEN the bare executemany loads it
    yardstick(source, tmp_path / "yardstick.db")
    # THEN every row is there, each value in its own column
    with sqlite3.connect(tmp_path / "yardstick.db") as conn:
        rows = conn.execute(
            "SELECT id, email, email_key, created_at, version FROM customers ORDER BY id"
        ).fetchall()
    assert len(rows) == 30
    assert rows[0] == (
        "imp-00000000",
        "asiakas.0@example0.fi",
        "asiakas.0@example0.fi",
        "2025-01-01T00:00:00.000000Z",
        1,
    )
