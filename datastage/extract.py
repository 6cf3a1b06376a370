"""Streaming reads from the source snapshot as DataFrame batches.

The subset planner and the extractor read through the same helpers: stream a table
(optionally filtered), or fetch the rows whose columns match a set of key values, in
batches sized to stay under every driver's parameter limit.

Example:
    >>> with snapshot(engine) as conn:                                   # doctest: +SKIP
    ...     for batch in stream_rows(conn, model.table("customer"), ["customer_id"]):
    ...         print(len(batch))
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.db import db_error_message, dialect_of
from datastage.errors import SourceError
from datastage.schema import TableInfo
from datastage.values import rows_to_frame

if TYPE_CHECKING:
    from datastage.subset import TablePlan

FULL_SCAN_SHARE = 0.3  # above this share of a table, one filtered scan beats key lookups

DEFAULT_BATCH = 10_000
_MAX_PARAMS = {"sqlite": 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999,
               "postgresql": 30_000, "mysql": 30_000}
_ANY_ARRAY_CATEGORIES = {"integer": sa.BigInteger, "text": sa.Text, "uuid": postgresql.UUID}


def raw_column(table: TableInfo, name: str) -> sa.Label[Any]:
    """A column read without SQLAlchemy type processing: values arrive as the driver returns them."""
    return sa.type_coerce(table.sa_table.c[name], sa.types.NullType()).label(name)


def _select(table: TableInfo, columns: Sequence[str]) -> sa.Select[Any]:
    return sa.select(*(raw_column(table, c) for c in columns))


def _run(conn: Connection, stmt: sa.Executable, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
    """Execute ``stmt`` with a streaming cursor and yield frames of up to ``batch_size`` rows."""
    try:
        result = conn.execution_options(stream_results=True, max_row_buffer=batch_size).execute(stmt)
        columns = list(result.keys())
        for part in result.partitions(batch_size):
            yield rows_to_frame(part, columns)
    except SQLAlchemyError as exc:
        raise SourceError(f"reading {table.key} failed: {db_error_message(exc)}", table=table.key) from None


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
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[pd.DataFrame]:
    """All rows of ``table`` (or those matching ``where``), ``columns`` only, in batches."""
    stmt = _select(table, columns)
    if isinstance(where, str):
        stmt = stmt.where(sa.text(where))
    elif where is not None:
        stmt = stmt.where(where)
    yield from _run(conn, stmt, table, batch_size)


def match_clause(
    conn: Connection, table: TableInfo, match_columns: Sequence[str], values: pd.DataFrame
) -> sa.ColumnElement[bool]:
    """``(match_columns) IN values`` for one batch; an array ``= ANY`` on PostgreSQL where possible."""
    cols = [table.sa_table.c[c] for c in match_columns]
    if len(cols) == 1:
        column = table.columns[match_columns[0]]
        data = values.iloc[:, 0].tolist()
        if dialect_of(conn) == "postgresql" and column.category in _ANY_ARRAY_CATEGORIES:
            array_type = postgresql.ARRAY(_ANY_ARRAY_CATEGORIES[column.category]())
            if column.category == "uuid":
                data = [str(v) for v in data]
                return sa.cast(cols[0], sa.Text) == sa.any_(sa.bindparam(None, data, type_=postgresql.ARRAY(sa.Text)))
            return cols[0] == sa.any_(sa.bindparam(None, data, type_=array_type))
        return cols[0].in_(data)
    return sa.tuple_(*cols).in_(list(values.itertuples(index=False, name=None)))


def fetch_matching(
    conn: Connection,
    table: TableInfo,
    columns: Sequence[str],
    match_columns: Sequence[str],
    values: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[pd.DataFrame]:
    """Rows of ``table`` whose ``match_columns`` equal one of the rows of ``values``.

    ``values`` holds distinct, non-NULL key tuples (one column per match column).
    """
    if values.empty:
        return
    step = max(1, min(batch_size, _MAX_PARAMS[dialect_of(conn)] // max(1, len(match_columns))))
    for start in range(0, len(values), step):
        chunk = values.iloc[start:start + step]
        stmt = _select(table, columns).where(match_clause(conn, table, match_columns, chunk))
        yield from _run(conn, stmt, table, batch_size)


@dataclass
class ExtractResult:
    """Rows read per table (what the pipeline streamed through masking into the shadow)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


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
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[pd.DataFrame]:
    """Stream the planned rows of one table (every insertable column) in batches.

    Foreign keys into excluded tables are set to NULL on the way out.
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
        if len(plan.keys) >= FULL_SCAN_SHARE * plan.source_rows:
            for batch in stream_rows(conn, table, columns, batch_size=batch_size):
                yield batch[plan.keys.contains(batch[key_columns])]
        else:
            for chunk in plan.keys.batches(batch_size):
                yield from fetch_matching(conn, table, columns, key_columns, chunk, batch_size)
    elif plan.mode == "filter":
        yield from _keyless_rows(conn, table, plan, columns, seed, batch_size)


def _keyless_rows(
    conn: Connection, table: TableInfo, plan: TablePlan, columns: list[str], seed: int, batch_size: int
) -> Iterator[pd.DataFrame]:
    """Rows of a table without a row key: each root filter, then each child edge, without repeats."""
    from datastage.subset import limit_per_parent, seeded_hash

    def root_match(batch: pd.DataFrame) -> np.ndarray:
        hit = np.zeros(len(batch), dtype=bool)
        for index, root in enumerate(plan.root_filters):
            flag = batch[f"_ds_root{index}"].fillna(0).astype(int).to_numpy() == 1
            if root.sampled:
                if root.threshold is None:
                    continue
                flag &= seeded_hash(batch[root.sample_columns], seed) <= np.uint64(root.threshold)
            hit |= flag
        return hit

    root_flags = [
        (sa.case((sa.text(r.where), 1), else_=0) if r.where else sa.literal(1)).label(f"_ds_root{i}")
        for i, r in enumerate(plan.root_filters)
    ]
    extra = [f"_ds_root{i}" for i in range(len(root_flags))]
    sample_cols = sorted({c for r in plan.root_filters for c in r.sample_columns} - set(columns))

    def select(where: sa.ColumnElement[bool] | None) -> sa.Select[Any]:
        stmt = sa.select(*(raw_column(table, c) for c in [*columns, *sample_cols]), *root_flags)
        return stmt.where(where) if where is not None else stmt

    def strip(batch: pd.DataFrame) -> pd.DataFrame:
        return batch.drop(columns=[*extra, *sample_cols])

    if plan.root_filters:
        for batch in _run(conn, select(None), table, batch_size):
            yield strip(batch[root_match(batch)])
    seen: list[tuple[tuple[str, ...], object]] = []
    for edge in plan.edge_filters:
        fk_cols = list(edge.fk.columns)
        if edge.values is None:
            not_null = sa.and_(*(table.sa_table.c[c].isnot(None) for c in fk_cols))
            batches: Iterator[pd.DataFrame] = _run(conn, select(not_null), table, batch_size)
        else:
            batches = (
                frame
                for chunk in edge.values.batches(batch_size)
                for frame in [pd.concat(list(_run(conn, select(match_clause(conn, table, fk_cols, chunk)), table,
                                                 batch_size)) or [select_empty(columns)], ignore_index=True)]
            )
        for batch in batches:
            if batch.empty:
                continue
            if edge.limit_per_parent:
                batch = limit_per_parent(batch, edge.fk.columns, edge.limit_per_parent, [*columns], seed)
            keep = ~root_match(batch) if plan.root_filters else np.ones(len(batch), dtype=bool)
            for cols, values in seen:
                if values is None:
                    keep &= batch[list(cols)].isna().any(axis=1).to_numpy()
                else:
                    keep &= ~values.contains(batch[list(cols)])  # type: ignore[attr-defined]
            yield strip(batch[keep])
        seen.append((edge.fk.columns, edge.values))


def select_empty(columns: Sequence[str]) -> pd.DataFrame:
    """An empty batch with ``columns``."""
    return rows_to_frame([], columns)
