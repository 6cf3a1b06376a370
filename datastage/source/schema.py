"""Reflection of the source schema and its foreign-key graph.

The :class:`SchemaModel` is what every later step reads: tables with their columns,
keys and foreign keys (declared and virtual), a parents-first order, and the cycles
(strongly connected components) the subset closure walks through.

Example:
    >>> import sqlite3, tempfile
    >>> from datastage.source.db import make_engine, snapshot
    >>> path = f"{tempfile.mkdtemp()}/prod.db"
    >>> _ = sqlite3.connect(path).executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY);"
    ...     "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id));")
    >>> with snapshot(make_engine(f"sqlite:///{path}", read_only=True)) as conn:
    ...     model = reflect(conn)
    >>> print(model.table("orders").foreign_keys[0])
    orders(customer_id) -> customer(id)
    >>> model.load_order()
    ['customer', 'orders']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import ConfigError, SourceError
from datastage.settings import Origin, SubsetSpec, VirtualForeignKey
from datastage.source.catalog import PgCatalog, read_pg_catalog
from datastage.source.db import db_error_message, default_schema, dialect_of
from datastage.yamlfile import did_you_mean

SYSTEM_TABLE_PREFIXES = ("datastage_", "sqlite_")


@dataclass
class ColumnInfo:
    """One column: name, SQLAlchemy type, and what the loader and masker must respect."""

    name: str
    type: sa.types.TypeEngine[object]
    nullable: bool
    category: str
    length: int | None = None
    generated: bool = False
    identity: bool = False
    autoincrement: bool = False
    default: str | None = None

    @property
    def type_name(self) -> str:
        try:
            return str(self.type)
        except Exception:  # noqa: BLE001 - some dialect types cannot compile generically
            return type(self.type).__name__


@dataclass(frozen=True)
class ForeignKey:
    """``table(columns) -> ref_table(ref_columns)``; ``virtual`` when declared in config."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    virtual: bool = False

    def __str__(self) -> str:
        return f"{self.table}({', '.join(self.columns)}) -> {self.ref_table}({', '.join(self.ref_columns)})"



def propagate_along_keys(foreign_keys: Iterable[ForeignKey], step: Callable[[ForeignKey, str, str], bool]) -> None:
    """The key closure: call ``step(fk, child_column, parent_column)`` for every column pair of every
    foreign key, round after round, until a whole round changes nothing (``step`` says whether it did).

    Used to carry a parent key column's rule to the columns that reference it, through chains
    of foreign keys in any order.

    >>> fks = [ForeignKey("a", "b", ("a_id",), "a", ("id",)), ForeignKey("c", "c", ("b_id",), "b", ("a_id",))]
    >>> rule = {("a", "id"): "hash"}
    >>> def inherit(fk: ForeignKey, child: str, parent: str) -> bool:
    ...     if (fk.ref_table, parent) in rule and (fk.table, child) not in rule:
    ...         rule[(fk.table, child)] = rule[(fk.ref_table, parent)]
    ...         return True
    ...     return False
    >>> propagate_along_keys(fks[::-1], inherit)
    >>> sorted(rule)
    [('a', 'id'), ('b', 'a_id'), ('c', 'b_id')]
    """
    pairs = [(fk, child, parent) for fk in foreign_keys
             for child, parent in zip(fk.columns, fk.ref_columns, strict=True)]
    changed = True
    while changed:
        changed = False
        for fk, child, parent in pairs:
            if step(fk, child, parent):
                changed = True


