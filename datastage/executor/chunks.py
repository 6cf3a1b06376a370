"""How a table is cut into chunks: by the data alone, never by the number of workers.

A chunk is a ``WHERE`` clause over one table of the source snapshot. A PostgreSQL table copied
whole is cut into block ranges (``ctid`` TID range scans, PostgreSQL 14 and later) of about
:data:`CHUNK_PAGES` blocks (16 MB); a table below :data:`MIN_PAGES` blocks, a partitioned table,
an older server, a subset or any other system gives one chunk, which the refresh copies as it
always has. Block ranges need no key, so composite keys, text keys and tables without a key cut
alike. The last range is open, so rows on blocks added after the table was measured still belong
to a chunk. As the cut depends only on the table's size, the output is the same whatever the
workers: ``$DATASTAGE_CHUNK_ROWS`` (tests) sets the rows per chunk instead.

Example (a table of 5,000 blocks with 100 rows per block, in chunks of 2,048 blocks):
    >>> [c.where for c in block_chunks("public.t", 5_000, 2_048)]  # doctest: +NORMALIZE_WHITESPACE
    [" WHERE ctid < '(2048,0)'::tid",
     " WHERE ctid >= '(2048,0)'::tid AND ctid < '(4096,0)'::tid",
     " WHERE ctid >= '(4096,0)'::tid"]
    >>> block_chunks("public.t", 5_000, 2_048)[1]
    Chunk(public.t 2/3)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from datastage.settings import tuning_from_env
from datastage.source.identifiers import POSTGRESQL, qualified_name
from datastage.source.schema import TableInfo

MIN_PAGES = 2_048  # below about 16 MB a table is one chunk: workers would cost more than they save
CHUNK_PAGES = 2_048  # about 16 MB (8 kB blocks) per chunk
MIN_SERVER = 140_000  # TID range scans: older servers would scan the whole table for each chunk


@dataclass(frozen=True)
class Chunk:
    """One slice of one table: rows of ``table`` matching ``where`` (``""``: every row)."""

    table: str
    position: int
    count: int
    where: str = ""

    @property
    def condition(self) -> str:
        """The ``WHERE`` clause's condition alone (``""``: every row)."""
        return self.where.removeprefix(" WHERE ")

    def __repr__(self) -> str:
        return f"Chunk({self.table} {self.position + 1}/{self.count})"


def block_chunks(table: str, pages: int, per_chunk: int) -> list[Chunk]:
    """Chunks of ``per_chunk`` blocks over a table of ``pages`` blocks (the first and last ranges open)."""
    per_chunk = max(1, per_chunk)
    if pages <= per_chunk:
        return [Chunk(table, 0, 1)]
    starts = list(range(per_chunk, pages, per_chunk))
    count = len(starts) + 1
    clauses = [f" WHERE ctid < '({starts[0]},0)'::tid"]
    clauses += [f" WHERE ctid >= '({a},0)'::tid AND ctid < '({b},0)'::tid" for a, b in itertools.pairwise(starts)]
    clauses.append(f" WHERE ctid >= '({starts[-1]},0)'::tid")
    return [Chunk(table, i, count, where) for i, where in enumerate(clauses)]


def server_version(conn: Connection) -> int:
    """The PostgreSQL server's version number (``150004`` for 15.4)."""
    return int(conn.exec_driver_sql("SELECT current_setting('server_version_num')").scalar() or 0)


def table_chunks(conn: Connection, table: TableInfo, plan: Any, default_schema: str | None,
                 chunk_rows: int | None = None) -> list[Chunk]:
    """The chunks of one planned table on the source snapshot ``conn`` (one chunk when it is not cut).

    ``chunk_rows`` (default ``$DATASTAGE_CHUNK_ROWS``): rows per chunk, measured by the rows per block."""
    one = [Chunk(table.key, 0, 1)]
    if conn.dialect.name != "postgresql" or plan.mode != "all" or plan.null_foreign_keys or table.partitions:
        return one
    if server_version(conn) < MIN_SERVER:
        return one
    rows_per_chunk = chunk_rows if chunk_rows is not None else tuning_from_env().chunk_rows
    name = qualified_name(POSTGRESQL, table.schema or default_schema or "public", table.name)
    row = conn.exec_driver_sql(
        "SELECT c.relkind, pg_relation_size(c.oid) / current_setting('block_size')::int "
        "FROM pg_class c WHERE c.oid = to_regclass(%(name)s)", {"name": name}).fetchone()
    if row is None or row[0] != "r" or not row[1]:
        return one
    pages = int(row[1])
    if rows_per_chunk is None:
        return block_chunks(table.key, pages, CHUNK_PAGES) if pages >= MIN_PAGES else one
    rows = int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0)
    per_page = max(1, -(-rows // pages))
    return block_chunks(table.key, pages, -(-rows_per_chunk // per_page))
