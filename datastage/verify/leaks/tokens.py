"""Identifier tokens in text values: what the leak check hashes on the source side and searches for in the target.

A batch of values is joined into one text (``SEP`` between values, which no pattern
matches), each pattern runs once over the values that could hold a match, and every
token records which value it came from. Tokens are ``kind:token`` strings, normalised
(e-mail lower-cased, digits only for cards, phones, SSNs), so the same identifier
matches however it was written.

Example:
    >>> identifier_tokens(pd.Series(["card 4539 1488 0343 6467"], dtype=object)).tokens
    ['card:4539148803436467']
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from datastage.cards import is_test_card
from datastage.identify import reference as pii
from datastage.source.values import canonical_text


def nonblank_text(series: pd.Series) -> pd.Series:
    """Non-NULL, non-blank canonical text of a column, index kept (an empty string reveals nothing)."""
    values = canonical_text(series)
    present = ~pd.isna(values)
    if not present.all():
        values, index = values[present], series.index[present]
    else:
        index = series.index
    blank = np.fromiter(map(str.isspace, values), dtype=bool, count=len(values)) | (values == "")
    if blank.any():
        values, index = values[~blank], index[~blank]
    return pd.Series(values, index=index, dtype=object)


SEP = "\x00"  # joins a batch's values into one text: no pattern matches it, so none spans two values
WHOLE_PHONE = re.compile(rf"(?<![^{SEP}])(?:{pii.PHONE_SHAPE})(?![^{SEP}])", re.IGNORECASE)
CAPITALISED = re.compile(r"\b[A-Z][^\W\d_]+\b")
NON_DIGITS = re.compile(rf"[^\d{SEP}]")


@dataclass
class Tokens:
    """Identifier tokens (``kind:token``) found in a batch of text, the value each came from, and
    the values holding test card numbers."""

    tokens: list[str] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    test_card_origins: list[int] = field(default_factory=list)

    @property
    def test_cards(self) -> int:
        return len(self.test_card_origins)

    def series(self) -> pd.Series:
        return pd.Series(self.tokens, dtype=object)


def _items(values: pd.Series) -> list[str]:
    """The values as strings that hold no ``SEP`` (one inside a value becomes a space)."""
    items: list[str] = values.tolist()
    if SEP.join(items).count(SEP) != len(items) - 1:
        items = [item.replace(SEP, " ") for item in items]
    return items


def _joined(values: pd.Series) -> str:
    """The values joined by ``SEP``, so positions in the text map to values."""
    return SEP.join(_items(values))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _origins(text: str, positions: list[int]) -> np.ndarray:
    """Which value of a ``SEP``-joined text each character position belongs to."""
    if not positions:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(_codes(text) == 0)
    return np.searchsorted(ends, np.asarray(positions, dtype=np.int64))


class _Batch:
    """A batch of values joined into one text, with per-value facts that rule patterns out.

    A value with fewer than 13 digits holds no card number, one without ``@`` no e-mail
    address, and so on: each pattern runs only over the values that could hold a match,
    which are usually few. Non-ASCII characters count as possible digits and letters.
    """

    def __init__(self, values: pd.Series) -> None:
        self.items = _items(values)
        self.text = SEP.join(self.items)
        # One code per character and a closing SEP; each value's segment runs up to the next value.
        if self.text.isascii():
            codes = np.frombuffer((self.text + SEP).encode("ascii"), dtype=np.uint8)
            wide = np.zeros(len(codes), dtype=bool)
        else:
            codes = _codes(self.text + SEP)
            wide = codes > 127
        starts = np.concatenate(([0], np.flatnonzero(codes[:-1] == 0) + 1))
        digit = ((codes >= 48) & (codes <= 57)) | wide
        folded = codes | 32
        letter = ((folded >= 97) & (folded <= 122)) | wide

        def per_value(flags: np.ndarray) -> np.ndarray:
            return np.add.reduceat(flags, starts, dtype=np.int64)

        self.digits = per_value(digit)
        # Upper-casing turns one non-ASCII character into up to three letters (ﬃ → FFI).
        self.letters = per_value(letter) + 2 * per_value(wide)
        self.dashes = per_value(codes == 45)
        self.at_sign = per_value(codes == 64) > 0
        # Two letters followed by two digits: how every IBAN starts (ß02: one character, two letters).
        iban_start = np.zeros(len(codes), dtype=bool)
        iban_start[:-3] = letter[:-3] & letter[1:-2] & digit[2:-1] & digit[3:]
        iban_start[:-2] |= wide[:-2] & digit[1:-1] & digit[2:]
        self.iban_like = per_value(iban_start) > 0

    def part(self, wanted: np.ndarray) -> tuple[str, np.ndarray]:
        """The joined text of the ``wanted`` values, and their positions in the batch."""
        chosen = np.flatnonzero(wanted)
        if len(chosen) == len(self.items):
            return self.text, chosen
        return SEP.join([self.items[i] for i in chosen]), chosen


def _digits(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The digits of each span of ``text``, with one regex pass over all of them."""
    return NON_DIGITS.sub("", SEP.join(text[a:b] for a, b in spans)).split(SEP) if spans else []


