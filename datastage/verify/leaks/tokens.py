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

from datastage.cards import TEST_PREFIXES, is_test_card
from datastage.identify import reference as pii
from datastage.identify.batch import segment_sums
from datastage.source.values import canonical_text


def nonblank_text(series: pd.Series) -> pd.Series:
    """Non-NULL, non-blank canonical text of a column, index kept (an empty string reveals nothing)."""
    values = canonical_text(series)
    # Canonical text is a string or None (NULL), so an identity test finds the NULLs.
    present: np.ndarray = values != None  # noqa: E711 - elementwise: which values are not None
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
    kinds: list[str] = field(default_factory=list)  # each token's kind (what comes before its ``:``)

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
        self.array: np.ndarray | None = None  # the items as an array, made when a part is taken
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
            return segment_sums(flags, starts)

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
        if self.array is None:
            self.array = np.array(self.items, dtype=object)
        return SEP.join(self.array[chosen].tolist()), chosen


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
    found.kinds = kinds
    found.origins = np.concatenate(origins).tolist() if origins else []
    if names:
        for token, origin in name_bigrams(values):
            found.tokens.append(token)
            found.origins.append(origin)
            found.kinds.append("name")
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

    A batch of ASCII values is cut into words with numpy (:func:`_ascii_bigrams`); any other
    runs the patterns below (the same pairs).

    ``all``: every pair with a distinctive word (what the target is searched for);
    ``names``: the same, from columns holding names; ``text``: capitalised pairs in free
    text that start with a known given name and contain a distinctive word.

    >>> name_bigrams(pd.Series(["Zbigniew Brzęczyszczykiewicz", "ann lee"], dtype=object))
    [('name:zbigniew brzeczyszczykiewicz', 0)]
    """
    tokens, origins = name_pairs(values, mode)
    return list(zip(tokens, origins.tolist(), strict=True))


def name_pairs(values: pd.Series, mode: str = "all") -> tuple[list[str], np.ndarray]:
    """:func:`name_bigrams` as (tokens, value positions), without a Python object per pair beyond its token.

    >>> name_pairs(pd.Series(["x", "Zbigniew Brzęczyszczykiewicz"], dtype=object))
    (['name:zbigniew brzeczyszczykiewicz'], array([1]))
    """
    if values.empty:
        return [], np.zeros(0, dtype=np.int64)
    items = _items(values)
    joined = SEP.join(items)
    if _word_sets() is None:
        return _unzipped(_pattern_bigrams(joined, mode))
    if joined.isascii():
        return _ascii_bigrams(joined, mode)
    # The ASCII values with numpy, the others with the patterns; then back in the order of the values.
    ascii = np.fromiter(map(str.isascii, items), dtype=bool, count=len(items))
    array = np.array(items, dtype=object)
    tokens: list[str] = []
    origins = []
    for chosen, run in ((np.flatnonzero(ascii), _ascii_bigrams),
                        (np.flatnonzero(~ascii), lambda text, how: _unzipped(_pattern_bigrams(text, how)))):
        if len(chosen):
            found, positions = run(SEP.join(array[chosen].tolist()), mode)
            tokens += found
            origins.append(chosen[positions])
    origin = np.concatenate(origins) if origins else np.zeros(0, dtype=np.int64)
    order = np.argsort(origin, kind="stable")
    return np.array(tokens, dtype=object)[order].tolist(), origin[order]


def _unzipped(pairs: list[tuple[str, int]]) -> tuple[list[str], np.ndarray]:
    """``(token, position)`` pairs of the patterns' slow path as (tokens, positions)."""
    return [token for token, _ in pairs], np.array([origin for _, origin in pairs], dtype=np.int64)


def _pattern_bigrams(joined: str, mode: str) -> list[tuple[str, int]]:
    """:func:`name_bigrams` of values joined by ``SEP``, with the patterns."""
    if mode == "text":
        text = joined
        matches = list(CAPITALISED.finditer(text))
        firsts = pii.first_names()
        # A name is two capitalised words with only spaces between them (not across a full stop).
        pairs = [(pii.fold(a.group(0)), pii.fold(b.group(0)), a.start()) for a, b in itertools.pairwise(matches)
                 if text[a.end():b.start()].isspace()]
        rows = _origins(text, [start for _, _, start in pairs]).tolist()
        return [(f"name:{a} {b}", row) for (a, b, _), row in zip(pairs, rows, strict=True)
                if a in firsts and (_distinctive(a) or _distinctive(b))]
    # Words and value separators in order: a pair is two neighbours that are both words.
    items = np.array(WORD_OR_SEP.findall(pii.fold(joined)), dtype=object)
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


