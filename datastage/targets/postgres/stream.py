"""PostgreSQL → PostgreSQL fast path: rows stream as COPY text, only masked fields become Python values.

A whole-table copy whose masked columns are all text (names, e-mails, addresses ...) needs no
Python object for any other field. The source runs ``COPY (SELECT masked..., others...) TO
STDOUT`` inside the refresh's read-only snapshot; each line is split only at its masked
fields, those are decoded into a small batch for the masking engine (exactly the ``str``
values the row-by-row path would hand it), encoded back, and the lines go to ``COPY ...
FROM STDIN`` on the shadow. Tables without masked columns pass through untouched.

The engine sees a batch holding only the masked columns; rules with a ``when:`` condition,
masked columns of other types, subsets and nulled foreign keys take the row-by-row path.

Example (values to COPY text fields and back: NULL is ``\\N``, tabs and newlines are escaped):
    >>> encode_fields(["plain", None, "tab\\there"])
    [b'plain', b'\\\\N', b'tab\\\\there']
    >>> decode_fields([b'plain', b'\\\\N', b'tab\\\\there'])
    ['plain', None, 'tab\\there']
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy.engine import Connection

from datastage.errors import SourceError, TargetError
from datastage.mask.engine import MaskingEngine, MaskStats
from datastage.source.identifiers import POSTGRESQL, qualified_name, quote_identifier
from datastage.source.pgcopy import copy_out
from datastage.source.schema import SchemaModel, TableInfo
from datastage.source.values import column_values


class CopySink(Protocol):
    """The shadow a table streams into (a :class:`~datastage.targets.postgres.target.PostgresShadow`)."""

    model: SchemaModel

    def db(self) -> psycopg.Connection[Any]:
        """The load's connection."""

    def sql_name(self, table: TableInfo, conn: Connection) -> str:
        """The quoted name of ``table`` in the shadow."""

    def copy_options(self, table: TableInfo) -> str:
        """The ``WITH (...)`` options of the ``COPY`` that loads ``table``."""

NULL = b"\\N"
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))")
_SIMPLE = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


@dataclass
class Streamed:
    """What one streamed table produced."""

    rows: int
    stats: MaskStats


def _unescape_one(match: re.Match[bytes]) -> bytes:
    octal, hexa, char = match.groups()
    if octal is not None:
        return bytes([int(octal, 8) & 0xFF])
    if hexa is not None:
        return bytes([int(hexa, 16)])
    return _SIMPLE.get(char, char)


def decode_field(field: bytes) -> str | None:
    """One COPY text field as ``str`` (``None`` for NULL)."""
    if field == NULL:
        return None
    if b"\\" in field:
        field = _ESCAPE.sub(_unescape_one, field)
    return field.decode("utf-8")


def encode_field(value: Any) -> bytes:
    """One value as a COPY text field."""
    if value is None:
        return NULL
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text.encode("utf-8")


def decode_fields(fields: list[bytes]) -> list[str | None]:
    """``decode_field`` over a column: one decode and one split when no field has an escape."""
    if not fields:
        return []
    joined = b"\x00".join(fields)
    if joined.count(b"\\") != fields.count(NULL):  # a backslash other than NULL's own: unescape one by one
        return [decode_field(f) for f in fields]
    return [None if v == "\\N" else v for v in joined.decode("utf-8").split("\x00")]


def encode_fields(values: list[Any]) -> list[bytes]:
    """``encode_field`` over a column: one encode and one split when no value needs escaping."""
    if not values:
        return []
    nulls = [i for i, v in enumerate(values) if v is None]
    texts = [v for v in values if v is not None] if nulls else values
    if not all(type(v) is str for v in texts):
        return [encode_field(v) for v in values]
    joined = "\x00".join("" if v is None else v for v in values) if nulls else "\x00".join(texts)
    if ("\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined
            or joined.count("\x00") != len(values) - 1):
        return [encode_field(v) for v in values]
    out = joined.encode("utf-8").split(b"\x00")
    for i in nulls:
        out[i] = NULL
    return out


