"""Target table definitions built from the reflected source, for any target dialect.

Same dialect: the reflected types, defaults, checks and generated columns are kept.
Across dialects each column maps by its type family to the closest portable type, and
every mapping that loses something (arrays and JSON as text, enums as text with a CHECK,
dialect-specific defaults dropped) is reported.

Example:
    >>> metadata, tables, notes = build_tables(model, model.tables.values(), "sqlite")   # doctest: +SKIP
    >>> notes                                                                            # doctest: +SKIP
    ['film.special_features: ARRAY stored as JSON text']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_types

from datastage.schema import ColumnInfo, SchemaModel, TableInfo

_PORTABLE_DEFAULT = re.compile(r"^\s*(?:'[^']*'|-?\d+(?:\.\d+)?|true|false|null|current_timestamp)\s*$", re.I)


def portable_type(column: ColumnInfo, dialect: str) -> tuple[sa.types.TypeEngine[Any], str | None]:
    """(type for ``dialect``, note when the mapping loses information) for a column of another dialect."""
    base = getattr(column.type, "data_type", None) or column.type
    category = column.category
    note = None
    if isinstance(base, sa.Enum) and base.enums:
        widest = max(len(v) for v in base.enums)
        return sa.String(max(widest, 1)), f"enum {getattr(base, 'name', '') or ''} stored as text with a CHECK"
    if category == "text":
        length = column.length
        if dialect == "mysql" and (length is None or length > 16_000):
            return sa.Text().with_variant(mysql_types.LONGTEXT(), "mysql"), None
        return (sa.String(length) if length else sa.Text()), None
    if category == "integer":
        return (sa.BigInteger() if isinstance(base, sa.BigInteger) else
                sa.SmallInteger() if isinstance(base, sa.SmallInteger) else sa.Integer()), None
    if category == "decimal":
        precision = getattr(base, "precision", None)
        scale = getattr(base, "scale", None)
        if dialect == "mysql" and precision is None:
            precision, scale = 65, 30  # the widest DECIMAL MySQL has
            note = "unbounded numeric stored as DECIMAL(65,30)"
        return sa.Numeric(precision, scale, asdecimal=True), note
    if category == "float":
        return sa.Float(), None
    if category == "datetime":
        timezone = bool(getattr(base, "timezone", False))
        if dialect == "mysql" and timezone:
            note = "timestamp with time zone stored as UTC DATETIME(6)"
        if dialect == "mysql":
            return mysql_types.DATETIME(fsp=6), note
        return sa.DateTime(timezone=timezone), note
    if category == "date":
        return sa.Date(), None
    if category == "time":
        return (mysql_types.TIME(fsp=6) if dialect == "mysql" else sa.Time()), None
    if category == "boolean":
        return sa.Boolean(), None
    if category == "binary":
        return (mysql_types.LONGBLOB() if dialect == "mysql" else sa.LargeBinary()), None
    if category == "uuid":
        return (sa.Uuid() if dialect == "postgresql" else sa.String(36)), (
            None if dialect == "postgresql" else "uuid stored as text")
    if category == "json":
        return sa.JSON(), (None if dialect != "sqlite" else "json stored as JSON text")
    if category == "array":
        return sa.JSON(), "array stored as JSON text"
    if category == "interval":
        return sa.Text(), "interval stored as text"
    return sa.Text(), f"{column.type_name} stored as text"


def build_tables(
    model: SchemaModel,
    tables: Iterable[TableInfo],
    dialect: str,
    schema: str | None = None,
    schema_map: dict[str | None, str | None] | None = None,
) -> tuple[sa.MetaData, dict[str, sa.Table], list[str]]:
    """Target ``sa.Table`` objects (with PK, UNIQUE, CHECK, FK and indexes) and lossy-mapping notes.

    ``schema`` places every table in one target schema; ``schema_map`` maps source
    schemas to target schemas instead.
    """
    metadata = sa.MetaData()
    built: dict[str, sa.Table] = {}
    notes: list[str] = []
    same = model.dialect == dialect
    tables = list(tables)
    names = {t.key for t in tables}

    def target_schema(table: TableInfo) -> str | None:
        if schema_map is not None:
            return schema_map.get(table.schema, table.schema)
        return schema

    for table in tables:
        columns = []
        for col_info in table.columns.values():
            source_col = table.sa_table.c[col_info.name]
            if same:
                col_type = source_col.type
            else:
                col_type, note = portable_type(col_info, dialect)
                if note:
                    notes.append(f"{table.key}.{col_info.name}: {note}")
            real_pk = col_info.name in table.primary_key and not table.virtual_primary_key
            kwargs: dict[str, Any] = {"nullable": col_info.nullable,
                                      "primary_key": real_pk,
                                      "autoincrement": False}
            default = _default(source_col, same)
            if default is not None:
                kwargs["server_default"] = default
            elif col_info.default and not same:
                notes.append(f"{table.key}.{col_info.name}: default {col_info.default} not copied")
            args: list[Any] = []
            if col_info.generated and source_col.computed is not None:
                args.append(sa.Computed(source_col.computed.sqltext, persisted=source_col.computed.persisted))
            elif col_info.identity and same and source_col.identity is not None:
                ident = source_col.identity
                args.append(sa.Identity(always=ident.always, start=ident.start, increment=ident.increment))
            columns.append(sa.Column(col_info.name, col_type, *args, **kwargs))
        constraints: list[Any] = []
        for key in table.unique_keys:
            if key != table.primary_key:
                constraints.append(sa.UniqueConstraint(*key))
        if same:
            for constraint in table.sa_table.constraints:
                if isinstance(constraint, sa.CheckConstraint):
                    constraints.append(sa.CheckConstraint(str(constraint.sqltext), name=constraint.name))
        else:
            for col_info in table.columns.values():
                base = getattr(col_info.type, "data_type", None) or col_info.type
                if isinstance(base, sa.Enum) and base.enums:
                    allowed = ", ".join("'" + v.replace("'", "''") + "'" for v in base.enums)
                    constraints.append(sa.CheckConstraint(f"{_quote(col_info.name, dialect)} IN ({allowed})"))
        built[table.key] = sa.Table(table.name, metadata, *columns, *constraints, schema=target_schema(table))

    for table in tables:
        target = built[table.key]
        for fk in table.foreign_keys:
            if fk.virtual or fk.ref_table not in names:
                continue
            parent = built[fk.ref_table]
            target.append_constraint(sa.ForeignKeyConstraint(
                list(fk.columns), [parent.c[c] for c in fk.ref_columns], name=_fk_name(fk.name, dialect)))
        for index in table.sa_table.indexes:
            cols = [c.name for c in index.columns if isinstance(c, sa.Column)]
            if not cols or len(cols) != len(index.expressions):
                notes.append(f"{table.key}: expression index {index.name} not copied")
                continue
            if index.unique and (tuple(cols) in table.unique_keys):
                continue
            sa.Index(index.name, *(target.c[c] for c in cols), unique=index.unique)
    return metadata, built, notes


def _default(column: sa.Column[Any], same: bool) -> Any:
    default = column.server_default
    if default is None or not hasattr(default, "arg"):
        return None
    text = str(getattr(default.arg, "text", default.arg))
    if same:
        return sa.text(text)
    if _PORTABLE_DEFAULT.match(text):
        return sa.text(text)
    return None


def _fk_name(name: str | None, dialect: str) -> str | None:
    if not name or name.startswith("virtual:"):
        return None
    return name[:60] if dialect == "mysql" else name


def _quote(name: str, dialect: str) -> str:
    return f"`{name}`" if dialect == "mysql" else '"' + name.replace('"', '""') + '"'
