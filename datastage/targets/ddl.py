"""Target table definitions built from the reflected source, for any target dialect.

Same dialect: the reflected types, defaults, checks, generated columns, index options and
table options are kept (a PostgreSQL source going to PostgreSQL is recreated from its
catalog instead, see :mod:`datastage.targets.postgres.ddl`). Across dialects each column maps by
its type family to the closest type the target has, and every mapping that loses something
is reported: arrays and JSON as JSON text, enums and MySQL SETs as text (enums with a CHECK
listing the allowed values), domains as their base type, intervals, ranges and other types
without a counterpart as text, aware timestamps as UTC on MariaDB, text used in a key as a
bounded VARCHAR on MariaDB, dropped defaults, expression and full-text indexes, triggers.

Serial, identity and AUTO_INCREMENT key columns stay auto-numbering in the target
(identity on PostgreSQL, AUTO_INCREMENT on MariaDB).

Example (a SQLite table bound for MariaDB: a text key needs a length, SQLite's default has no counterpart):
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE customer (code TEXT PRIMARY KEY, doc JSON,"
    ...                              " seen TIMESTAMP DEFAULT (datetime('now', 'localtime')))")
    ...     model = reflect(conn)
    >>> metadata, tables, notes = build_tables(model, model.tables.values(), "mysql")
    >>> for note in notes:
    ...     print(note)
    customer.code: text used in a key stored as VARCHAR(768)
    customer.seen: default datetime('now', 'localtime') not copied
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_types

from datastage.errors import SourceError
from datastage.source.identifiers import quote_identifier
from datastage.source.schema import ColumnInfo, SchemaModel, TableInfo

_PORTABLE_DEFAULT = re.compile(r"^\s*(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null)\s*$", re.I)
_NOW_DEFAULT = re.compile(r"^\s*(?:current_timestamp(?:\(\d*\))?|now\(\)|localtimestamp)\s*$", re.I)
_PG_CAST = re.compile(r"^\s*(\(*'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\)*::[\w\s.\"\[\]()]+$")
_PG_CAST_SUFFIX = re.compile(r"::(?:\"[^\"]+\"|[a-z_][\w.]*)(?: (?:varying|precision|with(?:out)? time zone))*"
                             r"(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?", re.I)
_ON_UPDATE = re.compile(r"\s+on\s+update\s+.*$", re.I | re.S)
MYSQL_KEY_CHARS = 768  # InnoDB keys hold at most 3072 bytes: 768 utf8mb4 characters


def portable_type(column: ColumnInfo, dialect: str,
                  key_chars: int | None = None) -> tuple[sa.types.TypeEngine[Any], str | None]:
    """(type for ``dialect``, note when the mapping loses information) for a column of another dialect.

    ``key_chars`` bounds a MariaDB text column that is part of a key (MariaDB cannot index TEXT).
    """
    base = getattr(column.type, "data_type", None) or column.type
    category = column.category
    note = None
    if isinstance(base, sa.Enum) and base.enums:
        widest = max(len(v) for v in base.enums)
        kind = "SET" if type(base).__name__ == "SET" else "enum"
        name = getattr(base, "name", None) or ""
        return sa.String(max(widest, 1)), f"{kind} {name}".rstrip() + " stored as text with a CHECK"
    if type(base).__name__ == "SET":
        values = getattr(base, "values", ()) or ()
        return sa.String(max(1, sum(len(v) + 1 for v in values))), "SET stored as comma-separated text"
    if category == "text":
        length = column.length
        if dialect == "mysql" and key_chars is not None and (length is None or length > key_chars):
            return sa.String(key_chars), f"text used in a key stored as VARCHAR({key_chars})"
        if dialect == "mysql" and (length is None or length > 16_000):
            return sa.Text().with_variant(mysql_types.LONGTEXT(), "mysql"), None
        return (sa.String(length) if length else sa.Text()), None
    if category == "integer":
        return _integer(base, dialect)
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


def _integer(base: Any, dialect: str) -> tuple[sa.types.TypeEngine[Any], str | None]:
    """The integer type that holds every value of ``base`` (MySQL unsigned types widen)."""
    name = type(base).__name__.upper()
    unsigned = bool(getattr(base, "unsigned", False))
    if isinstance(base, sa.BigInteger) or name == "BIGINT":
        if unsigned and dialect != "mysql":
            return sa.Numeric(20, 0), "BIGINT UNSIGNED stored as NUMERIC(20)"
        return sa.BigInteger(), None
    if name in ("TINYINT", "SMALLINT") or isinstance(base, sa.SmallInteger):
        if unsigned and name == "SMALLINT" and dialect != "mysql":
            return sa.Integer(), None
        return sa.SmallInteger(), None
    if unsigned and dialect != "mysql" and name not in ("MEDIUMINT", "YEAR"):
        return sa.BigInteger(), None
    return sa.Integer(), None


def _key_columns(table: TableInfo, model: SchemaModel) -> dict[str, int]:
    """Columns that take part in a key or index, with how many characters each may use (MariaDB)."""
    keys: list[tuple[str, ...]] = [table.primary_key, *table.unique_keys]
    keys += [fk.columns for fk in table.foreign_keys if not fk.virtual]
    keys += [fk.ref_columns for other in model.tables.values() for fk in other.foreign_keys
             if fk.ref_table == table.key and not fk.virtual]
    keys += [tuple(c.name for c in index.columns) for index in table.sa_table.indexes]
    out: dict[str, int] = {}
    for key in keys:
        text_cols = [c for c in key if c in table.columns and table.columns[c].category == "text"]
        for col in text_cols:
            share = max(64, MYSQL_KEY_CHARS // len(text_cols))
            out[col] = min(out.get(col, share), share)
    return out


def _autoincrement(table: TableInfo, col_info: ColumnInfo) -> bool:
    """A single-column integer primary key numbered by the source (serial, identity, AUTO_INCREMENT)."""
    if table.primary_key != (col_info.name,) or table.virtual_primary_key or col_info.category != "integer":
        return False
    default = (col_info.default or "").lower()
    return col_info.identity or "nextval(" in default or (col_info.autoincrement and not default)


def build_tables(
    model: SchemaModel,
    tables: Iterable[TableInfo],
    dialect: str,
    schema: str | None = None,
    schema_map: dict[str | None, str | None] | dict[str | None, str] | None = None,
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

    index_names: set[str] = set()  # PostgreSQL and SQLite index names are unique per schema
    for table in tables:
        columns = []
        constraints: list[Any] = []
        keyed = _key_columns(table, model) if dialect == "mysql" and not same else {}
        for col_info in table.columns.values():
            source_col = table.sa_table.c[col_info.name]
            where = f"{table.key}.{col_info.name}"
            if same:
                col_type = source_col.type
            else:
                col_type, note = portable_type(col_info, dialect, keyed.get(col_info.name))
                if note:
                    notes.append(f"{where}: {note}")
                constraints.extend(_domain_check(col_info, dialect, notes, where))
            real_pk = col_info.name in table.primary_key and not table.virtual_primary_key
            numbered = (not same or dialect == "mysql") and _autoincrement(table, col_info)
            kwargs: dict[str, Any] = {"nullable": col_info.nullable, "primary_key": real_pk,
                                      "autoincrement": numbered and dialect in ("mysql", "postgresql")}
            args: list[Any] = []
            default = (_same_default(source_col) if same
                       else _portable_default(col_info, numbered, notes, where, dialect))
            if default is not None:
                kwargs["server_default"] = default
            if col_info.generated and source_col.computed is not None:
                expression = str(source_col.computed.sqltext)
                if not self_contained(expression):
                    raise SourceError(f"{where}: its generated expression could not be read exactly from the "
                                      "source's table definition, so the target cannot rebuild it")
                if not same:
                    expression = _PG_CAST_SUFFIX.sub("", expression)
                    notes.append(f"{where}: generated column recomputed by the target from {expression}")
                args.append(sa.Computed(sa.text(expression), persisted=source_col.computed.persisted))
            elif col_info.identity and same and source_col.identity is not None:
                ident = source_col.identity
                args.append(sa.Identity(always=ident.always, start=ident.start, increment=ident.increment))
            elif numbered and dialect == "postgresql":
                args.append(sa.Identity(always=False))
            if same and source_col.comment:
                kwargs["comment"] = source_col.comment
            columns.append(sa.Column(col_info.name, col_type, *args, **kwargs))
        for key in table.unique_keys:
            if key != table.primary_key:
                name = _unique_name(table, key)
                if name is not None and dialect != "mysql":
                    name = name if name not in index_names else f"{table.name}_{name}"[:63]
                    index_names.add(name)
                constraints.append(sa.UniqueConstraint(*key, name=name))
        if same:
            for constraint in table.sa_table.constraints:
                if isinstance(constraint, sa.CheckConstraint):
                    constraints.append(sa.CheckConstraint(str(constraint.sqltext), name=constraint.name))
        else:
            for col_info in table.columns.values():
                base = getattr(col_info.type, "data_type", None) or col_info.type
                if isinstance(base, sa.Enum) and base.enums and type(base).__name__ != "SET":
                    allowed = ", ".join("'" + v.replace("'", "''") + "'" for v in base.enums)
                    constraints.append(sa.CheckConstraint(f"{quote_identifier(dialect, col_info.name)} IN ({allowed})"))
            if table.partitions:
                notes.append(f"{table.key}: partitioned table loaded as one table")
            _cross_dialect_object_notes(model, table, notes)
        options = dict(table.sa_table.dialect_kwargs) if same else {}
        built[table.key] = sa.Table(table.name, metadata, *columns, *constraints, schema=target_schema(table),
                                    **options)

    for table in tables:
        target = built[table.key]
        for fk in table.foreign_keys:
            if fk.virtual or fk.ref_table not in names:
                continue
            parent = built[fk.ref_table]
            rules = _fk_rules(table, fk.columns)
            target.append_constraint(sa.ForeignKeyConstraint(
                list(fk.columns), [parent.c[c] for c in fk.ref_columns], name=_fk_name(fk.name, dialect), **rules))
        for index in table.sa_table.indexes:
            cols = [c.name for c in index.columns if isinstance(c, sa.Column)]
            if not cols or len(cols) != len(index.expressions):
                notes.append(f"{table.key}: expression index {index.name} not copied")
                continue
            if index.unique and (tuple(cols) in table.unique_keys):
                continue
            kind = _special_index(index)
            if kind and not same:
                notes.append(f"{table.key}: {kind} index {index.name} not copied")
                continue
            options = dict(index.dialect_kwargs) if same else {}
            name = str(index.name)
            if dialect != "mysql" and name in index_names:
                name = f"{table.name}_{name}"[:63]
            index_names.add(name)
            sa.Index(name, *(target.c[c] for c in cols), unique=index.unique, **options)
    return metadata, built, notes


def _unique_name(table: TableInfo, key: tuple[str, ...]) -> str | None:
    """The source's name for the unique constraint or unique index on ``key``."""
    for constraint in table.sa_table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and tuple(c.name for c in constraint.columns) == key:
            return str(constraint.name) if constraint.name else None
    for index in table.sa_table.indexes:
        if index.unique and tuple(c.name for c in index.columns if isinstance(c, sa.Column)) == key:
            return str(index.name) if index.name else None
    return None


