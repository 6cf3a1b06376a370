"""k-anonymity of the loaded rows: the equivalence classes of each quasi-identifier set the rules declare.

For each set, the smallest class (k), the share of rows alone in their class, and how
many rows sit in classes below ``k_min``; a set breaks its limits as ``FAIL`` (or ``WARN``
when the rules set the check's severity to ``warn``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import StepError
from datastage.mask.checkspec import QuasiIdentifierSet
from datastage.results import CheckResult, Status
from datastage.source.db import db_error_message
from datastage.source.identifiers import quote_as_needed
from datastage.source.schema import TableInfo
from datastage.verify.context import CheckContext, NameOf


def check(ctx: CheckContext) -> list[CheckResult]:
    """One ``k_anonymity`` result per quasi-identifier set, in the order the rules list them."""
    loaded = {t.key: t for t in ctx.plan.tables}
    severity = ctx.settings.severity("k_anonymity")
    return [k_anonymity(ctx.conn, loaded, quasi, ctx.name_of, severity) for quasi in ctx.settings.quasi_identifiers]


def k_anonymity(conn: Connection, tables: dict[str, TableInfo], quasi: QuasiIdentifierSet,
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
