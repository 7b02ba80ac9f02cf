"""What customers take in the store alone, with and without the rows each create adds.

The served app's memory grows with every customer; this says how much of that growth the
store's own rows are. A fresh process (so nothing freed before is reused) opens an
in-memory `SqliteStore`, creates customers as the benchmark does, and reports its VmRSS
growth, sqlite's own heap (`sqlite3_memory_used`, every cached page included) and the
pages of each table with its indexes (dbstat). Without `history`, the history entry and
change event every create writes are left out: the difference is what those rows take.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
from dataclasses import dataclass, field
from typing import Any

# The table each b-tree (table or index) of the schema belongs to.
TABLE_OF_BTREE = """
SELECT coalesce(i.tbl_name, d.name) AS owner, sum(d.pgsize) AS bytes
FROM dbstat AS d LEFT JOIN sqlite_schema AS i ON i.name = d.name AND i.type = 'index'
GROUP BY owner ORDER BY bytes DESC
"""
MIB = 2**20
# Created before the measured ones, as the served app is seeded before it is filled.
SEEDED = 10_000


@dataclass(frozen=True, slots=True)
class StoreMemory:
    """MiB per 100,000 customers created after the first SEEDED."""

    rss: float
    sqlite_heap: float
    pages: dict[str, float] = field(default_factory=dict)  # per table, indexes included


def sqlite_heap_used() -> int:
    """Bytes the sqlite library holds on its heap in this process, cached pages included
    (`sqlite3_memory_used` of the library the sqlite3 module is linked to)."""
    library = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return int(library.sqlite3_memory_used())


def _vm_rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _fill(count: int, history: bool) -> StoreMemory:
    """In this process: SEEDED creates, then `count` measured ones."""
    from customers.stores.sqlite import SqliteStore
    from db import WrittenBy

    class CustomersOnly(SqliteStore):
        def _record_changes(self, *args: Any, **kwargs: Any) -> None:
            """No history entry and no event: the customers' rows alone."""

    store = SqliteStore() if history else CustomersOnly()
    by = WrittenBy(actor=None, request_id="0" * 32)

    def create(numbers: range) -> None:
        for number in numbers:
            store.create(
                name=f"Bench Customer {number}",
                email=f"bench-{number}@example.com",
                phone="+358 40 123 4567",
                business_id="0112038-9",
                by=by,
            )

    def pages() -> dict[str, int]:
        with store.reading() as conn:
            return {str(table): int(size) for table, size in conn.execute(TABLE_OF_BTREE)}

    create(range(SEEDED))
    rss, heap, seeded_pages = _vm_rss_bytes(), sqlite_heap_used(), pages()
    create(range(SEEDED, SEEDED + count))
    scale = 100_000 / count / MIB
    grown = {table: (size - seeded_pages.get(table, 0)) * scale for table, size in pages().items()}
    return StoreMemory(
        rss=(_vm_rss_bytes() - rss) * scale,
        sqlite_heap=(sqlite_heap_used() - heap) * scale,
        pages={table: size for table, size in grown.items() if size >= 0.1},
    )


def store_memory(count: int, *, history: bool = True) -> StoreMemory:
    """`_fill` in a fresh process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_fill, (count, history))
