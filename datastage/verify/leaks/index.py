"""The leak index: keyed hashes (never values) of what must not reach the target, built while the source streams.

While the source subset streams through masking, :class:`LeakIndex` keeps keyed hashes of

* every original value of every masked column, per column, each bound to its row as the
  target holds it (the masked row key, or the other masked columns of a table without one),
  and
* the identifier tokens inside them (e-mail addresses, phone numbers, card numbers,
  IBANs, national ids, distinctive full names), plus those of columns the scan
  classified as direct identifiers but the rules keep (with a reason).

Each identifier hash remembers which source column(s) it came from, as a small column id
(:class:`TaggedHashSet`), so a leak finding can name its origin.

The hashes are SipHash under a ``leakcheck`` subkey of the masking key, so the report
holds counts only. The hashes go into :class:`~datastage.mask.source_identifiers.HashSet` sets,
the sorted arrays the masking engine also keeps the source's identifiers in.

Example:
    >>> VALUE_DOMAIN, TOKEN_DOMAIN
    ('leakcheck/value', 'leakcheck/token')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from datastage.mask.keys import MaskingKey
from datastage.mask.policy import ColumnRule
from datastage.mask.source_identifiers import HashSet
from datastage.plan import PlanResult
from datastage.source.values import canonical_text
from datastage.verify.leaks.tokens import folded_names, identifier_tokens, name_pairs, nonblank_text

TEXT_CATEGORIES = frozenset({"text", "json", "other", "array"})
VALUE_DOMAIN = "leakcheck/value"
BINDING_DOMAIN = "leakcheck/row"
TOKEN_DOMAIN = "leakcheck/token"  # noqa: S105 - a hashing domain name, not a secret


TAG = np.uint16
MAX_TAG = int(np.iinfo(TAG).max)


class TaggedHashSet(HashSet):
    """A :class:`HashSet` that remembers, per hash, the small ids (source columns) it was added under.

    Each distinct (hash, id) pair is kept once, sorted by hash: 10 bytes per pair.

    >>> tagged = TaggedHashSet()
    >>> tagged.add(np.array([5, 7], dtype=np.uint64), 1)
    >>> tagged.add(np.array([5, 5], dtype=np.uint64), 2)
    >>> len(tagged), tagged.tags(np.array([5, 7, 9], dtype=np.uint64))
    (2, [(1, 2), (1,), ()])
    """

    def __init__(self) -> None:
        super().__init__()
        self._tag_parts: list[np.ndarray] = []
        self._tags = np.zeros(0, dtype=TAG)

    def add(self, hashes: np.ndarray, tag: int = 0) -> None:
        if len(hashes):
            self._tag_parts.append(np.full(len(hashes), min(tag, MAX_TAG), dtype=TAG))
        super().add(hashes)

    def _compact(self) -> None:
        if self._parts:
            hashes = np.concatenate([self._sorted, *self._parts])
            tags = np.concatenate([self._tags, *self._tag_parts])
            order = np.lexsort((tags, hashes))
            hashes, tags = hashes[order], tags[order]
            keep = np.ones(len(hashes), dtype=bool)
            keep[1:] = (hashes[1:] != hashes[:-1]) | (tags[1:] != tags[:-1])
            # Sorted with repeats (one per id): searching it still finds every hash.
            self._sorted, self._tags = hashes[keep], tags[keep]
            self._parts, self._tag_parts, self._size = [], [], 0

    def __len__(self) -> int:
        self._compact()
        return int(np.count_nonzero(self._sorted[1:] != self._sorted[:-1])) + 1 if len(self._sorted) else 0

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(hashes, ids): every distinct (hash, id) pair, sorted by hash."""
        self._compact()
        return self._sorted, self._tags

    def tags(self, hashes: np.ndarray) -> list[tuple[int, ...]]:
        """The ids each hash was added under (none for a hash not in the set)."""
        self._compact()
        low = np.searchsorted(self._sorted, hashes, "left").tolist()
        high = np.searchsorted(self._sorted, hashes, "right").tolist()
        return [tuple(self._tags[a:b].tolist()) for a, b in zip(low, high, strict=True)]


