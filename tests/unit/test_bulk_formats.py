"""Reading and writing customer files: rows, their line numbers, and what cannot be read."""

from __future__ import annotations

import io

import pytest

from customers import formats, json_rows
from customers.file_rows import CountingReader, ReadOptions, SourceRow, UnreadableFile
from customers.formats import read_rows, write_rows
from db import CustomerRecord
from tests.work_bound import cpu_seconds_at_most


def rows(data: bytes, fmt: str, **options) -> list[SourceRow]:
    return list(read_rows(CountingReader(io.BytesIO(data)), fmt, ReadOptions(**options)))


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


def customer_lines(first: int, last: int, separator: bytes = b",") -> bytes:
    return b"".join(
        b"C%d%sc%d@example.com\n" % (number, separator, number) for number in range(first, last + 1)
    )


def good_rows(first: int, last: int) -> list[SourceRow]:
    return [
        SourceRow(number + 1, {"name": f"C{number}", "email": f"c{number}@example.com"})
        for number in range(first, last + 1)
    ]


def test_a_quote_never_closed_costs_its_row_not_the_rest_of_the_file():
    # GIVEN 500 rows, the second with a quote that opens a cell and never closes
    data = (
        b"name,email\n" + customer_lines(1, 1) + b'"Stray,s@example.com\n' + customer_lines(3, 500)
    )

    # THEN that row is rejected naming the quote and its line, and every other row is read
    assert rows(data, "csv") == [
        *good_rows(1, 1),
        SourceRow(
            3,
            errors=[
                (
                    "row",
                    'the quote (") opened on line 3 is never closed; '
                    "the lines after line 3 are read as rows of their own",
                )
            ],
        ),
        *good_rows(3, 500),
    ]


def test_a_quote_open_where_the_file_ends_on_the_last_line():
    # Read as it was, the row would be A with the email 'a@example.com'.
    data = b'name,email\nA,"a@example.com'
    assert rows(data, "csv") == [
        SourceRow(2, errors=[("row", 'the quote (") opened on line 2 is never closed')])
    ]


def test_a_quote_closed_lines_later_costs_its_row_and_the_lines_between_are_read():
    data = (
        b"name,email\n"
        b'"Stray,s@example.com\n'
        + customer_lines(2, 4)
        + b'"Quoted, Name",q@example.com\n'
        + b"Last,last@example.com\n"
    )
    assert rows(data, "csv") == [
        SourceRow(
            2,
            errors=[
                (
                    "row",
                    'the quote (") opened on line 2 runs on to line 6, and the row has 3 cells '
                    "where the header has 2; the lines after line 2 are read as rows of their own",
                )
            ],
        ),
        *good_rows(2, 4),
        SourceRow(6, {"name": "Quoted, Name", "email": "q@example.com"}),
        SourceRow(7, {"name": "Last", "email": "last@example.com"}),
    ]


def test_lines_of_stray_quotes_are_each_read_at_most_twice():
    # Each of these lines ends inside a quote whether it starts inside one or not, so
    # each would start a row running to the end of the file: read again from every
    # line, the file would take work quadratic in its length.
    data = b"name,email\n" + b'"x"a,"\n' * 20_000
    with cpu_seconds_at_most(5):
        found = rows(data, "csv")
    assert len(found) == 20_000
    assert found[0].errors == [
        (
            "row",
            'the quote (") opened on line 2 is never closed; '
            "the lines after line 2 are read as rows of their own",
        )
    ]
    assert {row.errors[0][1] for row in found[1:]} == {
        'has a quote (") that is not closed on its line'
    }


@pytest.mark.parametrize(
    ("separator", "given"), [(b";", None), (b"\t", None), (b";", ";"), (b"|", "|")]
)
def test_the_separator_is_told_by_the_header_or_given(separator, given):
    data = b"name%semail%sphone\n" % (separator, separator) + b"A%sa@example.com%s+358 1\n" % (
        separator,
        separator,
    )
    assert rows(data, "csv", delimiter=given) == [
        SourceRow(2, {"name": "A", "email": "a@example.com", "phone": "+358 1"})
    ]


