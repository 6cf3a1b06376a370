"""The run-wide collision tracker of ``checked``-unique strategies, against a plain reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.mask.engine import _ascending, _UniqueTracker


def reference_conflicts(earlier: list[tuple[int, int]], outs: list[int], ins: list[int]) -> list[bool]:
    """Position i clashes when its output belongs to another input: the one it was remembered with
    (the first remembered), else the first position of this batch holding it."""
    taken: dict[int, int] = {}
    for out, inp in earlier:
        taken.setdefault(out, inp)
    first: dict[int, int] = {}
    clash = []
    for out, inp in zip(outs, ins, strict=True):
        owner = taken[out] if out in taken else first.setdefault(out, inp)
        clash.append(owner != inp)
    return clash


def test_an_input_keeps_the_output_it_was_given_whatever_collides_with_it_later() -> None:
    """A parent key masked in one table keeps its output in the child table, where a new input that
    collides with it comes first in the batch: only the newcomer is redrawn."""
    tracker = _UniqueTracker()
    tracker.remember(np.array([7], dtype=np.uint64), np.array([100], dtype=np.uint64))
    clash = tracker.conflicts(np.array([7, 7, 9], dtype=np.uint64), np.array([200, 100, 300], dtype=np.uint64))
    assert clash.tolist() == [True, False, False]


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


def test_conflicts_match_the_reference_with_keyed_hashes_over_many_batches() -> None:
    """Uniform 64-bit outputs (as keyed hashes are), enough of them that the table of marked slots
    grows several times and the runs are merged; each batch repeats earlier outputs, under their own
    input and under another one, and repeats outputs within itself."""
    rng = np.random.default_rng(20261204)
    tracker = _UniqueTracker()
    taken: dict[int, int] = {}
    earlier_outs = np.zeros(0, dtype=np.uint64)
    earlier_ins = np.zeros(0, dtype=np.uint64)
    for batch in range(30):
        outs = rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64, endpoint=True)
        ins = rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64, endpoint=True)
        if batch:
            again = rng.integers(0, len(earlier_outs), 200)
            outs[:200] = earlier_outs[again]
            ins[:100] = earlier_ins[again[:100]]  # the same input again: no clash; the others clash
        outs[300:310] = outs[310:320]  # equal outputs within the batch, under different inputs
        clash = tracker.conflicts(outs, ins)
        first: dict[int, int] = {}
        expected = [(taken[o] if o in taken else first.setdefault(o, i)) != i
                    for o, i in zip(outs.tolist(), ins.tolist(), strict=True)]
        assert clash.tolist() == expected
        assert clash[310:320].all() and (not batch or (clash[100:200].all() and not clash[:100].any()))
        keep = ~clash
        tracker.remember(outs[keep], ins[keep])
        for o, i in zip(outs[keep].tolist(), ins[keep].tolist(), strict=True):
            taken.setdefault(o, i)
        earlier_outs = np.concatenate([earlier_outs, outs[keep]])
        earlier_ins = np.concatenate([earlier_ins, ins[keep]])


@given(st.lists(st.integers(0, 2**64 - 1), max_size=200) | st.lists(st.integers(0, 3), max_size=50))
def test_ascending_is_the_stable_order(values: list[int]) -> None:
    hashes = np.array(values, dtype=np.uint64)
    order, ordered = _ascending(hashes)
    assert order.tolist() == np.argsort(hashes, kind="stable").tolist()
    assert ordered.tolist() == sorted(values)


def test_a_masked_key_is_the_same_in_parent_and_child_in_either_order() -> None:
    """``hash`` keys in a small output space collide and are redrawn; a child table masked before its
    parent still agrees with it on every key it references."""
    import pandas as pd
    import sqlalchemy as sa

    from datastage.mask.engine import MaskingEngine
    from datastage.mask.keys import MaskingKey
    from datastage.mask.policy import policy_from_text
    from datastage.mask.resolve import resolve_policy
    from datastage.source.schema import reflect

    with sa.create_engine("sqlite://").connect() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (code TEXT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, code TEXT REFERENCES parent (code))")
        rules = "version: 1\ntables:\n  parent:\n    code: {strategy: hash, length: 3}\n"
        policy = resolve_policy(policy_from_text(rules), reflect(conn))
    key = MaskingKey(b"a key for the parent and child test", source="test")
    parents = pd.DataFrame({"code": [f"P{i:04d}" for i in range(400)]})
    children = pd.DataFrame({"id": range(200), "code": [f"P{i:04d}" for i in range(0, 400, 2)]})
    for first, second in (("parent", "child"), ("child", "parent")):
        engine = MaskingEngine(policy, key)
        frames = {"parent": parents, "child": children}
        masked = {name: engine.mask_batch(name, frames[name])[0] for name in (first, second)}
        by_key = dict(zip(parents["code"], masked["parent"]["code"], strict=True))
        assert masked["parent"]["code"].is_unique, first
        assert [by_key[c] for c in children["code"]] == masked["child"]["code"].tolist(), first
