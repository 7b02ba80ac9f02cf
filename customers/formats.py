"""Customer files: CSV, JSON Lines and a JSON array, read and written a row at a time.

Readers (`csv_rows`, `json_rows`) take a binary stream and yield `SourceRow`s
(`file_rows`). Nothing here knows the field rules; the importer checks every row with
the API's own model. Rows are streamed, never all held: memory stays the same however
long the file. Encoding: UTF-8, with or without a byte order mark. A file with nothing
in it holds no rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from customers.csv_rows import read_csv, write_csv
from customers.file_rows import CountingReader, ReadOptions, SourceRow
from customers.json_rows import (
    read_json_array,
    read_json_lines,
    write_json_array,
    write_json_lines,
)
from db import CustomerRecord

FORMATS = ("csv", "jsonl", "ndjson", "json")


def format_of(filename: str) -> str | None:
    """The format a file name's extension names, or None."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return suffix if suffix in FORMATS else None


def read_rows(
    stream: CountingReader, fmt: str, options: ReadOptions | None = None
) -> Iterator[SourceRow]:
    """The rows of a file in `fmt` ("csv", "jsonl", "ndjson" or "json")."""
    options = options or ReadOptions()
    if fmt == "csv":
        return read_csv(stream, options)
    if fmt == "json":
        return read_json_array(stream, options)
    return read_json_lines(stream, options)


def write_rows(
    records: Iterable[CustomerRecord], out: IO[bytes], fmt: str, *, excel: bool = False
) -> int:
    """Write every record to `out` in `fmt`; the number written. `excel`: see write_csv."""
    if fmt == "csv":
        return write_csv(records, out, excel=excel)
    if excel:
        raise ValueError("only CSV is written for a spreadsheet")
    if fmt == "json":
        return write_json_array(records, out)
    return write_json_lines(records, out)
