"""Customer files: CSV, JSON Lines and a JSON array, read and written a row at a time.

Readers take a binary stream and yield `SourceRow`s: the row's line in the file and
its fields as parsed, or why it could not be parsed. Nothing here knows the field
rules; the importer checks every row with the API's own model. Rows are streamed,
never all held: memory stays the same however long the file. A problem that leaves
the rest of the file unreadable raises `UnreadableFile`.

Encoding: UTF-8, with or without a byte order mark. CSV: a header row of the API's
field names, an empty cell meaning null. JSON Lines: one object per line, blank
lines skipped. JSON: one array of objects. A file with nothing in it holds no rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from db import CustomerRecord

FORMATS = ("csv", "jsonl", "ndjson", "json")
# Every column an export writes, in this order; an import takes any subset in any order.
FIELDS = ("id", "name", "email", "phone", "businessId", "createdAt", "updatedAt")
# No customer is anywhere near this: a longer line means the file is not what it claims.
MAX_LINE_BYTES = 1024 * 1024
_BOM = codecs.BOM_UTF8
_CHUNK = 64 * 1024


class UnreadableFile(ValueError):
    """The file cannot be read on from `line`: not UTF-8, not the format, or broken."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class ReadFailed(Exception):
    """Reading the file failed (an I/O error); the message says why."""


@dataclass(slots=True)
class SourceRow:
    """One row as read: its first line in the file, its fields, or why it is unusable."""

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


def format_of(filename: str) -> str | None:
    """The format a file name's extension names, or None."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return suffix if suffix in FORMATS else None


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


def read_rows(stream: CountingReader, fmt: str) -> Iterator[SourceRow]:
    """The rows of a file in `fmt` ("csv", "jsonl", "ndjson" or "json")."""
    if fmt == "csv":
        return _read_csv(stream)
    if fmt == "json":
        return _read_json_array(stream)
    return _read_json_lines(stream)


# --- reading -----------------------------------------------------------------------------


def _lines(stream: CountingReader) -> Iterator[tuple[bytes, int]]:
    """The file's lines as bytes with their numbers, the BOM dropped; raises on huge lines."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if len(line) > MAX_LINE_BYTES:
            raise UnreadableFile(number, "is longer than 1 MiB; is the format right?")
        yield line, number


class _CsvLines:
    """Decoded lines for `csv.reader`; remembers which could not be decoded as UTF-8."""

    def __init__(self, stream: CountingReader) -> None:
        self._lines = _lines(stream)
        self.number = 0
        self.undecodable = False

    def __iter__(self) -> Iterator[str]:
        for raw, number in self._lines:
            self.number = number
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                # Kept (as lone surrogates) so the row still splits into its cells;
                # the cells holding them are reported.
                self.undecodable = True
                yield raw.decode("utf-8", "surrogateescape")


_SURROGATE = re.compile("[\udc80-\udcff]")


def _read_csv(stream: CountingReader) -> Iterator[SourceRow]:
    lines = _CsvLines(stream)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise UnreadableFile(1, f"the header is not CSV: {exc}") from None
    if header is None:
        return
    if lines.undecodable:
        raise UnreadableFile(1, "the header is not valid UTF-8")
    columns = _check_header([name.strip() for name in header])
    last_line = lines.number
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            yield SourceRow(last_line + 1, errors=[("row", f"is not valid CSV: {exc}")])
            last_line = lines.number
            continue
        if cells is None:
            return
        row = SourceRow(last_line + 1)
        last_line = lines.number
        if not cells:  # a blank line
            continue
        if len(cells) != len(columns):
            row.errors.append(
                ("row", f"has {len(cells)} cells where the header has {len(columns)}")
            )
        else:
            # An empty cell is null, which for every column means "not given".
            row.fields = {name: cell for name, cell in zip(columns, cells, strict=True) if cell}
        if lines.undecodable:
            lines.undecodable = False
            bad = [name for name, cell in row.fields.items() if _SURROGATE.search(cell)]
            row.errors += [(name, "is not valid UTF-8") for name in bad or ["row"]]
            row.fields = {}
        yield row


