"""bench.store_memory and the report's memory verdict: the figures `make bench` judges by."""

from __future__ import annotations

from bench.report import MEMORY_TOLERANCE, Memory, memory_holds
from bench.store_memory import store_memory


def test_the_store_alone_reports_each_table_and_what_the_history_rows_add() -> None:
    with_rows = store_memory(5000, history=True)
    without = store_memory(5000, history=False)
    assert set(with_rows.pages) == {"customers", "customer_history", "events"}
    assert set(without.pages) == {"customers"}
    assert with_rows.sqlite_heap > without.sqlite_heap > 0
    assert with_rows.rss > without.rss


def test_the_memory_target_holds_only_within_its_tolerance_of_the_store_alone() -> None:
    memory = Memory(after_load=100.0, after_load_count=0, full_count=100_000, store_alone=50.0)
    memory.full = 100.0 + 50.0 * (1 + MEMORY_TOLERANCE)
    assert memory_holds(memory)
    memory.full += 1.0
    assert not memory_holds(memory)
