"""A signed parquet artifact's schema.json must not smuggle SQL into the target's DDL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from datastage.source.schema import reflect
from datastage.targets.ddl import build_tables

HOSTILE = ("CREATE TABLE t (id INTEGER PRIMARY KEY, g TEXT GENERATED ALWAYS AS ('a') STORED, h TEXT DEFAULT ' ) x\n"
           "', \"'); CREATE TABLE pwned (x int); --\" TEXT)")


def test_a_generated_column_expression_is_exactly_its_own() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.exec_driver_sql(HOSTILE)
        model = reflect(conn)
    _, built, _ = build_tables(model, list(model.tables.values()), "postgresql")
    ddl = str(sa.schema.CreateTable(built["t"]).compile(dialect=postgresql.dialect()))
    assert "GENERATED ALWAYS AS ('a') STORED," in ddl
    assert "DEFAULT ' ) STORED" not in ddl  # text of the next column read as part of the expression
