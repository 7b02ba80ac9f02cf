"""CSV customer files: a header row of the API's field names, then a row per customer.

An empty cell means null. The cells are separated by `,`, `;` (as Excel writes CSV
where the decimal separator is a comma, in Finland among others) or a tab, told by
the header unless the caller says which.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO

from customers.file_rows import (
    BOM,
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

# CSV separators a header may use, each with its name in messages.
SEPARATORS = {",": "','", ";": "';'", "\t": "tab"}
# A spreadsheet reads a cell starting with one of these as a formula (OWASP's list:
# the four signs, and tab and carriage return, which no customer field holds).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _RowTooLong(Exception):
    """A row that runs over several lines has gone past MAX_LINE_BYTES."""


class _OpenAtLineEnd(Exception):
    """A line read again after a broken row ends inside a quoted cell."""


class _CsvLines:
    """Decoded lines for `csv.reader`, keeping the lines of the row being read.

    A row runs past its first line only while a quoted cell is open. If that row
    turns out broken (the quote never closes, or closes somewhere that leaves the
    row malformed), the lines after its first are read again as rows of their own,
    so one stray quote costs one row, not the rest of the file. Such a row is kept
    up to MAX_LINE_BYTES, so memory stays bounded. A line read again is a row on its
    own, never the start of another long one, so no line is read more than twice.
    """

    def __init__(self, stream: CountingReader) -> None:
        self._lines = numbered_lines(stream)
        self._again: deque[tuple[bytes, int]] = deque()
        self.row: list[tuple[bytes, int]] = []  # the current row's lines, with numbers
        self._row_read_again = False  # the current row is a line read again
        self._row_bytes = 0
        self.undecodable = False  # a line of the current row is not UTF-8
        self.ended = False  # the file ended inside the current row

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if self._row_read_again:
            raise _OpenAtLineEnd
        if self._again:
            raw, number = self._again.popleft()
            self._row_read_again = not self.row
        else:
            read = next(self._lines, None)
            if read is None:
                self.ended = True
                raise StopIteration
            raw, number = read
        self.row.append((raw, number))
        self._row_bytes += len(raw)
        if len(self.row) > 1 and self._row_bytes > MAX_LINE_BYTES:
            raise _RowTooLong
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Kept (as lone surrogates) so the row still splits into its cells;
            # the cells holding them are reported.
            self.undecodable = True
            return raw.decode("utf-8", "surrogateescape")

    def next_row(self) -> None:
        """Forget the row just read: the next line starts a new one."""
        self.row.clear()
        self._row_read_again = False
        self._row_bytes = 0
        self.undecodable = False
        self.ended = False

    def read_again_after_first(self) -> None:
        """Hand out the current row's lines after its first again, as rows of their own."""
        self._again.extendleft(reversed(self.row[1:]))


_SURROGATE = re.compile("[\udc80-\udcff]")


def read_csv(stream: CountingReader, options: ReadOptions) -> Iterator[SourceRow]:
    lines = _CsvLines(stream)
    header = next(lines, None)
    if header is None:
        return
    if lines.undecodable:
        raise UnreadableFile(1, "the header is not valid UTF-8")
    delimiter, columns = _read_header(header, options)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        lines.next_row()
        broken = None
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            cells, broken = None, f"is not valid CSV: {exc}"
        except _RowTooLong:
            cells, broken = None, "runs on for more than 1 MiB"
        except _OpenAtLineEnd:
            cells, broken = None, 'has a quote (") that is not closed on its line'
        if not lines.row:  # the end of the file
            return
        line = lines.row[0][1]
        if cells and len(cells) != len(columns):
            broken = f"has {len(cells)} cells where the header has {len(columns)}"
        # Ended inside the row: a quote is still open where the file ends.
        if (len(lines.row) > 1 and broken) or lines.ended:
            yield SourceRow(line, errors=[("row", _open_quote(lines, broken))])
            lines.read_again_after_first()
            continue
        if broken:
            yield SourceRow(line, errors=[("row", broken)])
            continue
        if not cells:  # a blank line
            continue
        # An empty cell is null, which for every column means "not given".
        row = SourceRow(line)
        row.fields = {
            name: cell for name, cell in zip(columns, cells, strict=True) if name and cell
        }
        if lines.undecodable:
            bad = [name for name, cell in row.fields.items() if _SURROGATE.search(cell)]
            row.errors += [(name, "is not valid UTF-8") for name in bad or ["row"]]
            row.fields = {}
        yield row


