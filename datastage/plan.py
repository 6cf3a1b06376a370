"""The plan of a refresh: what it would copy and how each column would be treated.

The pipeline's prepare step builds it (:func:`datastage.pipeline.build_plan`); the load,
the checks and the report read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datastage.discover.scan import ScanResult
from datastage.mask.checkspec import CheckSettings
from datastage.mask.policy import ResolvedPolicy
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
                         "mode": plan.mode, "reasons": dict(plan.reasons),
                         "nulled_foreign_keys": [str(fk) for fk in plan.null_foreign_keys]})
        return rows
