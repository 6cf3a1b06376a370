"""Compact sets of row keys, filled in deltas while the subset closure runs.

Single-column integer keys live in sorted ``int64`` arrays (8 bytes a key, merged in
levels so adding many small deltas stays cheap); other single-column keys (text, UUID,
row digests) live bare in a Python set, composite keys as tuples.

Example:
    >>> keys = KeySet(("id",), integer=True)
    >>> new = keys.add(pd.DataFrame({"id": [3, 1, 3]}))
    >>> sorted(new["id"]), len(keys), keys.add(pd.DataFrame({"id": [1, 2]}))["id"].tolist()
    ([1, 3], 2, [2])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd


class KeySet:
    """A growing set of key tuples over ``columns``."""

    def __init__(self, columns: Sequence[str], integer: bool = False) -> None:
        self.columns = tuple(columns)
        self.integer = integer and len(self.columns) == 1
        self._single = len(self.columns) == 1  # one column: values are stored bare, not in 1-tuples
        self._levels: list[np.ndarray] = []
        self._set: set[Any] = set()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    # -- integer representation -------------------------------------------------------
    def _int_values(self, frame: pd.DataFrame) -> np.ndarray | None:
        column = frame[self.columns[0]]
        try:
            values = np.asarray(column.tolist(), dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            return None
        return values

    def _int_contains(self, values: np.ndarray) -> np.ndarray:
        found = np.zeros(len(values), dtype=bool)
        for level in self._levels:
            pos = np.searchsorted(level, values)
            pos[pos == len(level)] = 0
            found |= level[pos] == values
        return found

    def _int_add(self, values: np.ndarray) -> np.ndarray:
        """Add ``values``; return a mask of the positions holding a new key (first occurrence only)."""
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        unique = ordered[first]
        fresh = ~self._int_contains(unique) if self._levels else np.ones(len(unique), dtype=bool)
        new = unique[fresh]
        if len(new):
            self._levels.append(new)
            self._size += len(new)
            # Merge levels while the newest is at least half the size of the one before it.
            while len(self._levels) > 1 and len(self._levels[-1]) * 2 >= len(self._levels[-2]):
                last = self._levels.pop()
                self._levels[-1] = np.union1d(self._levels[-1], last)
        keep_sorted = np.zeros(len(ordered), dtype=bool)
        keep_sorted[np.flatnonzero(first)[fresh]] = True
        keep = np.empty(len(values), dtype=bool)
        keep[order] = keep_sorted
        return keep

    def _to_generic(self) -> None:
        for level in self._levels:
            self._set.update(int(v) for v in level)
        self._levels = []
        self.integer = False

    # -- generic representation -------------------------------------------------------
    def _tuples(self, frame: pd.DataFrame) -> list[Any]:
        if self._single:
            return frame[self.columns[0]].tolist()
        return list(zip(*(frame[c].tolist() for c in self.columns), strict=True))

    # -- public ---------------------------------------------------------------------
    def contains(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask: which rows of ``frame`` (key columns) are already in the set."""
        if frame.empty:
            return np.zeros(0, dtype=bool)
        present = frame[list(self.columns)].notna().all(axis=1).to_numpy()
        if not present.all():
            result = np.zeros(len(frame), dtype=bool)
            result[present] = self.contains(frame[present])
            return result
        if self.integer:
            values = self._int_values(frame)
            if values is not None:
                return self._int_contains(values)
            self._to_generic()
        members = self._set
        return np.fromiter((t in members for t in self._tuples(frame)), dtype=bool, count=len(frame))

    def add(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the keys of ``frame``; return the rows of ``frame`` whose keys were new (first occurrence)."""
        if frame.empty:
            return frame
        if self.integer:
            values = self._int_values(frame)
            if values is not None:
                return frame[self._int_add(values)]
            self._to_generic()
        keep = np.zeros(len(frame), dtype=bool)
        members = self._set
        for i, item in enumerate(self._tuples(frame)):
            if item not in members:
                members.add(item)
                keep[i] = True
        self._size = len(members)
        return frame[keep]

    def frame(self) -> pd.DataFrame:
        """All keys as a DataFrame with one column per key column."""
        if self.integer:
            values = np.concatenate(self._levels) if self._levels else np.zeros(0, dtype=np.int64)
            return pd.DataFrame({self.columns[0]: np.sort(values).astype(object)})
        if self._single:
            return pd.DataFrame({self.columns[0]: pd.Series(sorted(self._set, key=_sort_one), dtype=object)})
        rows = sorted(self._set, key=_sort_key)
        return pd.DataFrame(rows, columns=list(self.columns), dtype=object)

    def batches(self, size: int) -> Iterator[pd.DataFrame]:
        """Keys in sorted batches of at most ``size``."""
        keys = self.frame()
        for start in range(0, len(keys), size):
            yield keys.iloc[start:start + size]


def _sort_one(value: Any) -> str:
    return f"{type(value).__name__}:{value}"


def _sort_key(item: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(_sort_one(v) for v in item)
