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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from datastage.cards import TEST_PREFIXES, is_test_card
from datastage.identify import reference as pii
from datastage.source.values import canonical_text

if TYPE_CHECKING:
    import polars as pl


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


def value_by_value_tokens(values: pd.Series, *, phones: bool = True, names: bool = False,
                          whole_phone: bool = False) -> Tokens:
    """What :func:`identifier_tokens` finds, with the patterns run over the values themselves (the
    reference it is tested against; it costs a Python object per match).

    >>> value_by_value_tokens(pd.Series(["mail ann@example.org", "call +44 20 7946 0018"], dtype=object)).tokens
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



KINDS = ("email", "card", "ssn", "iban", "ni", "phone")  # the order tokens come in, as one value at a time
# SSN_RE without its digit-value conditions: an SSN is a whole run of digits and dashes, so this finds
# the same runs in a shape, and the conditions are checked on the value's own digits.
SSN_SHAPE = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
TEST_PREFIX_NUMBERS = np.array(sorted({int(p) for p in TEST_PREFIXES}), dtype=np.int64)


def _value_starts(text: str) -> np.ndarray:
    """Where each value of a ``SEP``-joined text starts."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8) if text.isascii() else _codes(text)
    return np.concatenate(([0], np.flatnonzero(codes == 0) + 1)).astype(np.int64)


