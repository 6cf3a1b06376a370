"""The leak check's array kernels find exactly what the patterns find value by value."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.cards import is_test_card, luhn_check_digit
from datastage.identify import reference as pii
from datastage.mask.keys import MaskingKey
from datastage.source.values import canonical_text
from datastage.verify.leaks import tokens as kernels
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.scanner import row_keys, smallest_keys


def _values(seed: int, count: int = 6000) -> list[str]:
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "ar_EG", "pl_PL"])
    fake.seed_instance(seed)
    rng = random.Random(seed)
    pieces = ["12", "345", "-", " ", "+1", "(020)", "7946", "0018", "x12", "ext.", "ß", "AB", "2020-01-02",
              "4111111111111111", "Ann", "Lee", ".", "_", "@", "a@b.co"]
    makers = [fake.email, fake.phone_number, fake.credit_card_number, fake.iban, fake.ssn, fake.name, fake.address,
              lambda: "Straße " + fake.iban(), lambda: "NI AB 12 34 56 C, Weißstraße", lambda: fake.text(80),
              lambda: f"call {fake.phone_number()} or {fake.email()}, card {fake.credit_card_number()}",
              lambda: "x\x00y " + fake.ssn(), lambda: "Zbigniew Brzęczyszczykiewicz", lambda: str(rng.getrandbits(56)),
              lambda: "٤١١١١١١١١١١١١١١١ and ٠١٢٣-٤٥-٦٧٨٩",
              lambda: "000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 123-45-6789",
              lambda: "4111 1111 1111 1111, 5555555555554444 378282246310005 " + fake.credit_card_number(),
              lambda: " ".join(rng.choice(pieces) for _ in range(12)),
              lambda: "Mr. Jan Okonkwo, and Maria  Xochitl\nPapadopoulos met Oluwaseun Quixley.\x1cKai Thorvaldsen"]
    return [rng.choice(makers)() for _ in range(count)]


@pytest.mark.parametrize("seed", [3, 8])
@pytest.mark.parametrize("options", [{}, {"whole_phone": True, "names": True}, {"phones": False}])
def test_tokens_of_a_batch_are_those_of_the_patterns_value_by_value(seed: int, options: dict[str, bool]) -> None:
    values = pd.Series(_values(seed), dtype=object)
    fast = kernels.identifier_tokens(values, **options)
    reference = kernels.value_by_value_tokens(values, **options)
    assert fast.tokens == reference.tokens
    assert fast.origins == reference.origins
    assert fast.kinds == reference.kinds == [token.split(":", 1)[0] for token in reference.tokens]
    assert fast.test_card_origins == reference.test_card_origins
    expected = {"email", "card", "iban", "ssn", "ni"} | ({"phone"} if options.get("phones", True) else set())
    assert expected <= set(fast.kinds) and ("phone" in fast.kinds) == options.get("phones", True)


@pytest.mark.parametrize("mode", ["all", "names", "text"])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_name_pairs_of_a_batch_are_those_of_the_patterns(mode: str, ascii_only: bool) -> None:
    values = _values(5)
    if ascii_only:
        values = [v for v in values if v.isascii()]
    series = pd.Series(values, dtype=object)
    found = kernels.name_bigrams(series, mode)
    assert found == kernels._pattern_bigrams(kernels._joined(series), mode)
    assert found  # the data holds name pairs of every mode


def test_card_checks_agree_with_the_luhn_and_issuer_rules() -> None:
    rng = random.Random(3)
    numbers = ["4111111111111111", "5555555555554444", "٤١١١١١١١١١١١١١١١", "41111111111111x1", "6011111111111117",
               "3530111333300000", "30569309025904", "378282246310005", "6200000000000005", "5000000000000009"]
    numbers += ["".join(rng.choice("0123456789") for _ in range(rng.randint(10, 21))) for _ in range(3000)]
    for prefix in ["4", "51", "55", "2221", "2720", "2721", "34", "37", "6011", "65", "644", "649", "3528", "3589",
                   "300", "305", "306", "36", "38", "39", "62", "50", "56", "57", "58", "67", "63", "1", "9"]:
        for length in range(12, 21):
            for _ in range(10):
                body = prefix + "".join(rng.choice("0123456789") for _ in range(max(0, length - len(prefix) - 1)))
                numbers.append(body + luhn_check_digit(body))
    plausible, test = kernels.card_checks(np.array(numbers, dtype=object))
    assert plausible.tolist() == [pii.plausible_card(n) for n in numbers]
    assert test.tolist() == [pii.plausible_card(n) and is_test_card(n) for n in numbers]
    assert plausible.sum() > 500 and test.sum() >= 3


# Hostile text for the column kernels: tokens with punctuation around them, overlapping and
# adjacent tokens, NULs, other scripts and their digits, blanks str.isspace knows (\x1c-\x1f, NBSP).
_PIECES = ["ann@example.org", "<Bob.Lee@Mail.Example.COM>,", "+44 20 7946 0018", "(415) 555-0134;",
           "4111 1111 1111 1111", "4539148803436467", "078-05-1120", "GB82 WEST 1234 5698 7654 32", "AB 12 34 56 C",
           "Zbigniew Brzęczyszczykiewicz", "Oluwaseun Quixley", "ß", "ﬃ", "٤١١١", "\x00", "\x1c", "\u00a0", "\u2003",
           "\t", " ", "-", ".", "@", "x", "12", "2020-01-02", "a@b.co@c.de", "Ann Lee", "名前", "İstanbul"]
_hostile = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join) | st.text(max_size=40)
_values_st = st.lists(st.one_of(_hostile, st.none(), st.just(""), st.just(" \x1c\u00a0"), st.just(float("nan")),
                                st.integers(-10**20, 10**20), st.just(True)), max_size=40)


def _nonblank_reference(series: pd.Series) -> pd.Series:
    """What ``nonblank_text`` keeps, one value at a time."""
    values = canonical_text(series)
    keep = [i for i, v in enumerate(values) if not pd.isna(v) and not (v == "" or v.isspace())]
    return pd.Series(values[keep], index=series.index[keep], dtype=object)


@settings(max_examples=150, deadline=None)
@given(_values_st)
def test_nonblank_text_keeps_what_a_value_by_value_test_keeps(values: list[object]) -> None:
    series = pd.Series(values, index=[f"r{i}" for i in range(len(values))], dtype=object)
    found, expected = kernels.nonblank_text(series), _nonblank_reference(series)
    assert found.tolist() == expected.tolist() and found.index.tolist() == expected.index.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(_hostile, min_size=1, max_size=30), st.booleans())
def test_tokens_of_hostile_text_are_those_of_the_patterns_value_by_value(values: list[str], names: bool) -> None:
    series = pd.Series(values, dtype=object)
    fast = kernels.identifier_tokens(series, whole_phone=True, names=names)
    reference = kernels.value_by_value_tokens(series, whole_phone=True, names=names)
    assert (fast.tokens, fast.origins, fast.kinds, fast.test_card_origins) == \
        (reference.tokens, reference.origins, reference.kinds, reference.test_card_origins)
    for mode in ("all", "names", "text"):
        assert kernels.name_bigrams(series, mode) == kernels._pattern_bigrams(kernels._joined(series), mode)


def _range_hash_reference(buffer: np.ndarray, start: int, length: int) -> int:
    """The polynomial hash of one byte range (at least its first byte, as the kernel hashes every range)."""
    value = (length * 0x9E3779B97F4A7C15) % 2**64
    for j in range(max(length, 1)):
        value = (value * 0x100000001B3 + int(buffer[start + j])) % 2**64
    return value


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=88, max_size=200), st.lists(st.tuples(st.integers(0, 47), st.integers(0, 40)), max_size=60))
def test_range_hashes_are_those_of_each_range_hashed_alone(data: bytes, ranges: list[tuple[int, int]]) -> None:
    buffer = np.frombuffer(data, dtype=np.uint8)
    starts = np.array([a for a, _ in ranges], dtype=np.int64)
    lengths = np.array([n for _, n in ranges], dtype=np.int64)
    found = kernels._range_hashes(buffer, starts, lengths).tolist()
    assert found == [_range_hash_reference(buffer, a, n) if lengths.max() > 0 else (n * 0x9E3779B97F4A7C15) % 2**64
                     for a, n in ranges]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), max_size=80))
def test_word_runs_are_the_runs_of_true(flags: list[bool]) -> None:
    starts, lengths = kernels._word_runs(np.array(flags, dtype=bool))
    runs = [(i, len(list(group))) for i, (flag, group) in
            zip(np.cumsum([0] + [len(list(g)) for _, g in itertools.groupby(flags)])[:-1].tolist(),
                itertools.groupby(flags)) if flag]
    assert list(zip(starts.tolist(), lengths.tolist())) == runs


def _row_keys_reference(frame: pd.DataFrame, rows: pd.Index, key_columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    """The findings' row keys made one value at a time."""
    chosen = frame.loc[rows]
    parts = []
    for column in key_columns:
        values = chosen[column].to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) == "integer":
            parts.append([None if pd.isna(v) else int(v) for v in values])
        else:
            parts.append(canonical_text(chosen[column]).tolist())
    return smallest_keys(list(zip(*parts, strict=True)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-2**70, 2**70), st.none(), st.booleans(),
                          st.sampled_from([np.int64(7), np.int32(-3), "7", 2.0])), min_size=1, max_size=60),
       st.data())
