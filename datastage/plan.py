"""The plan of a refresh: what it would copy and how each column would be treated.

The pipeline's prepare step builds it (:func:`datastage.pipeline.build_plan`); the load,
the checks and the report read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datastage.discover.scan import ScanResult
from datastage.mask.checkspec import CheckSettings
from datastage.mask.resolve import ResolvedPolicy
from datastage.results import ReportPaths
from datastage.source.schema import SchemaModel, TableInfo
from datastage.subset.model import SubsetPlan


@dataclass
class PlanResult:
    """What a refresh would copy and how each column would be treated."""

    environment: str
    model: SchemaModel
    subset: SubsetPlan
    policy: ResolvedPolicy
    drift: dict[str, list[str]]
    tables: list[TableInfo]
    columns: dict[str, list[str]]
    scan: ScanResult | None = None
    checks: CheckSettings = field(default_factory=CheckSettings)
    run_id: str | None = None
    report: ReportPaths | None = None

    def table_rows(self) -> list[dict[str, Any]]:
        rows = []
        for table in self.tables:
            plan = self.subset.tables[table.key]
            rows.append({"table": table.key, "source_rows": plan.source_rows, "selected_rows": plan.selected_rows,
                         "mode": plan.mode, "reasons": dict(plan.reasons), "note": plan.note,
                         "nulled_foreign_keys": [str(fk) for fk in plan.null_foreign_keys]})
        return rows

    def classification(self, table: str, column: str) -> str | None:
        """What the scan found the column to be (None: not scanned or nothing found)."""
        finding = self.scan.get(table, column) if self.scan else None
        return finding.classification if finding else None

    def subset_summary(self) -> dict[str, Any]:
        """Seed, totals and the cost of planning."""
        subset = self.subset
        return {"seed": subset.seed, "full_copy": subset.full_copy, "source_rows": subset.source_rows,
                "selected_rows": subset.selected_rows, "queries": subset.queries, "seconds": round(subset.seconds, 3),
                "omitted_tables": sorted(k for k, t in subset.tables.items() if t.exclude == "omit")}

    def to_dict(self) -> dict[str, Any]:
        """The plan as ``datastage plan --json`` prints it."""
        return {
            "environment": self.environment,
            "tables": self.table_rows(),
            "columns": [{"table": d.table, "column": d.column, "status": d.status, "treatment": d.treatment,
                         "reason": d.reason, "inherited_from": d.rule.inherited_from if d.rule else None,
                         "classification": self.classification(d.table, d.column)}
                        for d in self.policy.decisions.values()],
            "cycles": self.subset.cycles,
            "schema_drift": self.drift,
            "run_id": self.run_id,
            "report_json": str(self.report.json) if self.report else None,
            "report_html": str(self.report.html) if self.report else None,
            "subset": self.subset_summary(),
        }
