"""The ``parquet`` format: one Parquet file per table, and ``schema.json`` with the table definitions.

Rows are read and written in batches (``batch_size`` rows at a time), so memory stays bounded
whatever the size of a table. Each column gets the closest Arrow type (integers, exact decimals,
floats, booleans, dates, timestamps with their zone, times, bytes, text); JSON, arrays, UUIDs and
other types are stored as text. ``schema.json`` holds per table its columns (type, nullable),
primary key, unique keys and foreign keys, and the ``CREATE`` statements of the table as a
SQLite target has them: an import reads those back into the model every target dialect builds
its tables from.

File names are :func:`~datastage.ops.artifacts.manifest.safe_file_name` of the table name (and
of its schema when the copy has several), whatever characters the name holds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from datastage.errors import ArtifactInvalid, TargetError, UsageError
from datastage.limits import parse_json
from datastage.ops.artifacts.manifest import safe_file_name
from datastage.pipeline import step
from datastage.progress import Progress
from datastage.source.schema import ColumnInfo, SchemaModel, TableInfo, reflect
from datastage.source.values import rows_to_frame
from datastage.subset.extract import raw_column
from datastage.targets.base import Shadow
from datastage.targets.ddl import build_tables

SCHEMA_FILE = "schema.json"
TABLES_DIR = "tables"
_DDL = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s", re.I)


def arrow_type(column: ColumnInfo, dialect: str = "postgresql") -> pa.DataType:
    """The Arrow type a column's values of ``dialect`` are stored as (text where Arrow has no exact type).

    >>> arrow_type(ColumnInfo("amount", sa.Numeric(10, 2), True, "decimal"))
    Decimal128Type(decimal128(10, 2))
    """
    base = getattr(column.type, "data_type", None) or column.type
    category = column.category
    if category == "integer":
        return pa.uint64() if getattr(base, "unsigned", False) else pa.int64()
    if category == "decimal":
        precision, scale = getattr(base, "precision", None), getattr(base, "scale", None)
        if isinstance(precision, int) and 0 < precision <= 38:
            return pa.decimal128(precision, scale if isinstance(scale, int) else 0)
        return pa.string()
    if category == "float":
        return pa.float64()
    if category == "boolean":
        return pa.bool_()
    if category == "date":
        return pa.date32()
    if category == "datetime":
        return pa.timestamp("us", tz="UTC" if getattr(base, "timezone", False) else None)
    if category == "time" and dialect != "mysql" and not getattr(base, "timezone", False):
        return pa.time64("us")  # a MySQL TIME is a duration (negative, over 24 hours): text
    if category == "binary":
        return pa.binary()
    return pa.string()


def _as_text(value: Any) -> Any:
    """A value stored as text: JSON as JSON, bytes as hex, a MySQL TIME (a duration) as ``[-]H:MM:SS``.

    >>> _as_text(dt.timedelta(hours=-838, minutes=-59, seconds=-59)), _as_text({"k": [1]})
    ('-838:59:59', '{"k": [1]}')
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.timedelta):
        micros = value // dt.timedelta(microseconds=1)
        seconds, fraction = divmod(abs(micros), 1_000_000)
        hours, rest = divmod(seconds, 3600)
        text = f"{'-' if micros < 0 else ''}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return f"{text}.{fraction:06d}" if fraction else text
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _column(table: TableInfo, name: str, values: list[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_string(kind):
        values = [_as_text(v) for v in values]
    elif pa.types.is_binary(kind):
        values = [bytes(v) if isinstance(v, bytearray | memoryview) else v for v in values]
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        raise TargetError(f"column {name}: a value does not fit Parquet type {kind} ({type(exc).__name__}); "
                          "export this copy with --format sqlite", table=table.key) from None


def file_name(table: TableInfo, qualified: bool) -> str:
    """The Parquet file of ``table`` inside the artifact (schema and table name encoded apart)."""
    name = safe_file_name(table.name)
    if qualified and table.schema:
        name = f"{safe_file_name(table.schema)}.{name}"
    return f"{TABLES_DIR}/{name}.parquet"


def _definition(table: TableInfo, sa_table: sa.Table, path: str) -> dict[str, Any]:
    dialect = sqlite_dialect.dialect()
    return {
        "name": table.name, "schema": table.schema, "key": table.key, "file": path,
        "columns": [{"name": c.name, "type": c.type_name, "category": c.category, "nullable": c.nullable}
                    for c in table.columns.values()],
        "primary_key": list(table.primary_key),
        "unique_keys": [list(k) for k in table.unique_keys],
        "foreign_keys": [{"columns": list(fk.columns), "ref_table": fk.ref_table, "ref_columns": list(fk.ref_columns)}
                         for fk in table.foreign_keys if not fk.virtual],
        "sqlite_ddl": [str(sa.schema.CreateTable(sa_table).compile(dialect=dialect)).strip(),
                       *[str(sa.schema.CreateIndex(i).compile(dialect=dialect)) for i in sa_table.indexes]],
    }


def export_parquet(conn: Connection, model: SchemaModel, folder: Path, batch_size: int,
                   progress: Progress) -> tuple[dict[str, int], list[str]]:
    """Write every table of ``model`` (read on ``conn``, a snapshot) as Parquet under ``folder`` and the
    definitions to ``schema.json``; returns the rows per table and the load notes."""
    tables = [model.tables[k] for k in model.load_order()]
    qualified = len({t.schema for t in tables}) > 1
    seen: dict[str, str] = {}
    for table in tables:  # restored as one namespace, as a SQLite file holds them
        if table.name in seen:
            raise UsageError(f"tables {seen[table.name]} and {table.key} have the same name; an artifact holds "
                             "the tables of one namespace (export with --format pgdump)")
        seen[table.name] = table.key
    _, built, notes = build_tables(model, tables, "sqlite")
    (folder / TABLES_DIR).mkdir()
    rows: dict[str, int] = {}
    definitions = []
    for table in tables:
        path = file_name(table, qualified)
        definitions.append(_definition(table, built[table.key], path))
        columns = list(table.columns.values())
        schema = pa.schema([pa.field(c.name, arrow_type(c, model.dialect), nullable=True) for c in columns])
        progress.table(table.key, 0)
        count = 0
        with step("export"), pq.ParquetWriter(folder / path, schema, compression="zstd") as writer:
            # Typed columns (SQLite's text dates become dates), except MySQL TIME: its driver's duration,
            # which SQLAlchemy would fold into a time of day.
            selected = [raw_column(table, c.name) if c.category == "time" and model.dialect == "mysql"
                        else table.sa_table.c[c.name] for c in columns]
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(sa.select(*selected))
            for batch in result.partitions(batch_size):
                data = [_column(table, field.name, [row[i] for row in batch], field.type)
                        for i, field in enumerate(schema)]
                writer.write_batch(pa.record_batch(data, schema=schema))
                count += len(batch)
                progress.advance(len(batch))
        rows[table.name] = count
    (folder / SCHEMA_FILE).write_text(json.dumps({"tables": definitions}, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    return rows, notes


def read_model(staged: Path) -> tuple[SchemaModel, dict[str, str]]:
    """The model of a checked parquet artifact (its tables' SQLite definitions, read back in an
    in-memory database) and each table's Parquet file."""
    path = staged / SCHEMA_FILE
    raw = parse_json(path.read_bytes(), SCHEMA_FILE, ArtifactInvalid, "not valid JSON") if path.is_file() else None
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), list):
        raise ArtifactInvalid(f"a parquet artifact has a {SCHEMA_FILE} with its tables", file=SCHEMA_FILE)
    engine = sa.create_engine("sqlite://")
    files: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for entry in raw["tables"]:
                statements = entry.get("sqlite_ddl") if isinstance(entry, dict) else None
                if not isinstance(statements, list) or not all(isinstance(s, str) and _DDL.match(s)
                                                               for s in statements):
                    raise ArtifactInvalid("a table without its CREATE TABLE statements", file=SCHEMA_FILE)
                for statement in statements:
                    try:
                        conn.exec_driver_sql(statement)
                    except sa.exc.SQLAlchemyError:
                        raise ArtifactInvalid(f"table {entry.get('name')}: its definition is not valid",
                                              file=SCHEMA_FILE) from None
                files[str(entry.get("name"))] = str(entry.get("file"))
            model = reflect(conn)
    finally:
        engine.dispose()
    if set(model.tables) != set(files):
        raise ArtifactInvalid("its tables do not match their definitions", file=SCHEMA_FILE)
    return model, files


def batches(path: Path, columns: list[str], batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of a Parquet file, ``batch_size`` at a time, as Python values."""
    handle = pq.ParquetFile(path)
    try:
        missing = [c for c in columns if c not in handle.schema_arrow.names]
        if missing:
            raise ArtifactInvalid(f"has no column {missing[0]}", file=path.name)
        for batch in handle.iter_batches(batch_size=batch_size, columns=columns):
            values = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            yield list(zip(*values, strict=True))
    finally:
        handle.close()


def load_parquet(staged: Path, model: SchemaModel, files: dict[str, str], shadow: Shadow, batch_size: int,
                 progress: Progress) -> dict[str, int]:
    """Create the tables of ``model`` in ``shadow`` and load each from its Parquet file; returns the rows
    per table as counted in the shadow."""
    tables = [model.tables[k] for k in model.load_order()]
    with step("load"):
        shadow.create_tables(tables)
    for table in tables:
        columns = table.insertable_columns
        progress.table(table.key, 0)
        for rows in batches(staged / files[table.key], columns, batch_size):
            with step("load"):
                shadow.write(table, rows_to_frame(rows, columns))
            progress.advance(len(rows))
    with step("load"):
        shadow.finish()
    counted: dict[str, int] = {}
    with step("verify"), shadow.connect() as conn:
        for table in tables:
            try:
                counted[table.key] = int(conn.execute(sa.text(
                    f"SELECT count(*) FROM {shadow.sql_name(table, conn)}")).scalar() or 0)
            except sa.exc.SQLAlchemyError as exc:
                raise TargetError(f"cannot count the rows of {table.key} in the shadow: {exc}") from None
    return counted