def _phone_spans(text: str, whole_phone: bool) -> list[tuple[int, int]]:
    spans = [m.span() for m in pii.PHONE_IN_TEXT.finditer(text)]
    if whole_phone:
        found_starts = np.array([a for a, _ in spans], dtype=np.int64)
        # Whole values the in-text pattern did not find (no in-text match starts inside them).
        whole = [m.span() for m in WHOLE_PHONE.finditer(text)]
        if whole:
            bounds = np.array(whole, dtype=np.int64)
            first = np.searchsorted(found_starts, bounds[:, 0])
            following = np.append(found_starts, np.iinfo(np.int64).max)[first]
            spans += [(a, b) for a, b in bounds[following >= bounds[:, 1]].tolist()
                      if not pii.DATE_SHAPE.fullmatch(text, a, b)]
    return spans


def identifier_tokens(values: pd.Series, *, phones: bool = True, names: bool = False,
                      whole_phone: bool = False) -> Tokens:
    """Normalised identifier tokens in text values: e-mail, card, IBAN, SSN, NI, phone (and name pairs).

    Each pattern runs once per batch, over the joined text of the values that could hold a
    match; each token records the position in ``values`` of the value it came from.

    >>> identifier_tokens(pd.Series(["mail ann@example.org", "call +44 20 7946 0018"], dtype=object)).tokens
    ['email:ann@example.org', 'phone:2079460018']
    """
    found = Tokens()
    if values.empty:
        return found
    batch = _Batch(values)
    kinds: list[str] = []
    tokens: list[str] = []
    origins: list[np.ndarray] = []

    def add(kind: str, text: str, chosen: np.ndarray, hits: list[tuple[int, str]]) -> None:
        if hits:
            kinds.extend([kind] * len(hits))
            tokens.extend(token for _, token in hits)
            origins.append(chosen[_origins(text, [start for start, _ in hits])])

    text, chosen = batch.part(batch.at_sign)
    add("email", text, chosen, [(m.start(), m.group(0).lower()) for m in pii.EMAIL_RE.finditer(text)])
    text, chosen = batch.part(batch.digits >= 13)
    cards = [m.span() for m in pii.CARD_IN_TEXT.finditer(text)]
    test_starts, live = [], []
    for (a, _), digits in zip(cards, _digits(text, cards), strict=True):
        if pii.plausible_card(digits):
            if is_test_card(digits):
                test_starts.append(a)
            else:
                live.append((a, digits))
    add("card", text, chosen, live)
    found.test_card_origins = chosen[_origins(text, test_starts)].tolist()
    text, chosen = batch.part((batch.digits >= 9) & (batch.dashes >= 2))
    add("ssn", text, chosen, [(m.start(), m.group(0).replace("-", "")) for m in pii.SSN_RE.finditer(text)])
    # Upper-casing can change a text's length (ß → SS), so positions are taken in the upper-cased text.
    text, chosen = batch.part(batch.iban_like)
    text = text.upper()
    add("iban", text, chosen, [(m.start(), m.group(0).replace(" ", "")) for m in pii.IBAN_IN_TEXT.finditer(text)
                               if pii.iban_valid(m.group(0))])
    text, chosen = batch.part((batch.digits >= 6) & (batch.letters >= 3))
    text = text.upper()
    add("ni", text, chosen, [(m.start(), m.group(0).replace(" ", "")) for m in pii.UK_NI_RE.finditer(text)])
    if phones:
        text, chosen = batch.part(batch.digits >= 8)
        spans = _phone_spans(text, whole_phone)
        numbers = zip(spans, _digits(text, spans), strict=True)
        add("phone", text, chosen, [(a, digits[-10:]) for (a, _), digits in numbers if 8 <= len(digits) <= 15])
    found.tokens = [f"{kind}:{token}" for kind, token in zip(kinds, tokens, strict=True)]
    found.origins = np.concatenate(origins).tolist() if origins else []
    if names:
        for token, origin in name_bigrams(values):
            found.tokens.append(token)
            found.origins.append(origin)
    return found


