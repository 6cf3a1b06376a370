"""Subset planning: roots, seeded sampling, and the row-level closure over the FK graph.

The closure runs until nothing changes, so self-references and cycles need no manual
breaking. Rules, as in the best subsetting tools:

* every selected row brings its parents (the rows its foreign keys point at);
* root rows bring their children, and those children theirs (``children: roots``);
  rows pulled in only as parents do not bring children unless an edge says ``all``;
* ``passthrough`` tables are copied whole, ``exclude`` tables stay empty (nullable
  foreign keys into them are set to NULL), tables without roots are full copies.

Every query is set-based (``key IN (...)`` in batches) and read-only; no temporary tables
are created on the source. Sampling hashes the row key with the seed, so the same seed on
the same data picks the same rows in every database.

Example:
    >>> plan = plan_subset(conn, model, SubsetSpec(roots=(RootSpec("customer", percent=10),)))  # doctest: +SKIP
    >>> plan.tables["orders"].reasons                                          # doctest: +SKIP
    Counter({'child via orders(customer_id) -> customer(customer_id)': 212})
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.util import hash_array
from sqlalchemy.engine import Connection

from datastage.config import EdgeSpec, Origin, RootSpec, SubsetSpec
from datastage.errors import ConfigError, SourceError
from datastage.extract import count_rows, fetch_matching, stream_rows
from datastage.keyset import KeySet
from datastage.schema import ForeignKey, SchemaModel, TableInfo
from datastage.values import canonical_text
from datastage.yamlfile import did_you_mean

Mode = Literal["all", "keys", "filter", "none"]


@dataclass
class RootFilter:
    """A root on a table without a row key: rows matching ``where`` whose sample hash is at most ``threshold``.

    ``sampled`` with ``threshold`` None means the sample is empty.
    """

    where: str | None
    threshold: int | None
    sample_columns: list[str]
    sampled: bool = False


@dataclass
class EdgeFilter:
    """Rows of a keyless table reached as children through ``fk`` of the parent values in ``values``."""

    fk: ForeignKey
    values: KeySet | None  # None: every parent row (parent copied whole)
    limit_per_parent: int | None = None


@dataclass
class TablePlan:
    """What the refresh copies of one table, and why."""

    key: str
    source_rows: int
    mode: Mode
    keys: KeySet | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    exclude: str | None = None
    null_foreign_keys: list[ForeignKey] = field(default_factory=list)
    root_filters: list[RootFilter] = field(default_factory=list)
    edge_filters: list[EdgeFilter] = field(default_factory=list)
    estimated_rows: int = 0

    @property
    def selected_rows(self) -> int:
        if self.mode == "all":
            return self.source_rows
        if self.mode == "keys" and self.keys is not None:
            return len(self.keys)
        if self.mode == "filter":
            return self.estimated_rows
        return 0


@dataclass
class SubsetPlan:
    """The per-table plan of one refresh."""

    tables: dict[str, TablePlan]
    seed: int
    full_copy: bool
    cycles: list[list[str]]

    @property
    def selected_rows(self) -> int:
        return sum(t.selected_rows for t in self.tables.values())

    @property
    def source_rows(self) -> int:
        return sum(t.source_rows for t in self.tables.values())


def edge_label(kind: str, fk: ForeignKey) -> str:
    """Human-readable reason, e.g. ``child via orders(customer_id) -> customer(customer_id)``."""
    return f"{kind} via {fk}"


def seeded_hash(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A uint64 per row from the canonical text of its values and the seed.

    Independent of the database the values came from and of row order.
    """
    key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"[-16:]
    if frame.shape[1] == 1:
        text = canonical_text(frame.iloc[:, 0])
    else:
        parts = [canonical_text(frame[c]) for c in frame.columns]
        text = np.array(["\x1f".join("\x00" if v is None else v for v in row) for row in zip(*parts, strict=True)],
                        dtype=object)
    text = np.where(pd.isna(text), "\x00", text).astype(object)
    return hash_array(text, hash_key=key, categorize=False)


