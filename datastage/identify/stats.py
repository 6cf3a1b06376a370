"""Column statistics: how many distinct values, how long, how random, and what that says.

A column whose sample holds few distinct values, each repeated many times, is a
*categorical*: a race, an eye colour, a state code, an event type. Such a column is never a
direct identifier however many of its values a name dictionary knows ("White", "Black" and
"Brown" are family names). At the other end, a text column whose values are nearly all
distinct, long enough and varied (high entropy) behaves like an identifier: in a person
table, and where its name says id / number / code, it is likely one.

Everything here is counts and shares; no value is kept.

Example:
    >>> races = pd.Series(["white", "black", "asian", "white", "white", "hispanic"] * 50)
    >>> stats = column_stats(races)
    >>> stats.distinct, stats.categorical, stats.identifier_like
    (4, True, False)
    >>> codes = pd.Series([f"NL{i * 7919 % 100000:05d}X" for i in range(300)])
    >>> column_stats(codes).identifier_like
    True
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datastage.identify.batch import Batch

CATEGORICAL_MIN_SAMPLE = 20  # below this, a sample cannot tell a categorical from a small table
CATEGORICAL_MAX_DISTINCT = 50
CATEGORICAL_MAX_SHARE = 0.25  # distinct values per sampled value
IDENTIFIER_MIN_DISTINCT_SHARE = 0.9
UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


@dataclass(frozen=True)
class ColumnStats:
    """Distinctness, length and entropy of a sample of non-blank text values."""

    count: int
    distinct: int
    mean_length: float
    entropy: float  # Shannon entropy of the value distribution, bits
    char_entropy: float  # mean bits per character over the sample's characters
    digit_share: float  # share of values holding a digit
    uuid_share: float  # share of values that are UUIDs

    @property
    def distinct_share(self) -> float:
        return self.distinct / self.count if self.count else 0.0

    @property
    def normalised_entropy(self) -> float:
        """Entropy relative to its maximum for this sample size (1.0: every value distinct)."""
        return self.entropy / math.log2(self.count) if self.count > 1 else 0.0

    @property
    def categorical(self) -> bool:
        """Few distinct values, each repeated: a category, never a direct identifier."""
        if self.count < CATEGORICAL_MIN_SAMPLE:
            return False
        return self.distinct <= max(2, min(CATEGORICAL_MAX_DISTINCT, CATEGORICAL_MAX_SHARE * self.count))

    @property
    def identifier_like(self) -> bool:
        """Nearly unique, long enough and varied: behaves like an identifier (UUID keys excepted)."""
        return (self.count >= CATEGORICAL_MIN_SAMPLE and self.distinct_share >= IDENTIFIER_MIN_DISTINCT_SHARE
                and self.mean_length >= 4 and self.char_entropy >= 2.5 and self.uuid_share < 0.5)

    def to_dict(self) -> dict[str, float | int]:
        """Counts and shares only (evidence: never a value)."""
        return {"sampled": self.count, "distinct": self.distinct, "distinct_share": round(self.distinct_share, 3),
                "mean_length": round(self.mean_length, 1), "entropy": round(self.normalised_entropy, 3)}


def column_stats_of(batch: Batch, counts: np.ndarray) -> ColumnStats:
    """Statistics of a sample given as its distinct values (a batch) and how often each occurs."""
    n = int(counts.sum())
    if not n:
        return ColumnStats(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p = counts[counts > 0] / n
    entropy = float(-(p * np.log2(p)).sum())
    mean_length = float((batch.lengths * counts).sum() / n)
    chars = Counter(batch.text[:20000].replace("\n", ""))
    total = sum(chars.values())
    freq = np.fromiter(chars.values(), dtype=np.float64, count=len(chars)) / total if total else np.zeros(0)
    char_entropy = float(-(freq * np.log2(freq)).sum()) if total else 0.0
    digits = float(counts[batch.digits > 0].sum() / n)
    uuids = float(counts[batch.fullmatch(UUID)].sum() / n) if (batch.lengths >= 32).any() else 0.0
    return ColumnStats(n, int((counts > 0).sum()), mean_length, entropy, char_entropy, digits, uuids)


def column_stats(values: pd.Series) -> ColumnStats:
    """Statistics of ``values`` (non-blank text)."""
    n = len(values)
    if not n:
        return ColumnStats(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    text = values.astype(str)
    counts = text.value_counts(sort=False).to_numpy(dtype=np.float64)
    p = counts / n
    entropy = float(-(p * np.log2(p)).sum())
    lengths = text.str.len().to_numpy(dtype=np.float64)
    joined = "".join(text.iloc[:2000])
    if joined:
        chars = pd.Series(list(joined)).value_counts().to_numpy(dtype=np.float64) / len(joined)
        char_entropy = float(-(chars * np.log2(chars)).sum())
    else:
        char_entropy = 0.0
    digits = float(text.str.contains(r"\d", regex=True).mean())
    uuids = float(text.str.fullmatch(UUID).mean())
    return ColumnStats(n, len(counts), float(lengths.mean()), entropy, char_entropy, digits, uuids)
