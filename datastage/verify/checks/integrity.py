"""Integrity of the loaded rows: every foreign key finds its parent, no primary or unique key is duplicated.

Both checks count in SQL on the shadow; a foreign key whose parent table was not copied
is not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlalchemy.engine import Connection

from datastage.results import CheckResult
from datastage.source.identifiers import quote_as_needed
from datastage.source.schema import ForeignKey, SchemaModel, TableInfo
from datastage.verify.context import CheckContext, NameOf, query_count


def check(ctx: CheckContext) -> list[CheckResult]:
    """``foreign_keys`` and ``unique_keys``."""
    return [foreign_keys(ctx.conn, ctx.plan.model, ctx.plan.tables, ctx.name_of),
            unique_keys(ctx.conn, ctx.plan.tables, ctx.name_of)]


def _fk_sql(fk: ForeignKey, child: TableInfo, parent: TableInfo, name_of: NameOf, quote: Callable[[str], str]) -> str:
    not_null = " AND ".join(f"c.{quote(col)} IS NOT NULL" for col in fk.columns)
    join = " AND ".join(f"p.{quote(rc)} = c.{quote(cc)}" for cc, rc in zip(fk.columns, fk.ref_columns, strict=True))
    return (f"SELECT count(*) FROM {name_of(child)} c WHERE {not_null} AND NOT EXISTS "
            f"(SELECT 1 FROM {name_of(parent)} p WHERE {join})")


def foreign_keys(conn: Connection, model: SchemaModel, tables: list[TableInfo],
                       name_of: NameOf) -> CheckResult:
    """Every foreign key (declared and virtual) of the loaded rows finds its parent row."""
    quote = partial(quote_as_needed, conn)
    present = {t.key for t in tables}
    orphans: dict[str, int] = {}
    checked = 0
    for table in tables:
        for fk in table.foreign_keys:
            if fk.ref_table not in present:
                continue
            parent = model.tables[fk.ref_table]
            count = query_count(conn, _fk_sql(fk, table, parent, name_of, quote), f"checking {fk}")
            checked += 1
            if count:
                orphans[str(fk)] = count
    if orphans:
        total = sum(orphans.values())
        return CheckResult("foreign_keys", "FAIL", f"{total} row(s) reference a missing parent",
                           {"checked": checked, "orphans": orphans})
    return CheckResult("foreign_keys", "PASS", f"all {checked} foreign keys hold", {"checked": checked})


def unique_keys(conn: Connection, tables: list[TableInfo], name_of: NameOf) -> CheckResult:
    """Primary and unique keys have no duplicates after masking."""
    quote = partial(quote_as_needed, conn)
    duplicates: dict[str, int] = {}
    checked = 0
    for table in tables:
        for key in [table.primary_key, *table.unique_keys]:
            if not key:
                continue
            cols = ", ".join(quote(c) for c in key)
            not_null = " AND ".join(f"{quote(c)} IS NOT NULL" for c in key)
            sql = (f"SELECT count(*) FROM (SELECT {cols} FROM {name_of(table)} WHERE {not_null} "
                   f"GROUP BY {cols} HAVING count(*) > 1) d")
            count = query_count(conn, sql, f"checking unique key of {table.key}")
            checked += 1
            if count:
                duplicates[f"{table.key}({', '.join(key)})"] = count
    if duplicates:
        return CheckResult("unique_keys", "FAIL", f"{sum(duplicates.values())} duplicated key value(s)",
                           {"checked": checked, "duplicates": duplicates})
    return CheckResult("unique_keys", "PASS", f"all {checked} primary and unique keys hold", {"checked": checked})