def _special_index(index: sa.Index) -> str | None:
    """The access method of an index no other dialect has (gist, gin, FULLTEXT ...), else None."""
    using = index.dialect_options["postgresql"]["using"]
    if using and str(using).lower() != "btree":
        return str(using)
    prefix = index.dialect_options["mysql"]["prefix"]
    if prefix:
        return str(prefix)
    return None


def _fk_rules(table: TableInfo, columns: tuple[str, ...]) -> dict[str, Any]:
    for constraint in table.sa_table.foreign_key_constraints:
        if tuple(e.parent.name for e in constraint.elements) == columns:
            return {k: v for k, v in (("ondelete", constraint.ondelete), ("onupdate", constraint.onupdate)) if v}
    return {}


def _domain_check(col_info: ColumnInfo, dialect: str, notes: list[str], where: str) -> list[sa.CheckConstraint]:
    """A PostgreSQL domain's CHECK, rewritten for the column, when it is portable SQL."""
    if getattr(col_info.type, "data_type", None) is None:
        return []
    name = getattr(col_info.type, "name", "")
    check = getattr(col_info.type, "check", None)
    text = str(check) if check is not None else ""
    if text and "::" not in text:
        notes.append(f"{where}: domain {name} stored as its base type with its CHECK")
        return [sa.CheckConstraint(re.sub(r"\bVALUE\b", quote_identifier(dialect, col_info.name), text))]
    notes.append(f"{where}: domain {name} stored as its base type" + (" (its CHECK not copied)" if text else ""))
    return []


