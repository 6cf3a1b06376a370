"""What a PostgreSQL source holds beyond plain tables, read from its catalog for a faithful copy.

A PostgreSQL → PostgreSQL load recreates the source's objects exactly: enums, domains,
composite types, sequences, tables with their defaults, identity and generated columns,
partitioning, constraints, indexes, triggers, functions, aggregates and views. They are read
here, in the source's read-only snapshot, with ``search_path`` set to the copied schemas so
that every definition names the copied objects *unqualified*; the target replays them with
``search_path`` set to its shadow schemas, so the same text binds to the shadow copy.

Objects that belong to an extension are left out (the target database needs the extension).

Example (tables are keyed relative to the default schema):
    >>> catalog = PgCatalog(["public", "sales"], "public")
    >>> catalog.key("public", "film"), catalog.key("sales", "orders")
    ('film', 'sales.orders')

Reading the catalog (skipped as a doctest: it needs a PostgreSQL server):
    >>> with snapshot(make_engine(pg_url, read_only=True)) as conn:  # doctest: +SKIP
    ...     catalog = read_pg_catalog(conn, ["public"], "public")
    >>> catalog.relations["film"].columns[0].type_sql        # doctest: +SKIP
    'integer'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastage.source.identifiers import POSTGRESQL, quote_identifier


@dataclass
class PgColumn:
    """One column as the source defines it."""

    name: str
    type_sql: str
    not_null: bool
    default_sql: str | None = None
    generated_sql: str | None = None
    identity: str = ""  # 'a' (ALWAYS), 'd' (BY DEFAULT) or ''
    identity_options: str = ""
    collation: str | None = None
    inherited: bool = False


@dataclass
class PgConstraint:
    name: str
    kind: str  # p, u, c, f, x
    definition: str
    ref_key: str | None = None  # the referenced table of a foreign key


@dataclass
class PgRelation:
    """A table (``r``) or partitioned table (``p``), partitions included."""

    key: str
    schema: str
    name: str
    kind: str
    columns: list[PgColumn] = field(default_factory=list)
    partition_key: str | None = None
    parent: str | None = None
    partition_bound: str | None = None
    unlogged: bool = False
    reloptions: list[str] = field(default_factory=list)
    constraints: list[PgConstraint] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)
    triggers: list[tuple[str, str, str]] = field(default_factory=list)  # name, definition, tgenabled


@dataclass
class PgSequence:
    schema: str
    name: str
    options: str
    owned_by: tuple[str, str] | None = None  # (table key, column)
    used_by: list[tuple[str, str]] = field(default_factory=list)
    last_value: int | None = None


@dataclass
class PgRoutine:
    """A function, procedure or aggregate: ``f"{create} {qualified name}{rest}"`` creates it."""

    schema: str
    name: str
    kind: str
    create: str
    rest: str


@dataclass
class PgView:
    schema: str
    name: str
    materialized: bool
    definition: str
    reloptions: list[str] = field(default_factory=list)
    populated: bool = True
    indexes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PgType:
    """An enum, domain or composite type: ``f"{create} {qualified name} {rest}"`` creates it."""

    schema: str
    name: str
    kind: str
    create: str
    rest: str


@dataclass
class PgCatalog:
    """Everything read from one PostgreSQL source, by schema-relative table key."""

    schemas: list[str]
    default_schema: str
    types: list[PgType] = field(default_factory=list)
    sequences: list[PgSequence] = field(default_factory=list)
    relations: dict[str, PgRelation] = field(default_factory=dict)
    routines: list[PgRoutine] = field(default_factory=list)
    views: list[PgView] = field(default_factory=list)

    def key(self, schema: str, name: str) -> str:
        return name if schema == self.default_schema else f"{schema}.{name}"

    def partitions_of(self, key: str) -> list[PgRelation]:
        """Direct partitions of ``key``, in a stable order."""
        return sorted((r for r in self.relations.values() if r.parent == key), key=lambda r: r.name)


def _not_extension(alias: str, catalog: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
            f"AND e.objid = {alias}.oid AND e.deptype = 'e')")


def read_pg_catalog(conn: Connection, schemas: list[str], default_schema: str) -> PgCatalog:
    """Read the copyable objects of ``schemas`` (the source's read-only snapshot connection)."""
    previous = conn.exec_driver_sql("SELECT current_setting('search_path')").scalar()
    path = ", ".join(quote_identifier(POSTGRESQL, s) for s in schemas)
    conn.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": path})
    try:
        catalog = PgCatalog(list(schemas), default_schema)
        params = {"schemas": list(schemas)}
        _read_types(conn, catalog, params)
        oids = _read_relations(conn, catalog, params)
        _read_columns(conn, catalog, oids)
        _read_constraints(conn, catalog, oids)
        _read_indexes(conn, catalog, oids)
        _read_triggers(conn, catalog, oids)
        _read_sequences(conn, catalog, params, oids)
        _read_routines(conn, catalog, params)
        _read_views(conn, catalog, params)
        return catalog
    finally:
        conn.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": previous})


def _rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return list(conn.execute(sa.text(sql), params or {}).all())


def _read_types(conn: Connection, catalog: PgCatalog, params: dict[str, Any]) -> None:
    for schema, name, labels in _rows(conn, f"""
            SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
            WHERE n.nspname = ANY(:schemas) AND {_not_extension('t', 'pg_type')}
            GROUP BY t.oid, n.nspname, t.typname ORDER BY t.oid""", params):
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in labels)
        catalog.types.append(PgType(schema, name, "enum", "CREATE TYPE", f"AS ENUM ({values})"))
    for schema, name, base, not_null, default, checks in _rows(conn, f"""
            SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                   pg_get_expr(t.typdefaultbin, 0),
                   coalesce((SELECT json_agg(json_build_array(c.conname, pg_get_constraintdef(c.oid))
                                              ORDER BY c.conname)
                             FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '[]')
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'd' AND n.nspname = ANY(:schemas) AND {_not_extension('t', 'pg_type')}
            ORDER BY t.oid""", params):
        parts = [f"AS {base}"]
        if default is not None:
            parts.append(f"DEFAULT {default}")
        if not_null:
            parts.append("NOT NULL")
        for check_name, check in _json(checks):
            parts.append(f"CONSTRAINT {quote_identifier(POSTGRESQL, check_name)} {check}")
        catalog.types.append(PgType(schema, name, "domain", "CREATE DOMAIN", " ".join(parts)))
    for schema, name, attrs in _rows(conn, f"""
            SELECT n.nspname, t.typname,
                   json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = ANY(:schemas) AND {_not_extension('t', 'pg_type')}
            GROUP BY t.oid, n.nspname, t.typname ORDER BY t.oid""", params):
        body = ", ".join(f"{quote_identifier(POSTGRESQL, a)} {t}" for a, t in _json(attrs))
        catalog.types.append(PgType(schema, name, "composite", "CREATE TYPE", f"AS ({body})"))


