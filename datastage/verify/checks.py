"""Checks run on the loaded shadow before the swap; the verdict decides whether it goes live.

Every check states what it measured on the loaded data (``figures``) and a status:
``PASS``, ``WARN`` or ``FAIL``. Any ``FAIL`` makes the verdict ``fail``: the shadow is
discarded and the target stays as it was.

Example:
    >>> result = VerifyResult([CheckResult("row_counts", "PASS", "12 tables match")])
    >>> result.verdict
    'pass'
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import StepError
from datastage.mask.checkspec import CheckSettings, QuasiIdentifierSet
from datastage.results import CheckResult, Status
from datastage.source.db import db_error_message
from datastage.source.identifiers import quote_as_needed
from datastage.source.schema import ForeignKey, SchemaModel, TableInfo

NameOf = Callable[[TableInfo], str]


def _scalar(conn: Connection, sql: str, what: str) -> int:
    try:
        return int(conn.exec_driver_sql(sql).scalar() or 0)
    except SQLAlchemyError as exc:
        raise StepError(f"{what}: {db_error_message(exc)}", step="verify") from None


def check_row_counts(conn: Connection, tables: list[TableInfo], expected: dict[str, int],
                     name_of: NameOf) -> CheckResult:
    """The shadow holds exactly the rows that were written into it, table by table."""
    mismatches = {}
    counts = {}
    for table in tables:
        loaded = _scalar(conn, f"SELECT count(*) FROM {name_of(table)}", f"counting {table.key}")
        counts[table.key] = loaded
        if loaded != expected.get(table.key, 0):
            mismatches[table.key] = {"expected": expected.get(table.key, 0), "loaded": loaded}
    if mismatches:
        return CheckResult("row_counts", "FAIL",
                           f"{len(mismatches)} table(s) hold a different number of rows than were written",
                           {"mismatches": mismatches, "loaded": counts})
    return CheckResult("row_counts", "PASS", f"{len(tables)} tables hold exactly the rows written",
                       {"loaded": counts})


def _fk_sql(fk: ForeignKey, child: TableInfo, parent: TableInfo, name_of: NameOf, quote: Callable[[str], str]) -> str:
    not_null = " AND ".join(f"c.{quote(col)} IS NOT NULL" for col in fk.columns)
    join = " AND ".join(f"p.{quote(rc)} = c.{quote(cc)}" for cc, rc in zip(fk.columns, fk.ref_columns, strict=True))
    return (f"SELECT count(*) FROM {name_of(child)} c WHERE {not_null} AND NOT EXISTS "
            f"(SELECT 1 FROM {name_of(parent)} p WHERE {join})")


def check_foreign_keys(conn: Connection, model: SchemaModel, tables: list[TableInfo],
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
            count = _scalar(conn, _fk_sql(fk, table, parent, name_of, quote), f"checking {fk}")
            checked += 1
            if count:
                orphans[str(fk)] = count
    if orphans:
        total = sum(orphans.values())
        return CheckResult("foreign_keys", "FAIL", f"{total} row(s) reference a missing parent",
                           {"checked": checked, "orphans": orphans})
    return CheckResult("foreign_keys", "PASS", f"all {checked} foreign keys hold", {"checked": checked})


def check_unique_keys(conn: Connection, tables: list[TableInfo], name_of: NameOf) -> CheckResult:
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
            count = _scalar(conn, sql, f"checking unique key of {table.key}")
            checked += 1
            if count:
                duplicates[f"{table.key}({', '.join(key)})"] = count
    if duplicates:
        return CheckResult("unique_keys", "FAIL", f"{sum(duplicates.values())} duplicated key value(s)",
                           {"checked": checked, "duplicates": duplicates})
    return CheckResult("unique_keys", "PASS", f"all {checked} primary and unique keys hold", {"checked": checked})


def check_k_anonymity(conn: Connection, tables: dict[str, TableInfo], quasi: QuasiIdentifierSet,
                      name_of: NameOf, severity: str = "fail") -> CheckResult:
    """Equivalence classes of one quasi-identifier set in the loaded rows: the smallest (k) and the unique rows."""
    quote = partial(quote_as_needed, conn)
    table = tables.get(quasi.table)
    limits = {"k_min": quasi.k_min, "max_unique_share": quasi.max_unique_share}
    if table is None:
        return CheckResult("k_anonymity", "PASS", f"{quasi.label}: table not loaded",
                           {"columns": list(quasi.columns), **limits, "rows": 0}, quasi.table)
    cols = ", ".join(quote(c) for c in quasi.columns)
    k = int(quasi.k_min)
    sql = (f"SELECT min(n), count(*), sum(n), sum(CASE WHEN n = 1 THEN 1 ELSE 0 END), "
           f"sum(CASE WHEN n < {k} THEN 1 ELSE 0 END), sum(CASE WHEN n < {k} THEN n ELSE 0 END) "
           f"FROM (SELECT count(*) AS n FROM {name_of(table)} GROUP BY {cols}) classes")
    try:
        row = conn.exec_driver_sql(sql).one()
    except SQLAlchemyError as exc:
        raise StepError(f"k-anonymity of {quasi.label}: {db_error_message(exc)}", step="verify") from None
    rows = int(row[2] or 0)
    figures: dict[str, Any] = {
        "columns": list(quasi.columns), **limits, "rows": rows, "classes": int(row[1] or 0),
        "k": int(row[0]) if row[0] is not None else None, "unique_rows": int(row[3] or 0),
        "unique_share": round(int(row[3] or 0) / rows, 4) if rows else 0.0,
        "classes_below_k_min": int(row[4] or 0), "rows_below_k_min": int(row[5] or 0),
    }
    problems = []
    if rows and figures["k"] < quasi.k_min:
        problems.append(f"k = {figures['k']} < {quasi.k_min}")
    if rows and quasi.max_unique_share is not None and figures["unique_share"] > quasi.max_unique_share:
        problems.append(f"{figures['unique_share']:.1%} unique rows > {quasi.max_unique_share:.1%}")
    if problems:
        status: Status = "WARN" if severity == "warn" else "FAIL"
        summary = f"{quasi.label}: {'; '.join(problems)} ({figures['rows_below_k_min']} rows in classes below k_min)"
    else:
        status = "PASS"
        summary = (f"{quasi.label}: {rows:,} rows in {figures['classes']:,} classes, k = {figures['k']} "
                   f"(>= {quasi.k_min}), {figures['unique_share']:.1%} unique" if rows else
                   f"{quasi.label}: no rows loaded")
    return CheckResult("k_anonymity", status, summary, figures, quasi.table)


def apply_severity(checks: list[CheckResult], settings: CheckSettings) -> list[CheckResult]:
    """Turn FAIL into WARN for checks whose severity the rules set to ``warn``."""
    for check in checks:
        if check.status == "FAIL" and settings.severity(check.name) == "warn":
            check.status = "WARN"
            check.figures["severity"] = "warn"
    return checks