def _shape_spans(shapes: pd.Series, phones: bool,
                 whole_phone: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(kind, shape position, start, end)`` arrays of every match in distinct shapes, positions within
    each shape (for ``iban`` and ``ni``: within the upper-cased shape)."""
    batch = _Batch(shapes)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(kind: str, text: str, chosen: np.ndarray, spans: list[tuple[int, int]], late: int = 0) -> None:
        if spans:
            bounds = np.array(spans, dtype=np.int64).reshape(-1, 2)
            part = _origins(text, bounds[:, 0].tolist())
            offset = _value_starts(text)[part]
            # Whole-value phones come after the in-text ones (kind ids 6 and up sort after the rest).
            kinds = np.full(len(spans), KINDS.index(kind), dtype=np.int8)
            kinds[len(spans) - late:] += len(KINDS)
            out.append((kinds, chosen[part], bounds[:, 0] - offset, bounds[:, 1] - offset))

    def digit_counts(text: str, spans: list[tuple[int, int]]) -> list[int]:
        return [len(d) for d in _digits(text, spans)]

    text, chosen = batch.part(batch.at_sign)
    add("email", text, chosen, [m.span() for m in pii.EMAIL_RE.finditer(text)])
    text, chosen = batch.part(batch.digits >= 13)
    cards = [m.span() for m in pii.CARD_IN_TEXT.finditer(text)]
    add("card", text, chosen, [s for s, n in zip(cards, digit_counts(text, cards), strict=True) if 13 <= n <= 19])
    text, chosen = batch.part((batch.digits >= 9) & (batch.dashes >= 2))
    add("ssn", text, chosen, [m.span() for m in SSN_SHAPE.finditer(text)])
    text, chosen = batch.part(batch.iban_like)
    text = text.upper()
    add("iban", text, chosen, [m.span() for m in pii.IBAN_IN_TEXT.finditer(text)])
    text, chosen = batch.part((batch.digits >= 6) & (batch.letters >= 3))
    text = text.upper()
    add("ni", text, chosen, [m.span() for m in pii.UK_NI_RE.finditer(text)])
    if phones:
        text, chosen = batch.part(batch.digits >= 8)
        spans = _phone_spans(text, whole_phone)
        in_text = len(pii.PHONE_IN_TEXT.findall(text)) if whole_phone else len(spans)
        wanted = [8 <= n <= 15 for n in digit_counts(text, spans)]
        add("phone", text, chosen, [s for s, w in zip(spans, wanted, strict=True) if w],
            late=sum(wanted[in_text:]))
    return out


def card_checks(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plausible card number, in a test range) of each digit string, vectorised for ASCII digits.

    >>> card_checks(np.array(["4111111111111111", "4539148803436467", "4539148803436468"], dtype=object))
    (array([ True,  True, False]), array([ True, False, False]))
    """
    count = len(digits)
    plausible = np.zeros(count, dtype=bool)
    test = np.zeros(count, dtype=bool)
    if not count:
        return plausible, test
    import polars as pl

    series = pl.Series(digits.tolist(), dtype=pl.String)
    plain = series.str.contains(r"^[0-9]{13,19}$").to_numpy()
    for i in np.flatnonzero(~plain).tolist():  # other digits (a script's own): one at a time
        plausible[i] = pii.plausible_card(digits[i])
        test[i] = plausible[i] and is_test_card(digits[i])
    chosen = np.flatnonzero(plain)
    if len(chosen):
        raw = np.array(digits[chosen].tolist(), dtype="S19")
        codes = raw.view(np.uint8).reshape(len(raw), 19).astype(np.int64)
        length = np.count_nonzero(codes, axis=1)
        codes = np.where(codes > 0, codes - 48, 0)
        from_right = length[:, None] - 1 - np.arange(19)[None, :]
        doubled = np.where((from_right % 2 == 1) & (from_right > 0), codes * 2, codes)
        doubled = np.where(doubled > 9, doubled - 9, doubled)
        luhn = (np.where(from_right >= 0, doubled, 0).sum(axis=1) % 10) == 0
        prefix = {n: (codes[:, :n] * 10 ** np.arange(n - 1, -1, -1)).sum(axis=1) for n in (1, 2, 3, 4, 6)}
        p1, p2, p3, p4 = prefix[1], prefix[2], prefix[3], prefix[4]

        def among(values: np.ndarray, *options: int) -> np.ndarray:
            return np.isin(values, options)

        long = (length >= 16) & (length <= 19)
        brand = ((p1 == 4) & among(length, 13, 16, 19)) \
            | ((((p2 >= 51) & (p2 <= 55)) | ((p4 >= 2221) & (p4 <= 2720))) & (length == 16)) \
            | (among(p2, 34, 37) & (length == 15)) \
            | (((p4 == 6011) | (p2 == 65) | ((p3 >= 644) & (p3 <= 649))) & long) \
            | ((p4 >= 3528) & (p4 <= 3589) & long) \
            | ((((p3 >= 300) & (p3 <= 305)) | among(p2, 36, 38, 39)) & (length >= 14)) \
            | ((p2 == 62) & long) \
            | (among(p2, 50, 56, 57, 58, 67, 63) & (length >= 12))
        plausible[chosen] = luhn & brand
        test[chosen] = plausible[chosen] & np.isin(prefix[6], TEST_PREFIX_NUMBERS)
    return plausible, test


def identifier_tokens(values: pd.Series, *, phones: bool = True, names: bool = False,
                      whole_phone: bool = False) -> Tokens:
    """Normalised identifier tokens in text values: e-mail, card, IBAN, SSN, NI, phone (and name pairs).

    Every pattern treats all digits alike, so each runs once over the distinct *shapes* of the
    values (ASCII digits as ``0``): a column of phone numbers or card numbers has a handful. The
    matches found in a shape are cut out of each value of that shape and normalised as whole
    columns (digits only, lower-cased e-mail); what depends on the digits themselves (the Luhn
    check and issuer ranges of cards, the excluded SSN areas, the IBAN check) is checked on the
    value. Each token records the position in ``values`` of the value it came from; the tokens
    are those of :func:`value_by_value_tokens`, in the same order.

    >>> identifier_tokens(pd.Series(["mail ann@example.org", "call +44 20 7946 0018"], dtype=object)).tokens
    ['email:ann@example.org', 'phone:2079460018']
    """
    found = Tokens()
    if values.empty:
        return found
    import polars as pl

    items = pl.Series(_items(values), dtype=pl.String)
    shapes = items.str.replace_all("[0-9]", "0")
    frame = pl.DataFrame({"value": items, "shape": shapes}).with_row_index("origin")
    distinct = frame.select(pl.col("shape").unique(maintain_order=True)).with_row_index("shape_id")
    spans = _shape_spans(pd.Series(distinct["shape"].to_list(), dtype=object), phones, whole_phone)
    if spans:
        matches = pl.DataFrame({
            "order": np.concatenate([k for k, _, _, _ in spans]),
            "shape_id": np.concatenate([p for _, p, _, _ in spans]).astype(np.uint32),
            "start": np.concatenate([a for _, _, a, _ in spans]),
            "end": np.concatenate([b for _, _, _, b in spans])})
        hits = (frame.join(distinct, on="shape").join(matches, on="shape_id")
                .sort("order", "origin", "start")
                .select(pl.col("order") % len(KINDS), "origin", "value", "start", "end")
                .rename({"order": "kind"}))
        found = _normalised(hits)
    if names:
        for token, origin in name_bigrams(values):
            found.tokens.append(token)
            found.origins.append(origin)
    return found


def _normalised(hits: pl.DataFrame) -> Tokens:
    """Tokens of the matches ``(kind, origin, value, start, end)``, sorted by kind, value and position."""
    import polars as pl

    cut = pl.col("value").str.slice(pl.col("start"), pl.col("end") - pl.col("start"))
    hits = hits.with_columns(match=cut)
    kind = pl.col("kind")
    digits = pl.col("match").str.replace_all(r"\D", "")
    hits = hits.with_columns(token=pl.when(kind == KINDS.index("email")).then(pl.col("match").str.to_lowercase())
                             .when(kind == KINDS.index("ssn")).then(pl.col("match").str.replace_all("-", "",
                                                                                                    literal=True))
                             .when(kind == KINDS.index("phone")).then(digits.str.slice(-10))
                             .otherwise(digits))
    kinds = hits["kind"].to_numpy()
    tokens = hits["token"].to_numpy().astype(object)
    keep = np.ones(len(hits), dtype=bool)
    test_origins: list[int] = []
    origins = hits["origin"].to_numpy().astype(np.int64)
    card = np.flatnonzero(kinds == KINDS.index("card"))
    if len(card):
        plausible, test = card_checks(tokens[card])
        keep[card] = plausible & ~test
        test_origins = origins[card[test]].tolist()
    ssn = np.flatnonzero(kinds == KINDS.index("ssn"))
    if len(ssn):
        match = hits["match"].gather(ssn)
        area, group, serial = match.str.slice(0, 3), match.str.slice(4, 2), match.str.slice(7, 4)
        keep[ssn] = ((area != "000") & (area != "666") & ~area.str.starts_with("9") & (group != "00")
                     & (serial != "0000")).to_numpy()
    upper = np.flatnonzero(np.isin(kinds, [KINDS.index("iban"), KINDS.index("ni")]))
    if len(upper):  # few: positions are in the upper-cased value, cut out one at a time
        values, starts, ends = (hits[c].gather(upper).to_list() for c in ("value", "start", "end"))
        for row, value, a, b in zip(upper.tolist(), values, starts, ends, strict=True):
            text = value.upper()[a:b]
            keep[row] = kinds[row] != KINDS.index("iban") or pii.iban_valid(text)
            tokens[row] = text.replace(" ", "")
    names = np.array(KINDS, dtype=object)[kinds[keep]]
    found = Tokens()
    found.tokens = (names + ":" + tokens[keep]).tolist()
    found.origins = origins[keep].tolist()
    found.test_card_origins = test_origins
    return found