WORD_OR_SEP = re.compile(rf"[^\W\d_]+|{SEP}")


@lru_cache(maxsize=1 << 18)
def _distinctive(word: str) -> bool:
    return pii.distinctive_name(word)


def folded_names(names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each name folded, and whether it is distinctive (each distinct name looked up once)."""
    codes, uniques = pd.factorize(names.astype(str).to_numpy(dtype=object))
    folded = np.array([pii.fold(name) for name in uniques], dtype=object)
    rare = np.array([_distinctive(name) for name in folded], dtype=bool)
    return folded[codes], rare[codes]


def name_bigrams(values: pd.Series, mode: str = "all") -> list[tuple[str, int]]:
    """``(name:first last, value position)`` for pairs of consecutive words (folded).

    ``all``: every pair with a distinctive word (what the target is searched for);
    ``names``: the same, from columns holding names; ``text``: capitalised pairs in free
    text that start with a known given name and contain a distinctive word.

    >>> name_bigrams(pd.Series(["Zbigniew Brzęczyszczykiewicz", "ann lee"], dtype=object))
    [('name:zbigniew brzeczyszczykiewicz', 0)]
    """
    if values.empty:
        return []
    if mode == "text":
        text = _joined(values)
        matches = list(CAPITALISED.finditer(text))
        firsts = pii.first_names()
        # A name is two capitalised words with only spaces between them (not across a full stop).
        pairs = [(pii.fold(a.group(0)), pii.fold(b.group(0)), a.start()) for a, b in itertools.pairwise(matches)
                 if text[a.end():b.start()].isspace()]
        rows = _origins(text, [start for _, _, start in pairs]).tolist()
        return [(f"name:{a} {b}", row) for (a, b, _), row in zip(pairs, rows, strict=True)
                if a in firsts and (_distinctive(a) or _distinctive(b))]
    # Words and value separators in order: a pair is two neighbours that are both words.
    items = np.array(WORD_OR_SEP.findall(pii.fold(_joined(values))), dtype=object)
    if len(items) < 2:
        return []
    codes, uniques = pd.factorize(items)
    is_sep = np.isin(codes, [i for i, word in enumerate(uniques) if word == SEP])
    # Every mode keeps only pairs with a distinctive word: the source side harvests no other
    # pairs, so in the target ("all") any other pair could never match.
    rare = np.array([word != SEP and _distinctive(word) for word in uniques], dtype=bool)[codes]
    pair = ~is_sep[:-1] & ~is_sep[1:] & (rare[:-1] | rare[1:])
    first = np.flatnonzero(pair)
    if not len(first):
        return []
    tokens: list[str] = ("name:" + items[first] + " " + items[first + 1]).tolist()
    origins: list[int] = np.cumsum(is_sep)[first].tolist()
    return list(zip(tokens, origins, strict=True))