def encode_column(series: pd.Series) -> list[bytes]:
    """:func:`encode_fields` of a column's values, missing markers (None, NaN, NaT, NA) as NULL: a column
    of plain strings is checked and joined as one array, without a Python loop over its values.

    >>> encode_column(pd.Series(["a", None, "b"], dtype=object))
    [b'a', b'\\\\N', b'b']
    """
    array = series.to_numpy(dtype=object)
    if not len(array):
        return []
    missing = None
    if pd.api.types.infer_dtype(array, skipna=False) != "string":  # plain strings (the usual case) skip this
        missing = pd.isna(array)
        if not missing.any() or pd.api.types.infer_dtype(array[~missing], skipna=False) != "string":
            return encode_fields(column_values(series))
        array = array.copy()
        array[missing] = ""
    joined = "\x00".join(array.tolist())
    if ("\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined
            or joined.count("\x00") != len(array) - 1):
        return encode_fields(column_values(series))
    out = joined.encode("utf-8").split(b"\x00")
    if missing is not None:
        for i in np.flatnonzero(missing).tolist():
            out[i] = NULL
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of short-lived bytes objects: pause the cyclic collector (they hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


TEXT_FAITHFUL = {"text", "integer", "uuid"}  # COPY text reads the same as the driver's value


def streamable(shadow: CopySink, table: TableInfo, plan: Any, engine: MaskingEngine,
               observer: Any = None) -> list[str] | None:
    """The columns to decode (masked first) when the fast path applies, else None.

    It applies to whole tables whose masked columns are text, masked by strategies that
    read nothing but the column itself, and whose columns the leak check needs read the
    same from COPY text as from the driver.
    """
    if shadow.model.dialect != "postgresql" or shadow.model.catalog is None:
        return None
    if plan.mode != "all" or plan.null_foreign_keys:
        return None
    masked = []
    for rule in engine.policy.masked_columns(table.key):
        column = table.columns.get(rule.column)
        if column is None or column.generated:
            continue
        spec = rule.spec
        if rule.when or column.category != "text" or spec is None or not spec.row_independent or spec.reads_masked:
            return None
        masked.append(rule.column)
    needed = observer.needed_columns(table.key) if observer is not None else []
    if any(table.columns[c].category not in TEXT_FAITHFUL for c in needed if c in table.columns):
        return None
    return list(dict.fromkeys([*masked, *(c for c in needed if c in table.insertable_columns)]))


def stream_table(source: Connection, shadow: CopySink, table: TableInfo, decoded: list[str],
                 engine: MaskingEngine, batch_size: int, progress: Any, observer: Any = None,
                 where: str = "") -> Streamed:
    """Copy ``table`` from the source snapshot into the shadow; ``decoded`` columns become values
    (the masking engine masks those with a rule; ``observer`` sees them before and after).
    ``where`` (`` WHERE ...``) copies one chunk of the table only."""
    others = [c for c in table.insertable_columns if c not in decoded]
    columns = [*decoded, *others]
    names = ", ".join(quote_identifier(POSTGRESQL, c) for c in columns)
    schema = table.schema or shadow.model.default_schema or "public"
    read_sql = f"COPY (SELECT {names} FROM {qualified_name(POSTGRESQL, schema, table.name)}{where}) TO STDOUT"
    write_sql = f"COPY {shadow.sql_name(table, source)} ({names}) FROM STDIN{shadow.copy_options(table)}"
    raw = source.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    stats = MaskStats()
    rows = 0
    width = len(decoded)
    with _no_gc(), _target_errors(table), shadow.db().cursor().copy(write_sql) as sink:
        for lines in _read_batches(raw, read_sql, table, batch_size):
            if width:
                block, batch_stats = _mask_lines(lines, decoded, width, bool(others), table, engine, observer)
                stats.add(batch_stats)
            else:
                block = b"".join(lines)
            sink.write(block)
            rows += len(lines)
            progress.advance(len(lines))
    return Streamed(rows, stats)


@contextmanager
def _target_errors(table: TableInfo) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TargetError(f"writing {table.key} into the shadow failed: {text}", table=table.key) from None


def _read_batches(raw: psycopg.Connection[Any], sql: str, table: TableInfo, batch_size: int) -> Iterator[list[bytes]]:
    """Lines of the source's COPY output, ``batch_size`` at a time.

    PostgreSQL sends one message per row; reading them through libpq directly (``get_copy_data``
    until it would block, then one ``select``) costs a fraction of a generic per-message read.
    """
    try:
        yield from copy_out(raw.pgconn, sql.encode("utf-8"), batch_size)
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"reading {table.key} failed: {text}", table=table.key, step="extract") from None


