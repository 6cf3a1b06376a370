"""PostgreSQL → PostgreSQL: the source's objects recreated in the shadow schemas from its catalog.

:class:`CatalogDDL` replays what :mod:`datastage.source.catalog` read, in load order: types and
sequences, functions (where their signatures allow it before the tables), tables with their
defaults, identity and generated columns and CHECK constraints, partitions under their
partitioned parents. What depends on the data waits for the shadow's ``finish``:
primary, unique and exclusion constraints, indexes, foreign keys, triggers (created after
the rows, so none fires during the load), views and materialized views, sequences and
identities set past the loaded maximum. Functions and views that cannot be recreated (they
need something outside the copy) are reported, never silently dropped. From other sources,
:func:`create_built_tables` creates the tables :func:`~datastage.targets.ddl.build_tables` maps.

Example (after the load, an identity or serial column's sequence continues after the copied rows):
    >>> print(identity_reset("public", "customer", "customer_id"))  # doctest: +NORMALIZE_WHITESPACE
    SELECT setval(pg_get_serial_sequence('"public"."customer"', 'customer_id'),
                  coalesce(max("customer_id"), 0) + 1, false) FROM "public"."customer"
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect

from datastage.errors import TargetError
from datastage.source.catalog import PgCatalog, PgRelation
from datastage.source.identifiers import POSTGRESQL, qualified_name, quote_identifier, quote_like_postgresql
from datastage.source.schema import SchemaModel, TableInfo
from datastage.targets.ddl import build_tables
from datastage.targets.postgres.errors import first_line, pg_errors


class ShadowSchemas(Protocol):
    """What :class:`CatalogDDL` fills: the shadow schemas of a
    :class:`~datastage.targets.postgres.target.PostgresShadow`."""

    notes: list[str]
    stored: dict[str, dict[str, str]]  # per table: column -> stored category ("json", "text" or "")
    post_load: list[tuple[str | None, str, str, bool]]  # (table or None, what, sql, required)
    sequence_resets: list[str]
    schema_map: dict[str | None, str]  # source schema (None: its default) -> shadow schema

    def db(self) -> psycopg.Connection[Any]:
        """The load's connection."""

    def shadow_schema(self, source_schema: str | None) -> str:
        """The shadow schema that receives the tables of ``source_schema``."""


def identity_reset(schema: str, table: str, column: str) -> str:
    name = qualified_name(POSTGRESQL, schema, table)
    col = quote_identifier(POSTGRESQL, column)
    return (f"SELECT setval(pg_get_serial_sequence('{_lit(name)}', '{_lit(column)}'), "
            f"coalesce(max({col}), 0) + 1, false) FROM {name}")