def _cross_dialect_object_notes(model: SchemaModel, table: TableInfo, notes: list[str]) -> None:
    catalog = model.catalog
    relation = catalog.relations.get(table.key) if catalog is not None else None
    if relation is not None and relation.triggers:
        notes.append(f"{table.key}: triggers not copied across dialects "
                     f"({', '.join(name for name, _, _ in relation.triggers)})")
    if table.trigger_ddl:
        notes.append(f"{table.key}: triggers not copied across dialects")


def _same_default(column: sa.Column[Any]) -> Any:
    default = column.server_default
    if default is None or not hasattr(default, "arg"):
        return None
    return sa.text(str(getattr(default.arg, "text", default.arg)))


def _portable_default(col_info: ColumnInfo, numbered: bool, notes: list[str], where: str, dialect: str) -> Any:
    text = col_info.default
    if not text or numbered:
        return None
    on_update = _ON_UPDATE.search(text)
    if on_update:
        notes.append(f"{where}: {on_update.group(0).strip()} not copied")
        text = text[: on_update.start()]
    cast = _PG_CAST.match(text)
    if cast:
        text = cast.group(1).lstrip("(")
    if _PORTABLE_DEFAULT.match(text):
        return sa.text(text.strip())
    if _NOW_DEFAULT.match(text) and col_info.category == "datetime":
        return sa.text("CURRENT_TIMESTAMP")
    if text.strip().lower() in ("current_date", "curdate()") and col_info.category == "date" and dialect != "mysql":
        return sa.text("CURRENT_DATE")
    notes.append(f"{where}: default {text.strip()} not copied")
    return None


def _fk_name(name: str | None, dialect: str) -> str | None:
    if not name or name.startswith("virtual:"):
        return None
    return name[:60] if dialect == "mysql" else name



def self_contained(expression: str) -> bool:
    """Whether ``expression`` is one whole SQL expression: every quote, bracket and comment it opens is
    closed, and no parenthesis closes one it did not open (text beyond it would be other DDL).

    >>> self_contained("(price * 2) || 'a)'"), self_contained("'a') STORED, h TEXT DEFAULT '")
    (True, False)
    """
    depth, i, closers = 0, 0, {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < len(expression):
        char = expression[i]
        if char in closers:
            end = expression.find(closers[char], i + 1)
            if end < 0:
                return False
            i = end + 1
            continue
        if expression.startswith("--", i) or expression.startswith("/*", i):
            end = expression.find("\n" if char == "-" else "*/", i + 2)
            if end < 0:
                return char == "-"
            i = end + 2
            continue
        if char == ";":
            return False
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
        i += 1
    return depth == 0