def test_row_keys_of_integer_keys_are_those_made_value_by_value(keys: list[object], data: st.DataObject) -> None:
    codes = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 3), _hostile), min_size=len(keys),
                               max_size=len(keys)))
    frame = pd.DataFrame({"id": pd.Series(keys, dtype=object), "code": pd.Series(codes, dtype=object)})
    frame.index = frame.index * 2 + 1
    rows = frame.index[sorted(data.draw(st.sets(st.integers(0, len(keys) - 1), min_size=1)))]
    for key in (("id",), ("code", "id")):
        assert row_keys(frame, rows, key) == _row_keys_reference(frame, rows, key)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_values_st.map(lambda v: v[0] if v else None), st.one_of(st.none(), st.integers(), _hostile),
                          st.one_of(st.none(), st.integers(-5, 5))), min_size=1, max_size=30),
       st.sampled_from([(), ("id",), ("id", "code")]))
def test_value_hashes_bound_once_per_batch_are_those_bound_per_column(rows: list[tuple[object, ...]],
                                                                      binding: tuple[str, ...]) -> None:
    frame = pd.DataFrame(rows, columns=["note", "code", "id"], dtype=object)
    frame.index = pd.Index([f"r{i}" for i in range(len(rows))])  # not a range: rows are found by label
    index = LeakIndex(MaskingKey(b"a test key, not a real one, 32 bytes", source="test"), {}, {}, {},
                      bindings={"t": binding}, all_columns={"t": ("note", "code", "id")})
    once: dict[tuple[str, ...], np.ndarray] = {}
    for column in ("note", "code"):
        each = index.value_hashes("t", frame, column, frame)
        assert index.value_hashes("t", frame, column, frame, once).tolist() == each.tolist()
        text = kernels.nonblank_text(frame[column])
        assert index.value_hashes("t", frame, column, frame, once, text).tolist() == each.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text("0123456789", min_size=12, max_size=20),
                          st.text("0123456789x -٤\x00", min_size=12, max_size=20),
                          st.sampled_from(["4111111111111111", "4539148803436467", "378282246310005"])), max_size=40))
