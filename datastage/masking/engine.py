"""Applies a resolved policy to row batches, one whole column at a time.

For each masked column the engine takes the non-NULL values (and those matching the
rule's ``when:``), hands each distinct value once to the strategy (deterministic
strategies give equal outputs for equal inputs, so repeated values cost nothing),
redraws fixed points for strategies that promise a change, keeps ``checked``-unique
domains injective across every table of the run, and fits the output to the column's
type and length.

Example:
    >>> engine = MaskingEngine(resolved_policy, key)              # doctest: +SKIP
    >>> masked, stats = engine.mask_batch("customer", batch)      # doctest: +SKIP
    >>> stats.changed["email"]                                    # doctest: +SKIP
    1000
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from datastage.errors import RulesError, StepError
from datastage.masking.keys import MaskingKey
from datastage.masking.registry import StrategySpec
from datastage.schema import ColumnInfo, TableInfo
from datastage.values import canonical_text

if TYPE_CHECKING:
    from datastage.masking.policy import ColumnRule, ResolvedPolicy

MAX_REDRAWS = 8


@dataclass
class StrategyContext:
    """What a strategy may use besides the values: the key, its domain, parameters, the row batch."""

    key: MaskingKey
    domain: str
    params: dict[str, Any]
    column: ColumnInfo
    table: TableInfo | None = None
    frame: pd.DataFrame | None = None
    locale: str = "en_US"
    attempt: int = 0
    unique: bool = False

    def hash(self, values: pd.Series | np.ndarray, salt: str = "") -> np.ndarray:
        """Keyed uint64 per value, from its canonical text, in this domain (and redraw attempt)."""
        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        text = canonical_text(series)
        return self.key.hash_text(self._domain(salt), text)

    def hash_ints(self, values: np.ndarray, salt: str = "") -> np.ndarray:
        """Keyed uint64 per 64-bit integer (fast path for numeric work)."""
        return self.key.hash_uint64(self._domain(salt), np.asarray(values).astype(np.uint64))

    def _domain(self, salt: str) -> str:
        domain = f"{self.domain}/{salt}" if salt else self.domain
        return f"{domain}#{self.attempt}" if self.attempt else domain

    def rows(self, index: pd.Index) -> pd.DataFrame:
        """The original batch rows for ``index`` (for strategies that read other columns)."""
        if self.frame is None:
            raise StepError(f"strategy needs the row batch but none was given for {self.column.name}")
        return self.frame.loc[index]


@dataclass
class MaskStats:
    """Rows changed per column in one batch (or summed over a table)."""

    changed: Counter[str] = field(default_factory=Counter)
    redraws: Counter[str] = field(default_factory=Counter)

    def add(self, other: MaskStats) -> None:
        self.changed.update(other.changed)
        self.redraws.update(other.redraws)


class _UniqueTracker:
    """Remembers output -> input hashes of one domain, to keep the mapping injective across batches."""

    def __init__(self) -> None:
        self.outputs: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        self.attempts: dict[int, int] = {}

    def conflicts(self, out_hash: np.ndarray, in_hash: np.ndarray) -> np.ndarray:
        """Positions whose output is already taken by a different input (or by an earlier one here)."""
        bad = np.zeros(len(out_hash), dtype=bool)
        for outs, ins in zip(self.outputs, self.inputs, strict=True):
            pos = np.searchsorted(outs, out_hash)
            pos[pos == len(outs)] = 0
            hit = outs[pos] == out_hash
            bad |= hit & (ins[pos] != in_hash)
        frame = pd.DataFrame({"o": out_hash, "i": in_hash})
        first_input = frame.groupby("o")["i"].transform("first").to_numpy()
        bad |= first_input != in_hash
        return bad

    def remember(self, out_hash: np.ndarray, in_hash: np.ndarray) -> None:
        order = np.argsort(out_hash, kind="stable")
        self.outputs.append(out_hash[order])
        self.inputs.append(in_hash[order])
        if len(self.outputs) > 8:
            outs = np.concatenate(self.outputs)
            ins = np.concatenate(self.inputs)
            order = np.argsort(outs, kind="stable")
            self.outputs, self.inputs = [outs[order]], [ins[order]]


class MaskingEngine:
    """Masks batches of rows table by table according to a resolved policy."""

    def __init__(self, policy: ResolvedPolicy, key: MaskingKey) -> None:
        self.policy = policy
        self.key = key
        self.trackers: dict[str, _UniqueTracker] = {}

    def mask_batch(self, table_key: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, MaskStats]:
        """Masked copy of ``frame`` and the rows changed per column."""
        stats = MaskStats()
        rules = self.policy.masked_columns(table_key)
        if not rules or frame.empty:
            return frame, stats
        original = frame
        out = frame.copy()
        for rule in rules:
            if rule.column not in frame.columns:
                continue
            masked, changed, redraws = self.mask_column(rule, original)
            out[rule.column] = masked
            stats.changed[rule.column] += changed
            if redraws:
                stats.redraws[rule.column] += redraws
        return out, stats

    def mask_column(self, rule: ColumnRule, frame: pd.DataFrame) -> tuple[pd.Series, int, int]:
        """(masked column, rows changed, redraws) for one rule over one batch."""
        spec = rule.spec
        assert spec is not None
        series = frame[rule.column]
        selected = series.notna().to_numpy().copy()  # to_numpy may be a read-only view
        if rule.when:
            selected &= _evaluate_when(rule, frame)
        if not selected.any():
            return series.astype(object), 0, 0
        values = series[selected].astype(object)
        ctx = StrategyContext(
            key=self.key, domain=rule.domain, params=rule.params, column=rule.column_info,
            table=rule.table_info, frame=frame, locale=rule.locale, unique=rule.unique,
        )
        result, redraws = self._apply(spec, values, ctx, rule)
        masked = series.astype(object).copy()
        masked[selected] = result.to_numpy(dtype=object)
        changed = int((canonical_text(result) != canonical_text(values)).sum())
        return masked, changed, redraws

    def _apply(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext,
               rule: ColumnRule) -> tuple[pd.Series, int]:
        if spec.row_independent and spec.deterministic:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            unique_values = pd.Series(uniques, dtype=object)
            out_unique, redraws = self._compute(spec, unique_values, ctx, rule)
            return pd.Series(out_unique.to_numpy(dtype=object)[codes], index=values.index, dtype=object), redraws
        out, redraws = self._compute(spec, values, ctx, rule)
        return out, redraws

    def _compute(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext,
                 rule: ColumnRule) -> tuple[pd.Series, int]:
        out = self._call(spec, values, ctx, rule)
        redraws = 0
        tracker = self.trackers.setdefault(rule.domain, _UniqueTracker()) if spec.unique == "checked" else None
        in_hash = ctx.hash(values, salt="input") if tracker is not None else None
        if tracker is not None and tracker.attempts and in_hash is not None:
            # Inputs redrawn earlier in this run (in any table) get the same redrawn output here.
            for attempt in sorted(set(tracker.attempts.values())):
                hit = np.fromiter((tracker.attempts.get(int(h)) == attempt for h in in_hash), dtype=bool,
                                  count=len(in_hash))
                if hit.any():
                    out[hit] = self._redraw(spec, values[hit], ctx, rule, attempt).to_numpy(dtype=object)
        for attempt in range(1, MAX_REDRAWS + 1):
            bad = np.zeros(len(values), dtype=bool)
            if spec.changes:
                bad |= canonical_text(out) == canonical_text(values)
            if tracker is not None and in_hash is not None:
                out_hash = ctx.hash(out, salt="output")
                bad |= tracker.conflicts(out_hash, in_hash)
            if not bad.any():
                break
            if attempt == MAX_REDRAWS:
                if tracker is not None or rule.unique:
                    raise StepError(f"{rule.table}.{rule.column}: strategy {spec.name} could not find distinct "
                                    f"outputs after {MAX_REDRAWS} redraws; widen its output space",
                                    table=rule.table, step="mask")
                break
            redraws += int(bad.sum())
            out[bad] = self._redraw(spec, values[bad], ctx, rule, attempt).to_numpy(dtype=object)
            if tracker is not None and in_hash is not None:
                for h in in_hash[bad]:
                    tracker.attempts[int(h)] = attempt
        if tracker is not None and in_hash is not None:
            tracker.remember(ctx.hash(out, salt="output"), in_hash)
        return out, redraws

    def _redraw(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext, rule: ColumnRule,
                attempt: int) -> pd.Series:
        redo = StrategyContext(**{**ctx.__dict__, "attempt": attempt})
        return self._call(spec, values, redo, rule)

    def _call(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext, rule: ColumnRule) -> pd.Series:
        try:
            out = spec.func(values, ctx)
        except (RulesError, StepError):
            raise
        except Exception as exc:  # noqa: BLE001 - a strategy bug must name the column, not crash
            raise StepError(f"strategy {spec.name} failed on {rule.table}.{rule.column}: "
                            f"{type(exc).__name__}: {exc}", table=rule.table, step="mask") from None
        if not isinstance(out, pd.Series) or len(out) != len(values):
            raise StepError(f"strategy {spec.name} returned {len(out) if hasattr(out, '__len__') else '?'} values "
                            f"for {len(values)} on {rule.table}.{rule.column}", table=rule.table, step="mask")
        out = pd.Series(out.to_numpy(dtype=object), index=values.index, dtype=object)
        return fit_to_column(out, ctx.column)


def _evaluate_when(rule: ColumnRule, frame: pd.DataFrame) -> np.ndarray:
    assert rule.when is not None
    try:
        result = frame.eval(rule.when, engine="python")
    except Exception as exc:  # noqa: BLE001 - user expression
        raise RulesError(f"when: condition failed: {type(exc).__name__}: {exc}",
                         file=rule.origin.file if rule.origin else None,
                         line=rule.origin.line if rule.origin else None,
                         key=rule.origin.path if rule.origin else None) from None
    if isinstance(result, pd.Series):
        return result.fillna(False).astype(bool).to_numpy()
    return np.full(len(frame), bool(result))


def fit_to_column(values: pd.Series, column: ColumnInfo) -> pd.Series:
    """Coerce strategy output to the column's type family and cut text to the column length."""
    category = column.category
    if category == "text" and column.length:
        length = column.length
        return values.map(lambda v: v[:length] if isinstance(v, str) and len(v) > length else v)
    if category == "integer":
        return values.map(lambda v: int(v) if isinstance(v, int | float | np.integer | np.floating) and
                          not isinstance(v, bool) else v)
    if category == "decimal":
        return values.map(lambda v: decimal.Decimal(str(v)) if isinstance(v, float | int | np.number) and
                          not isinstance(v, bool) else v)
    if category == "date":
        return values.map(lambda v: v.date() if isinstance(v, dt.datetime) else v)
    return values
