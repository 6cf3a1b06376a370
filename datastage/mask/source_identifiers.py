"""The source's identifiers, known before any column is masked, so a mask never emits a real one.

Identifier-kind strategies (``phone``, ``email``, ``person.email``, ``iban``,
``card_number``, ``tokenize`` on text, and Faker providers of those kinds) must not
output a value that is an identifier of the same kind somewhere in the source: another
customer's real phone number is a leak even though it is "masked". Before the copy,
:meth:`SourceIdentifiers.collect` reads every source column masked by such a strategy
(whole tables, not only the subset) and keeps keyed hashes of the values' normal form
(:func:`normal_form`: phone digits, lower-cased e-mail, compact IBAN ...) per kind, in a
:class:`HashSet`: a sorted uint64 array, eight bytes per distinct identifier. The masking
engine then redraws any output found in the set (:mod:`datastage.mask.redraw`).

The kind of ``tokenize`` is per domain (``token/<domain>``): a tokenized key avoids the
keys of its own domain only. Integer columns are left out: a surrogate number identifies
nobody outside the database, and dense integer keys fill their whole output space.

Example:
    >>> hashes = HashSet()
    >>> hashes.add(np.array([3, 1, 3], dtype=np.uint64))
    >>> len(hashes), hashes.contains(np.array([1, 2], dtype=np.uint64)).tolist()
    (2, [True, False])
    >>> normal_form("phone", np.array(["+1 (415) 555-0142"], dtype=object)).tolist()
    ['4155550142']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from datastage.mask.contract import values_text
from datastage.mask.keys import MaskingKey
from datastage.settings import DEFAULT_BATCH_SIZE
from datastage.source.schema import TableInfo
from datastage.subset.extract import stream_rows

if TYPE_CHECKING:
    from datastage.mask.policy import ColumnRule
    from datastage.mask.resolve import ResolvedPolicy

IDENTIFIER_DOMAIN = "identifiers"
STRATEGY_KINDS = {"phone": "phone", "email": "email", "person.email": "email", "iban": "iban",
                  "card_number": "card"}
FAKE_PROVIDER_KINDS = {
    **dict.fromkeys(("email", "free_email", "company_email", "safe_email", "ascii_email", "ascii_free_email",
                     "ascii_company_email", "ascii_safe_email"), "email"),
    **dict.fromkeys(("phone_number", "msisdn", "basic_phone_number"), "phone"),
    "iban": "iban", "credit_card_number": "card", "ssn": "national_id",
}
# Kinds compared by their last digits only (the leak check compares a phone number's last ten).
DIGIT_KINDS = {"phone": 10, "card": 19, "national_id": 19}
WIDE = 64  # longer values take the (slower) regular-expression path


class HashSet:
    """A growing set of uint64 hashes, compacted to a sorted unique array."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._sorted = np.zeros(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes):
            self._parts.append(np.asarray(hashes, dtype=np.uint64))
            self._size += len(hashes)
            if self._size > 4 * max(len(self._sorted), 1 << 16):
                self._compact()

    def _compact(self) -> None:
        if self._parts:
            merged = np.concatenate([self._sorted, *self._parts])
            merged.sort()
            self._sorted = merged[np.concatenate(([True], merged[1:] != merged[:-1]))] if len(merged) else merged
            self._parts, self._size = [], 0

    def __len__(self) -> int:
        self._compact()
        return len(self._sorted)

    def array(self) -> np.ndarray:
        """Every hash in the set, sorted, each once."""
        self._compact()
        return self._sorted

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        self._compact()
        if not len(self._sorted) or not len(hashes):
            return np.zeros(len(hashes), dtype=bool)
        # Look the hashes up in sorted order: the binary searches then walk memory forwards.
        order = np.argsort(hashes)
        ordered = hashes[order]
        pos = np.searchsorted(self._sorted, ordered)
        pos[pos == len(self._sorted)] = 0
        found = np.empty(len(hashes), dtype=bool)
        found[order] = self._sorted[pos] == ordered
        return found


def identifier_kind(rule: ColumnRule) -> str | None:
    """The identifier kind a rule's outputs must avoid in the source, or None (not an identifier strategy)."""
    name = rule.strategy or ""
    if name == "tokenize":
        category = rule.column_info.category if rule.column_info is not None else "text"
        return f"token/{rule.domain}" if category == "text" else None
    if name.startswith("fake."):
        return FAKE_PROVIDER_KINDS.get(name.split(".", 1)[1])
    return STRATEGY_KINDS.get(name)


