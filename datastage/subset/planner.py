"""Subset planning: roots, seeded sampling, and the row-level closure over the FK graph.

The closure runs until nothing changes, so self-references and cycles need no manual
breaking. Rules, as in the best subsetting tools:

* every selected row brings its parents (the rows its foreign keys point at);
* root rows bring their children, and those children theirs (``children: roots``);
  rows pulled in only as parents do not bring children unless an edge says ``all``;
* ``passthrough`` tables are copied whole, ``exclude`` tables stay empty (nullable
  foreign keys into them are set to NULL), tables no edge reaches stay empty; a subset
  without roots is a full copy.

Every query is set-based (``key = ANY(array)`` / ``key IN (...)`` in batches, or one
semi-join for a table copied whole), read-only, and never runs while another result is
still streaming; no temporary tables are created on the source. Each table's selected row
keys live in a compact :class:`~datastage.subset.keyset.KeySet`; the closure works on deltas
(only rows new to a table are followed), merged per table before each round of queries.
A table without a primary or unique key is keyed by a digest of all its values.
Sampling hashes the row key with the seed, so the same seed on the same data picks the
same rows in every database.

Example (10% of 100 customers, and their orders as children of the roots):
    >>> from datastage.settings import RootSpec, SubsetSpec
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.connection.executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY);"
    ...         "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id));"
    ...         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
    ...         "INSERT INTO customer SELECT i FROM n; INSERT INTO orders SELECT id, 1 + id % 100 FROM customer;")
    ...     plan = plan_subset(conn, reflect(conn), SubsetSpec(roots=(RootSpec("customer", percent=10),)))
    >>> plan.tables["customer"].reasons, plan.tables["orders"].reasons
    (Counter({'root': 10}), Counter({'child via orders(customer_id) -> customer(id)': 10}))
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastage.errors import ConfigError, SourceError
from datastage.settings import DEFAULT_BATCH_SIZE, EdgeSpec, Origin, RootSpec, SubsetSpec
from datastage.source.schema import ForeignKey, SchemaModel, TableInfo
from datastage.subset.extract import chunk_size, count_rows, fetch_matching, stream_rows, typed_column
from datastage.subset.keyset import KeySet
from datastage.subset.model import Mode, SubsetPlan, TablePlan
from datastage.subset.pending import queue_rows, take
from datastage.subset.sampling import ROW_DIGEST, limit_per_parent, lowest_hashes, row_digest, seeded_hash
from datastage.yamlfile import did_you_mean

__all__ = ["SubsetPlanner", "plan_subset"]


def edge_label(kind: str, fk: ForeignKey) -> str:
    """Human-readable reason, e.g. ``child via orders(customer_id) -> customer(customer_id)``."""
    return f"{kind} via {fk}"


def match_edge(model: SchemaModel, edge: EdgeSpec) -> ForeignKey:
    """The foreign key an ``edges:`` entry names (``t(c1, c2)``, ``t.c`` or a constraint name)."""
    text = edge.fk.strip()
    candidates = list(model.foreign_keys())
    if "(" in text and text.endswith(")"):
        table, cols = text[:-1].split("(", 1)
        columns = tuple(c.strip() for c in cols.split(","))
        key = model.resolve(table.strip())
        found = [fk for fk in candidates if fk.table == key and fk.columns == columns]
    elif "." in text and not any(fk.name == text for fk in candidates):
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
    """What the closure knows about one table: selected keys, rows reached downwards, reasons."""

    def __init__(self, table: TableInfo, source_rows: int) -> None:
        self.table = table
        self.source_rows = source_rows
        self.keyless = not table.identity
        self.row_key: tuple[str, ...] = (ROW_DIGEST,) if self.keyless else table.identity
        integer = not self.keyless and len(self.row_key) == 1 and table.columns[self.row_key[0]].category == "integer"
        self.keys = KeySet(self.row_key, integer)
        self.down = KeySet(self.row_key, integer)
        # Values of referenced non-row-key columns (unique keys) of the selected rows.
        self.ref_sets: dict[tuple[str, ...], KeySet] = {}
        self.whole = False
        self.whole_down = False
        self.reasons: Counter[str] = Counter()
        self.row_count: int | None = None


class SubsetPlanner:
    """Computes a :class:`SubsetPlan` on one read-only snapshot connection.

    Invariant kept for MariaDB's unbuffered cursors: no statement is issued while the rows
    of another are still being read (loops over a stream only record rows in memory).
    """

    def __init__(
        self,
        conn: Connection,
        model: SchemaModel,
        spec: SubsetSpec,
        *,
        empty_tables: dict[str, str] | None = None,
        kept_tables: tuple[str, ...] = (),
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.conn = conn
        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self.exclude: dict[str, str] = {}
        for name, how in spec.exclude.items():
            self.exclude[model.table(name, spec.origins.get(f"exclude:{name}")).key] = how
        configured_exclude = set(self.exclude)
        self.truncated = set()
        for name, mode in (empty_tables or {}).items():
            key = model.table(name).key
            if key not in self.exclude:
                self.exclude[key] = mode
                self.truncated.add(key)
        self.kept = {model.table(name).key for name in kept_tables}
        self.passthrough = {model.table(n, spec.origins.get("passthrough")).key for n in spec.passthrough}
        both = sorted(self.passthrough & configured_exclude)
        if both:
            raise _origin_error(spec.origins.get("passthrough"), f"table {both[0]} is both passthrough and excluded")
        for name in spec.budgets:
            model.table(name, spec.origins.get("budgets"))  # an unknown table is a config error
        self.edge_overrides: dict[ForeignKey, EdgeSpec] = {}
        for edge in spec.edges:
            self.edge_overrides[match_edge(model, edge)] = edge
        self.order = {key: i for i, key in enumerate(model.load_order())}
        self.children_of: dict[str, list[ForeignKey]] = {key: [] for key in model.tables}
        for fk in model.foreign_keys():
            self.children_of[fk.ref_table].append(fk)
        self.states: dict[str, _TableState] = {}
        # Rows new to their table (follow parents and ``all`` edges) / newly reached downwards
        # (follow ``roots`` edges), merged per table before each round of queries.
        self.pending_new: dict[str, list[pd.DataFrame]] = {}
        self.pending_down: dict[str, list[pd.DataFrame]] = {}
        self.pending_rows = 5 * batch_size  # rows of one table expanded per round
        self.total = 0
        self.queries = 0
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

    def _projection(self, state: _TableState) -> list[str]:
        """Columns the closure reads: the row key and every column an edge uses (all for keyless tables)."""
        table = state.table
        if state.keyless:
            return list(table.columns)
        cols: list[str] = list(state.row_key)
        for fk in table.foreign_keys:
            cols.extend(fk.columns)
        for fk in self.children_of[table.key]:
            cols.extend(fk.ref_columns)
        return list(dict.fromkeys(cols))

    def _skipped(self, key: str) -> bool:
        return key in self.exclude or key in self.kept

    # -- reading ------------------------------------------------------------------------
    def _prepared(self, state: _TableState, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if state.keyless and not frame.empty:
                frame = frame.assign(**{ROW_DIGEST: row_digest(frame, list(state.table.columns))})
            yield frame

    def _stream(self, state: _TableState, where: str | sa.ColumnElement[bool] | None = None,
                columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """Rows of the table (matching ``where``): the closure's projection, or exactly ``columns``."""
        self.queries += 1
        if columns is not None:
            yield from stream_rows(self.conn, state.table, columns, where, self.batch_size)
            return
        yield from self._prepared(state, stream_rows(self.conn, state.table, self._projection(state), where,
                                                     self.batch_size))

    def _fetch(self, state: _TableState, match: list[str], values: pd.DataFrame) -> Iterator[list[pd.DataFrame]]:
        """Rows of ``state``'s table matching ``values`` on ``match``: one list of frames per query."""
        step = chunk_size(self.conn, len(match), self.batch_size)
        for start in range(0, len(values), step):
            self.queries += 1
            chunk = values.iloc[start:start + step]
            yield list(self._prepared(state, fetch_matching(self.conn, state.table, self._projection(state), match,
                                                            chunk, self.batch_size)))

    # -- planning -----------------------------------------------------------------------
    def run(self) -> SubsetPlan:
        started = time.monotonic()
        for key, table in self.model.tables.items():
            self.states[key] = _TableState(table, count_rows(self.conn, table))
            self.queries += 1
        for state in self.states.values():
            for fk in self.children_of[state.table.key]:
                if set(fk.ref_columns) != set(state.row_key) and fk.ref_columns not in state.ref_sets:
                    state.ref_sets[fk.ref_columns] = KeySet(fk.ref_columns)
        full_copy = self.spec.is_full_copy
        if full_copy:
            for key, state in self.states.items():
                if not self._skipped(key):
                    state.whole = True
                    state.reasons["full copy"] = state.source_rows
        else:
            for key in self.passthrough:
                self._select_whole(key, down=False, reason="passthrough")
            for root in self.spec.roots:
                self._select_root(root)
            self._close()
            self._count_keyless()
        result = self._result(full_copy)
        result.queries = self.queries
        result.seconds = time.monotonic() - started
        return result

    def _select_root(self, root: RootSpec) -> None:
        table = self.model.table(root.table, root.origin)
        key = table.key
        state = self.states[key]
        if key in self.exclude:
            raise _origin_error(root.origin, f"table {key} is both a root and excluded")
        if key in self.kept:
            raise _origin_error(root.origin, f"table {key} is both a root and kept from the target")
        if root.where is None and root.percent is None and root.limit is None:
            self._select_whole(key, down=True, reason="root")
            return
        sampled = root.percent is not None or root.limit is not None
        if sampled and not state.keyless:
            # One pass over the matching keys keeps the lowest hashes; the rows come by key.
            chosen = self._sample_keys(state, root)
            for frames in self._fetch(state, list(state.row_key), chosen):
                for batch in frames:
                    self._add_rows(key, batch, down=True, reason="root")
            return
        threshold = self._sample_threshold(state, root) if sampled else None
        if sampled and threshold is None:
            return  # the sample is empty
        sample_columns = self._sample_columns(state)
        for batch in self._stream_where(state, root.where, root):
            if threshold is not None:
                batch = batch[seeded_hash(batch[sample_columns], self.spec.seed) <= np.uint64(threshold)]
            self._add_rows(key, batch, down=True, reason="root")

    def _sample_columns(self, state: _TableState) -> list[str]:
        return list(state.table.columns) if state.keyless else list(state.row_key)

    def _stream_where(self, state: _TableState, where: str | None, root: RootSpec,
                      columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        try:
            yield from self._stream(state, where, columns)
        except SourceError as exc:
            if where:
                raise _origin_error(root.origin,
                                    f"where clause failed on {state.table.key}: {exc.message}") from None
            raise

    def _wanted(self, count: int, root: RootSpec) -> int:
        """How many of ``count`` matching rows the root's ``percent`` / ``limit`` asks for."""
        wanted = count
        if root.percent is not None:
            wanted = min(wanted, math.ceil(count * root.percent / 100 - 1e-9))
        if root.limit is not None:
            wanted = min(wanted, root.limit)
        return max(wanted, 0)

    def _sample_keys(self, state: _TableState, root: RootSpec) -> pd.DataFrame:
        """Row keys of the sample: the ``wanted`` matching rows with the lowest seeded hash.

        Memory stays in proportion to the sample: candidates are cut back to the best
        ``wanted`` whenever twice as many have piled up.
        """
        columns = list(state.row_key)
        self.queries += 1
        try:
            count = count_rows(self.conn, state.table, root.where)
        except SourceError as exc:
            if root.where:
                raise _origin_error(root.origin,
                                    f"where clause failed on {state.table.key}: {exc.message}") from None
            raise
        wanted = self._wanted(count, root)
        best_keys: list[pd.DataFrame] = []
        best_hashes: list[np.ndarray] = []
        held = 0
        if wanted:
            for batch in self._stream_where(state, root.where, root, columns):
                if batch.empty:
                    continue
                best_keys.append(batch)
                best_hashes.append(seeded_hash(batch[columns], self.spec.seed))
                held += len(batch)
                if held > 2 * wanted:
                    keys, hashes = lowest_hashes(best_keys, best_hashes, wanted)
                    best_keys, best_hashes, held = [keys], [hashes], len(keys)
        if not best_keys:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
        return lowest_hashes(best_keys, best_hashes, wanted)[0]

    def _sample_threshold(self, state: _TableState, root: RootSpec) -> int | None:
        """The largest selected sample hash (exactly ``percent`` or ``limit`` of the matching rows); None if none."""
        columns = self._sample_columns(state)
        hashes = [seeded_hash(b[columns], self.spec.seed)
                  for b in self._stream_where(state, root.where, root, columns) if not b.empty]
        values = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
        wanted = self._wanted(len(values), root)
        if wanted <= 0:
            return None
        return int(values[wanted - 1])

    def _select_whole(self, key: str, down: bool, reason: str) -> None:
        """Copy every row of ``key``: its parents by one semi-join per foreign key, children per policy."""
        state = self.states[key]
        if self._skipped(key):
            return
        if not state.whole:
            state.whole = True
            state.reasons[reason] += state.source_rows
            self.total += state.source_rows - len(state.keys)
            self._check_budget(key, reason)
            for fk in state.table.foreign_keys:
                self._parents_of_whole(fk)
            self._children_of_whole(key, "all")
        if down and not state.whole_down:
            state.whole_down = True
            self._children_of_whole(key, "roots")

    def _not_null(self, table: TableInfo, columns: Iterable[str]) -> sa.ColumnElement[bool]:
        return sa.and_(*(typed_column(table, c).isnot(None) for c in columns))

    def _parents_of_whole(self, fk: ForeignKey) -> None:
        parent = self.states[fk.ref_table]
        if parent.whole or self._skipped(fk.ref_table):
            return
        child = self.model.tables[fk.table]
        referenced = sa.select(*(typed_column(child, c) for c in fk.columns)).where(self._not_null(child, fk.columns))
        where = _in_subquery(parent.table, fk.ref_columns, referenced)
        for batch in self._stream(parent, where):
            self._add_rows(fk.ref_table, batch, down=False, reason=edge_label("parent", fk))

    def _children_of_whole(self, key: str, policy: str) -> None:
        parent = self.states[key]
        for fk in self.children_of[key]:
            wanted, limit = self.children_policy(fk)
            child = self.states[fk.table]
            if wanted != policy or child.whole_down or self._skipped(fk.table):
                continue
            label = edge_label("child", fk)
            if limit:
                # Every parent's children in one query, so the limit sees all of them.
                values = [b for b in self._stream(parent, self._not_null(parent.table, fk.ref_columns),
                                                  list(fk.ref_columns)) if not b.empty]
                if values:
                    refs = pd.concat(values, ignore_index=True).drop_duplicates()
                    refs.columns = list(fk.columns)
                    for frames in self._children(fk, refs, limit):
                        self._add_rows(fk.table, frames, down=True, reason=label)
                continue
            where = self._not_null(child.table, fk.columns)
            if fk.virtual:  # undeclared: the database does not guarantee the parent exists
                referenced = sa.select(*(typed_column(parent.table, c) for c in fk.ref_columns))
                where = sa.and_(where, _in_subquery(child.table, fk.columns, referenced))
            for batch in self._stream(child, where):
                self._add_rows(fk.table, batch, down=True, reason=label)

    def _add_rows(self, key: str, rows: pd.DataFrame, down: bool, reason: str) -> None:
        """Record newly reached rows of ``key`` and queue them for the closure."""
        state = self.states[key]
        if rows.empty or self._skipped(key):
            return
        if state.whole:
            if down and not state.whole_down:
                queue_rows(self.pending_down, key, state.down.add(rows))
            return
        new = state.keys.add(rows)
        if len(new):
            for columns, values in state.ref_sets.items():
                values.add(new[list(columns)].dropna())
            state.reasons[reason] += len(new)
            self.total += len(new)
            self._check_budget(key, reason)
            queue_rows(self.pending_new, key, new)
        if down:
            queue_rows(self.pending_down, key, state.down.add(rows))

    def _close(self) -> None:
        """Run the closure until no table gains rows."""
        while self.pending_new or self.pending_down:
            # Children first: their parent requests for one table are merged into one round,
            # and descendants drain before more parents are expanded, which keeps the queues short.
            key = max({*self.pending_new, *self.pending_down}, key=lambda k: self.order[k])
            new = take(self.pending_new, key, self.pending_rows)
            down = take(self.pending_down, key, self.pending_rows)
            if new is not None:
                self._follow_parents(key, new)
                self._follow_children(key, new, "all")
            if down is not None:
                self._follow_children(key, down, "roots")

    def _follow_parents(self, key: str, rows: pd.DataFrame) -> None:
        for fk in self.model.tables[key].foreign_keys:
            parent = self.states[fk.ref_table]
            if parent.whole or self._skipped(fk.ref_table):
                continue
            refs = rows[list(fk.columns)].dropna().drop_duplicates()
            if refs.empty:
                continue
            refs.columns = list(fk.ref_columns)
            if set(fk.ref_columns) == set(parent.row_key):
                match = list(parent.row_key)
                refs = refs[match]
                refs = refs[~parent.keys.contains(refs)]
            else:
                match = list(fk.ref_columns)
                refs = refs[~parent.ref_sets[fk.ref_columns].contains(refs)]
            label = edge_label("parent", fk)
            for frames in self._fetch(parent, match, refs):
                for batch in frames:
                    self._add_rows(fk.ref_table, batch, down=False, reason=label)

    def _follow_children(self, key: str, rows: pd.DataFrame, policy: str) -> None:
        for fk in self.children_of[key]:
            wanted, limit = self.children_policy(fk)
            if wanted != policy or self.states[fk.table].whole_down or self._skipped(fk.table):
                continue
            values = rows[list(fk.ref_columns)].dropna().drop_duplicates()
            if values.empty:
                continue
            values.columns = list(fk.columns)
            for batch in self._children(fk, values, limit):
                self._add_rows(fk.table, batch, down=True, reason=edge_label("child", fk))

    def _children(self, fk: ForeignKey, values: pd.DataFrame, limit: int | None) -> Iterator[pd.DataFrame]:
        """Child rows of the parent key ``values`` through ``fk`` (at most ``limit`` per parent)."""
        child = self.states[fk.table]
        for frames in self._fetch(child, list(fk.columns), values):
            if not frames:
                continue
            if not limit:
                yield from frames
                continue
            # One query holds every child of the parents it asked for: the limit sees them all.
            batch = pd.concat(frames, ignore_index=True)
            yield limit_per_parent(batch, fk.columns, limit, self._sample_columns(child), self.spec.seed)

    def _check_budget(self, key: str, reason: str) -> None:
        state = self.states[key]
        budget = self.spec.budgets.get(key) if key in self.spec.budgets else self.spec.budgets.get(state.table.name)
        size = state.source_rows if state.whole else len(state.keys)
        if budget is not None and size > budget:
            raise _origin_error(
                self.spec.origins.get("budgets"),
                f"{key} grew to {size:,} rows, over its budget of {budget:,}, through {reason}; "
                "raise the budget, narrow the roots or set children: none on that edge",
            )
        if self.spec.max_rows is not None and self.total > self.spec.max_rows:
            raise _origin_error(
                self.spec.origins.get("max_rows"),
                f"the subset grew to {self.total:,} rows, over max_rows {self.spec.max_rows:,}, "
                f"when {key} grew through {reason}",
            )

    def _count_keyless(self) -> None:
        """Rows behind the digests of tables without a row key (identical rows share a digest)."""
        for state in self.states.values():
            if state.keyless and not state.whole and len(state.keys):
                state.row_count = sum(int(state.keys.contains(b[[ROW_DIGEST]]).sum())
                                      for b in self._stream(state) if not b.empty)

    def _result(self, full_copy: bool) -> SubsetPlan:
        tables: dict[str, TablePlan] = {}
        for key, state in self.states.items():
            table = state.table
            null_fks = [fk for fk in table.foreign_keys if fk.ref_table in self.exclude]
            mode: Mode = "none" if self._skipped(key) else "all" if state.whole else "keys"
            plan = TablePlan(
                key=key,
                source_rows=state.source_rows,
                mode=mode,
                keys=state.keys if mode == "keys" else None,
                reasons=state.reasons,
                exclude=self.exclude.get(key),
                null_foreign_keys=null_fks,
                row_count=state.row_count,
            )
            if key in self.kept:
                plan.reasons["kept from target"] = 0
            elif key in self.truncated:
                plan.reasons["truncated by the rules"] = 0
            elif key in self.exclude:
                plan.reasons[f"excluded ({self.exclude[key]})"] = 0
            elif not plan.reasons:
                plan.note = self._why_empty(state)
            tables[key] = plan
        return SubsetPlan(tables, self.spec.seed, full_copy, self.model.cycles())


    def _why_empty(self, state: _TableState) -> str:
        """Why a table that no root, passthrough or edge brought rows into is copied empty."""
        if state.source_rows == 0:
            return "empty in the source"
        if any(self.model.resolve(root.table) == state.table.key for root in self.spec.roots):
            return "subset root: no row matched (copied empty)"
        return "not reached: no root, passthrough or followed edge selects its rows (copied empty)"


def _in_subquery(table: TableInfo, columns: tuple[str, ...], subquery: sa.Select[Any]) -> sa.ColumnElement[bool]:
    """``(columns) IN (subquery)`` on ``table``."""
    cols = [typed_column(table, c) for c in columns]
    if len(cols) == 1:
        return cols[0].in_(subquery)
    return sa.tuple_(*cols).in_(subquery)


def _origin_error(origin: Origin | None, message: str) -> ConfigError:
    return origin.error(message) if origin else ConfigError(message)


def plan_subset(
    conn: Connection,
    model: SchemaModel,
    spec: SubsetSpec,
    *,
    empty_tables: dict[str, str] | None = None,
    kept_tables: tuple[str, ...] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SubsetPlan:
    """Plan which rows of every table a refresh copies (see the module docstring)."""
    return SubsetPlanner(conn, model, spec, empty_tables=empty_tables, kept_tables=kept_tables,
                         batch_size=batch_size).run()