def _mask_lines(lines: list[bytes], masked: list[str], width: int, rest: bool, table: TableInfo,
                engine: MaskingEngine, observer: Any = None) -> tuple[bytes, MaskStats]:
    """Masked copies of ``lines`` (whose first ``width`` fields are the decoded columns)."""
    fields, tail = split_lines(lines, width, rest)
    data = {name: pd.Series(decode_column(field), dtype=object, copy=False) for name, field in zip(masked, fields)}
    frame = pd.DataFrame(data, copy=False)
    out, stats = engine.mask_batch(table.key, frame)
    if observer is not None:
        observer.observe(table.key, frame, out)
    return join_lines([encode_column(out[name]) for name in masked], tail), stats


_TAB = b"\t"
_BACKSLASH = "\\"


def split_lines(lines: list[bytes], width: int, rest: bool) -> tuple[list[Any], Any]:
    """The first ``width`` tab-separated fields of COPY text ``lines`` as Arrow binary arrays, and with
    ``rest``, the remainder of each line (its other fields and its newline, as they came; else None).

    >>> fields, tail = split_lines([b"a\\tb\\tc\\n", b"\\\\N\\tx\\ty\\n"], 1, True)
    >>> fields[0].to_pylist(), tail.to_pylist()
    ([b'a', b'\\\\N'], [b'b\\tc\\n', b'x\\ty\\n'])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(lines, type=pa.large_binary())
    if not rest:
        array = pc.binary_slice(array, 0, -1)  # the newline
    parts = pc.split_pattern(array, pattern=_TAB, max_splits=width if rest else None)
    fields = [pc.list_element(parts, position) for position in range(width)]
    return fields, (pc.list_element(parts, width) if rest else None)


def decode_column(field: Any) -> np.ndarray:
    """:func:`decode_fields` of an Arrow binary array of COPY text fields, as an object array: one UTF-8
    check and conversion for the column when no field but NULL's own has a backslash.

    >>> import pyarrow as pa
    >>> decode_column(pa.array([b"plain", b"\\\\N", b"caf\\xc3\\xa9"], type=pa.large_binary())).tolist()
    ['plain', None, 'café']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    null = pc.equal(field, pa.scalar(NULL, type=pa.large_binary()))
    escaped = pc.match_substring(field, pattern=_BACKSLASH)
    out = np.empty(len(field), dtype=object)
    if (pc.sum(escaped).as_py() or 0) > (pc.sum(null).as_py() or 0):  # an escape: field by field
        out[:] = decode_fields(field.to_pylist())
        return out
    out[:] = field.cast(pa.large_string()).to_numpy(zero_copy_only=False)
    out[null.to_numpy(zero_copy_only=False)] = None
    return out


def join_lines(columns: list[list[bytes]], tail: Any) -> bytes:
    """COPY text lines from encoded ``columns`` (one list of fields each) and, when not None, each line's
    remainder from :func:`split_lines` (which holds its newline).

    >>> join_lines([[b"a", b"b"], [b"1", b"2"]], None)
    b'a\\t1\\nb\\t2\\n'
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [pa.array(column, type=pa.large_binary()) for column in columns]
    tab = pa.scalar(_TAB, type=pa.large_binary())
    if tail is not None:
        joined = pc.binary_join_element_wise(*arrays, tail, tab)
    else:
        joined = pc.binary_join_element_wise(*arrays, tab)
        joined = pc.binary_join_element_wise(joined, pa.scalar(b"\n", type=pa.large_binary()),
                                             pa.scalar(b"", type=pa.large_binary()))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset:joined.offset + len(joined) + 1]
    return joined.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