WHOLE_EMAIL = f"^(?:{pii.EMAIL})$"  # for RE2 (Arrow): ``$`` is the end of the value, as in a fullmatch


def _whole_emails(items: list[str], candidates: np.ndarray) -> np.ndarray:
    """Positions of the ``candidates`` among ``items`` that are one e-mail address as a whole.

    The address pattern's parts cannot hold ``@`` and its labels cannot hold ``.``, so in a value it
    matches whole, the first match :func:`re.finditer` finds is that whole value, and no other follows.

    >>> _whole_emails(["ann@example.org", "mail ann@example.org", "x"], np.array([True, True, False])).tolist()
    [0]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    chosen = np.flatnonzero(candidates)
    if not len(chosen):
        return chosen
    texts = pa.array(np.array(items, dtype=object)[chosen], type=pa.large_string())
    whole = pc.match_substring_regex(texts, WHOLE_EMAIL).to_numpy(zero_copy_only=False)
    return chosen[whole.astype(bool)]


def _whole_email_bodies(items: list[str], codes: np.ndarray, order: np.ndarray, shape: np.ndarray,
                        start: np.ndarray) -> Bodies:
    """The tokens of e-mail matches that are a whole ASCII value: the values lower-cased (Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    match, value = _pairs(codes, shape)
    texts = pa.array(np.array(items, dtype=object)[value], type=pa.large_string())
    bodies = pc.ascii_lower(texts).to_numpy(zero_copy_only=False).astype(object)
    return order[match], value.astype(np.int64), start[match], bodies


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

    whole = _whole_emails(batch.items, batch.at_sign)
    if len(whole):  # a shape that is one e-mail address holds exactly one match: all of it
        lengths = np.fromiter((len(batch.items[i]) for i in whole.tolist()), dtype=np.int64, count=len(whole))
        out.append((np.full(len(whole), KINDS.index("email"), dtype=np.int8), whole,
                    np.zeros(len(whole), dtype=np.int64), lengths))
    others = batch.at_sign.copy()
    others[whole] = False
    text, chosen = batch.part(others)
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
    listed: list[str] = digits.tolist()
    ascii = np.ones(count, dtype=bool) if "".join(listed).isascii() else \
        np.fromiter(map(str.isascii, listed), dtype=bool, count=count)
    lengths = np.fromiter(map(len, listed), dtype=np.int64, count=count)
    plain = ascii & (lengths >= 13) & (lengths <= 19)
    for i in np.flatnonzero(~plain).tolist():  # other digits (a script's own): one at a time
        plausible[i] = pii.plausible_card(digits[i])
        test[i] = plausible[i] and is_test_card(digits[i])
    chosen = np.flatnonzero(plain)
    if len(chosen):
        raw = np.array(digits[chosen].tolist(), dtype="S19")  # ASCII digits: one byte each
        # Small integers throughout (a byte, its double, a sum of 19 of them fit in int16).
        codes = raw.view(np.uint8).reshape(len(raw), 19).astype(np.int16)
        length = lengths[chosen]
        from_right = length.astype(np.int16)[:, None] - 1 - np.arange(19, dtype=np.int16)[None, :]
        inside = from_right >= 0
        digit_only = (((codes >= 48) & (codes <= 57)) | ~inside).all(axis=1)
        codes = np.where(codes > 0, codes - 48, 0).astype(np.int16)
        doubled = np.where((from_right % 2 == 1) & (from_right > 0), codes * 2, codes)
        doubled = np.where(doubled > 9, doubled - 9, doubled)
        luhn = (np.where(inside, doubled, 0).sum(axis=1) % 10) == 0
        # The first six digits as a number, and its leading digits (every number here has 13 or more;
        # a non-digit makes the number implausible whatever its prefix).
        p6 = codes[:, :6].astype(np.int64) @ (10 ** np.arange(5, -1, -1, dtype=np.int64))
        p1, p2, p3, p4 = p6 // 100_000, p6 // 10_000, p6 // 1_000, p6 // 100

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
        plausible[chosen] = luhn & brand & digit_only
        test[chosen] = plausible[chosen] & np.isin(p6, TEST_PREFIX_NUMBERS)
    return plausible, test


def identifier_tokens(values: pd.Series, *, phones: bool = True, names: bool = False,
                      whole_phone: bool = False) -> Tokens:
    """Normalised identifier tokens in text values: e-mail, card, IBAN, SSN, NI, phone (and name pairs).

    Every pattern treats all digits alike, so each runs once over the distinct *shapes* of the
    values (ASCII digits as ``0``): a column of phone numbers or card numbers has a handful. The
    matches found in a shape are cut out of every value of that shape and normalised as arrays
    (digits only, lower-cased e-mail; ASCII values byte by byte with numpy); what depends on the
    digits themselves (the Luhn check and issuer ranges of cards, the excluded SSN areas, the IBAN
    check) is checked on the value. Each token records the position in ``values`` of the value it
    came from; the tokens are those of :func:`value_by_value_tokens`, in the same order.

    >>> identifier_tokens(pd.Series(["mail ann@example.org", "call +44 20 7946 0018"], dtype=object)).tokens
    ['email:ann@example.org', 'phone:2079460018']
    """
    found = Tokens()
    if values.empty:
        return found
    items = _items(values)
    joined = SEP.join(items)
    shaped = joined.translate(ZERO_DIGITS)
    codes, distinct = pd.factorize(np.array(shaped.split(SEP), dtype=object))
    spans = _shape_spans(pd.Series(distinct, dtype=object), phones, whole_phone)
    if spans:
        order, shape, start, end = (np.concatenate(part) for part in zip(*spans, strict=True))
        wide = ~np.fromiter(map(str.isascii, distinct), dtype=bool, count=len(distinct))
        lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
        whole = ~wide[shape] & (order == KINDS.index("email")) & (start == 0) & (end == lengths[shape])
        narrow = ~wide[shape] & ~whole
        parts = [_ascii_bodies(joined, shaped, codes, *(a[narrow] for a in (order, shape, start, end)))]
        if whole.any():
            parts.append(_whole_email_bodies(items, codes, *(a[whole] for a in (order, shape, start))))
        if wide[shape].any():
            parts.append(_wide_bodies(items, codes, *(a[wide[shape]] for a in (order, shape, start, end))))
        found = _checked(*(np.concatenate(column) for column in zip(*parts, strict=True)))
    if names:
        tokens, origins = name_pairs(values)
        found.tokens += tokens
        found.origins += origins.tolist()
        found.kinds += ["name"] * len(tokens)
    return found


ZERO_DIGITS = str.maketrans("123456789", "000000000")
Bodies = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (order, origin, start, body) per match
# Per kind and shape byte: whether a token keeps the character (digits of cards and phones, all but the
# dashes of an SSN and the spaces of an IBAN or NI number, all of an e-mail address) ...
_KEEP = np.ones((len(KINDS), 256), dtype=bool)
for _kind in ("card", "phone"):
    _KEEP[KINDS.index(_kind)] = np.arange(256) == ord("0")
_KEEP[KINDS.index("ssn"), ord("-")] = False
for _kind in ("iban", "ni"):
    _KEEP[KINDS.index(_kind), ord(" ")] = False
# ... and the kinds whose tokens hold their ASCII letters in one case (e-mail lower, IBAN and NI upper).
_LOWERED = [KINDS.index("email")]
_UPPERED = [KINDS.index("iban"), KINDS.index("ni")]
_KIND_NAMES = np.array(KINDS, dtype=object)
_KIND_PREFIXES = np.array([f"{kind}:" for kind in KINDS], dtype=object)  # what each token starts with


def _pairs(codes: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(match, value) for every value of each match's shape (``codes``: each value's shape)."""
    by_shape = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=int(shape.max()) + 1 if len(shape) else 0)
    first = np.cumsum(sizes) - sizes
    counts = sizes[shape]
    match = np.repeat(np.arange(len(shape)), counts)
    within = np.arange(len(match)) - np.repeat(np.cumsum(counts) - counts, counts)
    return match, by_shape[np.repeat(first[shape], counts) + within]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which range, position) of every position of the ranges ``[start, start + length)``."""
    which = np.repeat(np.arange(len(starts)), lengths)
    return which, np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))


