"""Row batches as ``LOAD DATA`` text for MariaDB/MySQL, encoded a whole column at a time.

A batch becomes tab-separated lines in ``utf8mb4`` read with ``FIELDS TERMINATED BY '\\t'
ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'``: NULL is ``\\N``; backslash, tab and newline in
text are escaped; binary values travel as hex and are stored with ``UNHEX()``; dates, times
and datetimes (aware ones in UTC) in ISO form; decimals with all their digits; booleans as
``1``/``0``. Each column is converted with pyarrow kernels (no Python per value), and only
where the text gives the very value a multi-row ``INSERT`` stores for that column's type;
a batch with any other pairing of value and column type is written by ``INSERT`` instead
(:func:`encode_batch` returns None).

Example (a NULL, a tab, a backslash and bytes in one batch):
    >>> frame = pd.DataFrame({"id": [1, 2], "name": ["a\\tb", None], "raw": [b"\\x00\\xff", b"\\\\"]})
    >>> batch = encode_batch(frame, ["id", "name", "raw"], {}, {"id": "integer", "name": "text",
    ...                                                          "raw": "binary"})
    >>> batch.data
    b'1\\ta\\\\tb\\t00ff\\n2\\t\\\\N\\t5c\\n'
    >>> batch.columns, batch.assignments
    (['`id`', '`name`', '@c2'], ['`raw` = UNHEX(@c2)'])
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datastage.source.identifiers import MYSQL, quote_identifier
from datastage.targets.convert import Converter, to_bytes, to_text_or_bytes, to_utc_naive

NULL = "\\N"
# Converters the kernels below do themselves (aware datetimes to UTC, memoryview to bytes):
# the values reach pyarrow as the driver returned them.
NATIVE_CONVERTERS: tuple[Converter, ...] = (to_utc_naive, to_bytes)
# Per value only where the values are not all bytes already (BIT values read from MariaDB are).
BYTES_KEPT: tuple[Converter, ...] = (to_text_or_bytes,)
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)


def column_family(sql_type: str) -> str:
    """The family of a MariaDB column type as compiled DDL names it.

    >>> [column_family(t) for t in ("INTEGER", "DECIMAL(30, 10)", "DATETIME(6)", "LONGBLOB", "BIT(8)", "ENUM('a')")]
    ['integer', 'numeric', 'datetime', 'binary', 'bit', 'text']
    """
    name = sql_type.strip().upper()
    head = re.split(r"[\s(]", name, maxsplit=1)[0]
    if head == "BIT":
        return "bit"
    if head in ("BOOL", "BOOLEAN", "INTEGER", "YEAR") or head.endswith("INT"):
        return "integer"
    if head in ("DECIMAL", "NUMERIC", "FLOAT", "DOUBLE", "REAL", "DEC", "FIXED"):
        return "numeric"
    if head in ("DATETIME", "TIMESTAMP"):
        return "datetime"
    if head == "DATE":
        return "date"
    if head == "TIME":
        return "time"
    if "BLOB" in head or head in ("BINARY", "VARBINARY"):
        return "binary"
    if "CHAR" in head or "TEXT" in head or head in ("ENUM", "SET", "JSON", "UUID", "INET4", "INET6"):
        return "text"
    return "other"


@dataclass
class EncodedBatch:
    """One batch as ``LOAD DATA`` input: the bytes, the column list and the ``SET`` assignments."""

    data: bytes
    columns: list[str]
    assignments: list[str]
    rows: int

    def statement(self, table: str) -> str:
        """The ``LOAD DATA LOCAL INFILE %s`` statement for ``table`` (the file name is its one parameter)."""
        sql = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
               "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
               f"({', '.join(self.columns)})")
        if self.assignments:
            sql += " SET " + ", ".join(self.assignments)
        return sql


def _escape(text: pa.Array) -> pa.Array:
    """Backslash, tab and newline escaped as ``LOAD DATA`` reads them back."""
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n")):
        text = pc.replace_substring(text, char, escaped)
    return text


def _hex(values: pa.Array) -> pa.Array:
    """Binary values as lower-case hex text (one table lookup over the whole data buffer)."""
    values = values.cast(pa.large_binary())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None else np.empty(0, np.uint8)
    text = _HEX[raw].tobytes()
    valid = values.is_valid()
    new_offsets = (offsets - offsets[0]) * 2
    out = pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(new_offsets.tobytes()), pa.py_buffer(text))
    return pc.if_else(valid, out, pa.scalar(None, pa.large_string()))


def _arrow(series: pd.Series) -> pa.Array | None:
    """The column as an Arrow array (missing markers as nulls), or None if its values do not share a type."""
    try:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            return pa.array(series, from_pandas=True)
        values = series.to_numpy(dtype=object) if series.dtype == object else series
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _decimal_text(series: pd.Series) -> tuple[pa.Array, str] | None:
    """(text, ``direct``) for a column of Python ``Decimal`` values: the fixed-point text PyMySQL writes
    for each (``format(value, "f")``, several times faster than Arrow's conversion of ``Decimal``
    objects), or None when the column holds anything else or a NaN or infinity.

    >>> from decimal import Decimal
    >>> _decimal_text(pd.Series([Decimal("1.5E-7"), None, Decimal("1E+2")], dtype=object))[0].to_pylist()
    ['0.00000015', None, '100']
    """
    if series.dtype != object or not len(series):
        return None
    values = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) != "decimal":
        return None
    items = values.tolist()
    if not all(v is None or (isinstance(v, Decimal) and v.is_finite()) for v in items):
        return None  # a NaN, an infinity or another missing marker (float NaN, pd.NA): Arrow's way
    return pa.array([None if v is None else format(v, "f") for v in items], type=pa.string()), "direct"


def _field_text(array: pa.Array, family: str) -> tuple[pa.Array, str] | None:
    """(text, how it is assigned) for one column, or None when the text could store another value
    than ``INSERT`` does; how: ``direct``, ``unhex`` (hex text) or ``unsigned`` (an integer into BIT)."""
    kind = array.type
    if pa.types.is_null(kind):
        return pa.nulls(len(array), pa.string()), "direct"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _escape(array), "direct"
    if pa.types.is_boolean(kind):
        if family not in ("integer", "numeric", "text", "bit"):
            return None
        text = pc.if_else(array, "1", "0")
        return text, ("unsigned" if family == "bit" else "direct")
    if pa.types.is_integer(kind):
        if family not in ("integer", "numeric", "text", "bit"):
            return None
        return array.cast(pa.string()), ("unsigned" if family == "bit" else "direct")
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        # The shortest round-trip text of a double, all digits of a decimal: the same number as
        # PyMySQL's literal for a numeric column (a text column would keep another spelling).
        return (array.cast(pa.string()), "direct") if family == "numeric" else None
    if pa.types.is_date(kind):
        return (array.cast(pa.string()), "direct") if family in ("date", "datetime", "text") else None
    if pa.types.is_timestamp(kind):
        if family != "datetime":
            return None
        naive = array.cast(pa.timestamp("us", tz=kind.tz), safe=False) if kind.unit == "ns" else array
        if kind.tz is not None:  # the UTC wall time, as to_utc_naive gives it
            naive = naive.cast(pa.timestamp(naive.type.unit))
        return naive.cast(pa.string()), "direct"
    if pa.types.is_time(kind):
        return (array.cast(pa.string()), "direct") if family == "time" else None
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        if family not in ("binary", "text", "bit", "other"):
            return None
        return _hex(array.cast(pa.binary()) if pa.types.is_fixed_size_binary(kind) else array), "unhex"
    return None


def encode_batch(frame: pd.DataFrame, columns: Sequence[str], converters: dict[str, Converter],
                 families: dict[str, str]) -> EncodedBatch | None:
    """``frame``'s ``columns`` as ``LOAD DATA`` input, or None if a column needs ``INSERT``.

    ``converters`` are those of :func:`~datastage.targets.convert.converters_for` (JSON to text,
    UUID to text ...), applied as for ``INSERT``; ``families`` names each column's type family in
    the target (:func:`column_family`).
    """
    texts: list[pa.Array] = []
    names: list[str] = []
    assignments: list[str] = []
    for position, name in enumerate(columns):
        series = frame[name]
        converter = converters.get(name)
        array = _arrow(series) if converter in BYTES_KEPT else None
        if array is not None and (pa.types.is_binary(array.type) or pa.types.is_null(array.type)):
            converter = None
        if converter is not None and converter not in NATIVE_CONVERTERS:
            values = series.to_numpy(dtype=object)
            missing = pd.isna(values)
            converted = np.empty(len(values), dtype=object)
            converted[:] = [None if gone else converter(v) for v, gone in zip(values, missing, strict=True)]
            series = pd.Series(converted, dtype=object, copy=False)
            array = None
        family = families.get(name, "other")
        encoded = _decimal_text(series) if array is None and family == "numeric" else None
        if encoded is None:
            if array is None:
                array = _arrow(series)
            encoded = _field_text(array, family) if array is not None else None
        if encoded is None:
            return None
        text, how = encoded
        texts.append(pc.fill_null(text.cast(pa.large_string()), NULL))
        quoted = quote_identifier(MYSQL, name)
        if how == "direct":
            names.append(quoted)
        else:
            names.append(f"@c{position}")
            assignments.append(f"{quoted} = " + (f"UNHEX(@c{position})" if how == "unhex"
                                                 else f"CAST(@c{position} AS UNSIGNED)"))
    rows = len(frame)
    if not texts or rows == 0:
        return EncodedBatch(b"", names, assignments, 0)
    tab, empty, newline = (pa.scalar(text, pa.large_string()) for text in ("\t", "", "\n"))
    lines = pc.binary_join_element_wise(*texts, tab)
    lines = pc.binary_join_element_wise(lines, empty, newline)  # each line and a line end
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + rows + 1]
    data = lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()
    return EncodedBatch(data, names, assignments, rows)


@contextmanager
def load_file(data: bytes) -> Iterator[str]:
    """A file holding ``data`` in a new private (0700) directory, both removed when the block ends."""
    directory = tempfile.mkdtemp(prefix="datastage-load-")
    path = Path(directory) / "rows.tsv"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        yield str(path)
    finally:
        path.unlink(missing_ok=True)
        os.rmdir(directory)


def hex_text(values: Sequence[Any]) -> list[str | None]:
    """Hex of binary values, for tests and small callers (None stays None).

    >>> hex_text([b"\\x00\\xff", None, b""])
    ['00ff', None, '']
    """
    return _hex(pa.array(list(values), pa.binary())).to_pylist()