@dataclass
class TableInfo:
    """A table of the source as datastage sees it."""

    key: str
    schema: str | None
    name: str
    columns: dict[str, ColumnInfo]
    primary_key: tuple[str, ...]
    unique_keys: list[tuple[str, ...]]
    foreign_keys: list[ForeignKey]
    sa_table: sa.Table
    virtual_primary_key: bool = False
    partitions: list[str] = field(default_factory=list)
    ddl: str | None = None
    index_ddl: list[str] = field(default_factory=list)
    trigger_ddl: list[str] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, ...]:
        """Columns that identify a row: the PK, else the first all-NOT-NULL unique key."""
        if self.primary_key:
            return self.primary_key
        for key in self.unique_keys:
            if all(not self.columns[c].nullable for c in key):
                return key
        return ()

    def is_unique(self, columns: Iterable[str]) -> bool:
        """Whether ``columns`` are (a superset of) the PK or a unique key."""
        cols = set(columns)
        keys = [self.primary_key, *self.unique_keys]
        return any(k and set(k) <= cols for k in keys)

    def unique_column(self, column: str) -> bool:
        """Whether this single column must stay unique on its own."""
        return any(k == (column,) for k in [self.primary_key, *self.unique_keys])

    @property
    def insertable_columns(self) -> list[str]:
        """Columns that receive values on load (generated columns are computed by the database)."""
        return [c.name for c in self.columns.values() if not c.generated]


@dataclass
class SchemaModel:
    """All tables in scope, keyed by ``name`` (default schema) or ``schema.name``."""

    dialect: str
    default_schema: str | None
    tables: dict[str, TableInfo]
    metadata: sa.MetaData
    catalog: PgCatalog | None = None  # PostgreSQL sources: the objects a PostgreSQL target recreates

    def resolve(self, name: str) -> str | None:
        """The table key for a user-written name, or None."""
        if name in self.tables:
            return name
        if self.default_schema and name.startswith(self.default_schema + "."):
            bare = name[len(self.default_schema) + 1:]
            if bare in self.tables:
                return bare
        folded = [k for k in self.tables if k.lower() == name.lower()]
        return folded[0] if len(folded) == 1 else None

    def table(self, name: str, origin: object = None) -> TableInfo:
        """The table called ``name``; an unknown name is a config error with a suggestion."""
        key = self.resolve(name)
        if key is None:
            message = f"unknown table '{name}'{did_you_mean(name, list(self.tables))}"
            if isinstance(origin, Origin):
                raise origin.error(message)
            raise ConfigError(message, table=name)
        return self.tables[key]

    def foreign_keys(self) -> Iterator[ForeignKey]:
        for table in self.tables.values():
            yield from table.foreign_keys

    def children(self, key: str) -> list[ForeignKey]:
        """Foreign keys that reference table ``key``."""
        return [fk for fk in self.foreign_keys() if fk.ref_table == key]

    def components(self) -> list[list[str]]:
        """Strongly connected components, parents first (Tarjan, iterative).

        A component with more than one table, or a table referencing itself, is a cycle.
        """
        graph = {k: sorted({fk.ref_table for fk in t.foreign_keys if fk.ref_table in self.tables})
                 for k, t in self.tables.items()}
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        result: list[list[str]] = []
        counter = 0
        for start in sorted(graph):
            if start in index:
                continue
            work: list[tuple[str, int]] = [(start, 0)]
            while work:
                node, child_pos = work.pop()
                if child_pos == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                recurse = False
                for pos in range(child_pos, len(graph[node])):
                    nxt = graph[node][pos]
                    if nxt not in index:
                        work.append((node, pos + 1))
                        work.append((nxt, 0))
                        recurse = True
                        break
                    if nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                if recurse:
                    continue
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    result.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
        return result  # Tarjan emits referenced (parent) components first

    def load_order(self) -> list[str]:
        """Tables with parents before children (cycles kept together)."""
        return [key for component in self.components() for key in component]

    def cycles(self) -> list[list[str]]:
        """Components that form a cycle (including self-references)."""
        out = []
        for component in self.components():
            if len(component) > 1 or any(
                fk.ref_table == component[0] for fk in self.tables[component[0]].foreign_keys
            ):
                out.append(component)
        return out


_CATEGORIES: list[tuple[type, str]] = [
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Float, "float"),
    (sa.Numeric, "decimal"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Time, "time"),
    (sa.Interval, "interval"),
    (sa.Uuid, "uuid"),
    (sa.JSON, "json"),
    (sa.ARRAY, "array"),
    (sa.Enum, "text"),
    (sa.LargeBinary, "binary"),
    (sa.types._Binary, "binary"),
    (sa.String, "text"),
]


