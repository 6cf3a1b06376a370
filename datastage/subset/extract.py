"""Streaming reads from the source snapshot as DataFrame batches.

The subset planner and the extractor read through the same helpers: stream a table
(optionally filtered), or fetch the rows whose columns match a set of key values, in
batches sized to stay under every driver's parameter limit.

Example (25 matching rows in batches of 10):
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.connection.executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);"
    ...         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
    ...         "INSERT INTO customer SELECT i, 'c' || i FROM n;")
    ...     customer = reflect(conn).table("customer")
    ...     sizes = [len(batch) for batch in stream_rows(conn, customer, ["id"], where="id <= 25", batch_size=10)]
    ...     first = next(stream_rows(conn, customer, ["id", "name"], where="id <= 2"))
    >>> sizes, first.to_dict("records")
    ([10, 10, 5], [{'id': 1, 'name': 'c1'}, {'id': 2, 'name': 'c2'}])
"""

from __future__ import annotations

import collections
import sqlite3
import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import SourceError
from datastage.settings import DEFAULT_BATCH_SIZE
from datastage.source.db import db_error_message, dialect_of
from datastage.source.identifiers import POSTGRESQL, qualified_name, quote_identifier
from datastage.source.pgcopy import read_frames
from datastage.source.schema import TableInfo
from datastage.source.values import as_int64, rows_to_frame
from datastage.subset.model import TablePlan
from datastage.subset.sampling import ROW_DIGEST, row_digest

# PyMySQL silently drops the rest of an unbuffered (streamed) result when another statement
# runs on the connection and only warns; a subset must never lose rows that way.
warnings.filterwarnings("error", message="Previous unbuffered result was left incomplete")

FULL_SCAN_SHARE = 0.3  # above this share of a table, one filtered scan beats key lookups

_MAX_PARAMS = {"sqlite": 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999,
               "postgresql": 30_000, "mysql": 30_000}


def raw_column(table: TableInfo, name: str) -> sa.Label[Any]:
    """A column read without SQLAlchemy type processing: values arrive as the driver returns them."""
    return sa.type_coerce(table.sa_table.c[name], sa.types.NullType()).label(name)


def _select(table: TableInfo, columns: Sequence[str]) -> sa.Select[Any]:
    return sa.select(*(raw_column(table, c) for c in columns))


