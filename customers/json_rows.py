"""JSON customer files: JSON Lines (one object per line, blank lines skipped) and one
JSON array of objects, read an element at a time.

Why the array reader is written here rather than taken from ijson, the maintained
streaming parser: `python -m bench.json_reader` reads a 20,000-row export (4.1 MB)
through both. On 2026-12-07, on a 2-core machine, best of 5, over five runs: this reader
34,000 to 42,000 rows/s with a 261 KiB peak of allocations; ijson (its yajl2_c backend)
258,000 to 471,000 rows/s with 411 KiB, a ratio of 0.07 to 0.15. ijson is much faster,
but it keeps none of the reader's guarantees: it gives no positions, so no row or error
names its line; the first broken element stops the whole file, where here it is one
rejected row and the rows after it are read; a member given twice is silently the last
one; an element of any size is built whole (here over 1 MiB refuses the file at its
line); and bad UTF-8 stops it with yajl's message and no line. Its events built into rows
by a builder that refuses a member given twice ("ijson+" in the bench) run at 97,000 to
158,000 rows/s, a ratio of 0.27 to 0.39, and still lack the lines and the rows after a
broken one. The reader's ~27 µs a row is a real share of an import (about 58 µs a row
for CSV, docs/bulk.md, most of it the field checks), but the guarantees are the import's
contract, and ijson gives them up, so the reader stays and ijson is not a requirement.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from customers.file_rows import (
    FIELDS,
    MAX_LINE_BYTES,
    CountingReader,
    ReadOptions,
    SourceRow,
    UnreadableFile,
    first_repeated,
    numbered_lines,
)
from db import CustomerRecord

_CHUNK = 64 * 1024


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook: a member given twice is an error, as in a request body."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey(str(first_repeated(name for name, _ in pairs)))
    return result


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _parse_object(text: str, line: int, options: ReadOptions) -> SourceRow:
    """One JSON value that must be an object, as a row."""
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as exc:
        return SourceRow(line, errors=[(exc.name, "is given more than once")])
    except RecursionError:
        return SourceRow(line, errors=[("row", "is nested too deeply")])
    except ValueError:
        return SourceRow(line, errors=[("row", "is not valid JSON")])
    if not isinstance(value, dict):
        return SourceRow(line, errors=[("row", "must be a JSON object")])
    if options.ignore_unknown:
        value = {name: field for name, field in value.items() if name in FIELDS}
    return SourceRow(line, fields=value)


def read_json_lines(stream: CountingReader, options: ReadOptions) -> Iterator[SourceRow]:
    for raw, number in numbered_lines(stream):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield SourceRow(number, errors=[("row", "is not valid UTF-8")])
            continue
        if text.strip():
            yield _parse_object(text, number, options)


# Whatever changes the nesting, or may end an element, or starts a string.
_STRUCTURE = re.compile(r'["\[\]{},]')
# A string's content up to its closing quote, or up to the end of what has been read
# (where it stops before a backslash that has nothing after it yet).
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SPACE = re.compile(r"[ \t\r\n]*")


def read_json_array(stream: CountingReader, options: ReadOptions) -> Iterator[SourceRow]:
    """The elements of one JSON array, each a row."""
    return _JsonArrayScanner(stream, options).rows()


class _JsonArrayScanner:
    """Finds the elements of a top-level JSON array in a stream, one at a time.

    Only the boundaries are found here (commas and brackets outside strings, at
    depth 0); each element is then parsed on its own, so a broken element is one
    rejected row and the rest of the array is still read.
    """

    def __init__(self, stream: CountingReader, options: ReadOptions) -> None:
        self._stream = stream
        self._options = options
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._pos = 0
        self._line = 1  # the line of self._pos
        self._eof = False
        self._undecodable = False  # the file is not UTF-8 where the buffer ends
        self._first = True

    def _more(self) -> bool:
        """Append the next chunk to the buffer; False at the end of the file."""
        if self._undecodable:
            line = self._line + self._buffer.count("\n", self._pos)
            raise UnreadableFile(line, "the file is not valid UTF-8")
        if self._eof:
            return False
        data = self._stream.read(_CHUNK)
        self._eof = not data
        try:
            text = self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError as exc:
            # What comes before the bad byte is read first, so the rows before it are
            # handled and the error names the line the byte is on.
            text = exc.object[: exc.start].decode("utf-8")
            self._undecodable = True
        if self._first and text:  # the BOM, once decoded whole
            self._first = False
            text = text.removeprefix("\ufeff")
        # Drop what has been consumed, so the buffer holds one element at most.
        self._buffer = self._buffer[self._pos :] + text
        self._pos = 0
        if len(self._buffer) > MAX_LINE_BYTES + _CHUNK:
            raise UnreadableFile(self._line, "an element is longer than 1 MiB")
        return not self._eof or bool(text) or self._undecodable

    def _advance(self, to: int) -> None:
        self._line += self._buffer.count("\n", self._pos, to)
        self._pos = to

    def _skip_space(self) -> str:
        """The next character after whitespace ("" at the end of the file), not consumed."""
        while True:
            match = _SPACE.match(self._buffer, self._pos)
            assert match is not None  # `*` matches the empty string
            self._advance(match.end())
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._more():
                return ""

    def rows(self) -> Iterator[SourceRow]:
        first = self._skip_space()
        if first == "":
            return
        if first != "[":
            raise UnreadableFile(self._line, "the file is not a JSON array")
        self._advance(self._pos + 1)
        if self._skip_space() == "]":
            self._advance(self._pos + 1)
            self._expect_end()
            return
        while True:
            self._skip_space()
            line = self._line
            # The element starts at self._pos, which reading on keeps at the buffer's start.
            end, closing = self._element_end()
            text = self._buffer[self._pos : end]
            self._advance(end + 1)
            yield _parse_object(text, line, self._options)
            if closing == "]":
                self._expect_end()
                return

    def _element_end(self) -> tuple[int, str]:
        """Where the element at the current position ends, and the `,` or `]` ending it."""
        depth = 0
        scan = self._pos
        while True:
            match = _STRUCTURE.search(self._buffer, scan)
            if match is None:
                scan = len(self._buffer) - self._pos
                if not self._more():
                    raise UnreadableFile(self._line, "the array is not closed")
                scan += self._pos
                continue
            char = match.group()
            if char == '"':
                scan = self._after_string(match.end())
            elif char in "[{":
                depth += 1
                scan = match.end()
            elif depth == 0 and char in ",]":
                return match.start(), char
            else:
                depth -= char in "]}"
                scan = match.end()

    def _after_string(self, start: int) -> int:
        """Where the string whose content begins at `start` ends, past its closing quote.

        A string that goes on past the buffer is scanned on from where the scan
        stopped, not again from its start: a long string is scanned once.
        """
        at = start
        while True:
            body = _STRING_BODY.match(self._buffer, at)
            assert body is not None  # `*` matches the empty string
            if body.end() < len(self._buffer) and self._buffer[body.end()] == '"':
                return body.end() + 1
            at = body.end() - self._pos
            if not self._more():
                raise UnreadableFile(self._line, "a string is not closed")
            at += self._pos

    def _expect_end(self) -> None:
        if self._skip_space() != "":
            raise UnreadableFile(self._line, "there is more after the array")


def write_json_array(records: Iterable[CustomerRecord], out: IO[bytes]) -> int:
    """Write one JSON array of the records to `out`, one per line; the number written."""
    count = 0
    out.write(b"[")
    for record in records:
        out.write(b"\n" if count == 0 else b",\n")
        out.write(orjson.dumps(record.to_public()))
        count += 1
    out.write(b"\n]\n" if count else b"]\n")
    return count


def write_json_lines(records: Iterable[CustomerRecord], out: IO[bytes]) -> int:
    """Write each record to `out` as a line of JSON; the number written."""
    count = 0
    for record in records:
        out.write(orjson.dumps(record.to_public(), option=orjson.OPT_APPEND_NEWLINE))
        count += 1
    return count
