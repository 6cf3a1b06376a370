"""The regex prefilter: the bounds a pattern's syntax tree gives never rule out a value the pattern matches."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd

from datastage.identify import batch as batch_module
from datastage.identify.batch import Batch
from datastage.identify.values import analyse, contains_masks, detect

POOL = ["Emma", "Olivia Smith", " ann@example.com ", "SW1A 1AA", "active", "999-33-2827", "+44 20 7946 0958",
        "(415) 555-0142", "4539 1488 0343 6467", "GB82 WEST 1234 5698 7654 32", "TRK000000000123", "10.0.0.1",
        "12 Main Street", "Margorie48", "2021-03-04", "AB123456C", "$2b$12$abcdefghijklmnopqrstuv",
        "1HGCM82633A004352", "00:1A:2B:3C:4D:5E", "fe80::1", "Hauptstraße 5", "756.1234.5678.97", "X1234567",
        "12/31/1999", "d41d8cd98f00b204e9800998ecf8427e", "https://x.org/in/ann", "K1A 0B1", "12345-6789"]
ALPHABET = list("0123456789") * 3 + list("abcxyzKSsiIABCZk") + list(" -/.:@+()_,$#'*\t") + \
    ["é", "٣", "\u212a", "ſ", "ı", "İ", "\u2003", "ß", "µ", "ª", "\x1c", "’"]
HINTS = frozenset({"phone", "passport", "drivers_licence", "medical_record_number", "account_number",
                   "licence_number", "url", "postcode", "secret", "first_name", "vehicle_id", "device_id"})


def _detector_patterns(monkeypatch: object) -> set[tuple[str, int, bool]]:
    seen: set[tuple[str, int, bool]] = set()
    original = Batch._scan

    def recording(self: Batch, pattern: str, flags: int, anchored: bool) -> np.ndarray:
        seen.add((pattern, flags, anchored))
        return original(self, pattern, flags, anchored)

    monkeypatch.setattr(batch_module.Batch, "_scan", recording)  # type: ignore[attr-defined]
    values = pd.Series(POOL * 3, dtype=object)
    for hints in (frozenset(), HINTS):
        detect(values, hints)
        analyse(values, hints, dates=True)
        analyse(pd.Series([f"a b c d e f {v}" for v in POOL] * 3, dtype=object), hints, json=True)
    contains_masks(values)
    return seen


def _mutated(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        chars = list(rng.choice(POOL))
        for _ in range(rng.randrange(4)):
            where = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5 and where < len(chars):
                chars[where] = rng.choice(ALPHABET)
            else:
                chars.insert(where, rng.choice(ALPHABET))
        out.append("".join(chars))
    out += ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 20))) for _ in range(count // 2)]
    return out


def test_no_value_a_detector_pattern_matches_is_ruled_out(monkeypatch: object) -> None:
    patterns = _detector_patterns(monkeypatch)
    assert len(patterns) > 40
    batch = Batch(_mutated(random.Random(7), 4000))
    for pattern, flags, anchored in sorted(patterns):
        maybe = batch.could_match(pattern, flags, anchored)
        assert maybe is not None, pattern
        matched = batch._scan_re(pattern, flags, anchored)
        assert not (matched & ~maybe).any(), (pattern, [batch.values[i] for i in np.flatnonzero(matched & ~maybe)])


def test_case_folding_and_other_scripts_are_never_ruled_out() -> None:
    values = ["\u212a12", "ſ12", "k12", "٣٣٣-٣٣", "a\u2003b", "TRK000000000123"] * 5
    batch = Batch(values)
    for pattern, flags in ((r"k\d+", re.IGNORECASE), (r"s\d{2}", re.IGNORECASE), (r"\d{3}-\d{2}", 0),
                           (r"\w\s\w", 0), (r"[^\W\d_]+\d*", 0), (r"(\d)\1+", 0)):
        for anchored in (True, False):
            maybe = batch.could_match(pattern, flags, anchored)
            assert maybe is not None
            truth = np.array([(re.fullmatch if anchored else re.search)(pattern, v, flags) is not None
                              for v in values])
            assert not (truth & ~maybe).any(), pattern
            assert np.array_equal(batch.fullmatch(pattern, flags) if anchored else batch.contains(pattern, flags),
                                  truth)
    assert not batch.could_match(r"\d{3}-\d{2}-\d{4}", 0, True)[-1]  # a code with letters is no SSN