class CatalogDDL:
    """Recreates a PostgreSQL source's objects (from its catalog) in the shadow schemas."""

    def __init__(self, shadow: ShadowSchemas, catalog: PgCatalog, tables: list[TableInfo]) -> None:
        self.shadow = shadow
        self.catalog = catalog
        self.conn = shadow.db()
        self.loaded = {t.key for t in tables}
        self.tables = tables
        self._expand_partitions()

    def _expand_partitions(self) -> None:
        grew = True
        while grew:
            grew = False
            for rel in self.catalog.relations.values():
                if rel.parent in self.loaded and rel.key not in self.loaded:
                    self.loaded.add(rel.key)
                    grew = True

    def name(self, schema: str, name: str) -> str:
        source = None if schema == self.catalog.default_schema else schema
        return qualified_name(POSTGRESQL, self.shadow.shadow_schema(source), name)

    def create(self) -> None:
        notes = self.shadow.notes
        pending = [(f"type {t.name}", f"{t.create} {self.name(t.schema, t.name)} {t.rest}") for t in self.catalog.types]
        for what, sql in self._retry(pending):
            raise TargetError(f"creating {what} in the shadow failed: {sql}")
        for seq in self.catalog.sequences:
            self.conn.execute(f"CREATE SEQUENCE {self.name(seq.schema, seq.name)} {seq.options}")
        routines = [(f"function {r.name}", f"{r.create} {self.name(r.schema, r.name)}{r.rest}")
                    for r in self.catalog.routines]
        routines = self._retry(routines, quiet=True)
        for key in self._creation_order():
            self.conn.execute(self._create_table(self.catalog.relations[key]))
        for seq in self.catalog.sequences:
            if seq.owned_by and seq.owned_by[0] in self.loaded:
                rel = self.catalog.relations[seq.owned_by[0]]
                self.conn.execute(f"ALTER SEQUENCE {self.name(seq.schema, seq.name)} OWNED BY "
                                  f"{self.name(rel.schema, rel.name)}.{quote_identifier(POSTGRESQL, seq.owned_by[1])}")
        for what, _sql in self._retry(routines):
            notes.append(f"{what} not copied")
        self._plan_post_load()
        self.shadow.stored.update({t.key: {} for t in self.tables})

    def _retry(self, pending: list[tuple[str, str]], quiet: bool = False) -> list[tuple[str, str]]:
        """Create objects that may depend on each other, in passes, until no pass makes progress."""
        while pending:
            failed = []
            for what, sql in pending:
                self.conn.execute("SAVEPOINT datastage_object")
                try:
                    self.conn.execute(sql)
                except psycopg.Error as exc:
                    self.conn.execute("ROLLBACK TO SAVEPOINT datastage_object")
                    failed.append((what, sql, first_line(exc)))
                    continue
                self.conn.execute("RELEASE SAVEPOINT datastage_object")
            if len(failed) == len(pending):
                if not quiet:
                    return [(f"{what} ({error})", sql) for what, sql, error in failed]
                return [(what, sql) for what, sql, _ in failed]
            pending = [(what, sql) for what, sql, _ in failed]
        return []

    def _creation_order(self) -> list[str]:
        order: list[str] = []

        def visit(key: str) -> None:
            if key in order:
                return
            rel = self.catalog.relations[key]
            if rel.parent and rel.parent in self.loaded:
                visit(rel.parent)
            order.append(key)

        for key in sorted(self.loaded):
            if key in self.catalog.relations:
                visit(key)
        return order

    def _create_table(self, rel: PgRelation) -> str:
        name = self.name(rel.schema, rel.name)
        unlogged = "UNLOGGED " if rel.unlogged else ""
        checks = [c for c in rel.constraints if c.kind == "c"]
        if rel.parent and rel.parent in self.loaded:
            parent = self.catalog.relations[rel.parent]
            sql = (f"CREATE {unlogged}TABLE {name} PARTITION OF {self.name(parent.schema, parent.name)} "
                   f"{rel.partition_bound}")
        else:
            parts = [self._column(c) for c in rel.columns]
            parts += [f"CONSTRAINT {quote_identifier(POSTGRESQL, c.name)} {c.definition}" for c in checks]
            sql = f"CREATE {unlogged}TABLE {name} (\n  " + ",\n  ".join(parts) + "\n)"
            checks = []
        if rel.partition_key:
            sql += f" PARTITION BY {rel.partition_key}"
        if rel.reloptions:
            sql += f" WITH ({', '.join(rel.reloptions)})"
        for check in checks:
            sql += f";\nALTER TABLE {name} ADD CONSTRAINT {quote_identifier(POSTGRESQL, check.name)} {check.definition}"
        return sql

    @staticmethod
    def _column(col: Any) -> str:
        parts = [quote_identifier(POSTGRESQL, col.name), col.type_sql]
        if col.collation:
            parts.append(f"COLLATE {col.collation}")
        if col.generated_sql is not None:
            parts.append(f"GENERATED ALWAYS AS ({col.generated_sql}) STORED")
        elif col.identity:
            kind = "ALWAYS" if col.identity == "a" else "BY DEFAULT"
            options = f" ({col.identity_options})" if col.identity_options else ""
            parts.append(f"GENERATED {kind} AS IDENTITY{options}")
        elif col.default_sql is not None:
            parts.append(f"DEFAULT {col.default_sql}")
        if col.not_null:
            parts.append("NOT NULL")
        return " ".join(parts)

    def _retarget(self, definition: str, rel_schema: str, rel_name: str) -> str:
        """An index or trigger definition (which always names its table qualified) on the shadow table."""
        source = f" ON {quote_identifier(POSTGRESQL, rel_schema)}.{quote_identifier(POSTGRESQL, rel_name)} "
        alternatives = [source, f" ON {quote_like_postgresql(rel_schema)}.{quote_like_postgresql(rel_name)} "]
        target = f" ON {self.name(rel_schema, rel_name)} "
        for alt in alternatives:
            for prefix in (" ON ONLY", " ON"):
                probe = alt.replace(" ON ", prefix + " ", 1)
                if probe in definition:
                    return definition.replace(probe, target, 1)
        raise TargetError(f"cannot place definition on the shadow: {definition[:80]}")

    def _root(self, rel: PgRelation) -> str:
        """The loaded table a relation belongs to (a partition belongs to its top partitioned table)."""
        while rel.parent and rel.parent in self.loaded:
            rel = self.catalog.relations[rel.parent]
        return rel.key

    def _plan_post_load(self) -> None:
        post = self.shadow.post_load
        order = self._creation_order()
        rels = [self.catalog.relations[k] for k in order]
        for rel in rels:
            name = self.name(rel.schema, rel.name)
            for con in rel.constraints:
                if con.kind in ("p", "u", "x"):
                    constraint = quote_identifier(POSTGRESQL, con.name)
                    post.append((self._root(rel), f"constraint {con.name} on {rel.key}",
                                 f"ALTER TABLE {name} ADD CONSTRAINT {constraint} {con.definition}", True))
        for rel in rels:
            for index_name, definition in rel.indexes:
                post.append((self._root(rel), f"index {index_name}",
                             self._retarget(definition, rel.schema, rel.name), True))
        for rel in rels:
            name = self.name(rel.schema, rel.name)
            for con in rel.constraints:
                if con.kind != "f":
                    continue
                if con.ref_key not in self.loaded:
                    self.shadow.notes.append(f"foreign key {con.name} on {rel.key} not copied: it references a table "
                                             "outside the copy")
                    continue
                constraint = quote_identifier(POSTGRESQL, con.name)
                post.append((None, f"foreign key {con.name} on {rel.key}",
                             f"ALTER TABLE {name} ADD CONSTRAINT {constraint} {con.definition}", True))
        for rel in rels:
            name = self.name(rel.schema, rel.name)
            for trigger_name, definition, enabled in rel.triggers:
                post.append((None, f"trigger {trigger_name} on {rel.key}",
                             self._retarget(definition, rel.schema, rel.name), False))
                if enabled == "D":
                    trigger = quote_identifier(POSTGRESQL, trigger_name)
                    post.append((None, f"trigger {trigger_name} on {rel.key}",
                                 f"ALTER TABLE {name} DISABLE TRIGGER {trigger}", False))
        for view in self.catalog.views:
            name = self.name(view.schema, view.name)
            options = f" WITH ({', '.join(view.reloptions)})" if view.reloptions else ""
            if view.materialized:
                post.append((None, f"materialized view {view.name}",
                             f"CREATE MATERIALIZED VIEW {name}{options} AS {view.definition} WITH NO DATA", False))
                for index_name, definition in view.indexes:
                    post.append((None, f"index {index_name}", self._retarget(definition, view.schema, view.name),
                                 False))
                if view.populated:
                    post.append((None, f"materialized view {view.name}", f"REFRESH MATERIALIZED VIEW {name}", False))
                    post.append((None, f"statistics of {view.name}", f"ANALYZE {name}", False))
            else:
                post.append((None, f"view {view.name}", f"CREATE VIEW {name}{options} AS {view.definition}", False))
        resets = self.shadow.sequence_resets
        for seq in self.catalog.sequences:
            seq_name = self.name(seq.schema, seq.name)
            uses = [(k, c) for k, c in seq.used_by if k in self.loaded]
            if uses:
                maxes = " UNION ALL ".join(
                    f"SELECT max({quote_identifier(POSTGRESQL, c)})::numeric AS m FROM "
                    f"{self.name(self.catalog.relations[k].schema, self.catalog.relations[k].name)}" for k, c in uses)
                literal = _lit(seq_name)
                start = f"(SELECT seqstart FROM pg_sequence WHERE seqrelid = '{literal}'::regclass)"
                resets.append(f"SELECT CASE WHEN max(m) IS NULL THEN setval('{literal}', {start}, false) "
                              f"ELSE setval('{literal}', max(m)::bigint, true) END FROM ({maxes}) u")
            elif seq.last_value is not None:
                resets.append(f"SELECT setval('{_lit(seq_name)}', {int(seq.last_value)}, true)")
        for rel in rels:
            if rel.parent and rel.parent in self.loaded:
                continue
            for col in rel.columns:
                if col.identity:
                    resets.append(identity_reset(self.shadow.shadow_schema(
                        None if rel.schema == self.catalog.default_schema else rel.schema), rel.name, col.name))


