"""A batch's per-value counts equal those counted value by value, in a batch and in every sub-batch taken from it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.identify import prefilter
from datastage.identify.batch import Batch

TEXT = st.text(alphabet=st.sampled_from(list("09aZ -@.:,$_+()#'\t\n\x01é٣\u2003ß")), max_size=12)
VALUES = st.lists(TEXT, max_size=40)


def _expected(values: list[str]) -> dict[str, list[int]]:
    cleaned = [v.replace("\n", " ").replace("\x01", " ") for v in values]
    return {
        "digits": [sum("0" <= c <= "9" for c in v) for v in cleaned],
        "letters": [sum((c.isascii() and c.isalpha()) or ord(c) >= 0xC0 for c in v) for v in cleaned],
        "blanks": [v.count(" ") for v in cleaned],
        **{f"count {char}": [v.count(char) for v in cleaned] for char in "@.:,$_+(\t"},
    }


def _counts(batch: Batch) -> dict[str, list[int]]:
    out = {name: getattr(batch, name).tolist() for name in ("digits", "letters", "blanks")}
    out.update({f"count {char}": batch.count_of(char).tolist() for char in "@.:,$_+(\t"})
    return out


@settings(max_examples=150, deadline=None)
@given(VALUES, st.data())
def test_counts_per_value_match_counting_each_value(values: list[str], data: st.DataObject) -> None:
    batch = Batch(values)
    assert _counts(batch) == _expected(values)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    # Counted before the take (inherited by the sub-batch) and not (counted afresh): the same counts.
    if len(values) >= 1:
        batch.could_match(r"\d+@", anchored=True)  # computes the profile the counts of tracked characters read
    sub = batch.take(mask)
    chosen = [v for v, keep in zip(values, mask.tolist(), strict=True) if keep]
    assert _counts(sub) == _expected(chosen)
    assert _counts(Batch(values).take(mask)) == _expected(chosen)
    if chosen and "_profile" in sub.__dict__:
        inherited = sub.__dict__["_profile"]
        fresh = Batch(chosen)._profile
        for got, want in zip(inherited, fresh, strict=True):
            assert np.array_equal(got, want)


def test_tracked_characters_are_read_from_the_profile_once_it_is_counted() -> None:
    batch = Batch(["a@b.c", "x", "@@"])
    before = batch.count_of("@").tolist()
    batch.could_match(r"\w+@\w+", anchored=True)
    assert "@" in prefilter.TRACKED
    assert batch.count_of("@").tolist() == before == [1, 0, 2]
    assert np.shares_memory(batch.count_of("@"), batch._profile[0])