def _run(conn: Connection, stmt: sa.Executable, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
    """Execute ``stmt`` with a streaming (unbuffered) cursor and yield frames of up to ``batch_size`` rows.

    The result is always consumed or closed before the generator ends: MariaDB's unbuffered
    cursors block the next statement on the same snapshot connection until then.
    """
    import pymysql  # imported here: the driver errors of MariaDB/MySQL reads

    try:
        result = conn.execution_options(stream_results=True, max_row_buffer=batch_size).execute(stmt)
        try:
            columns = list(result.keys())
            if dialect_of(conn) == "mysql":
                yield from _unbuffered_batches(result, columns, batch_size)
            elif dialect_of(conn) == "postgresql":
                yield from _server_cursor_batches(result, columns, batch_size)
            else:
                for part in result.partitions(batch_size):
                    yield rows_to_frame(part, columns)
        finally:
            result.close()
    except (SQLAlchemyError, pymysql.Error, psycopg.Error) as exc:
        raise SourceError(f"reading {table.key} failed: {db_error_message(exc)}", table=table.key) from None


def _server_cursor_batches(result: sa.CursorResult[Any], columns: list[str],
                           batch_size: int) -> Iterator[pd.DataFrame]:
    """Batches straight from psycopg's server-side cursor: its row tuples become columns without a
    SQLAlchemy row object per row (the columns are selected untyped, so the values are the same)."""
    cursor = result.cursor
    buffered = getattr(result.cursor_strategy, "_rowbuffer", None)  # the driver rows SQLAlchemy read ahead
    if cursor is None or not isinstance(buffered, collections.deque):  # not as expected: SQLAlchemy's way
        for part in result.partitions(batch_size):
            yield rows_to_frame(part, columns)
        return
    ahead = list(buffered)
    buffered.clear()
    rows: Sequence[Any] = [*ahead, *cursor.fetchmany(max(batch_size - len(ahead), 1))]
    while rows:
        yield rows_to_frame(rows, columns)
        rows = cursor.fetchmany(batch_size)


def _unbuffered_batches(result: sa.CursorResult[Any], columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    """Batches straight from PyMySQL's unbuffered cursor (``SSCursor``): its row tuples become columns
    without a SQLAlchemy row object per row. SQLAlchemy has read one row ahead; it comes first."""
    first = result.fetchone()
    if first is None:
        return
    cursor = result.cursor
    if cursor is None or getattr(result.cursor_strategy, "_rowbuffer", None):  # rows still buffered: its way
        yield rows_to_frame([tuple(first)], columns)
        for part in result.partitions(batch_size):
            yield rows_to_frame(part, columns)
        return
    rows = [tuple(first), *cursor.fetchmany(batch_size - 1)]
    while rows:
        yield rows_to_frame(rows, columns)
        rows = list(cursor.fetchmany(batch_size))


def count_rows(conn: Connection, table: TableInfo, where: str | None = None) -> int:
    """Number of rows of ``table`` (matching ``where``) in the snapshot."""
    stmt = sa.select(sa.func.count()).select_from(table.sa_table)
    if where:
        stmt = stmt.where(sa.text(where))
    try:
        return int(conn.execute(stmt).scalar_one())
    except SQLAlchemyError as exc:
        raise SourceError(f"counting {table.key} failed: {db_error_message(exc)}", table=table.key) from None


def stream_rows(
    conn: Connection,
    table: TableInfo,
    columns: Sequence[str],
    where: str | sa.ColumnElement[bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pd.DataFrame]:
    """All rows of ``table`` (or those matching ``where``), ``columns`` only, in batches.

    A whole PostgreSQL table's text columns are read with ``COPY`` into Arrow
    (:func:`_copied`): the same ``str`` values, without a driver row per row.
    """
    stmt = _select(table, columns)
    raw = _copy_connection(conn, table, columns) if where is None else None
    if raw is not None:
        yield from _copied(raw, table, list(columns), batch_size)
        return
    if isinstance(where, str):
        stmt = stmt.where(sa.text(where))
    elif where is not None:
        stmt = stmt.where(where)
    yield from _run(conn, stmt, table, batch_size)


def _copy_connection(conn: Connection, table: TableInfo, columns: Sequence[str],
                     categories: frozenset[str] | set[str] = frozenset({"text"})) -> psycopg.Connection[Any] | None:
    """The psycopg connection under ``conn`` when ``columns`` can be read with ``COPY`` into Arrow, else None:
    PostgreSQL in UTF-8, every column of ``categories`` (text, integer: their COPY text is the value)."""
    if dialect_of(conn) != "postgresql" or not columns:
        return None
    if any(table.columns[c].category not in categories for c in columns):
        return None
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection) or raw.info.encoding != "utf-8":
        return None
    return raw


def _copied(raw: psycopg.Connection[Any], table: TableInfo, columns: list[str], batch_size: int,
            where: str = "") -> Iterator[pd.DataFrame]:
    """``columns`` of ``table`` (the rows matching ``where``) read with ``COPY (SELECT ...) TO STDOUT (FORMAT
    csv)``: frames of the values the driver gives (``str``, ``int``, None)."""
    parts = (table.schema, table.name) if table.schema else (table.name,)
    names = ", ".join(quote_identifier(POSTGRESQL, c) for c in columns)
    select = f"SELECT {names} FROM {qualified_name(POSTGRESQL, *parts)}" + (f" WHERE {where}" if where else "")
    integers = {c for c in columns if table.columns[c].category == "integer"}
    try:
        yield from read_frames(raw, select, columns, integers, batch_size)
    except psycopg.Error as exc:
        raise SourceError(f"reading {table.key} failed: {db_error_message(exc)}", table=table.key) from None


def _pg_array_type(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any] | None:
    """The array element type for ``column = ANY(:array)`` on PostgreSQL, or None to use ``IN``.

    Only plain integer, text and UUID columns (and domains over them) qualify: their
    comparison with a bigint/text/uuid array still uses the column's index. Enums, CHAR(n)
    and other types keep a typed ``IN`` list.
    """
    base = getattr(type_, "data_type", None) or type_
    if isinstance(base, sa.Enum | sa.CHAR | sa.NCHAR) or "CITEXT" in type(base).__name__.upper():
        return None
    if isinstance(base, sa.Integer):
        return sa.BigInteger()
    if isinstance(base, sa.Uuid):
        return sa.Uuid(as_uuid=True)
    if isinstance(base, sa.String):
        return sa.Text()
    return None


def _raw(table: TableInfo, name: str) -> sa.ColumnElement[Any]:
    return sa.type_coerce(table.sa_table.c[name], sa.types.NullType())


def typed_column(table: TableInfo, name: str) -> sa.ColumnElement[Any]:
    """The column for comparisons; a PostgreSQL DOMAIN compares as its base type."""
    column = table.sa_table.c[name]
    base = getattr(column.type, "data_type", None)
    return sa.type_coerce(column, base) if base is not None else column


def match_clause(
    conn: Connection, table: TableInfo, match_columns: Sequence[str], values: pd.DataFrame
) -> sa.ColumnElement[bool]:
    """``(match_columns) IN values`` for one batch; an array ``= ANY`` on PostgreSQL where possible.

    Values are bound as the driver returned them (SQLite, MariaDB); PostgreSQL binds them
    with the column's type so enums, domains and dates compare without casts.
    """
    dialect = dialect_of(conn)
    if dialect == "postgresql":
        cols: list[sa.ColumnElement[Any]] = [typed_column(table, c) for c in match_columns]
    else:
        cols = [_raw(table, c) for c in match_columns]
    if len(cols) == 1:
        data = values.iloc[:, 0].tolist()
        if dialect == "postgresql":
            element = _pg_array_type(table.sa_table.c[match_columns[0]].type)
            if element is not None:
                if isinstance(element, sa.Uuid):
                    data = [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in data]
                array = sa.bindparam(None, data, type_=postgresql.ARRAY(element))
                return cols[0] == sa.any_(array)
        return cols[0].in_(data)
    if dialect == "postgresql":
        return sa.tuple_(*cols).in_(_pg_unnest(table, match_columns, values))
    return sa.tuple_(*cols).in_(list(values.itertuples(index=False, name=None)))


def _pg_unnest(table: TableInfo, match_columns: Sequence[str], values: pd.DataFrame) -> sa.Select[Any]:
    """``SELECT * FROM unnest(:a, :b, ...)``: composite keys as one array per column.

    A row-value ``IN`` list of thousands of tuples exhausts PostgreSQL's stack; arrays keep
    one parameter per column and let the planner join on the key's index. Arrays of types
    without a plain array form are typed by the driver and cast back to the column's type.
    """
    arrays = []
    for name in match_columns:
        element = _pg_array_type(table.sa_table.c[name].type)
        data = values[name].tolist()
        if isinstance(element, sa.Uuid):
            data = [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in data]
        elif element is None and all(isinstance(v, str) for v in data):
            element = sa.Text()  # enums, CHAR(n), citext: text[] cast back to the column type
        array_type = postgresql.ARRAY(element) if element is not None else sa.types.NullType()
        arrays.append(sa.bindparam(None, data, type_=array_type))
    names = [f"k{i}" for i in range(len(match_columns))]
    rows = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return sa.select(*(sa.cast(rows.c[k], typed_column(table, c).type) for k, c in zip(names, match_columns)))


def chunk_size(conn: Connection, columns: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """How many key tuples of ``columns`` columns one ``IN`` query may carry on this connection."""
    return max(1, min(batch_size, _MAX_PARAMS[dialect_of(conn)] // max(1, columns)))


def fetch_matching(
    conn: Connection,
    table: TableInfo,
    columns: Sequence[str],
    match_columns: Sequence[str],
    values: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pd.DataFrame]:
    """Rows of ``table`` whose ``match_columns`` equal one of the rows of ``values``.

    ``values`` holds distinct, non-NULL key tuples (one column per match column).
    """
    if values.empty:
        return
    step = chunk_size(conn, len(match_columns), batch_size)
    raw = _copy_connection(conn, table, columns, {"text", "integer"}) if _integer_key(table, match_columns) else None
    for start in range(0, len(values), step):
        chunk = values.iloc[start:start + step]
        keys = _integer_literals(chunk.iloc[:, 0]) if raw is not None else None
        if raw is not None and keys is not None:
            where = f"{quote_identifier(POSTGRESQL, match_columns[0])} = ANY('{{{keys}}}'::bigint[])"
            yield from _copied(raw, table, list(columns), batch_size, where)
            continue
        stmt = _select(table, columns).where(match_clause(conn, table, match_columns, chunk))
        yield from _run(conn, stmt, table, batch_size)


def _integer_key(table: TableInfo, match_columns: Sequence[str]) -> bool:
    return len(match_columns) == 1 and table.columns[match_columns[0]].category == "integer"


def _integer_literals(values: pd.Series) -> str | None:
    """The values as a PostgreSQL array literal's body (``1,2,3``), or None unless every one is an integer
    of 64 bits (nothing else is ever written into the statement)."""
    numbers = as_int64(values.to_numpy(dtype=object))
    return None if numbers is None else ",".join(map(str, numbers.tolist()))


def null_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Set ``columns`` to NULL (used for foreign keys into excluded tables)."""
    for column in columns:
        frame[column] = pd.Series(np.full(len(frame), None, dtype=object), index=frame.index)
    return frame


def extract_table(
    conn: Connection,
    table: TableInfo,
    plan: TablePlan,
    seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pd.DataFrame]:
    """Stream the planned rows of one table (every insertable column) in batches.

    Foreign keys into excluded tables are set to NULL on the way out. A table without a
    row key is read in one scan and its rows recognised by their digest.
    """
    columns = table.insertable_columns
    null_cols = [c for fk in plan.null_foreign_keys for c in fk.columns if table.columns[c].nullable]
    for batch in _planned_rows(conn, table, plan, columns, seed, batch_size):
        if null_cols and not batch.empty:
            batch = null_columns(batch, null_cols)
        if not batch.empty:
            yield batch


def _planned_rows(
    conn: Connection, table: TableInfo, plan: TablePlan, columns: list[str], seed: int, batch_size: int
) -> Iterator[pd.DataFrame]:
    if plan.mode == "all":
        yield from stream_rows(conn, table, columns, batch_size=batch_size)
    elif plan.mode == "keys" and plan.keys is not None and len(plan.keys):
        key_columns = list(plan.keys.columns)
        if key_columns == [ROW_DIGEST]:
            # No row key: one scan, each row recognised by the digest of all its values.
            every = list(table.columns)
            for batch in stream_rows(conn, table, every, batch_size=batch_size):
                digests = pd.DataFrame({ROW_DIGEST: row_digest(batch, every)}, index=batch.index)
                yield batch.loc[plan.keys.contains(digests), columns]
        elif len(plan.keys) >= FULL_SCAN_SHARE * plan.source_rows:
            for batch in stream_rows(conn, table, columns, batch_size=batch_size):
                yield batch[plan.keys.contains(batch[key_columns])]
        else:
            for chunk in plan.keys.batches(batch_size):
                yield from fetch_matching(conn, table, columns, key_columns, chunk, batch_size)