def test_a_header_read_with_the_wrong_separator_says_which_it_looks_like():
    with pytest.raises(UnreadableFile) as raised:
        rows(b"name;email;phone\nA;a@example.com;1\n", "csv", delimiter=",")
    assert str(raised.value) == (
        "line 1: the header looks separated by ';', not by ',': use --delimiter ';'"
    )


def test_a_semicolon_header_with_an_unknown_name_names_that_column():
    with pytest.raises(UnreadableFile, match="line 1: unknown column 'nimi'"):
        rows(b"nimi;email\nMaija;m@example.com\n", "csv")


def test_unknown_columns_and_members_are_left_out_when_asked():
    csv_data = b"name,email,note,\nA,a@example.com,hello,\n"
    json_line = b'{"name": "A", "email": "a@example.com", "note": "hello"}\n'
    expected = [SourceRow(2, {"name": "A", "email": "a@example.com"})]
    assert rows(csv_data, "csv", ignore_unknown=True) == expected
    assert rows(json_line, "jsonl", ignore_unknown=True) == [
        SourceRow(1, {"name": "A", "email": "a@example.com"})
    ]
    with pytest.raises(UnreadableFile, match="unknown column 'note'"):
        rows(csv_data, "csv")


def test_a_json_array_with_a_bad_byte_yields_the_rows_before_it():
    data = b'[\n{"name": "A"},\n{"name": "B"},\n{"name": "\xff"}\n]'
    read = read_rows(CountingReader(io.BytesIO(data)), "json")
    assert [next(read), next(read)] == [SourceRow(2, {"name": "A"}), SourceRow(3, {"name": "B"})]
    with pytest.raises(UnreadableFile) as raised:
        next(read)
    assert str(raised.value) == "line 4: the file is not valid UTF-8"


def customer(**fields) -> CustomerRecord:
    values = {
        "id": "a",
        "name": "A",
        "email": "a@example.com",
        "phone": None,
        "business_id": None,
        "created_at": "2024-01-01T00:00:00.000000Z",
        "updated_at": "2024-01-01T00:00:00.000000Z",
        "version": 1,
    }
    return CustomerRecord(**(values | fields))


def test_an_export_for_excel_has_a_bom_semicolons_and_no_formulas():
    records = [
        customer(name="=HYPERLINK(1)", phone="+358 40 123"),
        customer(id="b", name="-2+3", email="b@example.com", phone="(09) 1"),
        customer(id="c", name="@SUM(1)", email="c@example.com", business_id="0112038-9"),
        customer(id="d", name="Maija; Meikäläinen", email="d@example.com"),
    ]
    out = io.BytesIO()
    assert write_rows(records, out, "csv", excel=True) == 4
    assert out.getvalue().decode("utf-8").splitlines() == [
        "\ufeffid;name;email;phone;businessId;createdAt;updatedAt",
        "a;'=HYPERLINK(1);a@example.com;'+358 40 123;;2024-01-01T00:00:00.000000Z;"
        "2024-01-01T00:00:00.000000Z",
        "b;'-2+3;b@example.com;(09) 1;;2024-01-01T00:00:00.000000Z;2024-01-01T00:00:00.000000Z",
        "c;'@SUM(1);c@example.com;;0112038-9;2024-01-01T00:00:00.000000Z;"
        "2024-01-01T00:00:00.000000Z",
        'd;"Maija; Meikäläinen";d@example.com;;;2024-01-01T00:00:00.000000Z;'
        "2024-01-01T00:00:00.000000Z",
    ]


def test_a_plain_export_writes_values_as_they_are():
    out = io.BytesIO()
    write_rows([customer(name="=1+1", phone="+358 1")], out, "csv")
    assert out.getvalue().splitlines()[1] == (
        b"a,=1+1,a@example.com,+358 1,,2024-01-01T00:00:00.000000Z,2024-01-01T00:00:00.000000Z"
    )


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
    monkeypatch.setattr(json_rows, "_CHUNK", chunk)
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
    monkeypatch.setattr(json_rows, "_CHUNK", 16)
    with cpu_seconds_at_most(5):
        found = rows(b'[{"name": "' + b"x" * 1_000_000 + b'"}]', "json")
    assert found == [SourceRow(1, {"name": "x" * 1_000_000})]
