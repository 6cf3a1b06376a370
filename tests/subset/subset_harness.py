"""Conformance harness for the subset planner: build a small schema on a real server, plan
and extract a subset, and compare it with an independent oracle.

A :class:`Case` is written once as portable SQL (``"quoted"`` identifiers become backticks
on MariaDB) plus rows. The oracle is a deliberately naive fixpoint over the rows read back
with plain SELECTs and over the foreign keys parsed from the case's own DDL, so it shares
no code with the planner, the reflection or the sampler.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from datastage.settings import SubsetSpec, parse_subset
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect
from datastage.subset.extract import extract_table
from datastage.subset.model import SubsetPlan
from datastage.subset.planner import plan_subset
from datastage.yamlfile import load_yaml_text

Row = dict[str, Any]
FK = tuple[str, tuple[str, ...], str, tuple[str, ...]]  # child, columns, parent, ref columns
_FK_RE = re.compile(r'FOREIGN KEY\s*\(([^)]*)\)\s*REFERENCES\s+("?[\w.]+"?(?:\."?\w+"?)?)\s*\(([^)]*)\)', re.I)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"') for part in text.split(","))


@dataclass
class Case:
    """One tricky schema: tables as column/constraint definitions, rows, a subset block.

    ``tables`` maps a table name (``schema.name`` for other schemas) to its definitions; a
    definition may be a dict per dialect (``{"postgresql": ..., "default": ...}``) and is
    left out where it maps to None. ``subset`` is the YAML ``subset:`` block; ``«name»`` in
    it becomes the dialect's quoted identifier. ``root_match`` gives, per root, a Python
    predicate over a row for the oracle (None: every row).
    """

    name: str
    tables: dict[str, list[Any]]
    rows: dict[str, tuple[str, list[tuple[Any, ...]]]]
    subset: str
    root_match: list[Callable[[Row], bool] | None] = field(default_factory=list)
    expected: dict[str, set[Any]] = field(default_factory=dict)  # hand-checked: first column values
    dialects: tuple[str, ...] = ("sqlite", "postgresql", "mysql")
    before: dict[str, list[str]] = field(default_factory=dict)  # per dialect, before CREATE TABLE
    after_create: dict[str, list[str]] = field(default_factory=dict)  # per dialect, before the rows
    after_rows: dict[str, list[str]] = field(default_factory=dict)  # per dialect, after the rows
    table_suffix: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> dialect -> suffix
    extra_fks: list[FK] = field(default_factory=list)  # FKs the oracle must know that the DDL above hides
    virtual_fks: list[FK] = field(default_factory=list)
    schemas: tuple[str, ...] = ()
    oracle: bool = True  # False when sampling or per-parent limits make the selection a property check
    check: Callable[[Extracted, dict[str, list[Row]]], None] | None = None

    def definitions(self, table: str, dialect: str) -> list[str]:
        out = []
        for item in self.tables[table]:
            if isinstance(item, dict):
                item = item.get(dialect, item.get("default"))
            if item is not None:
                out.append(item)
        constraint = ("PRIMARY KEY", "UNIQUE", "FOREIGN KEY")
        return [d for d in out if not d.startswith(constraint)] + [d for d in out if d.startswith(constraint)]

    def foreign_keys(self, dialect: str) -> list[FK]:
        """FKs as the DDL states them (parsed from the case, not reflected), plus extras and virtual ones."""
        fks: list[FK] = []
        for table in self.tables:
            for item in self.definitions(table, dialect):
                match = _FK_RE.search(item)
                if match:
                    parent = match.group(2).replace('"', "")
                    fks.append((table, _names(match.group(1)), parent, _names(match.group(3))))
        return fks + self.extra_fks + self.virtual_fks


def quote(dialect: str, name: str) -> str:
    return ".".join(f"`{p}`" if dialect == "mysql" else f'"{p}"' for p in name.split("."))


def _sql(dialect: str, text: str) -> str:
    return text.replace('"', "`") if dialect == "mysql" else text


def build(case: Case, dialect: str, url: str) -> None:
    """Create the case's tables and rows in the (empty) database at ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for stmt in case.before.get(dialect, []):
                conn.exec_driver_sql(stmt)
            deferred: list[str] = []
            for table in case.tables:
                defs = case.definitions(table, dialect)
                if dialect != "sqlite":
                    deferred += [f"ALTER TABLE {quote(dialect, table)} ADD {d}" for d in defs if "FOREIGN KEY" in d]
                    defs = [d for d in defs if "FOREIGN KEY" not in d]
                suffix = case.table_suffix.get(table, {}).get(dialect, "")
                conn.exec_driver_sql(_sql(dialect, f"CREATE TABLE {quote(dialect, table)} ({', '.join(defs)}){suffix}"))
            for stmt in case.after_create.get(dialect, []):
                conn.exec_driver_sql(_sql(dialect, stmt))
            for table, (columns, rows) in case.rows.items():
                if not rows:
                    continue
                schema, _, name = table.rpartition(".")
                target = sa.table(name, *(sa.column(c) for c in columns.split()), schema=schema or None)
                conn.execute(sa.insert(target), [dict(zip(columns.split(), row, strict=True)) for row in rows])
            for stmt in deferred + case.after_rows.get(dialect, []):
                conn.exec_driver_sql(_sql(dialect, stmt))
            if dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == [], "fixture violates its FKs"
    finally:
        engine.dispose()


def spec_of(case: Case, dialect: str) -> SubsetSpec:
    text = re.sub("«([^»]+)»", lambda m: quote(dialect, m.group(1)), case.subset)
    return parse_subset(load_yaml_text(text, f"{case.name}.yaml"))