def categorize(type_: sa.types.TypeEngine[object]) -> str:
    """Coarse type family used by masking checks and loaders.

    >>> categorize(sa.String(20)), categorize(sa.Numeric(5, 2))
    ('text', 'decimal')
    """
    base = getattr(type_, "data_type", None) or type_  # PostgreSQL DOMAIN wraps a base type
    for cls, name in _CATEGORIES:
        if isinstance(base, cls):
            return name
    type_name = type(base).__name__.upper()
    if "INTERVAL" in type_name:
        return "interval"
    if "RANGE" in type_name:
        return "other"
    if "JSON" in type_name:
        return "json"
    if "UUID" in type_name:
        return "uuid"
    if any(t in type_name for t in ("CHAR", "TEXT", "CLOB", "SET", "CITEXT")):
        return "text"
    if any(t in type_name for t in ("INT", "YEAR")):
        return "integer"
    if any(t in type_name for t in ("BLOB", "BYTEA", "BINARY")):
        return "binary"
    return "other"


def _length(type_: sa.types.TypeEngine[object]) -> int | None:
    base = getattr(type_, "data_type", None) or type_
    length = getattr(base, "length", None)
    return int(length) if isinstance(length, int) else None


def reflect(conn: Connection, schemas: Iterable[str] = (), spec: SubsetSpec | None = None,
            origin: Origin | None = None) -> SchemaModel:
    """Read tables, keys and foreign keys of ``schemas`` (default: the default schema).

    Virtual primary and foreign keys from ``spec`` are added and checked against the
    reflected tables. Internal tables (``datastage_*``, ``sqlite_*``) are left out. A schema
    the database does not have is a :class:`ConfigError` at ``origin`` (``source.schemas``):
    on MariaDB/MySQL a schema is a database of the server, on SQLite only ``main`` exists.
    """
    dialect = dialect_of(conn)
    default = default_schema(conn)
    wanted: list[str | None] = list(schemas) or [default]
    check_schemas(conn, [s for s in wanted if s is not None and s != default], origin)
    metadata = sa.MetaData()
    try:
        for schema in wanted:
            metadata.reflect(conn, schema=None if schema == default else schema, views=False, resolve_fks=False)
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read the source schema: {db_error_message(exc)}", step="plan") from None

    partitions = _pg_partitions(conn) if dialect == "postgresql" else {}
    tables: dict[str, TableInfo] = {}
    inspector = sa.inspect(conn)
    for sa_table in metadata.tables.values():
        if sa_table.name.startswith(SYSTEM_TABLE_PREFIXES):
            continue
        key = sa_table.name if sa_table.schema in (None, default) else f"{sa_table.schema}.{sa_table.name}"
        if key in partitions:
            continue
        tables[key] = _table_info(key, sa_table, inspector, default)

    # Foreign keys may point at tables outside the reflected set; keep only those inside.
    for table in tables.values():
        table.foreign_keys = [fk for fk in table.foreign_keys if fk.ref_table in tables]
    for child, parent in partitions.items():
        if parent not in tables:
            continue
        parent_info = tables[parent]
        parent_info.partitions.append(child)
        part_table = _find_sa_table(metadata, child, default)
        if part_table is not None:
            known = {(fk.columns, fk.ref_table, fk.ref_columns) for fk in parent_info.foreign_keys}
            for fk in _foreign_keys(parent, part_table, default):
                ref = partitions.get(fk.ref_table, fk.ref_table)
                if (fk.columns, ref, fk.ref_columns) not in known and ref in tables:
                    parent_info.foreign_keys.append(ForeignKey(fk.name, parent, fk.columns, ref, fk.ref_columns))
                    known.add((fk.columns, ref, fk.ref_columns))

    if dialect == "sqlite":
        _sqlite_ddl(conn, tables)
    model = SchemaModel(dialect, default, tables, metadata)
    if dialect == "postgresql":
        model.catalog = _read_catalog(conn, [s for s in wanted if s], default or "public")
    if spec is not None:
        add_virtual_keys(model, spec)
    return model