def _open_quote(lines: _CsvLines, broken: str | None) -> str:
    """Why a row with a quote open at the end of its first line was cut back to that line.

    A row runs past its first line only while a quote opened there is open.
    """
    first, last = lines.row[0][1], lines.row[-1][1]
    if lines.ended:
        what = f'the quote (") opened on line {first} is never closed'
    else:
        what = f'the quote (") opened on line {first} runs on to line {last}, and the row {broken}'
    if len(lines.row) == 1:
        return what
    return f"{what}; the lines after line {first} are read as rows of their own"


def _split_header(text: str, delimiter: str) -> list[str] | str:
    """The header's names when split by `delimiter`, or why it cannot be."""
    try:
        cells = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as exc:
        return f"the header is not CSV: {exc}"
    return [cell.strip() for cell in cells]


def _fit(names: list[str] | str) -> tuple[int, int]:
    """How much a split looks like the header: customer fields, then columns."""
    if isinstance(names, str):
        return -1, -1
    return sum(name in FIELDS for name in names), len(names)


def _read_header(text: str, options: ReadOptions) -> tuple[str, list[str | None]]:
    """The separator and the columns, None for one left out; raises UnreadableFile.

    Without a separator given, it is the one whose split of the header has the most
    customer fields (then the most columns; `,` on a tie).
    """
    splits = {
        separator: _split_header(text, separator)
        for separator in ((options.delimiter,) if options.delimiter else SEPARATORS)
    }
    delimiter = max(splits, key=lambda separator: _fit(splits[separator]))
    names = splits[delimiter]
    try:
        if isinstance(names, str):
            raise UnreadableFile(1, names)
        return delimiter, _check_header(names, options.ignore_unknown)
    except UnreadableFile as exc:
        # Told which separator to use, the header may still look like another's.
        given = SEPARATORS.get(delimiter, repr(delimiter))
        for other, name in SEPARATORS.items():
            if other != delimiter and _fit(_split_header(text, other)) > _fit(names):
                raise UnreadableFile(
                    1,
                    f"the header looks separated by {name}, not by {given}: use --delimiter {name}",
                ) from exc
        raise


def _check_header(columns: list[str], ignore_unknown: bool) -> list[str | None]:
    """The header's column names, None for one left out; raises UnreadableFile unless usable."""
    unknown = [name for name in columns if name not in FIELDS]
    if unknown and not ignore_unknown:
        raise UnreadableFile(
            1,
            f"unknown column {unknown[0]!r} (--ignore-unknown-columns leaves such columns "
            f"out); the columns are {', '.join(FIELDS)}",
        )
    kept = [name if name in FIELDS else None for name in columns]
    repeated = first_repeated(name for name in kept if name)
    if repeated is not None:
        raise UnreadableFile(1, f"column {repeated!r} is given more than once")
    missing = [name for name in ("name", "email") if name not in kept]
    if missing:
        raise UnreadableFile(1, f"column {missing[0]!r} is required")
    return kept


def write_csv(records: Iterable[CustomerRecord], out: IO[bytes], *, excel: bool = False) -> int:
    """Write a header and a row per record to `out`; the number of records written.

    Plain, it is UTF-8 without a byte order mark, `,` between cells and every value
    as it is, so that it imports back unchanged. `excel` writes what Excel opens as
    it is with Finnish settings: a byte order mark (else Excel guesses the encoding),
    `;` between cells (`,` is the decimal separator there), and a cell that would
    start a formula made inert by a leading `'`. That file is for reading in a
    spreadsheet: those cells do not import back as they were.
    """
    count = 0
    if excel:
        out.write(BOM)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, delimiter=";" if excel else ",")
        writer.writerow(FIELDS)
        for record in records:
            public = record.to_public()
            cells = [public[name] for name in FIELDS]
            writer.writerow([_inert(cell) for cell in cells] if excel else cells)
            count += 1
        text.flush()
    finally:
        text.detach()  # leave `out` open: its owner closes it
    return count


def _inert(cell: str | None) -> str | None:
    """The cell as text a spreadsheet shows and never evaluates."""
    return "'" + cell if cell and cell.startswith(FORMULA_STARTS) else cell