def normal_form(kind: str, text: np.ndarray) -> np.ndarray:
    """The form in which two identifiers of ``kind`` are the same (object array of str; '' = none)."""
    series = pd.Series(text, dtype=object)
    if kind in DIGIT_KINDS:
        return series.str.replace(r"\D", "", regex=True).str[-DIGIT_KINDS[kind]:].to_numpy(dtype=object)
    if kind == "email":
        return series.str.strip().str.lower().to_numpy(dtype=object)
    if kind == "iban":
        return series.str.replace(r"[\s-]", "", regex=True).str.upper().to_numpy(dtype=object)
    return series.to_numpy(dtype=object)


def digit_key(text: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """(the number the last ``keep`` digits of each value spell, how many of them there are), vectorised.

    >>> digit_key(np.array(["+1 (415) 555-0142", "no digits", "007"], dtype=object), 10)
    (array([4155550142,          0,          7], dtype=uint64), array([10,  0,  3]))
    """
    n = len(text)
    lengths = np.fromiter(map(len, text), dtype=np.int64, count=n)
    width = int(lengths.max()) if n else 0
    if width == 0 or width > WIDE:
        return _digit_key_slow(text, keep)
    codes = np.ascontiguousarray(np.array(text, dtype=f"U{width}").view(np.uint32).reshape(n, width).T)
    if (codes > 127).any():  # digits of other scripts count too, as in the leak check
        return _digit_key_slow(text, keep)
    number = np.zeros(n, dtype=np.uint64)
    scale = np.ones(n, dtype=np.uint64)
    count = np.zeros(n, dtype=np.int64)
    for column in codes[::-1]:  # from the last character: Horner's rule backwards
        digit = column - np.uint32(48)  # wraps around below "0"
        taken = (digit < 10) & (count < keep)
        if taken.any():
            number += np.where(taken, digit.astype(np.uint64) * scale, np.uint64(0))
            scale = np.where(taken, scale * np.uint64(10), scale)
            count += taken
    return number, count


def _digit_key_slow(text: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`digit_key` through :func:`normal_form` (any script's digits, any length)."""
    digits = pd.Series(text, dtype=object).str.replace(r"\D", "", regex=True).str[-keep:]
    count = digits.str.len().to_numpy(dtype=np.int64)
    number = np.array([int(d) if d else 0 for d in digits], dtype=np.uint64)
    return number, count


@dataclass
class SourceIdentifiers:
    """Keyed hashes of the source's identifiers, one :class:`HashSet` per kind."""

    key: MaskingKey
    kinds: dict[str, HashSet] = field(default_factory=dict)

    def hashes(self, kind: str, values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keyed hashes of the values' normal forms, which values have one).

        Digit kinds hash the number their kept digits spell and how many there are (equal
        exactly when the :func:`normal_form` strings are), without building those strings.
        """
        domain = f"{IDENTIFIER_DOMAIN}/{kind}"
        text = values_text(values)
        if kind in DIGIT_KINDS:
            keep = DIGIT_KINDS[kind]
            number, count = digit_key(text, keep)
            if keep <= 17:  # number * 32 + count stays below 2**64: one hash per value
                return self.key.hash_uint64(domain, number * np.uint64(32) + count.astype(np.uint64)), count > 0
            hashes = np.zeros(len(number), dtype=np.uint64)
            for size in np.unique(count).tolist():
                rows = count == size
                hashes[rows] = self.key.hash_uint64(f"{domain}/{size}", number[rows])
            return hashes, count > 0
        form = normal_form(kind, text)
        present = np.fromiter(map(bool, form), dtype=bool, count=len(form))
        return self.key.hash_text(domain, form), present

    def add(self, kind: str, values: pd.Series | np.ndarray) -> None:
        """Record ``values`` (non-NULL) as source identifiers of ``kind``."""
        hashes, present = self.hashes(kind, values)
        self.kinds.setdefault(kind, HashSet()).add(hashes[present])

    def contains(self, kind: str, values: pd.Series | np.ndarray) -> np.ndarray:
        """Which ``values`` (non-NULL) are identifiers of ``kind`` in the source."""
        found = self.kinds.get(kind)
        if found is None or not len(values):
            return np.zeros(len(values), dtype=bool)
        hashes, present = self.hashes(kind, values)
        return found.contains(hashes) & present

    def __len__(self) -> int:
        return sum(len(s) for s in self.kinds.values())

    @classmethod
    def collect(cls, conn: Connection, tables: Iterable[TableInfo], policy: ResolvedPolicy, key: MaskingKey,
                batch_size: int = DEFAULT_BATCH_SIZE) -> SourceIdentifiers:
        """The pre-pass: every value of every source column masked by an identifier-kind strategy."""
        found = cls(key)
        for table in tables:
            kinds = {r.column: kind for r in policy.masked_columns(table.key) if (kind := identifier_kind(r))}
            if not kinds:
                continue
            for batch in stream_rows(conn, table, list(kinds), batch_size=batch_size):
                for column, kind in kinds.items():
                    values = batch[column]
                    found.add(kind, values[values.notna()])
        return found