def match_edge(model: SchemaModel, edge: EdgeSpec) -> ForeignKey:
    """The foreign key an ``edges:`` entry names (``t(c1, c2)``, ``t.c`` or a constraint name)."""
    text = edge.fk.strip()
    candidates = list(model.foreign_keys())
    if "(" in text and text.endswith(")"):
        table, cols = text[:-1].split("(", 1)
        columns = tuple(c.strip() for c in cols.split(","))
        key = model.resolve(table.strip())
        found = [fk for fk in candidates if fk.table == key and fk.columns == columns]
    elif "." in text:
        table, column = text.rsplit(".", 1)
        key = model.resolve(table)
        found = [fk for fk in candidates if fk.table == key and fk.columns == (column,)]
    else:
        found = [fk for fk in candidates if fk.name == text]
    if len(found) != 1:
        names = [f"{fk.table}({', '.join(fk.columns)})" for fk in candidates] + [fk.name for fk in candidates]
        message = (f"'{edge.fk}' matches {len(found)} foreign keys{did_you_mean(text, names)}; "
                   "name it as table(column, ...) or by constraint name")
        raise edge.origin.error(message) if edge.origin else ConfigError(message)
    return found[0]


class _TableState:
    def __init__(self, table: TableInfo, source_rows: int) -> None:
        self.table = table
        self.source_rows = source_rows
        self.row_key = table.identity or (table.unique_keys[0] if table.unique_keys else ())
        integer = len(self.row_key) == 1 and table.columns[self.row_key[0]].category == "integer"
        self.keys = KeySet(self.row_key, integer) if self.row_key else None
        self.down = KeySet(self.row_key, integer) if self.row_key else None
        self.whole = False
        self.whole_down = False
        self.reasons: Counter[str] = Counter()
        self.root_filters: list[RootFilter] = []
        self.edge_filters: dict[ForeignKey, EdgeFilter] = {}
        self.estimated = 0