def _json(value: Any) -> list[Any]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def _read_relations(conn: Connection, catalog: PgCatalog, params: dict[str, Any]) -> dict[int, str]:
    oids: dict[int, str] = {}
    rows = _rows(conn, f"""
        SELECT c.oid, n.nspname, c.relname, c.relkind, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
               CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
               (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = c.oid AND c.relispartition),
               c.relpersistence = 'u', coalesce(c.reloptions, '{{}}')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(:schemas) AND {_not_extension('c', 'pg_class')}
        ORDER BY c.oid""", params)
    for oid, schema, name, kind, part_key, bound, _parent, unlogged, options in rows:
        key = catalog.key(schema, name)
        oids[oid] = key
        catalog.relations[key] = PgRelation(key, schema, name, kind, partition_key=part_key, partition_bound=bound,
                                            unlogged=bool(unlogged), reloptions=list(options or []))
    for oid, _schema, _name, _kind, _pk, _bound, parent, *_ in rows:
        if parent is not None and parent in oids:
            catalog.relations[oids[oid]].parent = oids[parent]
    return oids


def _read_columns(conn: Connection, catalog: PgCatalog, oids: dict[int, str]) -> None:
    if not oids:
        return
    for relid, name, type_sql, not_null, default, generated, identity, collation, inherited in _rows(conn, """
            SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   a.attidentity,
                   CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                        THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
                   NOT a.attislocal
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_collation co ON co.oid = a.attcollation
            LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
            WHERE a.attrelid = ANY(:oids) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attrelid, a.attnum""", {"oids": list(oids)}):
        catalog.relations[oids[relid]].columns.append(PgColumn(
            name, type_sql, bool(not_null), default, generated, identity or "", collation=collation,
            inherited=bool(inherited)))


def _read_constraints(conn: Connection, catalog: PgCatalog, oids: dict[int, str]) -> None:
    if not oids:
        return
    for relid, name, kind, definition, ref in _rows(conn, """
            SELECT c.conrelid, c.conname, c.contype, pg_get_constraintdef(c.oid), c.confrelid
            FROM pg_constraint c
            WHERE c.conrelid = ANY(:oids) AND c.contype IN ('p', 'u', 'c', 'f', 'x')
              AND c.conparentid = 0 AND c.conislocal
            ORDER BY c.conrelid, c.contype, c.conname""", {"oids": list(oids)}):
        ref_key = oids.get(ref) if kind == "f" else None
        if kind == "f" and ref_key is None:
            ref_key = "?"  # references a table outside the copied schemas
        catalog.relations[oids[relid]].constraints.append(PgConstraint(name, kind, definition, ref_key))


def _read_indexes(conn: Connection, catalog: PgCatalog, oids: dict[int, str]) -> None:
    if not oids:
        return
    for relid, name, definition in _rows(conn, """
            SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = ANY(:oids)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                              AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
              AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
            ORDER BY i.indrelid, ic.relname""", {"oids": list(oids)}):
        catalog.relations[oids[relid]].indexes.append((name, definition))