def _ascii_bodies(joined: str, shaped: str, codes: np.ndarray, order: np.ndarray, shape: np.ndarray,
                  start: np.ndarray, end: np.ndarray) -> Bodies:
    """The normalised text of matches in ASCII values, cut out of the values' bytes with numpy.

    Which characters of a match a token keeps (its digits, all but dashes or spaces, the last
    ten digits of a phone number) is read off the shape, which has the same characters where
    it matters; the kept bytes of each value of that shape are then gathered at once."""
    if not len(order):
        return order, np.zeros(0, dtype=np.int64), start, np.zeros(0, dtype=object)
    kind = order % len(KINDS)
    shape_bytes = np.frombuffer(shaped.encode("utf-8"), dtype=np.uint8)
    value_bytes = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
    # Where each value starts in the joined bytes (each value's own shape is as long as the value).
    value_at = np.concatenate(([0], np.flatnonzero(value_bytes == 0) + 1)).astype(np.int64)
    first_of_shape = np.zeros(int(codes.max()) + 1, dtype=np.int64)
    first_of_shape[codes[::-1]] = np.arange(len(codes))[::-1]
    shape_at = np.concatenate(([0], np.flatnonzero(shape_bytes == 0) + 1)).astype(np.int64)[first_of_shape]
    # The kept characters of each match, as offsets in its value.
    which, offset = _ranges(start, end - start)
    char = shape_bytes[shape_at[shape[which]] + offset]
    k = kind[which]
    keep = _KEEP[k, char]
    phone = (k == KINDS.index("phone")) & keep
    if phone.any():  # a phone token is the last ten of its digits
        kept_before = np.cumsum(keep) - keep
        total = np.bincount(which, weights=keep, minlength=len(order)).astype(np.int64)
        first_kept = np.cumsum(total) - total
        rank_from_end = total[which] - 1 - (kept_before - first_kept[which])
        keep &= ~phone | (rank_from_end < 10)
    which, offset = which[keep], offset[keep]
    kept = np.bincount(which, minlength=len(order))
    match, value = _pairs(codes, shape)
    sizes = kept[match]
    # Per (match, value) pair, then repeated over its bytes: where its value starts in the joined
    # bytes, and where its match's kept offsets start relative to the pair's first byte.
    pair = np.repeat(np.arange(len(match)), sizes)
    first_kept = np.cumsum(kept) - kept
    shift = np.repeat(first_kept[match] - (np.cumsum(sizes) - sizes), sizes)
    source = np.repeat(value_at[value], sizes) + offset[shift + np.arange(len(pair))]
    raw = value_bytes[source]
    pair_kind = kind[match]
    for kinds, letters, change in ((_LOWERED, (65, 90), np.bitwise_or), (_UPPERED, (97, 122), np.bitwise_xor)):
        cased = np.isin(pair_kind, kinds)
        if cased.any():  # e-mail addresses lower-cased, IBAN and NI numbers upper-cased (ASCII letters)
            flip = np.repeat(cased, sizes) & (raw >= letters[0]) & (raw <= letters[1])
            raw = np.where(flip, change(raw, np.uint8(32)), raw)
    out = np.zeros(len(raw) + len(match), dtype=np.uint8)  # each body followed by a SEP
    out[np.arange(len(raw)) + pair] = raw
    bodies = np.array(out[:-1].tobytes().decode("ascii").split(SEP), dtype=object) if len(match) else \
        np.zeros(0, dtype=object)
    return order[match], value.astype(np.int64), start[match], bodies