def check_schemas(conn: Connection, schemas: list[str], origin: Origin | None = None) -> None:
    """Raise a :class:`ConfigError` (at ``origin``, else naming ``source.schemas``) for the first of
    ``schemas`` the connection's database does not have."""
    if not schemas:
        return
    dialect = dialect_of(conn)
    existing: set[str] = {"main"}
    if dialect != "sqlite":
        sql = ("SELECT schema_name FROM information_schema.schemata" if dialect == "mysql"
               else "SELECT nspname FROM pg_namespace")
        try:
            existing = {str(r[0]) for r in conn.exec_driver_sql(sql)}
            if dialect == "mysql" and conn.exec_driver_sql("SELECT @@lower_case_table_names").scalar():
                existing |= {name.lower() for name in existing}
                schemas = [s.lower() if s not in existing else s for s in schemas]
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot read the source schema: {db_error_message(exc)}", step="plan") from None
    missing = [s for s in schemas if s not in existing]
    if not missing:
        return
    if dialect == "sqlite":
        message = f"a SQLite database has one schema, main, so '{missing[0]}' cannot be read; remove schemas:"
    elif dialect == "mysql":
        message = (f"no database '{missing[0]}' on the source server (on MariaDB/MySQL each schema is a "
                   "database); list existing databases, or remove schemas: to read the URL's database")
    else:
        message = (f"no schema '{missing[0]}' in the source database; list existing schemas, or remove "
                   "schemas: to read the default one")
    if origin is not None:
        raise origin.error(message)
    raise ConfigError(message, key="source.schemas")


def _read_catalog(conn: Connection, schemas: list[str], default: str) -> PgCatalog:
    try:
        return read_pg_catalog(conn, schemas, default)
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read the source catalog: {db_error_message(exc)}", step="plan") from None


def _find_sa_table(metadata: sa.MetaData, key: str, default: str | None) -> sa.Table | None:
    for table in metadata.tables.values():
        tkey = table.name if table.schema in (None, default) else f"{table.schema}.{table.name}"
        if tkey == key:
            return table
    return None


def _table_info(key: str, sa_table: sa.Table, inspector: sa.Inspector, default: str | None) -> TableInfo:
    columns: dict[str, ColumnInfo] = {}
    for col in sa_table.columns:
        default_text = None
        if col.server_default is not None and hasattr(col.server_default, "arg"):
            arg = col.server_default.arg
            default_text = str(getattr(arg, "text", arg))
        columns[col.name] = ColumnInfo(
            name=col.name,
            type=col.type,
            nullable=bool(col.nullable),
            category=categorize(col.type),
            length=_length(col.type),
            generated=col.computed is not None,
            identity=col.identity is not None,
            autoincrement=col.autoincrement is True,
            default=default_text,
        )
    primary_key = tuple(c.name for c in sa_table.primary_key.columns)
    unique_keys: list[tuple[str, ...]] = []
    for constraint in sa_table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            cols = tuple(c.name for c in constraint.columns)
            if cols and cols not in unique_keys:
                unique_keys.append(cols)
    for index in sa_table.indexes:
        if index.unique:
            cols = tuple(c.name for c in index.columns if isinstance(c, sa.Column))
            if cols and len(cols) == len(index.expressions) and cols not in unique_keys:
                unique_keys.append(cols)
    return TableInfo(
        key=key,
        schema=sa_table.schema,
        name=sa_table.name,
        columns=columns,
        primary_key=primary_key,
        unique_keys=unique_keys,
        foreign_keys=_foreign_keys(key, sa_table, default),
        sa_table=sa_table,
    )


