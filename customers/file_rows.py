"""What every customer-file reader shares: the rows it yields, its errors, its input.

A reader takes a binary stream and yields `SourceRow`s: the row's line in the file and
its fields as parsed, or why it could not be parsed. A problem that leaves the rest of
the file unreadable raises `UnreadableFile`.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from customers.fields import FILE_FIELDS

# Every column an export writes, in this order; an import takes any subset in any order.
FIELDS = FILE_FIELDS
# No customer is anywhere near this: a longer line means the file is not what it claims.
MAX_LINE_BYTES = 1024 * 1024
BOM = codecs.BOM_UTF8


class UnreadableFile(ValueError):
    """The file cannot be read on from `line`: not UTF-8, not the format, or broken."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class ReadFailed(Exception):
    """Reading the file failed (an I/O error); the message says why."""


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read a file.

    `delimiter`: the CSV separator; None tells it from the header. `ignore_unknown`:
    leave out CSV columns and JSON members that are not customer fields, instead of
    refusing the file (a column) or the row (a member).
    """

    delimiter: str | None = None
    ignore_unknown: bool = False


@dataclass(slots=True)
class SourceRow:
    """One row as read: its first line in the file, its fields, or why it is unusable."""

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


class CountingReader:
    """A binary stream that counts the bytes read from it, for progress by file size.

    Its I/O errors become ReadFailed, told apart from the OSErrors of a store's network.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.bytes_read = 0

    def readline(self, limit: int = -1) -> bytes:
        try:
            line = self._stream.readline(limit)
        except OSError as exc:
            raise ReadFailed(exc.strerror or str(exc)) from exc
        self.bytes_read += len(line)
        return line

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except OSError as exc:
            raise ReadFailed(exc.strerror or str(exc)) from exc
        self.bytes_read += len(data)
        return data


def numbered_lines(stream: CountingReader) -> Iterator[tuple[bytes, int]]:
    """The file's lines as bytes with their numbers, the BOM dropped; raises on huge lines."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        if len(line) > MAX_LINE_BYTES:
            raise UnreadableFile(number, "is longer than 1 MiB; is the format right?")
        yield line, number


def first_repeated(names: Iterable[str]) -> str | None:
    """The first name seen a second time, or None; one pass, as counting each is quadratic."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None