def _wide_bodies(items: list[str], codes: np.ndarray, order: np.ndarray, shape: np.ndarray,
                 start: np.ndarray, end: np.ndarray) -> Bodies:
    """The normalised text of matches in values with non-ASCII characters (polars string kernels)."""
    import polars as pl

    match, value = _pairs(codes, shape)
    kind = order[match] % len(KINDS)
    upper = np.isin(kind, [KINDS.index("iban"), KINDS.index("ni")])
    texts = np.array(items, dtype=object)[value]
    if upper.any():  # positions are in the upper-cased value
        texts[upper] = [text.upper() for text in texts[upper].tolist()]
    frame = pl.DataFrame({"value": pl.Series(texts.tolist(), dtype=pl.String), "kind": kind,
                          "start": start[match], "length": (end - start)[match]})
    cut = pl.col("value").str.slice(pl.col("start"), pl.col("length"))
    digits = cut.str.replace_all(r"\D", "")
    body = (pl.when(pl.col("kind") == KINDS.index("email")).then(cut.str.to_lowercase())
            .when(pl.col("kind") == KINDS.index("ssn")).then(cut.str.replace_all("-", "", literal=True))
            .when(pl.col("kind") == KINDS.index("phone")).then(digits.str.slice(-10))
            .when(pl.col("kind").is_in([KINDS.index("iban"), KINDS.index("ni")]))
            .then(cut.str.replace_all(" ", "", literal=True))
            .otherwise(digits))
    bodies = frame.select(body.alias("body"))["body"].to_numpy().astype(object)
    return order[match], value.astype(np.int64), start[match], bodies