class SubsetPlanner:
    """Computes a :class:`SubsetPlan` on one read-only snapshot connection."""

    def __init__(
        self,
        conn: Connection,
        model: SchemaModel,
        spec: SubsetSpec,
        *,
        empty_tables: dict[str, str] | None = None,
        kept_tables: tuple[str, ...] = (),
        batch_size: int = 10_000,
    ) -> None:
        self.conn = conn
        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self.exclude: dict[str, str] = {}
        for name, how in spec.exclude.items():
            self.exclude[model.table(name, spec.origins.get(f"exclude:{name}")).key] = how
        self.truncated = set()
        for name, mode in (empty_tables or {}).items():
            key = model.table(name).key
            if key not in self.exclude:
                self.exclude[key] = mode
                self.truncated.add(key)
        self.kept = {model.table(name).key for name in kept_tables}
        self.passthrough = {model.table(n, spec.origins.get("passthrough")).key for n in spec.passthrough}
        self.edge_overrides: dict[ForeignKey, EdgeSpec] = {}
        for edge in spec.edges:
            self.edge_overrides[match_edge(model, edge)] = edge
        self.order = {key: i for i, key in enumerate(model.load_order())}
        self.states: dict[str, _TableState] = {}
        self.pending: dict[tuple[str, bool], list[pd.DataFrame]] = {}
        self.projections = {key: self._projection(t) for key, t in model.tables.items()}
        self._check_excluded_references()

    # -- configuration checks -----------------------------------------------------------
    def _check_excluded_references(self) -> None:
        for fk in self.model.foreign_keys():
            if fk.ref_table in self.exclude and fk.table not in self.exclude and fk.table not in self.kept:
                child = self.model.tables[fk.table]
                if all(not child.columns[c].nullable for c in fk.columns):
                    origin = self.spec.origins.get(f"exclude:{fk.ref_table}") or self.spec.origins.get("exclude")
                    message = (f"cannot leave {fk.ref_table} empty: {fk} is NOT NULL; "
                               f"exclude {fk.table} too, or copy {fk.ref_table}")
                    if origin is None:
                        raise ConfigError(message, table=fk.ref_table)
                    raise origin.error(message)

    def children_policy(self, fk: ForeignKey) -> tuple[str, int | None]:
        """(children policy, limit per parent) for one foreign key."""
        override = self.edge_overrides.get(fk)
        policy = override.children if override and override.children else self.spec.children
        limit = override.limit_per_parent if override and override.limit_per_parent else self.spec.limit_per_parent
        return policy, limit

    def _projection(self, table: TableInfo) -> list[str]:
        cols: list[str] = []
        row_key = table.identity or (table.unique_keys[0] if table.unique_keys else ())
        for col in row_key:
            cols.append(col)
        for fk in table.foreign_keys:
            cols.extend(fk.columns)
        for fk in self.model.children(table.key):
            cols.extend(fk.ref_columns)
        return list(dict.fromkeys(cols)) or [next(iter(table.columns))]

    # -- planning -----------------------------------------------------------------------
    def run(self) -> SubsetPlan:
        for key, table in self.model.tables.items():
            self.states[key] = _TableState(table, count_rows(self.conn, table))
        full_copy = self.spec.is_full_copy
        if full_copy:
            for key, state in self.states.items():
                if key not in self.exclude and key not in self.kept:
                    state.whole = True
                    state.reasons["full copy"] = state.source_rows
        else:
            for key in self.passthrough:
                self._select_whole(key, down=False, reason="passthrough")
            for root in self.spec.roots:
                self._select_root(root)
            self._close()
        return self._result(full_copy)

    def _select_whole(self, key: str, down: bool, reason: str) -> None:
        state = self.states[key]
        if key in self.exclude or key in self.kept:
            return
        if not state.whole:
            state.whole = True
            state.reasons[reason] += state.source_rows
            for batch in stream_rows(self.conn, state.table, self.projections[key], batch_size=self.batch_size):
                self._follow_parents(key, batch)
        if down and not state.whole_down:
            state.whole_down = True
            self._follow_children_of_whole(key)

    def _select_root(self, root: RootSpec) -> None:
        table = self.model.table(root.table, root.origin)
        key = table.key
        state = self.states[key]
        if key in self.exclude:
            raise _origin_error(root.origin, f"table {key} is both a root and excluded")
        if root.where is None and root.percent is None and root.limit is None:
            self._select_whole(key, down=True, reason="root")
            return
        sampled = root.percent is not None or root.limit is not None
        threshold = self._sample_threshold(table, root) if sampled else None
        if state.keys is None:
            state.root_filters.append(RootFilter(root.where, threshold, self._sample_columns(table), sampled))
        if sampled and threshold is None:
            return  # the sample is empty
        for batch in self._stream_where(table, self.projections[key], root.where, root):
            if threshold is not None:
                hashes = seeded_hash(batch[self._sample_columns(table)], self.spec.seed)
                batch = batch[hashes <= np.uint64(threshold)]
            self._add_rows(key, batch, down=True, reason="root")

    def _sample_columns(self, table: TableInfo) -> list[str]:
        state = self.states[table.key]
        return list(state.row_key) if state.row_key else self.projections[table.key]

    def _stream_where(self, table: TableInfo, columns: list[str], where: str | None,
                      root: RootSpec) -> Iterator[pd.DataFrame]:
        try:
            yield from stream_rows(self.conn, table, columns, where, batch_size=self.batch_size)
        except SourceError as exc:
            if where:
                raise _origin_error(root.origin, f"where clause failed on {table.key}: {exc.message}") from None
            raise

    def _sample_threshold(self, table: TableInfo, root: RootSpec) -> int | None:
        """The largest selected sample hash (exactly ``percent`` or ``limit`` of the matching rows); None if none."""
        hashes = [seeded_hash(b, self.spec.seed)
                  for b in self._stream_where(table, self._sample_columns(table), root.where, root)]
        values = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
        count = len(values)
        wanted = count
        if root.percent is not None:
            wanted = min(wanted, math.ceil(count * root.percent / 100 - 1e-9))
        if root.limit is not None:
            wanted = min(wanted, root.limit)
        if wanted <= 0:
            return None
        return int(values[wanted - 1])

    def _add_rows(self, key: str, rows: pd.DataFrame, down: bool, reason: str) -> None:
        """Record newly reached rows of ``key`` and queue them for the closure."""
        state = self.states[key]
        if rows.empty or state.whole or key in self.exclude or key in self.kept:
            return
        if state.keys is None or state.down is None:
            state.estimated += len(rows)
            state.reasons[reason] += len(rows)
            self._queue(key, rows, down)
            return
        if down:
            rows = state.down.add(rows)
            if rows.empty:
                return
            new = state.keys.add(rows)
        else:
            new = state.keys.add(rows)
            rows = new
        if len(new):
            state.reasons[reason] += len(new)
            self._check_budget(key, reason)
        self._queue(key, rows, down)

    def _queue(self, key: str, rows: pd.DataFrame, down: bool) -> None:
        if not rows.empty:
            self.pending.setdefault((key, down), []).append(rows)

    def _close(self) -> None:
        """Run the closure until no table gains rows."""
        while self.pending:
            # Children first: their parent requests for one table are merged into one query.
            key, down = max(self.pending, key=lambda item: (self.order[item[0]], item[1]))
            frames = self.pending.pop((key, down))
            rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            self._follow_parents(key, rows)
            self._follow_children(key, rows, down)

    def _follow_parents(self, key: str, rows: pd.DataFrame) -> None:
        for fk in self.model.tables[key].foreign_keys:
            parent = self.states[fk.ref_table]
            if parent.whole or fk.ref_table in self.exclude or fk.ref_table in self.kept:
                continue
            refs = rows[list(fk.columns)].dropna().drop_duplicates()
            if refs.empty:
                continue
            refs.columns = list(fk.ref_columns)
            match = list(fk.ref_columns)
            if parent.keys is not None and set(fk.ref_columns) == set(parent.row_key):
                refs = refs[list(parent.row_key)]
                refs = refs[~parent.keys.contains(refs)]
                match = list(parent.row_key)
            for batch in fetch_matching(self.conn, parent.table, self.projections[fk.ref_table], match, refs,
                                        self.batch_size):
                self._add_rows(fk.ref_table, batch, down=False, reason=edge_label("parent", fk))

    def _follow_children(self, key: str, rows: pd.DataFrame, down: bool) -> None:
        for fk in self.model.children(key):
            policy, limit = self.children_policy(fk)
            if policy == "none" or (policy == "roots" and not down):
                continue
            child = self.states[fk.table]
            if child.whole or fk.table in self.exclude or fk.table in self.kept:
                continue
            values = rows[list(fk.ref_columns)].dropna().drop_duplicates()
            if values.empty:
                continue
            values.columns = list(fk.columns)
            if child.keys is None:
                edge = child.edge_filters.setdefault(fk, EdgeFilter(fk, KeySet(fk.columns), limit))
                if edge.values is not None:
                    values = edge.values.add(values)
            for batch in self._fetch_children(fk, values, limit):
                self._add_rows(fk.table, batch, down=True, reason=edge_label("child", fk))

    def _follow_children_of_whole(self, key: str) -> None:
        for fk in self.model.children(key):
            policy, limit = self.children_policy(fk)
            child = self.states[fk.table]
            if policy == "none" or child.whole or fk.table in self.exclude or fk.table in self.kept:
                continue
            if child.keys is None:
                child.edge_filters[fk] = EdgeFilter(fk, None, limit)
            not_null = sa.and_(*(child.table.sa_table.c[c].isnot(None) for c in fk.columns))
            for batch in stream_rows(self.conn, child.table, self.projections[fk.table], not_null,
                                     batch_size=self.batch_size):
                if limit:
                    batch = limit_per_parent(batch, fk.columns, limit, self._sample_columns(child.table),
                                             self.spec.seed)
                self._add_rows(fk.table, batch, down=True, reason=edge_label("child", fk))

    def _fetch_children(self, fk: ForeignKey, values: pd.DataFrame, limit: int | None) -> Iterator[pd.DataFrame]:
        child = self.states[fk.table]
        frames = fetch_matching(self.conn, child.table, self.projections[fk.table], list(fk.columns), values,
                                self.batch_size)
        if not limit:
            yield from frames
            return
        # Every child of one parent arrives within one parent chunk; limit over the whole chunk.
        collected = list(frames)
        if collected:
            batch = pd.concat(collected, ignore_index=True)
            yield limit_per_parent(batch, fk.columns, limit, self._sample_columns(child.table), self.spec.seed)

    def _check_budget(self, key: str, reason: str) -> None:
        state = self.states[key]
        budget = self.spec.budgets.get(key) if key in self.spec.budgets else self.spec.budgets.get(state.table.name)
        if budget is not None and state.keys is not None and len(state.keys) > budget:
            raise _origin_error(
                self.spec.origins.get("budgets"),
                f"{key} grew to {len(state.keys):,} rows, over its budget of {budget:,}, through {reason}; "
                "raise the budget, narrow the roots or set children: none on that edge",
            )
        if self.spec.max_rows is not None:
            total = sum(len(s.keys) if s.keys is not None else s.estimated
                        for s in self.states.values() if not s.whole)
            total += sum(s.source_rows for s in self.states.values() if s.whole)
            if total > self.spec.max_rows:
                raise _origin_error(
                    self.spec.origins.get("max_rows"),
                    f"the subset grew to {total:,} rows, over max_rows {self.spec.max_rows:,}, "
                    f"when {key} grew through {reason}",
                )

    def _result(self, full_copy: bool) -> SubsetPlan:
        tables: dict[str, TablePlan] = {}
        for key, state in self.states.items():
            table = state.table
            null_fks = [fk for fk in table.foreign_keys if fk.ref_table in self.exclude]
            if key in self.exclude or key in self.kept:
                mode: Mode = "none"
            elif state.whole:
                mode = "all"
            elif state.keys is not None:
                mode = "keys"
            else:
                mode = "filter"
            plan = TablePlan(
                key=key,
                source_rows=state.source_rows,
                mode=mode,
                keys=state.keys if mode == "keys" else None,
                reasons=state.reasons,
                exclude=self.exclude.get(key),
                null_foreign_keys=null_fks,
                root_filters=state.root_filters,
                edge_filters=list(state.edge_filters.values()),
                estimated_rows=state.estimated,
            )
            if key in self.kept:
                plan.reasons["kept from target"] = 0
            elif key in self.truncated:
                plan.reasons["truncated by the rules"] = 0
            elif key in self.exclude:
                plan.reasons[f"excluded ({self.exclude[key]})"] = 0
            tables[key] = plan
        return SubsetPlan(tables, self.spec.seed, full_copy, self.model.cycles())


def limit_per_parent(frame: pd.DataFrame, fk_columns: tuple[str, ...], limit: int, order_columns: list[str],
                     seed: int) -> pd.DataFrame:
    """At most ``limit`` rows per parent, chosen by seeded hash so the choice is reproducible."""
    if frame.empty:
        return frame
    ranked = frame.assign(_ds_rank=seeded_hash(frame[order_columns], seed))
    ranked = ranked.sort_values("_ds_rank", kind="stable")
    keep = ranked.groupby(list(fk_columns), sort=False, dropna=False).cumcount() < limit
    return ranked[keep].drop(columns="_ds_rank")


def _origin_error(origin: Origin | None, message: str) -> ConfigError:
    return origin.error(message) if origin else ConfigError(message)


def plan_subset(
    conn: Connection,
    model: SchemaModel,
    spec: SubsetSpec,
    *,
    empty_tables: dict[str, str] | None = None,
    kept_tables: tuple[str, ...] = (),
    batch_size: int = 10_000,
) -> SubsetPlan:
    """Plan which rows of every table a refresh copies (see the module docstring)."""
    return SubsetPlanner(conn, model, spec, empty_tables=empty_tables, kept_tables=kept_tables,
                         batch_size=batch_size).run()