def _lit(text: str) -> str:
    return text.replace("'", "''")


def create_built_tables(shadow: ShadowSchemas, model: SchemaModel, tables: list[TableInfo]) -> list[str]:
    """Create the tables of a source other than PostgreSQL (from :func:`build_tables`) in the shadow;
    their indexes, foreign keys and identity resets wait for the load. Returns the mapping notes."""
    _, built, notes = build_tables(model, tables, "postgresql", schema_map=dict(shadow.schema_map))
    dialect = pg_dialect.dialect()
    conn = shadow.db()
    for table in tables:
        sa_table = built[table.key]
        ddl = str(sa.schema.CreateTable(sa_table, include_foreign_key_constraints=[]).compile(dialect=dialect))
        with pg_errors(f"creating table {table.key} in the shadow", table.key):
            conn.execute(ddl)
        for index in sa_table.indexes:
            shadow.post_load.append((table.key, f"index {index.name}", str(sa.schema.CreateIndex(index).compile(
                dialect=dialect)), True))
        for fk in sa_table.foreign_key_constraints:
            shadow.post_load.append((None, f"foreign key {fk.name or table.key}",
                                     str(sa.schema.AddConstraint(fk).compile(dialect=dialect)), True))
        shadow.stored[table.key] = {c.name: _stored_category(c.type) for c in sa_table.columns}
        for column in sa_table.columns:
            if column.identity is not None:
                shadow.sequence_resets.append(identity_reset(sa_table.schema or "", sa_table.name, column.name))
    return notes


def _stored_category(type_: sa.types.TypeEngine[Any]) -> str:
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.Text | sa.String) and not isinstance(type_, sa.Enum):
        return "text"
    return ""
