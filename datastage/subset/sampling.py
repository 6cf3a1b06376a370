"""Seeded, database-independent hashes of rows: sampling, per-parent limits, row digests.

Every hash is computed from the canonical text of the values (:func:`datastage.source.values.canonical_text`),
so the same row read from SQLite, PostgreSQL or MariaDB hashes the same, whatever the
row order or batch boundaries. That is what makes a seeded sample reproducible on every
refresh and every database.

Example:
    >>> frame = pd.DataFrame({"id": [1, 2, 3]}, dtype=object)
    >>> bool((seeded_hash(frame, 7) == seeded_hash(frame.iloc[::-1].reset_index(drop=True), 7)[::-1]).all())
    True
    >>> len(set(row_digest(pd.DataFrame({"a": [1, 1, None], "b": ["x", "x", "y"]}, dtype=object), ["a", "b"])))
    2
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.util import hash_array

from datastage.source.values import canonical_text

ROW_DIGEST = "_ds_row"  # synthetic row key of tables without a primary or unique key
_NULL = "\x00"
_DIGEST_KEYS = ("datastage-row-k1", "datastage-row-k2")


def row_text(frame: pd.DataFrame) -> np.ndarray:
    """One canonical string per row (columns joined by U+001F, NULL as U+0000)."""
    if frame.shape[1] == 1:
        text = canonical_text(frame.iloc[:, 0])
    else:
        parts = [canonical_text(frame[c]) for c in frame.columns]
        text = np.array(["\x1f".join(_NULL if v is None else v for v in row) for row in zip(*parts, strict=True)],
                        dtype=object)
    return np.where(pd.isna(text), _NULL, text).astype(object)


def seeded_hash(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A uint64 per row from the canonical text of its values and the seed.

    Independent of the database the values came from and of row order.
    """
    key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"[-16:]
    return hash_array(row_text(frame), hash_key=key, categorize=False)


def row_digest(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 128-bit digest (Python int) of every row's values: the row key of a table without keys.

    Identical rows share a digest (they cannot be told apart, so they are selected together).
    """
    if frame.empty:
        return np.zeros(0, dtype=object)
    text = row_text(frame[columns])
    high, low = (hash_array(text, hash_key=k, categorize=False) for k in _DIGEST_KEYS)
    return high.astype(object) * (1 << 64) + low.astype(object)


def limit_per_parent(frame: pd.DataFrame, fk_columns: tuple[str, ...], limit: int, order_columns: list[str],
                     seed: int) -> pd.DataFrame:
    """At most ``limit`` rows per parent, chosen by seeded hash so the choice is reproducible.

    ``frame`` must hold every candidate row of each parent it mentions.
    """
    if frame.empty:
        return frame
    ranked = frame.assign(_ds_rank=seeded_hash(frame[order_columns], seed))
    ranked = ranked.sort_values("_ds_rank", kind="stable")
    keep = ranked.groupby(list(fk_columns), sort=False, dropna=False).cumcount() < limit
    return ranked[keep].drop(columns="_ds_rank")


def lowest_hashes(frames: list[pd.DataFrame], hashes: list[np.ndarray], wanted: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``wanted`` rows with the lowest hash (ties broken by hash only, then stream order)."""
    keys = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    values = np.concatenate(hashes)
    if len(values) > wanted:
        order = np.argsort(values, kind="stable")[:wanted]
        keys, values = keys.iloc[order].reset_index(drop=True), values[order]
    return keys, values