def _checked(order: np.ndarray, origin: np.ndarray, start: np.ndarray, bodies: np.ndarray) -> Tokens:
    """Tokens of the normalised matches, in the order of :func:`value_by_value_tokens`, without those
    the value's own digits rule out (and the test cards apart)."""
    sort = np.lexsort((start, origin, order))
    order, origin, bodies = order[sort], origin[sort], bodies[sort]
    kind = order % len(KINDS)
    keep = np.ones(len(kind), dtype=bool)
    found = Tokens()
    card = np.flatnonzero(kind == KINDS.index("card"))
    if len(card):
        plausible, test = card_checks(bodies[card])
        keep[card] = plausible & ~test
        found.test_card_origins = origin[card[test]].tolist()
    ssn = np.flatnonzero(kind == KINDS.index("ssn"))
    if len(ssn):  # what SSN_SHAPE did not check: the area, group and serial numbers never issued
        keep[ssn] = [b[:3] not in ("000", "666") and b[0] != "9" and b[3:5] != "00" and b[5:] != "0000"
                     for b in bodies[ssn].tolist()]
    iban = np.flatnonzero(kind == KINDS.index("iban"))
    if len(iban):
        keep[iban] = [pii.iban_valid(b) for b in bodies[iban].tolist()]
    names = _KIND_NAMES[kind[keep]]
    found.tokens = (_KIND_PREFIXES[kind[keep]] + bodies[keep]).tolist()  # one concatenation per token
    found.kinds = names.tolist()
    found.origins = origin[keep].tolist()
    return found


_P = np.uint64(0x100000001B3)