def _foreign_keys(key: str, sa_table: sa.Table, default: str | None) -> list[ForeignKey]:
    out = []
    for position, constraint in enumerate(sa_table.foreign_key_constraints):
        if not constraint.elements:
            continue
        # The referenced table may lie outside the reflected schemas: read the target from the
        # constraint's own spec instead of resolving it (the caller drops such keys).
        ref_schema, ref_name, _ = constraint.elements[0]._column_tokens
        ref_schema = ref_schema if ref_schema is not None else sa_table.schema
        ref_key = ref_name if ref_schema in (None, default) else f"{ref_schema}.{ref_name}"
        name = constraint.name or f"{sa_table.name}_fk{position + 1}"
        out.append(ForeignKey(
            name=str(name),
            table=key,
            columns=tuple(e.parent.name for e in constraint.elements),
            ref_table=ref_key,
            ref_columns=tuple(str(e._column_tokens[2]) for e in constraint.elements),
        ))
    return out


def _sqlite_ddl(conn: Connection, tables: dict[str, TableInfo]) -> None:
    """Keep SQLite's own CREATE statements: a SQLite target gets exactly the same tables."""
    rows = conn.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).all()
    for kind, _name, table_name, sql in rows:
        table = tables.get(table_name)
        if table is None:
            continue
        if kind == "table":
            table.ddl = sql
        elif kind == "index":
            table.index_ddl.append(sql)
        elif kind == "trigger":
            table.trigger_ddl.append(sql)


def _pg_partitions(conn: Connection) -> dict[str, str]:
    """Partition key -> partitioned parent key (leaf partitions are folded into their root)."""
    rows = conn.exec_driver_sql(
        """
        SELECT cn.nspname, c.relname, pn.nspname, p.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
        JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE c.relispartition
        """
    ).all()
    default = conn.dialect.default_schema_name or "public"

    def key(schema: str, name: str) -> str:
        return name if schema == default else f"{schema}.{name}"

    direct = {key(r[0], r[1]): key(r[2], r[3]) for r in rows}
    resolved = {}
    for child, parent in direct.items():
        while parent in direct:
            parent = direct[parent]
        resolved[child] = parent
    return resolved


def add_virtual_keys(model: SchemaModel, spec: SubsetSpec) -> None:
    """Add ``virtual_primary_keys`` and ``virtual_foreign_keys`` from a subset spec."""
    for name, columns in spec.virtual_primary_keys.items():
        origin = spec.origins.get("virtual_primary_keys")
        table = model.table(name, origin)
        _check_columns(table, columns, origin)
        if not table.primary_key:
            table.primary_key = columns
            table.virtual_primary_key = True
    for vfk in spec.virtual_foreign_keys:
        add_virtual_fk(model, vfk)


def add_virtual_fk(model: SchemaModel, vfk: VirtualForeignKey) -> ForeignKey:
    """Register one virtual foreign key after checking both ends exist."""
    child = model.table(vfk.table, vfk.origin)
    parent = model.table(vfk.references, vfk.origin)
    _check_columns(child, vfk.columns, vfk.origin)
    ref_columns = vfk.ref_columns or parent.identity
    if len(ref_columns) != len(vfk.columns):
        message = (f"virtual foreign key {child.key}({', '.join(vfk.columns)}) needs ref_columns: the key of "
                   f"{parent.key} is ({', '.join(ref_columns) or 'none'})")
        if vfk.origin:
            raise vfk.origin.error(message)
        raise ConfigError(message)
    _check_columns(parent, ref_columns, vfk.origin)
    if not parent.is_unique(ref_columns):
        message = (f"virtual foreign key {child.key}({', '.join(vfk.columns)}) must reference a primary or "
                   f"unique key of {parent.key}; add it to virtual_primary_keys")
        if vfk.origin:
            raise vfk.origin.error(message)
        raise ConfigError(message)
    fk = ForeignKey(
        name=f"virtual:{child.key}({','.join(vfk.columns)})",
        table=child.key,
        columns=vfk.columns,
        ref_table=parent.key,
        ref_columns=ref_columns,
        virtual=True,
    )
    if fk not in child.foreign_keys:
        child.foreign_keys.append(fk)
    return fk


def _check_columns(table: TableInfo, columns: Iterable[str], origin: object) -> None:
    for column in columns:
        if column not in table.columns:
            message = f"table {table.key} has no column '{column}'{did_you_mean(column, list(table.columns))}"
            if isinstance(origin, Origin):
                raise origin.error(message)
            raise ConfigError(message, table=table.key)