@dataclass
class LeakIndex:
    """Keyed hashes of what must not reach the target, collected while the source subset streams."""

    key: MaskingKey
    masked: dict[str, list[ColumnRule]]
    harvest: dict[str, dict[str, dict[str, bool]]]
    name_pairs: dict[str, tuple[str, str]]
    bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[tuple[str, str], HashSet] = field(default_factory=dict)
    tokens: TaggedHashSet = field(default_factory=TaggedHashSet)
    kept_tokens: dict[tuple[str, str], HashSet] = field(default_factory=dict)
    harvested: Counter[str] = field(default_factory=Counter)
    all_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rows_observed: int = 0
    origin_labels: list[str] = field(default_factory=list)  # source ``table.column`` by the id its tokens carry

    @classmethod
    def for_plan(cls, key: MaskingKey, planned: PlanResult) -> LeakIndex:
        """What to collect for each table, from the resolved policy and the scan's classification."""
        masked: dict[str, list[ColumnRule]] = {}
        harvest: dict[str, dict[str, dict[str, bool]]] = {}
        name_pairs: dict[str, tuple[str, str]] = {}
        bindings: dict[str, tuple[str, ...]] = {}
        all_columns: dict[str, tuple[str, ...]] = {}
        scan = planned.scan
        for table in planned.tables:
            rules = planned.policy.masked_columns(table.key)
            masked[table.key] = rules
            masked_names = {r.column for r in rules}
            if rules:
                bindings[table.key] = table.identity or tuple(table.insertable_columns)
            all_columns[table.key] = tuple(table.insertable_columns)
            per_column: dict[str, dict[str, bool]] = {}
            firsts, lasts = [], []
            for column in table.columns.values():
                finding = scan.get(table.key, column.name) if scan else None
                kind = finding.kind if finding else None
                shares = finding.value_kinds if finding else {}
                is_masked = column.name in masked_names
                direct = finding is not None and finding.classification == "direct_identifier"
                if not (is_masked or direct) or column.category not in TEXT_CATEGORIES:
                    continue
                free = kind == "free_text" or column.category == "json"
                per_column[column.name] = {
                    "phones": kind == "phone" or (free and "free_text:phone" in shares),
                    "names": kind == "full_name" or (free and "free_text:full_name" in shares),
                    "whole_names": kind == "full_name",
                    "masked": is_masked,
                }
                if kind == "first_name" and is_masked:
                    firsts.append(column.name)
                if kind == "last_name" and is_masked:
                    lasts.append(column.name)
            harvest[table.key] = per_column
            if firsts and lasts:
                name_pairs[table.key] = (firsts[0], lasts[0])
        return cls(key, masked, harvest, name_pairs, bindings, all_columns=all_columns)

    def fresh(self, key: MaskingKey | None = None) -> LeakIndex:
        """An empty index collecting the same things (``key``: another copy of the masking key)."""
        return LeakIndex(key or self.key, self.masked, self.harvest, self.name_pairs, self.bindings,
                         all_columns=self.all_columns)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for another process) without the masking key; :meth:`fresh` gives a copy one there."""
        return {**self.__dict__, "key": None}

    def export(self) -> dict[str, Any]:
        """What this index collected, as plain arrays of keyed hashes and counts (for :meth:`merge`):
        what a chunk copied in another process sends back."""
        hashes, tags = self.tokens.pairs()
        return {"values": {name: found.array() for name, found in self.values.items()},
                "tokens": (hashes, tags, list(self.origin_labels)),
                "kept_tokens": {name: found.array() for name, found in self.kept_tokens.items()},
                "harvested": dict(self.harvested), "rows_observed": self.rows_observed}

    def merge(self, exported: dict[str, Any]) -> None:
        """Add what another index of the same plan collected (its :meth:`export`)."""
        for name, hashes in exported["values"].items():
            self.values.setdefault(name, HashSet()).add(hashes)
        hashes, tags, labels = exported["tokens"]
        for tag in np.unique(tags).tolist():
            self.tokens.add(hashes[tags == tag], self.origin_id(labels[tag] if tag < len(labels) else labels[-1]))
        for name, hashes in exported["kept_tokens"].items():
            self.kept_tokens.setdefault(name, HashSet()).add(hashes)
        self.harvested.update(exported["harvested"])
        self.rows_observed += exported["rows_observed"]

    def binding_columns(self, table: str, column: str) -> list[str]:
        """The columns that identify a row as the target holds it: the row key, else every other column."""
        chosen = [c for c in self.bindings.get(table, ()) if c != column]
        if not chosen:
            chosen = [c for c in self.all_columns.get(table, ()) if c != column]
        return chosen

    def needed_columns(self, table: str) -> list[str]:
        """Every column :meth:`observe` reads of ``table`` (masked, binding, harvested, name pairs)."""
        columns = [r.column for r in self.masked.get(table, [])]
        for rule in self.masked.get(table, []):
            columns += self.binding_columns(table, rule.column)
        columns += list(self.harvest.get(table, {}))
        columns += list(self.name_pairs.get(table, ()))
        return list(dict.fromkeys(columns))

    def value_hashes(self, table: str, values: pd.DataFrame, column: str, rows: pd.DataFrame,
                     bindings: dict[tuple[str, ...], np.ndarray] | None = None,
                     text: pd.Series | None = None) -> np.ndarray:
        """Keyed hashes of a masked column's non-NULL ``values``, each bound to its row as the target
        holds it (``rows``: the masked batch, or the loaded copy). A match means that this row
        still holds its own original value; another row's value that happens to be equal is no leak.

        ``bindings`` keeps the binding hashes of every row of ``rows`` per set of binding columns,
        so the masked columns of one batch that share them hash them once; ``text``: the column's
        :func:`nonblank_text`, when the caller has it already."""
        if text is None:
            text = nonblank_text(values[column])
        hashes = self.key.hash_text(VALUE_DOMAIN, text.to_numpy(dtype=object))
        names = tuple(self.binding_columns(table, column))
        positions = rows.index.get_indexer(text.index) if bindings is not None and rows.index.is_unique else None
        if bindings is None or positions is None or (positions < 0).any():
            return hashes ^ self._binding_hashes(names, rows.loc[text.index])
        if names not in bindings:
            bindings[names] = self._binding_hashes(names, rows)
        return hashes ^ bindings[names][positions]

    def _binding_hashes(self, names: tuple[str, ...], rows: pd.DataFrame) -> np.ndarray:
        """Keyed hash of each row's binding columns ``names`` (NULL as a NUL)."""
        bound = np.zeros(len(rows), dtype=np.uint64)
        for name in names:
            part = canonical_text(rows[name])
            part = np.where(pd.isna(part), "\x00", part)
            # Keyed hashes of the binding columns, folded in order (uint64 arithmetic wraps).
            bound = bound * np.uint64(0x100000001B3) ^ self.key.hash_text(BINDING_DOMAIN, part)
        return self.key.hash_uint64(BINDING_DOMAIN, bound)

    def hash_tokens(self, tokens: list[str]) -> np.ndarray:
        array = np.empty(len(tokens), dtype=object)
        array[:] = tokens
        return self.key.hash_text(TOKEN_DOMAIN, array)

    def observe(self, table: str, batch: pd.DataFrame, masked: pd.DataFrame) -> None:
        """Record the original values of one source batch (``masked``: the same rows after masking)."""
        if batch.empty:
            return
        self.rows_observed += len(batch)
        bindings: dict[tuple[str, ...], np.ndarray] = {}
        texts: dict[str, pd.Series] = {}  # each column's non-blank text, made once
        for rule in self.masked.get(table, []):
            if rule.column not in batch.columns:
                continue
            text = texts[rule.column] = nonblank_text(batch[rule.column])
            self.values.setdefault((table, rule.column), HashSet()).add(
                self.value_hashes(table, batch, rule.column, masked, bindings, text))
        for column, how in self.harvest.get(table, {}).items():
            if column not in batch.columns:
                continue
            text = texts[column] if column in texts else nonblank_text(batch[column])
            distinct = pd.Series(text.unique(), dtype=object)  # a set of tokens: each value once is enough
            found = identifier_tokens(distinct, phones=how["phones"], whole_phone=how["phones"])
            tokens, kinds = found.tokens, found.kinds
            if how["names"]:
                pairs, _ = name_pairs(distinct, "names" if how["whole_names"] else "text")
                tokens, kinds = tokens + pairs, kinds + ["name"] * len(pairs)
            self._add(table, column, tokens, how["masked"], kinds=kinds)
        if table in self.name_pairs:
            first, last = self.name_pairs[table]
            if first in batch.columns and last in batch.columns:
                both = batch[[first, last]].dropna()
                a, rare_a = folded_names(both[first])
                b, rare_b = folded_names(both[last])
                distinctive = rare_a | rare_b
                a, b = a[distinctive], b[distinctive]
                pairs = [*("name:" + a + " " + b).tolist(), *("name:" + b + " " + a).tolist()]
                self._add(table, first, pairs, True, f"{table}.{first}+{last}", kinds=["name"] * len(pairs))

    def origin_id(self, label: str) -> int:
        """The small id of a source column's label (the last id stands for any further columns)."""
        try:
            return self.origin_labels.index(label)
        except ValueError:
            if len(self.origin_labels) >= MAX_TAG:
                if len(self.origin_labels) == MAX_TAG:
                    self.origin_labels.append("(one of further source columns)")
                return MAX_TAG
            self.origin_labels.append(label)
            return len(self.origin_labels) - 1

    def origins(self, hashes: np.ndarray, skip: tuple[str, str] | None = None) -> list[tuple[str, ...]]:
        """For each token hash, the source columns it came from (``skip``: a kept column not to name)."""
        found: list[list[str]] = [[self.origin_labels[i] for i in tags] for tags in self.tokens.tags(hashes)]
        for (table, column), kept in self.kept_tokens.items():
            if (table, column) != skip:
                for position in np.flatnonzero(kept.contains(hashes)).tolist():
                    found[position].append(f"{table}.{column}")
        return [tuple(sorted(set(labels))) for labels in found]

    def _add(self, table: str, column: str, tokens: list[str], masked: bool, origin: str | None = None,
             kinds: list[str] | None = None) -> None:
        if not tokens:
            return
        self.harvested.update(Counter(kinds if kinds is not None else [t.split(":", 1)[0] for t in tokens]))
        hashes = self.hash_tokens(tokens)
        if masked:
            self.tokens.add(hashes, self.origin_id(origin or f"{table}.{column}"))
        else:
            self.kept_tokens.setdefault((table, column), HashSet()).add(hashes)