def test_card_checks_of_random_digit_strings_are_those_of_the_rules(numbers: list[str]) -> None:
    plausible, test = kernels.card_checks(np.array(numbers, dtype=object))
    assert plausible.tolist() == [pii.plausible_card(n) for n in numbers]
    assert test.tolist() == [pii.plausible_card(n) and is_test_card(n) for n in numbers]


_EMAIL_PIECES = ["a", "Z", "0", "9", ".", "-", "_", "%", "+", "'", "@", "..", "co", "ORG", "x1", "@@", " ", "\n",
                 "é", "٣", "\x00", "4111111111111111", "+1 415 555 0142"]
_email_like = st.lists(st.sampled_from(_EMAIL_PIECES), min_size=1, max_size=10).map("".join)


@settings(max_examples=300, deadline=None)
@given(_email_like)
def test_a_value_the_address_pattern_matches_whole_holds_that_one_match_alone(value: str) -> None:
    matches = [m.span() for m in pii.EMAIL_RE.finditer(value)]
    whole = kernels._whole_emails([value], np.array([True])).tolist() == [0]
    assert whole == (pii.EMAIL_RE.fullmatch(value) is not None)
    if whole:
        assert matches == [(0, len(value))]


@settings(max_examples=100, deadline=None)
@given(st.lists(_email_like | _hostile, min_size=1, max_size=30))
def test_tokens_of_address_like_text_are_those_of_the_patterns_value_by_value(values: list[str]) -> None:
    series = pd.Series(values + values[:3], dtype=object)  # some shapes held by several values
    fast = kernels.identifier_tokens(series, whole_phone=True)
    reference = kernels.value_by_value_tokens(series, whole_phone=True)
    assert (fast.tokens, fast.origins, fast.kinds, fast.test_card_origins) == \
        (reference.tokens, reference.origins, reference.kinds, reference.test_card_origins)
