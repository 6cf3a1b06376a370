"""Value conversions of the loaders, without a server: COPY text fields and per-target converters."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from datastage.source.values import column_values
from datastage.targets.convert import convert_rows, to_json_text, to_json_text_unless_text, to_text, to_utc_naive
from datastage.targets.postgres.stream import (
    decode_column,
    decode_field,
    decode_fields,
    encode_column,
    encode_field,
    encode_fields,
    join_lines,
    split_lines,
)

TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@given(st.lists(st.one_of(st.none(), TEXT), max_size=30))
def test_copy_text_fields_round_trip(values: list[str | None]) -> None:
    encoded = encode_fields(values)
    assert encoded == [encode_field(v) for v in values]
    assert decode_fields(encoded) == values
    assert [decode_field(f) for f in encoded] == values


@given(st.lists(st.one_of(st.none(), st.just(float("nan")), st.just(pd.NA), st.integers(), TEXT), max_size=30))
def test_a_column_encodes_as_its_values_do(values: list[object]) -> None:
    """The whole-column encoder gives what the per-value one gives, missing markers as NULL."""
    series = pd.Series(values, dtype=object)
    assert encode_column(series) == encode_fields(column_values(series))
    assert encode_column(series) == [encode_field(v) for v in column_values(series)]


@given(st.lists(st.lists(st.one_of(st.none(), TEXT), min_size=4, max_size=4), min_size=1, max_size=20),
       st.integers(min_value=1, max_value=4))
def test_copy_lines_split_and_join_through_arrow_as_through_python(rows: list[list[str | None]], width: int) -> None:
    """COPY text lines cut into their first ``width`` fields and the rest, decoded, and put back together
    through Arrow give exactly what splitting and joining each line in Python gives."""
    lines = [b"\t".join(encode_field(v) for v in row) + b"\n" for row in rows]
    rest = width < 4
    fields, tail = split_lines(lines, width, rest)
    parts = [line.split(b"\t", width) if rest else line[:-1].split(b"\t") for line in lines]
    for position, field in enumerate(fields):
        assert field.to_pylist() == [p[position] for p in parts]
        assert decode_column(field).tolist() == decode_fields([p[position] for p in parts]) == \
            [row[position] for row in rows]
    assert (tail is None) is not rest
    if rest:
        assert tail.to_pylist() == [p[width] for p in parts]
    columns = [[p[position] for p in parts] for position in range(width)]
    assert join_lines(columns, tail) == b"".join(lines)


def test_copy_text_escapes_match_postgresql() -> None:
    assert encode_field("a\tb\nc\\d\re") == b"a\\tb\\nc\\\\d\\re"
    assert encode_field(None) == b"\\N"
    assert decode_field(b"\\101\\x42\\b\\f\\v\\\\N") == "AB\b\f\v\\N"
    assert decode_fields([b"\\N", b"plain", b"caf\xc3\xa9"]) == [None, "plain", "café"]


def test_json_values_keep_their_json_type() -> None:
    assert to_json_text("abc") == '"abc"'
    assert to_json_text({"a": [1, None]}) == '{"a": [1, null]}'
    assert to_json_text(None) is None
    assert to_json_text_unless_text('{"already": "json"}') == '{"already": "json"}'
    assert to_json_text([decimal.Decimal("1.5"), b"\x01"]) == '[1.5, "01"]'


def test_mariadb_and_text_conversions() -> None:
    aware = dt.datetime(2022, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert to_utc_naive(aware) == dt.datetime(2022, 3, 1, 10, 0)
    assert to_utc_naive(dt.datetime(2022, 3, 1, 12, 0)) == dt.datetime(2022, 3, 1, 12, 0)
    assert to_text(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_text(b"\x01\xff") == "01ff"
    assert to_text(dt.timedelta(days=1)) == "1 day, 0:00:00"


def test_convert_rows_only_touches_converted_columns() -> None:
    frame = pd.DataFrame({"id": pd.Series([1, 2], dtype=object), "doc": pd.Series([{"a": 1}, None], dtype=object)})
    assert convert_rows(frame, ["id", "doc"], {"doc": to_json_text}) == [(1, '{"a": 1}'), (2, None)]
