"""Row counts: the source gave exactly the planned rows, and the shadow holds exactly the rows written.

``subset_counts`` needs no database: it compares the rows each table gave with the rows
the subset plan selected for it (tables copied whole or by key). ``row_counts`` counts the
shadow's rows before the ``post_load`` hooks run, so it sees the copy exactly as written.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from datastage.plan import PlanResult
from datastage.results import CheckResult
from datastage.source.schema import TableInfo
from datastage.verify.context import CheckContext, NameOf, query_count


def check(ctx: CheckContext) -> list[CheckResult]:
    """``subset_counts`` and ``row_counts``."""
    return [subset_counts(ctx.plan, ctx.extracted), row_counts(ctx.conn, ctx.plan.tables, ctx.written, ctx.name_of)]


def subset_counts(plan: PlanResult, extracted: dict[str, int]) -> CheckResult:
    """Tables copied whole or by key extracted exactly the rows the subset plan selected."""
    mismatched = {}
    for table in plan.tables:
        planned = plan.subset.tables[table.key]
        if planned.mode in ("all", "keys") and extracted.get(table.key, 0) != planned.selected_rows:
            mismatched[table.key] = {"planned": planned.selected_rows, "extracted": extracted.get(table.key, 0)}
    if mismatched:
        return CheckResult("subset_counts", "FAIL", f"{len(mismatched)} table(s) extracted a different "
                           "number of rows than planned", {"mismatches": mismatched})
    return CheckResult("subset_counts", "PASS", "every table extracted exactly the planned rows",
                       {"extracted": dict(extracted)})


def row_counts(conn: Connection, tables: list[TableInfo], expected: dict[str, int], name_of: NameOf) -> CheckResult:
    """The shadow holds exactly the rows that were written into it, table by table."""
    mismatches = {}
    counts = {}
    for table in tables:
        loaded = query_count(conn, f"SELECT count(*) FROM {name_of(table)}", f"counting {table.key}")
        counts[table.key] = loaded
        if loaded != expected.get(table.key, 0):
            mismatches[table.key] = {"expected": expected.get(table.key, 0), "loaded": loaded}
    if mismatches:
        return CheckResult("row_counts", "FAIL",
                           f"{len(mismatches)} table(s) hold a different number of rows than were written",
                           {"mismatches": mismatches, "loaded": counts})
    return CheckResult("row_counts", "PASS", f"{len(tables)} tables hold exactly the rows written",
                       {"loaded": counts})
