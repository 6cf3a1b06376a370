"""Whole-column kernels give exactly what their per-value definitions give."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.mask.arrays import ascii_objects, code_objects, text_hashes, text_lengths
from datastage.mask.engine import _factorize, _identity
from datastage.mask.keys import MaskingKey
from datastage.mask.strategies.basic import _card_one, _cards
from datastage.mask.strategies.formats import phone_cuts, split_phone

PHONE_CHARS = st.text(alphabet=" \t\x0b\x1c\x1f+0012347689a-().x", max_size=24)
CARD_CHARS = st.text(alphabet="0123456789 -x/", max_size=30)


def _codes(values: list[str], pad: int = 0) -> np.ndarray:
    width = max([len(v) for v in values] + [1])
    codes = np.zeros((len(values), width + pad), dtype=np.uint32)
    codes[:, :width] = np.array(values, dtype=f"U{width}").view(np.uint32).reshape(len(values), width)
    return codes


@settings(max_examples=200, deadline=None)
@given(st.lists(PHONE_CHARS, min_size=1, max_size=40))
def test_phone_cuts_match_the_pattern(values: list[str]) -> None:
    cuts = phone_cuts(_codes(values, pad=3))
    assert cuts.tolist() == [len(split_phone(v)[0]) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(CARD_CHARS, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_card_numbers_match_the_per_value_luhn(values: list[str], rnd: random.Random) -> None:
    digits = np.array([[rnd.randrange(10) for _ in range(18)] for _ in values], dtype=np.uint8)
    lengths = np.array([len(v) for v in values])
    out = _cards(_codes(values).astype(np.uint8), lengths, digits)
    expected = [_card_one(v, "".join(map(str, row))) for v, row in zip(values, digits.tolist(), strict=True)]
    assert out.tolist() == expected


def test_strings_from_matrices_keep_nul_characters_and_unicode() -> None:
    codes = np.array([[104, 0, 0], [233, 105, 0], [0, 0, 0]], dtype=np.uint32)
    assert code_objects(codes, np.array([2, 2, 1])).tolist() == ["h\x00", "éi", "\x00"]
    rows = np.frombuffer(b"abcdef", dtype=np.uint8).reshape(2, 3)
    assert ascii_objects(rows).tolist() == ["abc", "def"]


def test_lengths_and_hashes_of_text_without_utf8() -> None:
    values = np.array(["ab", "\ud800x", "äöü"], dtype=object)
    assert text_lengths(values).tolist() == [2, 2, 3]
    assert text_hashes(values) is None


def test_identity_of_a_value_is_the_same_in_every_batch() -> None:
    key = MaskingKey(b"a test key, not a real one, 32 bytes", source="test")
    plain = _identity(pd.Series(["a@x.org", "b@x.org"], dtype=object), key)
    mixed = _identity(pd.Series(["\ud800", "a@x.org", "b@x.org"], dtype=object), key)
    assert mixed[1:].tolist() == plain.tolist()
    assert len(set(mixed.tolist())) == 3


def test_factorize_groups_equal_strings_in_first_appearance_order() -> None:
    codes, uniques = _factorize(pd.Series(["b", "a", "b", "c", "a"], dtype=object))
    assert codes.tolist() == [0, 1, 0, 2, 1]
    assert uniques.tolist() == ["b", "a", "c"]
    codes, uniques = _factorize(pd.Series(["\ud800", "a", "\ud800"], dtype=object))
    assert codes.tolist() == [0, 1, 0]
    assert uniques.tolist() == ["\ud800", "a"]
