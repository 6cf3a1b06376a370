"""Reading PostgreSQL with ``COPY ... TO STDOUT``: the lines through libpq, or Arrow tables.

PostgreSQL sends one message per row; :func:`copy_out` reads them through libpq directly
(``get_copy_data`` until it would block, then one ``select``), a fraction of the cost of a
generic per-message read. :func:`read_tables` parses ``COPY ... (FORMAT csv)`` with
``pyarrow.csv``: for text and integer columns, whose CSV text is the value itself, no Python
object is made for any value. In PostgreSQL's CSV a NULL is an empty unquoted field and an empty
string is ``""``, which ``pyarrow.csv`` tells apart (``quoted_strings_can_be_null=False``); a
value holding a delimiter, a quote or a line break is quoted, and each row arrives as one COPY
message, so a batch of rows is a complete CSV document.

Example (values as they come back: text as ``str``, integers as ``int``, NULL as ``None``):
    >>> parse_csv([b'1,plain\\n', b'2,""\\n', b'3,\\n', b'4,"a,\\nb"\\n'], ["id", "name"], {"id"}).to_pylist()
    [{'id': 1, 'name': 'plain'}, {'id': 2, 'name': ''}, {'id': 3, 'name': None}, {'id': 4, 'name': 'a,\\nb'}]
"""

from __future__ import annotations

import io
import select
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psycopg
from psycopg import pq

from datastage.source.values import arrow_to_frame


def _wait_readable(pgconn: Any) -> None:
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _result(pgconn: Any) -> Any:
    while pgconn.is_busy():
        _wait_readable(pgconn)
    return pgconn.get_result()


def copy_out(pgconn: Any, query: bytes, batch_size: int) -> Iterator[list[bytes]]:
    """The lines of a ``COPY ... TO STDOUT`` run on ``pgconn``, ``batch_size`` at a time."""
    pgconn.send_query(query)
    result = _result(pgconn)
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise psycopg.errors.error_from_result(result, encoding="utf-8") if result is not None else \
            psycopg.OperationalError("COPY did not start")
    lines: list[bytes] = []
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            lines.append(bytes(data))
            if len(lines) >= batch_size:
                yield lines
                lines = []
        elif nbytes == 0:
            _wait_readable(pgconn)
        else:
            break
    final = _result(pgconn)
    _drain(pgconn)
    if final is None or final.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(final, encoding="utf-8") if final is not None else \
            psycopg.OperationalError("COPY ended without a result")
    if lines:
        yield lines


def _drain(pgconn: Any) -> None:
    """Read the results still pending, so the connection is ready for the next command."""
    while _result(pgconn) is not None:
        pass


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


def read_frames(raw: psycopg.Connection[Any], select: str, columns: list[str], integers: set[str],
                batch_size: int) -> Iterator[pd.DataFrame]:
    """:func:`read_tables` as DataFrames of ``object`` columns holding the values the driver would give
    (``str``, ``int``, None). Raises ``psycopg.Error``."""
    for batch in read_tables(raw, select, columns, integers, batch_size):
        yield arrow_to_frame(batch, columns)
