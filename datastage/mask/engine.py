"""Applies a resolved policy to row batches, one whole column at a time.

For each masked column the engine takes the non-NULL values (and those matching the
rule's ``when:``), hands each distinct value once to the strategy (deterministic
strategies give equal outputs for equal inputs, so repeated values cost nothing),
redraws fixed points for strategies that promise a change, keeps ``checked``-unique
domains injective across every table of the run, and fits the output to the column's
type and length. ``bijective`` strategies are never redrawn: a redraw could collide with
another value's output, so they are built without fixed points instead.

Given the source's identifiers (:class:`~datastage.mask.source_identifiers.SourceIdentifiers`,
collected before the copy), no identifier-kind strategy emits one of them: a ``checked``
or non-unique strategy redraws such an output like a collision, a ``bijective`` one walks
its own permutation off the set (:func:`~datastage.mask.redraw.walk_off`), which keeps
distinct inputs distinct. Determinism is then: the same input gives the same output for
the same key *and the same set of source identifiers*; an output changes when a new
source row makes it a real identifier.

Rules whose strategy reads other columns' masked values (``template``) run after the
others; nested strategies (``regex`` ``with:``, ``json`` ``paths:``) run through the same
machinery in their own domain, so an e-mail inside free text masks like the ``email`` column.

Example (phone numbers keep their format and country code):
    >>> import sqlalchemy as sa
    >>> from datastage.mask.keys import MaskingKey
    >>> from datastage.mask.policy import policy_from_text
    >>> from datastage.mask.resolve import resolve_policy
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, phone TEXT)")
    ...     policy = resolve_policy(policy_from_text("version: 1\\ntables: {customer: {phone: phone}}"), reflect(conn))
    >>> engine = MaskingEngine(policy, MaskingKey(b"an example key, not a real one", source="example"))
    >>> batch = pd.DataFrame({"id": [1, 2], "phone": ["+44 20 7946 0018", "+44 20 7946 0019"]})
    >>> masked, stats = engine.mask_batch("customer", batch)
    >>> masked["phone"].tolist(), stats.changed["phone"]
    (['+44 03 8984 0846', '+44 46 4079 8670'], 2)
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from datastage.errors import RulesError, StepError
from datastage.mask.arrays import polars_text, text_lengths
from datastage.mask.condition import ConditionError, parse_condition
from datastage.mask.contract import StrategyContext, StrategySpec, values_text
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import ColumnRule
from datastage.mask.redraw import walk_off
from datastage.mask.resolve import ResolvedPolicy
from datastage.mask.source_identifiers import SourceIdentifiers, identifier_kind
from datastage.secrets import get_logger
from datastage.source.schema import ColumnInfo
from datastage.source.values import canonical_text, native_objects

MAX_REDRAWS = 8
log = get_logger("datastage.mask")


@dataclass
class MaskStats:
    """Rows changed per column in one batch (or summed over a table)."""

    changed: Counter[str] = field(default_factory=Counter)
    redraws: Counter[str] = field(default_factory=Counter)

    def add(self, other: MaskStats) -> None:
        self.changed.update(other.changed)
        self.redraws.update(other.redraws)


class _UniqueTracker:
    """Remembers output -> input hashes of one domain, to keep the mapping injective across batches.

    The pairs are kept as sorted runs (merged every few batches). A bit per slot of a table of
    8 to 32 slots per output (slot: the hash's top bits, the hashes being keyed and uniform)
    marks the slots some output fell in, so most new outputs are known to be new without
    searching the runs (the table costs 1 to 4 bytes per output)."""

    def __init__(self) -> None:
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self.outputs: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        self.attempts: dict[int, int] = {}
        self._marks = np.zeros(0, dtype=np.uint8)
        self._shift = np.uint64(64)
        self._count = 0

    def conflicts(self, out_hash: np.ndarray, in_hash: np.ndarray) -> np.ndarray:
        """Positions whose output belongs to a different input: the one an earlier batch gave it to,
        else the first position of this batch that holds it. An input keeps the output it was given
        earlier (in this table or another) whatever else collides with it."""
        # Work on the outputs in sorted order: lookups in the earlier (sorted) outputs then walk
        # memory forwards instead of jumping around.
        order, outs = _ascending(out_hash)
        ins = in_hash[order]
        owner = ins.copy()  # per position, the input its output belongs to
        known = np.zeros(len(outs), dtype=bool)
        # Only outputs in a marked slot may be held by an earlier batch (ascending, as ``outs``).
        maybe = np.flatnonzero(self._marked(outs)) if self._count else np.zeros(0, dtype=np.intp)
        if len(maybe):
            wanted = outs[maybe]
            found = np.zeros(len(maybe), dtype=bool)
            for earlier_outs, earlier_ins in zip(self.outputs, self.inputs, strict=True):
                pos = np.searchsorted(earlier_outs, wanted)
                pos[pos == len(earlier_outs)] = 0
                hit = (earlier_outs[pos] == wanted) & ~found
                owner[maybe[hit]] = earlier_ins[pos[hit]]
                found |= hit
            known[maybe] = found
        # Outputs no earlier batch holds: the first position (in batch order) holding one owns it.
        starts = np.ones(len(outs), dtype=bool)
        starts[1:] = outs[1:] != outs[:-1]
        first_of_group = np.maximum.accumulate(np.where(starts, np.arange(len(outs)), 0))
        owner[~known] = ins[first_of_group[~known]]
        clash = np.zeros(len(outs), dtype=bool)
        clash[order] = ins != owner
        self._sorted = (out_hash, order)
        return clash

    def remember(self, out_hash: np.ndarray, in_hash: np.ndarray) -> None:
        cached = self._sorted
        order = cached[1] if cached is not None and cached[0] is out_hash else _ascending(out_hash)[0]
        self._sorted = None
        if not len(out_hash):
            return
        added = out_hash[order]
        self.outputs.append(added)
        self.inputs.append(in_hash[order])
        if len(self.outputs) > 8:
            outs = np.concatenate(self.outputs)
            ins = np.concatenate(self.inputs)
            merged = np.argsort(outs, kind="stable")
            self.outputs, self.inputs = [outs[merged]], [ins[merged]]
        self._count += len(out_hash)
        slots = len(self._marks) * 8
        if self._count * 8 > slots:  # fewer than 8 slots per output: a table of 16 to 32, from every run
            bits = max(16, (self._count * 16 - 1).bit_length())
            self._marks = np.zeros(1 << (bits - 3), dtype=np.uint8)
            self._shift = np.uint64(64 - bits)
            for outs in self.outputs:
                self._mark(outs)
        else:
            self._mark(added)

    def _marked(self, ascending: np.ndarray) -> np.ndarray:
        """Whether each hash's slot is marked."""
        slots = ascending >> self._shift
        return (self._marks[slots >> _THREE] >> (slots & _SEVEN).astype(np.uint8)) & 1 == 1

    def _mark(self, ascending: np.ndarray) -> None:
        """Mark the slots of ``ascending`` (sorted) hashes: one OR per byte (bits of one byte are adjacent)."""
        if not len(ascending):
            return
        slots = ascending >> self._shift
        byte = (slots >> _THREE).astype(np.intp)
        bit = np.left_shift(np.uint8(1), (slots & _SEVEN).astype(np.uint8))
        starts = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
        self._marks[byte[starts]] |= np.bitwise_or.reduceat(bit, starts)

    def export(self) -> TrackerExport:
        """What this tracker holds, as plain arrays (keyed hashes only: safe to send between processes)."""
        outs = np.concatenate(self.outputs) if self.outputs else np.zeros(0, dtype=np.uint64)
        ins = np.concatenate(self.inputs) if self.inputs else np.zeros(0, dtype=np.uint64)
        redrawn = np.fromiter(self.attempts.keys(), dtype=np.uint64, count=len(self.attempts))
        levels = np.fromiter(self.attempts.values(), dtype=np.int64, count=len(self.attempts))
        return TrackerExport(outs, ins, redrawn, levels)

    def absorb(self, exported: TrackerExport) -> None:
        """Take what another tracker of the same domain holds (see :meth:`export`) as if masked here."""
        if len(exported.outputs):
            self.remember(exported.outputs, exported.inputs)
        self.attempts.update(zip(exported.redrawn.tolist(), exported.levels.tolist(), strict=True))


_THREE, _SEVEN = np.uint64(3), np.uint64(7)


def _ascending(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, sorted hashes): ``hashes`` in ascending order, equal ones in their original order.

    Random 64-bit hashes are almost never equal, so an unstable sort (several times faster than
    a stable one) gives the stable order; only when two are equal is the stable sort run.

    >>> _ascending(np.array([5, 3, 5, 1], dtype=np.uint64))[0].tolist()
    [3, 1, 0, 2]
    """
    order = np.argsort(hashes)
    ordered = hashes[order]
    if len(ordered) > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
    return order, ordered


@dataclass
class TrackerExport:
    """A ``checked``-unique domain's (output, input) identity pairs and redrawn inputs, from one tracker."""

    outputs: np.ndarray
    inputs: np.ndarray
    redrawn: np.ndarray
    levels: np.ndarray


class MaskingEngine:
    """Masks batches of rows table by table according to a resolved policy."""

    def __init__(self, policy: ResolvedPolicy, key: MaskingKey, identifiers: SourceIdentifiers | None = None) -> None:
        self.policy = policy
        self.key = key
        self.identifiers = identifiers
        self.trackers: dict[str, _UniqueTracker] = {}

    def mask_batch(self, table_key: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, MaskStats]:
        """Masked copy of ``frame`` and the rows changed per column."""
        stats = MaskStats()
        rules = self.policy.masked_columns(table_key)
        if not rules or frame.empty:
            return frame, stats
        original = frame
        out = frame.copy()
        ordered = sorted(rules, key=lambda r: bool(r.spec and r.spec.reads_masked))
        for rule in ordered:
            if rule.column not in frame.columns:
                continue
            masked, changed, redraws = self.mask_column(rule, original, out)
            out[rule.column] = masked
            stats.changed[rule.column] += changed
            if redraws:
                stats.redraws[rule.column] += redraws
        return out, stats

    def mask_column(self, rule: ColumnRule, frame: pd.DataFrame,
                    masked_frame: pd.DataFrame | None = None) -> tuple[pd.Series, int, int]:
        """(masked column, rows changed, redraws) for one rule over one batch."""
        spec = rule.spec
        assert spec is not None
        series = frame[rule.column]
        selected = series.notna().to_numpy().copy()  # to_numpy may be a read-only view
        if rule.when:
            selected = selected & _evaluate_when(rule, frame)
        if not selected.any():
            return series.astype(object), 0, 0
        every_row = bool(selected.all())
        values = series.astype(object) if every_row else series[selected].astype(object)
        ctx = StrategyContext(
            key=self.key, domain=rule.domain, params=rule.params, column=rule.column_info,
            table=rule.table_info, frame=frame, locale=rule.locale, unique=rule.unique,
            masked=masked_frame, nested=self._nested_runner(rule),
        )
        result, redraws = self._apply(spec, values, ctx, rule)
        out = result.to_numpy(dtype=object)
        changed = int((out != values.to_numpy(dtype=object)).sum())
        if not every_row:  # the other rows keep their values (in numpy: pandas would re-infer the dtype)
            kept = series.to_numpy(dtype=object, copy=True)
            kept[selected] = out
            out = kept
        return pd.Series(out, index=series.index, name=series.name, dtype=object), changed, redraws

    def _nested_runner(self, rule: ColumnRule) -> Callable[[str, pd.Series], pd.Series] | None:
        if not rule.nested:
            return None

        def run(name: str, values: pd.Series) -> pd.Series:
            nested = rule.nested[name]
            assert nested.spec is not None
            present = values.notna().to_numpy()
            out = values.astype(object).copy()
            if not present.any():
                return out
            ctx = StrategyContext(key=self.key, domain=nested.domain, params=nested.params,
                                  column=nested.column_info, table=rule.table_info, locale=nested.locale,
                                  nested=self._nested_runner(nested))
            result, _ = self._apply(nested.spec, values[present].astype(object), ctx, nested)
            out[present] = result.to_numpy(dtype=object)
            return out

        return run

    def _apply(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext,
               rule: ColumnRule) -> tuple[pd.Series, int]:
        if spec.row_independent and spec.deterministic:
            codes, unique_values = _factorize(values)
            out_unique, redraws = self._compute(spec, unique_values, ctx, rule)
            per_value = out_unique.to_numpy(dtype=object)
            # All distinct: the codes are 0, 1, 2 ... (first appearances in order), no gather needed.
            rows = per_value if len(per_value) == len(codes) else per_value[codes]
            return pd.Series(rows, index=values.index, dtype=object), redraws
        return self._compute(spec, values, ctx, rule)

    def _compute(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext,
                 rule: ColumnRule) -> tuple[pd.Series, int]:
        out = self._call(spec, values, ctx, rule)
        redraws = 0
        kind = identifier_kind(rule) if self.identifiers is not None and self.identifiers.kinds else None
        tracker = self.trackers.setdefault(rule.domain, _UniqueTracker()) if spec.unique == "checked" else None
        in_hash = _identity(values, self.key) if tracker is not None else None
        if spec.unique == "bijective":
            # A bijection keeps distinct inputs distinct by construction; redrawing one output
            # could collide with another, so fixed points are the strategy's own business, and
            # source identifiers are walked off along the permutation itself.
            return self._walk_off(spec, out, ctx, rule, kind) if kind is not None else (out, 0)
        if tracker is not None and tracker.attempts and in_hash is not None:
            # Inputs redrawn earlier in this run (in any table) get the same redrawn output here.
            known = pd.Index(np.fromiter(tracker.attempts.keys(), dtype=np.uint64, count=len(tracker.attempts)))
            level_of = np.fromiter(tracker.attempts.values(), dtype=np.int64, count=len(tracker.attempts))
            found = known.get_indexer(pd.Index(in_hash))
            levels = np.where(found >= 0, level_of[found], 0)
            for attempt in np.unique(levels[levels > 0]):
                hit = levels == attempt
                out[hit] = self._redraw(spec, values[hit], ctx, rule, int(attempt)).to_numpy(dtype=object)
        in_text = values_text(values) if spec.changes else None
        out_hash = np.zeros(0, dtype=np.uint64)
        redrawn: np.ndarray | None = None  # positions the last attempt redrew (None: every one is new)
        for attempt in range(1, MAX_REDRAWS + 1):
            bad = np.zeros(len(values), dtype=bool)
            # The fixed-point and source-identifier checks of an output depend on that output only:
            # after a redraw, only the redrawn ones are checked again.
            fresh = out if redrawn is None else out.iloc[redrawn]
            again = np.zeros(len(fresh), dtype=bool)
            if in_text is not None:
                again |= values_text(fresh) == (in_text if redrawn is None else in_text[redrawn])
            if kind is not None and self.identifiers is not None:
                again |= self.identifiers.contains(kind, fresh)
            if redrawn is None:
                bad |= again
            else:
                bad[redrawn] = again
            if tracker is not None and in_hash is not None:
                if redrawn is None:
                    out_hash = _identity(out, self.key)
                else:
                    out_hash = out_hash.copy()
                    out_hash[redrawn] = _identity(fresh, self.key)
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
            redrawn = np.flatnonzero(bad)
            if tracker is not None and in_hash is not None:
                for h in in_hash[bad]:
                    tracker.attempts[int(h)] = attempt
        if tracker is not None and in_hash is not None:
            tracker.remember(out_hash, in_hash)  # the hashes of the final outputs: every redraw ran the checks
        return out, redraws

    def _walk_off(self, spec: StrategySpec, out: pd.Series, ctx: StrategyContext, rule: ColumnRule,
                  kind: str) -> tuple[pd.Series, int]:
        """A bijection's outputs with every source identifier of ``kind`` walked off (:func:`walk_off`)."""
        identifiers = self.identifiers
        assert identifiers is not None

        def step(values: np.ndarray) -> np.ndarray:
            return self._call(spec, pd.Series(values, dtype=object), ctx, rule).to_numpy(dtype=object)

        walked, count, stuck = walk_off(out.to_numpy(dtype=object), step, lambda v: identifiers.contains(kind, v))
        if stuck.any():
            log.warning("masked values are still source identifiers: the output space is nearly full",
                        extra={"table": rule.table, "column": rule.column, "strategy": spec.name,
                               "values": int(stuck.sum())})
        return pd.Series(walked, index=out.index, dtype=object), count

    def _redraw(self, spec: StrategySpec, values: pd.Series, ctx: StrategyContext, rule: ColumnRule,
                attempt: int) -> pd.Series:
        return self._call(spec, values, replace(ctx, attempt=attempt), rule)

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
        # Driver-native values (pandas infers datetime64 columns, whose elements are pd.Timestamp).
        out = pd.Series(native_objects(out), index=values.index, dtype=object)
        fitted = fit_to_column(out, ctx.column)
        return fitted if fitted is out else pd.Series(native_objects(fitted), index=values.index, dtype=object)


_GROUP_SEED = 0x6A09E667  # polars hash seed for grouping equal strings within one batch


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, distinct values as Python objects); integer columns take a faster int64 path."""
    array = values.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(array, skipna=False)
    if kind == "integer":
        try:
            codes, uniques = pd.factorize(array.astype(np.int64))
            return codes, pd.Series(uniques.astype(object), dtype=object)
        except OverflowError:
            pass
    if kind == "string":
        # Group by a 64-bit hash of each string (polars', else Python's cached one), then confirm
        # every value equals its group's first value; a hash collision (never seen in practice)
        # falls back to exact grouping.
        series = polars_text(array)
        hashes = (series.hash(seed=_GROUP_SEED).to_numpy().view(np.int64) if series is not None
                  else np.fromiter(map(hash, array), dtype=np.int64, count=len(array)))
        codes, _ = pd.factorize(hashes)
        first = np.empty(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        if len(first) == len(array):  # distinct hashes: distinct values, each its own group
            return codes, pd.Series(array, dtype=object)
        representatives = array[first]
        if bool((representatives[codes] == array).all()):
            return codes, pd.Series(representatives, dtype=object)
    try:
        codes, uniques = pd.factorize(array, use_na_sentinel=True)
    except TypeError:  # unhashable values: JSON objects and arrays, PostgreSQL arrays
        return _factorize_by_text(array)
    return codes, pd.Series(uniques, dtype=object)


def _factorize_by_text(array: np.ndarray) -> tuple[np.ndarray, pd.Series]:
    """:func:`_factorize` by each value's type and canonical text (JSON with sorted keys), which
    groups values that need not be hashable; the first value of each group stands for it."""
    if not len(array):
        return np.zeros(0, dtype=np.int64), pd.Series(array, dtype=object)
    kinds = np.fromiter(map(type, array), dtype=object, count=len(array))
    names = np.array([k.__qualname__ for k in kinds], dtype=object)
    text = canonical_text(pd.Series(array, dtype=object))
    keys = names + "\x1f" + np.where(pd.isna(text), "\x00", text).astype(object)
    codes, _ = pd.factorize(keys)
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, pd.Series(array[first], dtype=object)


UNIQUE_DOMAIN = "mask/unique-tracker"


def _identity(values: pd.Series, key: MaskingKey) -> np.ndarray:
    """64-bit identity of each value's canonical text, for the in-run collision tracker.

    A keyed SipHash (never Python's per-process ``hash``), so the identities that chunks masked
    in other processes collect can be compared with each other and merged into one tracker.
    """
    text = values_text(values)
    try:
        return key.hash_text(UNIQUE_DOMAIN, text)
    except UnicodeEncodeError:  # rare: a lone surrogate (text from a file that is not UTF-8)
        return key.hash_text(UNIQUE_DOMAIN, np.array([_encodable(v) for v in text], dtype=object))


def _encodable(value: str) -> str:
    """``value`` itself, or for text UTF-8 cannot hold, a NUL-tagged hex of its bytes (for hashing only)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "\x00surrogate:" + value.encode("utf-8", "surrogatepass").hex()
    return value


def _evaluate_when(rule: ColumnRule, frame: pd.DataFrame) -> np.ndarray:
    """The rows of ``frame`` the rule's ``when:`` selects (its parsed condition, never Python code)."""
    assert rule.when is not None
    condition = rule.condition
    origin = rule.when_origin or rule.origin
    try:
        if condition is None or not condition.bound:
            if rule.table_info is None:
                raise ConditionError("the rule was not checked against its table")
            condition = (condition or parse_condition(rule.when)).bind(rule.table_info.key, rule.table_info.columns)
            rule.condition = condition
        return condition.select(frame)
    except ConditionError as exc:
        raise RulesError(f"invalid condition: {exc.message}", file=origin.file if origin else None,
                         line=origin.line if origin else None, key=origin.path if origin else None) from None


def fit_to_column(values: pd.Series, column: ColumnInfo) -> pd.Series:
    """Coerce strategy output to the column's type family and cut text to the column length."""
    category = column.category
    if category == "text" and column.length:
        length = column.length
        array = values.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(array, skipna=False) == "string":
            too_long = text_lengths(array) > length
            if not too_long.any():
                return values
            cut = polars_text(array[too_long])
            if cut is not None:
                fitted = array.copy()
                fitted[too_long] = cut.str.slice(0, length).to_numpy()
                return pd.Series(fitted, index=values.index, dtype=object)
        return values.map(lambda v: v[:length] if isinstance(v, str) and len(v) > length else v)
    if category == "integer":
        if pd.api.types.infer_dtype(values.to_numpy(dtype=object), skipna=False) == "integer":
            return values
        # A bool in an integer column (MariaDB's BOOLEAN is TINYINT) is its 0 or 1.
        return values.map(lambda v: int(v) if isinstance(v, int | float | np.integer | np.floating) else v)
    if category == "decimal":
        return values.map(lambda v: decimal.Decimal(str(v)) if isinstance(v, float | int | np.number) and
                          not isinstance(v, bool) else v)
    if category == "date":
        return values.map(lambda v: v.date() if isinstance(v, dt.datetime) else v)
    return values
