"""PostgreSQL rows as Arrow tables: ``COPY ... TO STDOUT (FORMAT csv)`` parsed by ``pyarrow.csv``.

For text and integer columns, whose CSV text is the value itself: no Python object is made for
any value. In PostgreSQL's CSV a NULL is an empty unquoted field and an empty string is ``""``,
which ``pyarrow.csv`` tells apart (``quoted_strings_can_be_null=False``); a value holding a
delimiter, a quote or a line break is quoted, and each row arrives as one COPY message, so a
batch of rows is a complete CSV document.

Example (values as they come back: text as ``str``, integers as ``int``, NULL as ``None``):
    >>> parse_csv([b'1,plain\\n', b'2,""\\n', b'3,\\n', b'4,"a,\\nb"\\n'], ["id", "name"], {"id"}).to_pylist()
    [{'id': 1, 'name': 'plain'}, {'id': 2, 'name': ''}, {'id': 3, 'name': None}, {'id': 4, 'name': 'a,\\nb'}]
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import psycopg

from datastage.targets.postgres.stream import copy_out


def parse_csv(lines: list[bytes], columns: list[str], integers: set[str]) -> Any:
    """One batch of PostgreSQL CSV rows as a ``pyarrow.Table`` (``integers``: the int64 columns).

    An unquoted empty field is NULL, a quoted one the empty string:
        >>> parse_csv([b'1,Ann\\n', b'2,\\n', b'3,""\\n'], ["id", "name"], {"id"}).to_pylist()
        [{'id': 1, 'name': 'Ann'}, {'id': 2, 'name': None}, {'id': 3, 'name': ''}]
    """
    import pyarrow as pa
    from pyarrow import csv

    types = {name: pa.int64() if name in integers else pa.string() for name in columns}
    if not lines:
        return pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    return csv.read_csv(
        io.BytesIO(b"".join(lines)),
        read_options=csv.ReadOptions(column_names=columns, use_threads=False, block_size=1 << 26),
        parse_options=csv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                                       newlines_in_values=True),
        convert_options=csv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                           quoted_strings_can_be_null=False))


def read_tables(raw: psycopg.Connection[Any], select: str, columns: list[str], integers: set[str],
                batch_size: int) -> Iterator[Any]:
    """The rows of ``select`` (over ``columns``, the ``integers`` among them int64, the others text) as
    ``pyarrow.Table`` batches of ``batch_size`` rows (each parsed by :func:`parse_csv`). Raises
    ``psycopg.Error``."""
    sql = f"COPY ({select}) TO STDOUT WITH (FORMAT csv)"
    for lines in copy_out(raw.pgconn, sql.encode("utf-8"), batch_size):
        yield parse_csv(lines, columns, integers)
