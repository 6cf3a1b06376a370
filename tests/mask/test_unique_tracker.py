"""The run-wide collision tracker of ``checked``-unique strategies, against a plain reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.mask.engine import _ascending, _UniqueTracker


def reference_conflicts(earlier: list[tuple[int, int]], outs: list[int], ins: list[int]) -> list[bool]:
    """Position i clashes when an earlier pair (remembered, or earlier in this batch) holds its output
    with another input; within the batch, the first position holding an output decides."""
    taken: dict[int, int] = {}
    for out, inp in earlier:
        taken.setdefault(out, inp)
    first: dict[int, int] = {}
    clash = []
    for out, inp in zip(outs, ins, strict=True):
        owner = first.setdefault(out, inp)
        clash.append((out in taken and taken[out] != inp) or owner != inp)
    return clash


# Few distinct outputs, so equal outputs (with equal and with different inputs) are common.
pairs = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(pairs, max_size=12))
def test_conflicts_match_the_reference_across_batches(batches: list[list[tuple[int, int]]]) -> None:
    tracker = _UniqueTracker()
    remembered: list[tuple[int, int]] = []
    for batch in batches:
        outs = np.array([o for o, _ in batch], dtype=np.uint64)
        ins = np.array([i for _, i in batch], dtype=np.uint64)
        clash = tracker.conflicts(outs, ins)
        assert clash.tolist() == reference_conflicts(remembered, outs.tolist(), ins.tolist())
        keep = ~clash  # what the engine remembers: outputs that passed (redrawn ones come back later)
        tracker.remember(outs[keep], ins[keep])
        remembered += [(int(o), int(i)) for o, i in zip(outs[keep], ins[keep], strict=True)]


@given(st.lists(st.integers(0, 2**64 - 1), max_size=200) | st.lists(st.integers(0, 3), max_size=50))
def test_ascending_is_the_stable_order(values: list[int]) -> None:
    hashes = np.array(values, dtype=np.uint64)
    order, ordered = _ascending(hashes)
    assert order.tolist() == np.argsort(hashes, kind="stable").tolist()
    assert ordered.tolist() == sorted(values)
