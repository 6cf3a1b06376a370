"""What a subset plan says: per table, which rows a refresh copies and why.

The planner (:mod:`datastage.subset.planner`) fills these; the extractor
(:mod:`datastage.subset.extract`) reads them.

Example:
    >>> TablePlan("customer", source_rows=10, mode="all").selected_rows
    10
    >>> SubsetPlan({"customer": TablePlan("customer", 10, "none")}, seed=1, full_copy=False, cycles=[]).selected_rows
    0
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from datastage.source.schema import ForeignKey
from datastage.subset.keyset import KeySet
from datastage.subset.sampling import ROW_DIGEST

Mode = Literal["all", "keys", "none"]


@dataclass
class TablePlan:
    """What the refresh copies of one table, and why.

    ``mode``: ``all`` (every row), ``keys`` (the rows whose key is in ``keys``; for a table
    without a row key the key is the digest column ``_ds_row``) or ``none``.
    ``reasons`` counts the rows by the edge (or root) that first brought them in; ``note`` says
    why a table without any reason stays empty.
    """

    key: str
    source_rows: int
    mode: Mode
    keys: KeySet | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    exclude: str | None = None
    null_foreign_keys: list[ForeignKey] = field(default_factory=list)
    row_count: int | None = None  # rows behind ``keys`` when duplicates share a key (keyless tables)
    note: str | None = None  # why nothing brought rows in, when no reason did (e.g. ``not reached: copied empty``)

    @property
    def selected_rows(self) -> int:
        if self.mode == "all":
            return self.source_rows
        if self.mode == "keys" and self.keys is not None:
            return self.row_count if self.row_count is not None else len(self.keys)
        return 0

    @property
    def keyless(self) -> bool:
        return self.keys is not None and self.keys.columns == (ROW_DIGEST,)


@dataclass
class SubsetPlan:
    """The per-table plan of one refresh."""

    tables: dict[str, TablePlan]
    seed: int
    full_copy: bool
    cycles: list[list[str]]
    queries: int = 0
    seconds: float = 0.0

    @property
    def selected_rows(self) -> int:
        return sum(t.selected_rows for t in self.tables.values())

    @property
    def source_rows(self) -> int:
        return sum(t.source_rows for t in self.tables.values())
