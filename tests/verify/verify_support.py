"""Small SQLite sources and shadows for the unit tests of the verify checks, and the context the checks read.

A source database is reflected and planned as a refresh would (every table copied whole,
the rules resolved against the schema); the shadow is a second SQLite file with the same
tables, filled by each test with the rows it wants the checks to find.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from maskkit import KEY

from datastage.mask.checkspec import parse_check_settings
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.plan import PlanResult
from datastage.settings import SubsetSpec
from datastage.source.schema import TableInfo, reflect
from datastage.source.values import rows_to_frame
from datastage.subset.planner import plan_subset
from datastage.verify.context import CheckContext
from datastage.verify.leaks.index import LeakIndex

SCHEMA = """
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    email TEXT UNIQUE,
    city TEXT,
    zip TEXT,
    note TEXT
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customer (customer_id),
    memo TEXT
);
"""

RULES = """version: 1
default: keep
tables:
  customer:
    email: email
"""


def sqlite_file(path: Path, ddl: str = SCHEMA, rows: dict[str, list[tuple[object, ...]]] | None = None) -> Path:
    """A SQLite file at ``path`` holding ``ddl`` and ``rows`` (per table)."""
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    for table, values in (rows or {}).items():
        for row in values:
            conn.execute(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in row)})", row)
    conn.commit()
    conn.close()
    return path


def plan_for(source: Path, rules: str = RULES) -> PlanResult:
    """The plan of a refresh of ``source``: every table whole, ``rules`` resolved against it."""
    engine = sa.create_engine(f"sqlite:///{source}")
    try:
        with engine.connect() as conn:
            model = reflect(conn)
            policy = policy_from_text(rules, "rules.yaml")
            resolved = resolve_policy(policy, model)
            settings = parse_check_settings(policy, model)
            subset = plan_subset(conn, model, SubsetSpec())
    finally:
        engine.dispose()
    tables = [model.tables[k] for k in model.load_order()]
    columns = {t.key: list(t.columns) for t in tables}
    return PlanResult("staging", model, subset, resolved, {}, tables, columns, None, settings)


def quoted(table: TableInfo) -> str:
    """How the shadow (a plain SQLite file) names a table."""
    return f'"{table.name}"'


def index_of(source: Path, planned: PlanResult, masked: dict[str, list[tuple[object, ...]]]) -> LeakIndex:
    """The leak index a refresh builds while ``source`` streams through masking (``masked``: the rows
    written into the shadow, per table, in the source's row order)."""
    index = LeakIndex.for_plan(KEY, planned)
    with sqlite3.connect(source) as conn:
        for table in planned.tables:
            cursor = conn.execute(f'SELECT * FROM "{table.name}" ORDER BY rowid')
            columns = [d[0] for d in cursor.description]
            batch = rows_to_frame(cursor.fetchall(), columns)
            written = pd.DataFrame(masked.get(table.key, []), columns=columns) if masked.get(table.key) else batch
            index.observe(table.key, batch, written)
    return index


@dataclass
class Shadow:
    """A loaded copy to check: its file and the plan it was loaded by."""

    path: Path
    planned: PlanResult

    @contextmanager
    def context(self, written: dict[str, int] | None = None, extracted: dict[str, int] | None = None,
                leaks: LeakIndex | None = None) -> Iterator[CheckContext]:
        """The context the checks read, on a connection to the shadow."""
        engine = sa.create_engine(f"sqlite:///{self.path}")
        try:
            with engine.connect() as conn:
                yield CheckContext(conn, self.planned, quoted, written or {}, extracted or {}, leaks,
                                   KEY if leaks is not None else None)
        finally:
            engine.dispose()