@dataclass
class Extracted:
    """What a subset run produced: the plan, the model and the extracted rows per table."""

    plan: SubsetPlan
    model: SchemaModel
    rows: dict[str, list[Row]]

    def column(self, table: str, column: str) -> list[Any]:
        return [r[column] for r in self.rows.get(table, [])]


def run_subset(url: str, spec: SubsetSpec, schemas: tuple[str, ...] = (), batch_size: int = 10_000,
               statements: list[str] | None = None) -> Extracted:
    """Plan and extract on a read-only snapshot, as a refresh does; ``statements`` collects the SQL sent."""
    engine = make_engine(url, read_only=True)
    if statements is not None:
        sa.event.listen(engine, "before_cursor_execute",
                        lambda _conn, _cursor, sql, *_args: statements.append(sql))
    try:
        with snapshot(engine) as conn:
            model = reflect(conn, schemas, spec)
            plan = plan_subset(conn, model, spec, batch_size=batch_size)
            rows: dict[str, list[Row]] = {}
            for key, table in model.tables.items():
                out: list[Row] = []
                for batch in extract_table(conn, table, plan.tables[key], plan.seed, batch_size):
                    out.extend({c: norm(v) for c, v in row.items()} for row in batch.to_dict("records"))
                rows[key] = out
                assert len(out) == plan.tables[key].selected_rows, f"{key}: extracted {len(out)} rows, planned " \
                    f"{plan.tables[key].selected_rows}"
            return Extracted(plan, model, rows)
    finally:
        engine.dispose()


def read_source(url: str, case: Case) -> dict[str, list[Row]]:
    """Every row of every case table, read back with plain SELECTs (the oracle's input)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            dialect = engine.dialect.name.replace("mariadb", "mysql")
            return {table: [{k: norm(v) for k, v in row._mapping.items()}
                            for row in conn.exec_driver_sql(f"SELECT * FROM {quote(dialect, table)}")]
                    for table in case.tables}
    finally:
        engine.dispose()


def norm(value: Any) -> Any:
    """A hashable, driver-independent form of a value for comparisons."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def oracle(case: Case, dialect: str, data: dict[str, list[Row]],
           spec: SubsetSpec) -> dict[str, Counter[tuple[Any, ...]]]:
    """The expected rows of every table by the documented closure rules, computed naively."""
    fks = case.foreign_keys(dialect)
    excluded = set(spec.exclude)
    selected: dict[str, set[int]] = {t: set() for t in data}
    down: dict[str, set[int]] = {t: set() for t in data}
    for table in spec.passthrough:
        selected[table] |= set(range(len(data[table])))
    for root, match in zip(spec.roots, case.root_match or [None] * len(spec.roots), strict=True):
        hit = {i for i, row in enumerate(data[root.table]) if match is None or match(row)}
        selected[root.table] |= hit
        down[root.table] |= hit

    def policy(fk: FK) -> tuple[str, int | None]:
        for edge in spec.edges:
            child, cols, _, _ = fk
            if edge.fk in (f"{child}({', '.join(cols)})", f"{child}.{cols[0]}" if len(cols) == 1 else None):
                return edge.children or spec.children, edge.limit_per_parent
        return spec.children, spec.limit_per_parent

    changed = True
    while changed:
        changed = False
        for fk in fks:
            child, cols, parent, refs = fk
            if child in excluded or parent in excluded:
                continue
            for i in list(selected[child]):
                values = tuple(data[child][i][c] for c in cols)
                if None in values:
                    continue
                for j, row in enumerate(data[parent]):
                    if tuple(row[c] for c in refs) == values and j not in selected[parent]:
                        selected[parent].add(j)
                        changed = True
            mode, _ = policy(fk)
            sources = down[parent] if mode == "roots" else selected[parent] if mode == "all" else set()
            for j in list(sources):
                values = tuple(data[parent][j][c] for c in refs)
                if None in values:
                    continue
                for i, row in enumerate(data[child]):
                    if tuple(row[c] for c in cols) == values and i not in down[child]:
                        selected[child].add(i)
                        down[child].add(i)
                        changed = True
    return {t: as_counter([data[t][i] for i in idx]) for t, idx in selected.items()}


def as_counter(rows: list[Row], columns: list[str] | None = None) -> Counter[tuple[Any, ...]]:
    """Rows as a multiset of sorted (column, value) tuples, optionally only ``columns``."""
    return Counter(tuple(sorted((k, v) for k, v in r.items() if columns is None or k in columns)) for r in rows)


def check_foreign_keys(case: Case, dialect: str, result: Extracted, excluded: set[str],
                       source: dict[str, list[Row]]) -> None:
    """Every FK of the case holds inside the extracted rows; FKs into excluded tables are NULL.

    A virtual FK value whose parent is missing in the source too (nothing enforces it) is
    not the subset's orphan.
    """
    for child, cols, parent, refs in case.foreign_keys(dialect):
        if child in excluded:
            continue
        present = {tuple(r[c] for c in refs) for r in result.rows.get(parent, [])}
        in_source = {tuple(r[c] for c in refs) for r in source.get(parent, [])}
        for row in result.rows.get(child, []):
            values = tuple(row[c] for c in cols)
            if None in values:
                continue
            assert parent not in excluded, f"{child}{cols} -> excluded {parent} not set to NULL: {row}"
            assert values in present or values not in in_source, \
                f"orphan in {child}: {cols}={values} has no row in {parent}"


def first_column(rows: list[Row], column: str) -> set[Any]:
    return {r[column] for r in rows}
