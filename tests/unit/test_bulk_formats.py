"""Reading and writing customer files: rows, their line numbers, and what cannot be read."""

from __future__ import annotations

import io

import pytest

from customers import formats
from customers.formats import CountingReader, SourceRow, UnreadableFile, read_rows
from tests.work_bound import cpu_seconds_at_most


def rows(data: bytes, fmt: str) -> list[SourceRow]:
    return list(read_rows(CountingReader(io.BytesIO(data)), fmt))


def test_csv_rows_carry_the_line_they_start_on():
    data = (
        b"name,email\r\n"
        b"A,a@example.com\r\n"
        b"\r\n"
        b'"Multi\r\nline",m@example.com\r\n'
        b"B,,\r\n"
        b"C,c@example.com\r\n"
    )
    assert rows(data, "csv") == [
        SourceRow(2, {"name": "A", "email": "a@example.com"}),
        SourceRow(4, {"name": "Multi\r\nline", "email": "m@example.com"}),
        SourceRow(6, errors=[("row", "has 3 cells where the header has 2")]),
        SourceRow(7, {"name": "C", "email": "c@example.com"}),
    ]


def test_csv_empty_cells_are_left_out_and_header_names_trimmed():
    data = b"\xef\xbb\xbf name , email ,phone\nA,a@example.com,\n"
    assert rows(data, "csv") == [SourceRow(2, {"name": "A", "email": "a@example.com"})]


def test_a_csv_cell_that_is_not_utf8_is_named_and_the_next_row_is_fine():
    data = b"name,email\n\xff\xfe,a@example.com\nB,b@example.com\n"
    assert rows(data, "csv") == [
        SourceRow(2, errors=[("name", "is not valid UTF-8")]),
        SourceRow(3, {"name": "B", "email": "b@example.com"}),
    ]


def test_a_csv_field_past_the_size_limit_is_one_rejected_row(monkeypatch):
    data = b"name,email\n" + b"x" * 200_000 + b",a@example.com\nB,b@example.com\n"
    found = rows(data, "csv")
    assert found[0].line == 2
    assert found[0].errors[0][0] == "row"
    assert "field larger than field limit" in found[0].errors[0][1]
    assert found[1:] == [SourceRow(3, {"name": "B", "email": "b@example.com"})]


def test_a_line_over_a_mebibyte_makes_the_file_unreadable():
    with pytest.raises(UnreadableFile) as raised:
        rows(b'{"name": "A"}\n' + b" " * (2 * 1024 * 1024) + b"\n", "jsonl")
    assert str(raised.value) == "line 2: is longer than 1 MiB; is the format right?"


def test_json_lines_each_line_on_its_own():
    data = (
        b'\xef\xbb\xbf{"name": "A", "email": "a@example.com"}\n'
        b"\n"
        b"[1]\n"
        b"{broken\n"
        b'{"name": "A", "name": "B"}\n'
        b'{"name": "\xff"}\n'
        b'{"name": "C", "phone": null}'
    )
    assert rows(data, "jsonl") == [
        SourceRow(1, {"name": "A", "email": "a@example.com"}),
        SourceRow(3, errors=[("row", "must be a JSON object")]),
        SourceRow(4, errors=[("row", "is not valid JSON")]),
        SourceRow(5, errors=[("name", "is given more than once")]),
        SourceRow(6, errors=[("row", "is not valid UTF-8")]),
        SourceRow(7, {"name": "C", "phone": None}),
    ]


ARRAY = (
    '[\n  {"name": "A, [still] {a} \\"string\\"", "email": "a@example.com"},\n'
    '  {"name": "Ä\\\\", "tags": {"nested": [1, {"x": "]"}]}},\n'
    "  3,\n"
    '  {"name": "broken" "x"},\n'
    '  {"name":\n    "Two lines"}\n]\n'
)
ARRAY_ROWS = [
    SourceRow(2, {"name": 'A, [still] {a} "string"', "email": "a@example.com"}),
    SourceRow(3, {"name": "Ä\\", "tags": {"nested": [1, {"x": "]"}]}}),
    SourceRow(4, errors=[("row", "must be a JSON object")]),
    SourceRow(5, errors=[("row", "is not valid JSON")]),
    SourceRow(6, {"name": "Two lines"}),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64 * 1024])
def test_a_json_array_is_read_element_by_element_across_chunks(monkeypatch, chunk):
    monkeypatch.setattr(formats, "_CHUNK", chunk)
    assert rows(b"\xef\xbb\xbf" + ARRAY.encode(), "json") == ARRAY_ROWS


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"", []),
        (b"  \n", []),
        (b"[]", []),
        (b" [ \n ] \n", []),
        (b"[,]", [SourceRow(1, errors=[("row", "is not valid JSON")])] * 2),
    ],
)
def test_json_arrays_with_nothing_in_them(data, found):
    assert rows(data, "json") == found


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"name": "A"}', "line 1: the file is not a JSON array"),
        (b'[{"name": "A"}] x', "line 1: there is more after the array"),
        (b'[\n{"name": "A"},\n{"name": "B', "line 3: a string is not closed"),
        (b'[\n{"name": "A"}\n', "line 2: the array is not closed"),
        (b'[{"name": "\xff"}]', "line 1: the file is not valid UTF-8"),
    ],
)
def test_a_broken_json_array_is_unreadable_from_where_it_breaks(data, message):
    with pytest.raises(UnreadableFile) as raised:
        rows(data, "json")
    assert str(raised.value) == message


def test_a_huge_json_element_stops_the_read_with_flat_memory():
    data = b'[{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}]'
    with pytest.raises(UnreadableFile, match="an element is longer than 1 MiB"):
        rows(data, "json")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("A.JSONL", "jsonl"),
        ("x.y.ndjson", "ndjson"),
        ("b.json", "json"),
        ("c.txt", None),
        ("csv", None),
    ],
)
def test_format_of_a_file_name(name, fmt):
    assert formats.format_of(name) == fmt


# --- work in proportion to the input ---------------------------------------------------


def test_a_header_of_many_columns_is_checked_in_linear_work():
    # 300 KB: checking each column against every other took a minute.
    header = b"name,email" + b",id" * 60_000 + b"\n"
    with (
        cpu_seconds_at_most(5),
        pytest.raises(UnreadableFile, match="column 'id' is given more than once"),
    ):
        rows(header, "csv")


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_member_given_twice_among_many_is_found_in_linear_work(fmt):
    members = ", ".join(f'"m{number}": 0' for number in range(60_000))
    element = f'{{{members}, "m59999": 1}}'.encode()
    data = element + b"\n" if fmt == "jsonl" else b"[" + element + b"]"
    with cpu_seconds_at_most(5):
        found = rows(data, fmt)
    assert found == [SourceRow(1, errors=[("m59999", "is given more than once")])]


def test_a_long_json_string_read_in_many_chunks_is_scanned_once(monkeypatch):
    # Small chunks make one string take thousands of reads: scanning it again from its
    # opening quote after every read would be quadratic in its length.
    monkeypatch.setattr(formats, "_CHUNK", 16)
    with cpu_seconds_at_most(5):
        found = rows(b'[{"name": "' + b"x" * 1_000_000 + b'"}]', "json")
    assert found == [SourceRow(1, {"name": "x" * 1_000_000})]