def _read_triggers(conn: Connection, catalog: PgCatalog, oids: dict[int, str]) -> None:
    if not oids:
        return
    for relid, name, definition, enabled in _rows(conn, """
            SELECT t.tgrelid, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
            FROM pg_trigger t
            WHERE t.tgrelid = ANY(:oids) AND NOT t.tgisinternal AND t.tgparentid = 0
            ORDER BY t.tgrelid, t.tgname""", {"oids": list(oids)}):
        catalog.relations[oids[relid]].triggers.append((name, definition, str(enabled)))


def _read_sequences(conn: Connection, catalog: PgCatalog, params: dict[str, Any], oids: dict[int, str]) -> None:
    rows = _rows(conn, f"""
        SELECT c.oid, n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
               s.seqmax, s.seqcache, s.seqcycle, d.deptype, d.refobjid, a.attname, ps.last_value
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = c.relname
        WHERE n.nspname = ANY(:schemas) AND {_not_extension('c', 'pg_class')}
        ORDER BY c.oid""", params)
    by_oid: dict[int, PgSequence] = {}
    for (oid, schema, name, type_sql, start, increment, minimum, maximum, cache, cycle, deptype, owner, column,
         last_value) in rows:
        options = (f"AS {type_sql} INCREMENT BY {increment} MINVALUE {minimum} MAXVALUE {maximum} "
                   f"START WITH {start} CACHE {cache} {'CYCLE' if cycle else 'NO CYCLE'}")
        if deptype == "i":
            relation = catalog.relations.get(oids.get(owner, ""))
            if relation is not None:
                for col in relation.columns:
                    if col.name == column:
                        col.identity_options = options.replace(f"AS {type_sql} ", "")
            continue
        owned = (oids[owner], str(column)) if deptype == "a" and owner in oids else None
        sequence = PgSequence(schema, name, options, owned, [], None if last_value is None else int(last_value))
        by_oid[oid] = sequence
        catalog.sequences.append(sequence)
    if not by_oid:
        return
    for seq, relid, column in _rows(conn, """
            SELECT d.refobjid, ad.adrelid, a.attname
            FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
            JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(:seqs)
            ORDER BY ad.adrelid, a.attnum""", {"seqs": list(by_oid)}):
        if relid in oids:
            by_oid[seq].used_by.append((oids[relid], column))
    for sequence in by_oid.values():
        if sequence.owned_by and sequence.owned_by not in sequence.used_by:
            sequence.used_by.append(sequence.owned_by)


def _read_routines(conn: Connection, catalog: PgCatalog, params: dict[str, Any]) -> None:
    for schema, name, kind, qualified, definition, _args in _rows(conn, f"""
            SELECT n.nspname, p.proname, p.prokind, quote_ident(n.nspname) || '.' || quote_ident(p.proname),
                   CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
                   pg_get_function_identity_arguments(p.oid)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = ANY(:schemas) AND {_not_extension('p', 'pg_proc')}
            ORDER BY p.oid""", params):
        if kind == "a":
            continue
        word = "PROCEDURE" if kind == "p" else "FUNCTION"
        head = f"CREATE OR REPLACE {word} {qualified}("
        if not definition.startswith(head):
            continue
        catalog.routines.append(PgRoutine(schema, name, kind, f"CREATE {word}", "(" + definition[len(head):]))
    for schema, name, args, transfn, stype, finalfn, initcond, combinefn, sortop in _rows(conn, f"""
            SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), a.aggtransfn::regproc::text,
                   format_type(a.aggtranstype, NULL), nullif(a.aggfinalfn::regproc::text, '-'), a.agginitval,
                   nullif(a.aggcombinefn::regproc::text, '-'), nullif(a.aggsortop::regoperator::text, '0')
            FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE a.aggkind = 'n' AND n.nspname = ANY(:schemas) AND {_not_extension('p', 'pg_proc')}
            ORDER BY p.oid""", params):
        options = [f"SFUNC = {transfn}", f"STYPE = {stype}"]
        if finalfn:
            options.append(f"FINALFUNC = {finalfn}")
        if combinefn:
            options.append(f"COMBINEFUNC = {combinefn}")
        if initcond is not None:
            options.append("INITCOND = '" + initcond.replace("'", "''") + "'")
        if sortop:
            options.append(f"SORTOP = {sortop.split('(')[0]}")
        catalog.routines.append(PgRoutine(schema, name, "a", "CREATE AGGREGATE",
                                          f"({args}) (" + ", ".join(options) + ")"))


def _read_views(conn: Connection, catalog: PgCatalog, params: dict[str, Any]) -> None:
    rows = _rows(conn, f"""
        SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_get_viewdef(c.oid), coalesce(c.reloptions, '{{}}'),
               c.relispopulated
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(:schemas) AND {_not_extension('c', 'pg_class')}
        ORDER BY c.oid""", params)
    views = {oid: PgView(schema, name, bool(mat), definition.rstrip().rstrip(";"), list(options or []),
                         bool(populated))
             for oid, schema, name, mat, definition, options, populated in rows}
    materialized = [oid for oid, view in views.items() if view.materialized]
    if materialized:
        for relid, name, definition in _rows(conn, """
                SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid)
                FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = ANY(:oids) ORDER BY ic.relname""", {"oids": materialized}):
            views[relid].indexes.append((name, definition))
    catalog.views.extend(views.values())