def _range_hashes(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each byte range (its bytes and length), vectorised.

    The ranges are taken longest first, so those longer than ``j`` are a prefix of that order
    and each step updates one contiguous slice.

    >>> buffer = np.frombuffer(b"ann leex lee", dtype=np.uint8)
    >>> hashes = _range_hashes(buffer, np.array([0, 4, 9, 4]), np.array([3, 4, 3, 3]))
    >>> bool(hashes[0] != hashes[2]), bool(hashes[1] != hashes[3])
    (True, True)
    """
    hashes = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    longest = int(lengths.max()) if len(lengths) else 0
    if longest <= 0:
        return hashes
    shortfall = longest - lengths  # a stable sort of small integers is a radix sort
    order = np.argsort(shortfall.astype(np.uint16) if longest < 1 << 16 else shortfall, kind="stable")
    longer = len(lengths) - np.cumsum(np.bincount(np.maximum(lengths, 0), minlength=longest))[:longest]
    longer[0] = len(lengths)  # the first byte goes into every hash (as it always has)
    ordered, at = hashes[order], starts[order]
    with np.errstate(over="ignore"):
        for j, count in enumerate(longer.tolist()):  # over the ranges longer than j: all the bytes once
            part = ordered[:count]
            part *= _P
            part += buffer[at[:count] + j]
    hashes[order] = ordered
    return hashes


class _AsciiWords:
    """A set of ASCII words that whole arrays of byte ranges are looked up in (hash, then bytes).

    >>> words = _AsciiWords(frozenset({"ann", "lee"}))
    >>> buffer = np.frombuffer(b"ann leex lee", dtype=np.uint8)
    >>> words.contains(buffer, np.array([0, 4, 9]), np.array([3, 4, 3])).tolist()
    [True, False, True]
    """

    def __init__(self, words: frozenset[str]) -> None:
        chosen = sorted(w for w in words if w.isascii() and w)
        data = np.frombuffer("".join(chosen).encode("ascii"), dtype=np.uint8)
        lengths = np.array([len(w) for w in chosen], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        hashes = _range_hashes(data, starts, lengths)
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.starts, self.lengths, self.data = hashes[order], starts[order], lengths[order], data
        self.unique = bool(len(hashes) < 2 or (self.hashes[1:] != self.hashes[:-1]).all())

    def contains(self, buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        hashes = _range_hashes(buffer, starts, lengths)
        at = np.minimum(np.searchsorted(self.hashes, hashes), max(len(self.hashes) - 1, 0))
        found = (self.hashes[at] == hashes) & (self.lengths[at] == lengths) if len(self.hashes) else \
            np.zeros(len(hashes), dtype=bool)
        chosen = np.flatnonzero(found)
        if len(chosen):  # the same hash: the same bytes too?
            which, offset = _ranges(np.zeros(len(chosen), dtype=np.int64), lengths[chosen])
            same = buffer[starts[chosen][which] + offset] == self.data[self.starts[at[chosen]][which] + offset]
            found[chosen] = np.bincount(which, weights=~same, minlength=len(chosen)) == 0
        return found


@lru_cache(maxsize=1)
def _word_sets() -> tuple[_AsciiWords, _AsciiWords] | None:
    """(words that make no name distinctive, given names), or None when hashes collide (then the
    patterns run instead)."""
    common = _AsciiWords(pii.first_names() | pii.last_names() | pii.common_words())
    firsts = _AsciiWords(pii.first_names())
    return (common, firsts) if common.unique and firsts.unique else None


def _word_runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of every run of ``True`` in ``flags``."""
    edge = np.zeros(1, dtype=np.int8)
    edges = np.diff(np.concatenate((edge, flags.view(np.int8), edge)))
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


def _ascii_bigrams(joined: str, mode: str) -> tuple[list[str], np.ndarray]:
    """:func:`name_bigrams` of ASCII values joined by ``SEP``: words, pairs and look-ups as arrays."""
    sets = _word_sets()
    if sets is None:
        return _unzipped(_pattern_bigrams(joined, mode))
    common, firsts = sets
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    lower = raw | (((raw >= 65) & (raw <= 90)).view(np.uint8) << 5)  # ASCII letters lower-cased
    letter = (lower >= 97) & (lower <= 122)
    separators = np.flatnonzero(raw == 0)
    if mode == "text":
        # ``\b[A-Z][^\W\d_]+\b``: a whole run of word characters, a capital then at least one more letter.
        word = letter | ((raw >= 48) & (raw <= 57)) | (raw == 95)
        starts, lengths = _word_runs(word)
        ends = starts + lengths
        is_name = (lengths >= 2) & (raw[starts] >= 65) & (raw[starts] <= 90)
        if is_name.any():
            non_letter = np.cumsum(~letter)
            is_name &= (non_letter[ends - 1] - non_letter[starts]) == 0
        starts, lengths, ends = starts[is_name], lengths[is_name], ends[is_name]
        if len(starts) < 2:
            return [], np.zeros(0, dtype=np.int64)
        # Only blanks between two neighbouring names (``str.isspace`` of ASCII text).
        blank = np.isin(raw, np.frombuffer(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", dtype=np.uint8))
        not_blank = np.cumsum(~blank)
        gap_ok = (not_blank[starts[1:] - 1] - not_blank[ends[:-1] - 1]) == 0
        rare = (lengths >= 3) & ~common.contains(lower, starts, lengths)
        pair = gap_ok & firsts.contains(lower, starts, lengths)[:-1] & (rare[:-1] | rare[1:])
    else:
        starts, lengths = _word_runs(letter)
        if len(starts) < 2:
            return [], np.zeros(0, dtype=np.int64)
        rare = (lengths >= 3) & ~common.contains(lower, starts, lengths)
        value_of = np.searchsorted(separators, starts)  # the value each word is in: the SEPs before it
        pair = (value_of[:-1] == value_of[1:]) & (rare[:-1] | rare[1:])
    first = np.flatnonzero(pair)
    if not len(first):
        return [], np.zeros(0, dtype=np.int64)
    # Each token is five byte ranges: "name:", the first word, " ", the second word and a SEP.
    source = np.concatenate((lower, np.frombuffer(b"name: \x00", dtype=np.uint8)))
    n = len(lower)
    parts = np.stack([np.full(len(first), n), starts[first], np.full(len(first), n + 5), starts[first + 1],
                      np.full(len(first), n + 6)], axis=1).ravel()
    sizes = np.stack([np.full(len(first), 5), lengths[first], np.ones(len(first), dtype=np.int64),
                      lengths[first + 1], np.ones(len(first), dtype=np.int64)], axis=1).ravel()
    _, position = _ranges(parts, sizes)
    tokens = source[position][:-1].tobytes().decode("ascii").split(SEP)
    return tokens, np.searchsorted(separators, starts[first])
