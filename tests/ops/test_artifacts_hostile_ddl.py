"""A signed parquet artifact's schema.json must not smuggle SQL into the target's DDL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from datastage.errors import SourceError
from datastage.source.schema import reflect
from datastage.targets.ddl import build_tables

HOSTILE = ("CREATE TABLE t (id INTEGER PRIMARY KEY, g TEXT GENERATED ALWAYS AS ('a') STORED, h TEXT DEFAULT ' ) x\n"
           "', \"'); CREATE TABLE pwned (x int); --\" TEXT)")


def test_a_generated_column_expression_that_runs_into_other_ddl_is_refused() -> None:
    """SQLAlchemy reads SQLite's generated expression up to the last ``) STORED`` of the table's text: such
    an expression swallows the next columns' text, and is refused rather than written into the target."""
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.exec_driver_sql(HOSTILE)
        model = reflect(conn)
    with pytest.raises(SourceError, match=r"t\.g: its generated expression could not be read exactly"):
        build_tables(model, list(model.tables.values()), "postgresql")


def test_a_plain_generated_column_is_rebuilt() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, p INT, "
                             "g INT GENERATED ALWAYS AS ((p * 2)) STORED)")
        model = reflect(conn)
    _, built, _ = build_tables(model, list(model.tables.values()), "postgresql")
    ddl = str(sa.schema.CreateTable(built["t"]).compile(dialect=postgresql.dialect()))
    assert "GENERATED ALWAYS AS ((p * 2)) STORED" in ddl
