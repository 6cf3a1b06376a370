"""Helpers for masking tests: a real SQLite schema, a resolved policy, an engine, one batch."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from datastage.mask.engine import MaskingEngine
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import ResolvedPolicy, resolve_policy
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect
from datastage.source.values import rows_to_frame

KEY = MaskingKey(b"test-masking-key-0123456789abcdef", source="test")
OTHER_KEY = MaskingKey(b"another-masking-key-fedcba9876543210", source="test")

SCHEMA = """
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    email TEXT UNIQUE,
    first_name TEXT,
    last_name TEXT,
    full_name TEXT,
    username TEXT,
    phone TEXT,
    code VARCHAR(12),
    iban TEXT,
    card TEXT,
    born DATE,
    seen TIMESTAMP,
    score INTEGER,
    big BIGINT,
    small SMALLINT,
    amount NUMERIC(10, 2),
    ratio REAL,
    notes TEXT,
    doc TEXT,
    tier TEXT
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customer (customer_id),
    ship_email TEXT,
    ordered_at TIMESTAMP,
    note TEXT
);
"""


def build_model(directory: Path, ddl: str = SCHEMA) -> SchemaModel:
    """Create the schema in a SQLite file under ``directory`` and reflect it."""
    path = directory / "schema.db"
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn_sa:
            return reflect(conn_sa)
    finally:
        engine.dispose()


def reflect_sqlite(path: Path, ddl: str | None = None) -> SchemaModel:
    """Reflect the SQLite file ``path`` read-only, as a scan does (after running ``ddl`` in it, if given)."""
    if ddl is not None:
        conn = sqlite3.connect(path)
        conn.executescript(ddl)
        conn.close()
    engine = make_engine(f"sqlite:///{path}", read_only=True)
    try:
        with snapshot(engine) as conn_sa:
            return reflect(conn_sa)
    finally:
        engine.dispose()


def sqlite_project(folder: Path, rules: str | None = None) -> Path:
    """``datastage.yaml`` in ``folder``: source ``prod.db``, environment ``staging`` with ``rules.yaml``
    (written from ``rules`` when given). Returns the config's path."""
    if rules is not None:
        (folder / "rules.yaml").write_text(rules)
    config = folder / "datastage.yaml"
    config.write_text("source: {url: 'sqlite:///prod.db'}\n"
                      "environments: {staging: {url: 'sqlite:///staging.db', rules: rules.yaml}}\n")
    return config


def resolve(model: SchemaModel, rules: str) -> ResolvedPolicy:
    return resolve_policy(policy_from_text(rules, "rules.yaml"), model)


def rules_for(table: str, columns: dict[str, str], extra: str = "") -> str:
    """A ``default: keep`` rules file with one flow-style rule per column."""
    body = "\n".join(f"    {column}: {rule}" for column, rule in columns.items())
    return f"version: 1\ndefault: keep\ntables:\n  {table}:\n{body}\n{extra}"


def mask_frame(model: SchemaModel, rules: str, table: str, data: dict[str, list[Any]],
               key: MaskingKey = KEY, engine: MaskingEngine | None = None) -> pd.DataFrame:
    """Mask one batch of ``table`` (columns given in ``data``) under ``rules``."""
    engine = engine or MaskingEngine(resolve(model, rules), key)
    columns = list(data)
    rows = list(zip(*(data[c] for c in columns), strict=True))
    frame = rows_to_frame(rows, columns)
    masked, _ = engine.mask_batch(table, frame)
    return masked


def column(model: SchemaModel, rules: str, table: str, name: str, values: list[Any],
           key: MaskingKey = KEY, extra: dict[str, list[Any]] | None = None) -> list[Any]:
    """Mask one column's values (other columns of the batch from ``extra``); returns the list."""
    data = {name: values, **(extra or {})}
    return mask_frame(model, rules, table, data, key)[name].tolist()