def _check_header(columns: list[str]) -> list[str]:
    """The header's column names; raises UnreadableFile unless they are usable."""
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise UnreadableFile(
            1, f"unknown column {unknown[0]!r}; the columns are {', '.join(FIELDS)}"
        )
    repeated = _first_repeated(columns)
    if repeated is not None:
        raise UnreadableFile(1, f"column {repeated!r} is given more than once")
    missing = [name for name in ("name", "email") if name not in columns]
    if missing:
        raise UnreadableFile(1, f"column {missing[0]!r} is required")
    return columns


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook: a member given twice is an error, as in a request body."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey(str(_first_repeated(name for name, _ in pairs)))
    return result


def _first_repeated(names: Iterable[str]) -> str | None:
    """The first name seen a second time, or None; one pass, as counting each is quadratic."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _parse_object(text: str, line: int) -> SourceRow:
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
    return SourceRow(line, fields=value)


def _read_json_lines(stream: CountingReader) -> Iterator[SourceRow]:
    for raw, number in _lines(stream):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield SourceRow(number, errors=[("row", "is not valid UTF-8")])
            continue
        if text.strip():
            yield _parse_object(text, number)


# Whatever changes the nesting, or may end an element, or starts a string.
_STRUCTURE = re.compile(r'["\[\]{},]')
# A string's content up to its closing quote, or up to the end of what has been read
# (where it stops before a backslash that has nothing after it yet).
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonArrayScanner:
    """Finds the elements of a top-level JSON array in a stream, one at a time.

    Only the boundaries are found here (commas and brackets outside strings, at
    depth 0); each element is then parsed on its own, so a broken element is one
    rejected row and the rest of the array is still read.
    """

    def __init__(self, stream: CountingReader) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._pos = 0
        self._line = 1  # the line of self._pos
        self._eof = False
        self._first = True

    def _more(self) -> bool:
        """Append the next chunk to the buffer; False at the end of the file."""
        if self._eof:
            return False
        data = self._stream.read(_CHUNK)
        self._eof = not data
        try:
            text = self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError:
            raise UnreadableFile(self._line, "the file is not valid UTF-8") from None
        if self._first and text:  # the BOM, once decoded whole
            self._first = False
            text = text.removeprefix("\ufeff")
        # Drop what has been consumed, so the buffer holds one element at most.
        self._buffer = self._buffer[self._pos :] + text
        self._pos = 0
        if len(self._buffer) > MAX_LINE_BYTES + _CHUNK:
            raise UnreadableFile(self._line, "an element is longer than 1 MiB")
        return not self._eof or bool(text)

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
            yield _parse_object(text, line)
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


def _read_json_array(stream: CountingReader) -> Iterator[SourceRow]:
    return _JsonArrayScanner(stream).rows()


# --- writing -----------------------------------------------------------------------------


def write_rows(records: Iterable[CustomerRecord], out: IO[bytes], fmt: str) -> int:
    """Write every record to `out` in `fmt`; the number written."""
    count = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text)
            writer.writerow(FIELDS)
            for record in records:
                public = record.to_public()
                writer.writerow([public[name] for name in FIELDS])
                count += 1
            text.flush()
        finally:
            text.detach()  # leave `out` open: its owner closes it
        return count
    if fmt == "json":
        out.write(b"[")
        for record in records:
            out.write(b"\n" if count == 0 else b",\n")
            out.write(orjson.dumps(record.to_public()))
            count += 1
        out.write(b"\n]\n" if count else b"]\n")
        return count
    for record in records:
        out.write(orjson.dumps(record.to_public(), option=orjson.OPT_APPEND_NEWLINE))
        count += 1
    return count
