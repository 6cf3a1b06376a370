"""Format-preserving, keyed, bijective tokenization of text and integers (FF1 of NIST SP 800-38G).

**Domains.** A text value is read as a mixed-radix number: each ASCII digit a symbol of
radix 10, each ASCII letter (either case) a symbol of radix 26; every other character
stays where it is, and letter case is part of the value's shape. Values whose symbols
are all digits (or all letters) are encrypted with FF1 (:mod:`datastage.mask.ff1`) at
radix 10 (or 26) over exactly their symbols. Mixed values are encrypted with FF1 at
radix 2 over their index in the mixed-radix domain (``n`` = bit length of the domain
size), and *cycle walking* repeats the permutation until the result is inside the domain
again. Integers are encrypted the same way over their offset in the range of numbers
with the same sign and digit count that the column's type can hold, so they keep sign,
digit count and range. Values outside the column's range (SQLite does not enforce
declared types) are permuted among themselves, so the map stays a bijection of every
input set. The permutations have no fixed points and small domains use keyed tables
(:mod:`datastage.mask.permute`).

**Tweak.** The 8-byte tweak is a keyed hash of the value's shape (the class of every
position and the length) under the masking domain, or of the sign, digit count and
range segment for integers.

Example:
    >>> from datastage.mask.keys import MaskingKey
    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> out = tokenize_text(key, "demo", np.array(["AB-1234", "AB-1235"], dtype=object))
    >>> [len(v) for v in out], out[0][2], out[0] != "AB-1234", out[0] != out[1]
    ([7, 7], '-', True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from datastage.mask.arrays import code_objects
from datastage.mask.ff1 import FF1, MIN_DOMAIN, ff1_params, int_objects
from datastage.mask.keys import MaskingKey
from datastage.mask.permute import TWEAK_BYTES, cipher_for, cycle, permute_range, table_permute, tweak_bytes

MIXED_FAST_BITS = 116  # mixed-radix indices up to this many bits run in two uint64 limbs
SEGMENT_SYMBOLS = 4096  # longer values are permuted in segments of at most this many symbols
CHUNK = 32_768  # values per pass: the working arrays stay small
CELL_BUDGET = 1 << 21  # characters per pass (values x the longest of them)

_U = np.uint64
_LIMB = 58  # bits per limb of the two-limb mixed-radix index
_LIMB_MASK = _U((1 << _LIMB) - 1)
_CLASS_BASE = np.array([0, 48, 97, 65], dtype=np.uint32)  # other, digit, lower, upper
_CLASS_RADIX_U8 = np.array([1, 10, 26, 26], dtype=np.uint8)
_CLASS_OF = np.zeros(129, dtype=np.uint8)  # class of each code point below 128; 128 stands for the rest
_CLASS_OF[48:58] = 1
_CLASS_OF[97:123] = 2
_CLASS_OF[65:91] = 3
_DIGIT_CLASS_OF = np.where(_CLASS_OF == 1, _CLASS_OF, 0).astype(np.uint8)
# One lookup gives both: class * 32 + symbol (the digit's value, the letter's index; 0 where not classed).
_CODED = (_CLASS_OF * 32 + (np.arange(129) - _CLASS_BASE[_CLASS_OF]) * (_CLASS_OF > 0)).astype(np.uint8)
_DIGIT_CODED = _CODED * (_DIGIT_CLASS_OF > 0)


# -- text -------------------------------------------------------------------------------------

def tokenize_text(key: MaskingKey, domain: str, values: np.ndarray, letters: bool = True) -> np.ndarray:
    """Tokenize an object array of str: same length, same character classes, keyed bijection.

    ``letters=False`` tokenizes only digits and keeps letters in place (phone numbers).
    """
    values = np.asarray(values, dtype=object)
    return in_batches(values, lambda part: _tokenize_text(key, domain, part, letters))


def in_batches(values: np.ndarray, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``run`` over batches of similar lengths, each within CHUNK values and CELL_BUDGET characters.

    One long value must not widen the character matrix of every other value; ``run`` must give
    each value a result that does not depend on the other values of its batch.

    >>> in_batches(np.array(["ab", "c"], dtype=object), lambda part: part + "!").tolist()
    ['ab!', 'c!']
    """
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if len(values) <= CHUNK and (len(values) == 0 or len(values) * int(lengths.max()) <= CELL_BUDGET):
        return run(values)
    order = np.argsort(lengths, kind="stable")
    out = np.empty(len(values), dtype=object)
    start = 0
    while start < len(order):
        width = max(1, int(lengths[order[min(start + CHUNK, len(order)) - 1]]))
        stop = min(start + CHUNK, len(order), start + max(1, CELL_BUDGET // width))
        rows = order[start:stop]
        out[rows] = run(values[rows])
        start = stop
    return out


def _tokenize_text(key: MaskingKey, domain: str, values: np.ndarray, letters: bool) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=object)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    width = int(lengths.max())
    if width == 0:
        return values.copy()
    fixed = np.array(values, dtype=f"U{width}")
    codes = fixed.view(np.uint32).reshape(n, width)  # one row per value
    return code_objects(tokenize_codes(key, domain, codes, lengths, letters), lengths)


def tokenize_codes(key: MaskingKey, domain: str, codes: np.ndarray, lengths: np.ndarray,
                   letters: bool = True) -> np.ndarray:
    """:func:`tokenize_text` on code points: ``codes`` (values, width) uint32, each row one value
    of ``lengths[i]`` characters padded with zeros; returns the tokenized code points (same shape).

    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> codes = np.array(["AB-1234"], dtype="U7").view(np.uint32).reshape(1, 7)
    >>> out = tokenize_codes(key, "demo", codes, np.array([7]))
    >>> out.view("U7")[0, 0] == tokenize_text(key, "demo", np.array(["AB-1234"], dtype=object))[0]
    True
    """
    coded = (_CODED if letters else _DIGIT_CODED)[np.minimum(codes, np.uint32(128))]
    cls = coded >> np.uint8(5)
    symbols = coded & np.uint8(31)  # 0 where not classed
    digits = np.count_nonzero(cls == 1, axis=1)
    alphas = np.count_nonzero(cls, axis=1) - digits
    tweak = _shape_tweak(key, domain, cls, lengths)
    new_symbols = _permute_symbols(key, domain, symbols, cls, digits, alphas, tweak)
    return codes - symbols + new_symbols  # unclassed positions keep their symbol 0: codes unchanged


_FOLD = _U(0x100000001B3)


def _shape_tweak(key: MaskingKey, domain: str, cls: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A keyed 64-bit tweak per value from its shape (class of every position and the length).

    ``cls`` is (values, width). The fold is ``sum((cls[j] + 1) * F**j) * F + length`` modulo
    2**64 over the value's positions; batch padding past a value's end counts zero, so the
    tweak does not depend on the other values of the batch.
    """
    width = cls.shape[1]
    with np.errstate(over="ignore"):
        powers = np.concatenate([np.ones(1, dtype=np.uint64), np.cumprod(np.full(width - 1, _FOLD, dtype=np.uint64))])
        terms = (cls + np.uint8(1)) * (np.arange(width)[None, :] < lengths[:, None])
        shape = (terms * powers[None, :]).sum(axis=1, dtype=np.uint64) * _FOLD + lengths.astype(np.uint64)
    if len(shape) and shape.min() == shape.max():  # one shape (the usual column): hash it once
        return np.repeat(key.hash_uint64(f"{domain}/fpe/shape", shape[:1]), len(shape))
    return key.hash_uint64(f"{domain}/fpe/shape", shape)


def _groups(labels: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """(label, rows) for every distinct label, rows ascending; all rows as a slice (no gather)."""
    if len(labels) and labels.min() == labels.max():
        return [(int(labels[0]), slice(None))]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    return [(int(sorted_labels[part[0]]), order[part]) for part in np.split(np.arange(len(order)), cuts)]


def _permute_symbols(key: MaskingKey, domain: str, symbols: np.ndarray, cls: np.ndarray, digits: np.ndarray,
                     alphas: np.ndarray, tweak: np.ndarray) -> np.ndarray:
    """Permute the classed symbols of every row (values, width), routed by the row's domain.

    Rows with the same numbers of digits and letters share a domain: their symbols are
    taken out in order as a dense (k, rows) matrix, permuted by :func:`_route` and put back.
    Values of more than :data:`SEGMENT_SYMBOLS` symbols are cut into segments first.
    """
    out = symbols.copy()
    width = symbols.shape[1]
    ff1 = cipher_for(key, domain)
    labels = digits.astype(np.int64) * (width + 1) + alphas
    long_rows = np.flatnonzero(digits + alphas > SEGMENT_SYMBOLS)
    if len(long_rows):
        labels[long_rows] = -1
    for label, rows in _groups(labels):
        if label < 0:
            continue
        nd, na = divmod(label, width + 1)
        k = nd + na
        if k == 0:
            continue
        mask = None if k == width else cls[rows] > 0  # k == width: every position holds a symbol
        dense = np.ascontiguousarray((symbols[rows] if mask is None else symbols[rows][mask].reshape(-1, k)).T)
        classes = np.ascontiguousarray((cls[rows] if mask is None else cls[rows][mask].reshape(-1, k)).T)
        new = _route(key, domain, ff1, nd, na, dense, classes, tweak[rows])
        if mask is None:
            out[rows] = new.T
        else:
            part = out[rows]
            part[mask] = new.T.ravel()
            out[rows] = part
    for row in long_rows.tolist():
        mask = cls[row] > 0
        out[row, mask] = _segmented(key, domain, ff1, symbols[row, mask], cls[row, mask], int(tweak[row]))
    return out


def _route(key: MaskingKey, domain: str, ff1: FF1, nd: int, na: int, dense: np.ndarray, classes: np.ndarray,
           tweak: np.ndarray) -> np.ndarray:
    """Permute rows (k, rows) of ``nd`` digits and ``na`` letters: a keyed table below 10**6 values,
    FF1 over the symbols when they are all digits or all letters, else FF1 over the mixed-radix index."""
    size = 10**nd * 26**na
    if size >= MIN_DOMAIN and (nd == 0 or na == 0):
        return _uniform(ff1, 10 if na == 0 else 26, nd + na, dense, tweak_bytes(tweak))
    radices = _CLASS_RADIX_U8[classes]
    if size < MIN_DOMAIN:
        index = _horner_u64(dense, radices).astype(np.int64)
        return _unhorner_u64(table_permute(key, domain, index, size, tweak).astype(np.uint64), radices)
    return _mixed(ff1, dense, radices, tweak_bytes(tweak), exact=size >= 1 << MIXED_FAST_BITS)


def _segmented(key: MaskingKey, domain: str, ff1: FF1, symbols: np.ndarray, classes: np.ndarray,
               tweak: int) -> np.ndarray:
    """The symbols of one very long value, permuted in near-equal segments of at most
    :data:`SEGMENT_SYMBOLS` (each its own domain, tweaked by the value's tweak and its position).

    Conversions between symbols and integers are quadratic in the length; segments keep a
    megabyte of text to seconds. The map stays a bijection (a product of bijections) and
    every segment changes.
    """
    k = len(symbols)
    count = -(-k // SEGMENT_SYMBOLS)
    cuts = [j * k // count for j in range(count + 1)]
    out = np.empty_like(symbols)
    for j in range(count):
        part, part_classes = symbols[cuts[j]:cuts[j + 1]], classes[cuts[j]:cuts[j + 1]]
        seg_tweak = key.hash_uint64(f"{domain}/fpe/segment/{count}/{j}", np.array([tweak], dtype=np.uint64))
        nd = int(np.count_nonzero(part_classes == 1))
        out[cuts[j]:cuts[j + 1]] = _route(key, domain, ff1, nd, len(part) - nd, part[:, None], part_classes[:, None],
                                          seg_tweak)[:, 0]
    return out


def _horner_u64(symbols: np.ndarray, radices: np.ndarray | int) -> np.ndarray:
    """Mixed-radix value of the columns of ``symbols`` (k, rows), first row most significant."""
    value = np.zeros(symbols.shape[1], dtype=np.uint64)
    for j in range(symbols.shape[0]):
        r = radices[j].astype(np.uint64) if isinstance(radices, np.ndarray) else _U(radices)
        value = value * r + symbols[j]
    return value


def _unhorner_u64(value: np.ndarray, radices: np.ndarray | int, k: int | None = None) -> np.ndarray:
    """The inverse of :func:`_horner_u64`: symbols (k, rows) uint8."""
    k = radices.shape[0] if isinstance(radices, np.ndarray) else int(k or 0)
    out = np.empty((k, len(value)), dtype=np.uint8)
    for j in range(k - 1, -1, -1):
        r = radices[j].astype(np.uint64) if isinstance(radices, np.ndarray) else _U(radices)
        value, rem = np.divmod(value, r)
        out[j] = rem
    return out


def _horner_big(symbols: np.ndarray, radices: np.ndarray | int) -> np.ndarray:
    """:func:`_horner_u64` in Python integers (object array), for values of any length."""
    values = []
    if isinstance(radices, np.ndarray):
        for row, radix_row in zip(symbols.T.tolist(), radices.T.tolist(), strict=True):
            x = 0
            for s, r in zip(row, radix_row, strict=True):
                x = x * r + s
            values.append(x)
    else:
        for row in symbols.T.tolist():
            x = 0
            for s in row:
                x = x * radices + s
            values.append(x)
    return int_objects(values)


def _unhorner_big(value: np.ndarray, radices: np.ndarray | int, k: int | None = None) -> np.ndarray:
    """The inverse of :func:`_horner_big`."""
    k = radices.shape[0] if isinstance(radices, np.ndarray) else int(k or 0)
    radix_rows = radices.T.tolist() if isinstance(radices, np.ndarray) else [[radices] * k] * len(value)
    out = np.empty((len(value), k), dtype=np.uint8)
    for i, (x, radix_row) in enumerate(zip(value.tolist(), radix_rows, strict=True)):
        row = [0] * k
        for j in range(k - 1, -1, -1):
            x, row[j] = divmod(x, radix_row[j])
        out[i] = row
    return np.ascontiguousarray(out.T)


def _uniform(ff1: FF1, radix: int, k: int, symbols: np.ndarray, tweaks: np.ndarray,
             exact: bool = False) -> np.ndarray:
    """FF1 at ``radix`` over exactly the ``k`` symbols of every row (k, rows): no walking needed."""
    prm = ff1_params(radix, k, TWEAK_BYTES)
    fast = prm.fast and not exact
    horner, unhorner = (_horner_u64, _unhorner_u64) if fast else (_horner_big, _unhorner_big)
    a = horner(symbols[: prm.u], radix)
    b = horner(symbols[prm.u:], radix)
    a, b = cycle(ff1, radix, k, tweaks, a, b, exact=exact)
    return np.concatenate([unhorner(a, radix, prm.u), unhorner(b, radix, prm.v)])


# Mixed-radix indices below 2**116 as two uint64 limbs of 58 bits: a limb times a radix
# (at most 26) plus a carry stays below 2**63.

def _limbs_horner(symbols: np.ndarray, radices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hi = np.zeros(symbols.shape[1], dtype=np.uint64)
    lo = np.zeros(symbols.shape[1], dtype=np.uint64)
    for j in range(symbols.shape[0]):
        r = radices[j].astype(np.uint64)
        t = lo * r + symbols[j]
        lo = t & _LIMB_MASK
        hi = hi * r + (t >> _U(_LIMB))
    return hi, lo


def _limbs_product(radices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hi = np.zeros(radices.shape[1], dtype=np.uint64)
    lo = np.ones(radices.shape[1], dtype=np.uint64)
    for j in range(radices.shape[0]):
        r = radices[j].astype(np.uint64)
        t = lo * r
        lo = t & _LIMB_MASK
        hi = hi * r + (t >> _U(_LIMB))
    return hi, lo


def _limbs_unhorner(hi: np.ndarray, lo: np.ndarray, radices: np.ndarray) -> np.ndarray:
    out = np.empty(radices.shape, dtype=np.uint8)
    for j in range(radices.shape[0] - 1, -1, -1):
        r = radices[j].astype(np.uint64)
        q_hi = hi // r
        t = ((hi - q_hi * r) << _U(_LIMB)) | lo
        q_lo = t // r
        out[j] = t - q_lo * r
        hi, lo = q_hi, q_lo
    return out


def _limbs_split(hi: np.ndarray, lo: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    """(x >> v, x mod 2**v) of x = hi * 2**58 + lo, for v <= 58 and x < 2**(58 + v)."""
    return (hi << _U(_LIMB - v)) | (lo >> _U(v)), lo & _U((1 << v) - 1)


def _limbs_join(a: np.ndarray, b: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`_limbs_split`."""
    return a >> _U(_LIMB - v), ((a & _U((1 << (_LIMB - v)) - 1)) << _U(v)) | b


_POW2 = np.array([1 << i for i in range(64)], dtype=np.uint64)


def _bit_length(x: np.ndarray) -> np.ndarray:
    return np.searchsorted(_POW2, x, side="right").astype(np.int64)


def _mixed(ff1: FF1, symbols: np.ndarray, radices: np.ndarray, tweaks: np.ndarray, exact: bool = False) -> np.ndarray:
    """FF1 at radix 2 over each row's mixed-radix index, cycle walking back into its domain.

    ``exact`` computes in Python integers (any size); otherwise every domain is below 2**116.
    """
    out = np.empty_like(symbols)
    if not exact and radices.size:
        bits = (radices == 26).sum(axis=0) * math.log2(26) + (radices == 10).sum(axis=0) * math.log2(10)
        exact = float(bits.max()) > MIXED_FAST_BITS - 0.01  # a domain reaching 2**116 would overflow the limbs
    if exact:
        index = _horner_big(symbols, radices)
        sizes = int_objects([math.prod(row) for row in radices.T.tolist()])
        bits = np.array([(int(s) - 1).bit_length() for s in sizes], dtype=np.int64)
        for n, rows in _groups(bits):
            v = ff1_params(2, n, TWEAK_BYTES).v
            mask = (1 << v) - 1
            x, size = index[rows], sizes[rows]
            a, b = cycle(ff1, 2, n, tweaks[rows], int_objects(x >> v), int_objects(x & mask),
                         (int_objects(size >> v), int_objects(size & mask)), exact=True)
            out[:, rows] = _unhorner_big((a << v) | b, radices[:, rows])
        return out
    hi, lo = _limbs_horner(symbols, radices)
    size_hi, size_lo = _limbs_product(radices)
    top_hi = size_hi - (size_lo == 0)  # size - 1 (sizes are at least 10**6)
    top_lo = (size_lo - _U(1)) & _LIMB_MASK
    bits = np.where(top_hi > 0, _bit_length(top_hi) + _LIMB, _bit_length(top_lo))
    for n, rows in _groups(bits):
        v = ff1_params(2, n, TWEAK_BYTES).v
        a, b = _limbs_split(hi[rows], lo[rows], v)
        a, b = cycle(ff1, 2, n, tweaks[rows], a, b, _limbs_split(size_hi[rows], size_lo[rows], v))
        out[:, rows] = _limbs_unhorner(*_limbs_join(a, b, v), radices[:, rows])
    return out


# -- integers -----------------------------------------------------------------------------

_POW10 = np.array([10**i for i in range(20)], dtype=np.uint64)


def tokenize_int(key: MaskingKey, domain: str, values: np.ndarray, max_value: int = 2**63 - 1,
                 min_value: int = -(2**63)) -> np.ndarray:
    """Tokenize integers: same sign and number of digits, within [min_value, max_value], bijective.

    0 stays 0; 1..9 map within 1..9; a d-digit number maps to a d-digit number. A value
    beyond the range maps to another value beyond it with the same sign and digit count.
    """
    if len(values) > CHUNK:
        return np.concatenate([tokenize_int(key, domain, values[s:s + CHUNK], max_value, min_value)
                               for s in range(0, len(values), CHUNK)])
    try:
        signed = np.asarray(values, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):  # beyond int64: Python integers
        return _tokenize_int_big(key, domain, [int(v) for v in values], max_value, min_value)
    negative = signed < 0
    magnitude = np.abs(signed).astype(np.uint64)
    magnitude[signed == np.iinfo(np.int64).min] = _U(2**63)
    ndigits = np.searchsorted(_POW10, magnitude, side="right")  # 0 for 0, 1 for 1..9, ...
    out = magnitude.copy()
    for sign in (False, True):
        bound = -min_value if sign else max_value
        for d in np.unique(ndigits[(negative == sign) & (ndigits > 0)]).tolist():
            chosen = (negative == sign) & (ndigits == d)
            for segment, (low, high) in enumerate(_segments(int(d), bound)):
                rows = np.flatnonzero(chosen & (magnitude >= _U(low)) & (magnitude <= _U(high)))
                if len(rows):
                    tweak = _int_tweak(key, domain, int(d), sign, segment)
                    out[rows] = permute_range(key, domain, magnitude[rows] - _U(low), high - low + 1,
                                               tweak) + _U(low)
    if (out < _U(2**63)).all():
        signed_out = out.astype(np.int64)
        return np.where(negative, -signed_out, signed_out).astype(object)
    result = np.empty(len(out), dtype=object)
    result[:] = [-int(m) if s else int(m) for m, s in zip(out.tolist(), negative.tolist(), strict=True)]
    return result


def _segments(d: int, bound: int) -> list[tuple[int, int]]:
    """The d-digit magnitudes inside the bound and those beyond it (empty ranges left out)."""
    low, high = (10 ** (d - 1) if d > 1 else 1), 10**d - 1
    return [(lo, hi) for lo, hi in ((low, min(high, bound)), (max(low, bound + 1), high)) if lo < hi]


def _int_tweak(key: MaskingKey, domain: str, d: int, negative: bool, segment: int) -> np.ndarray:
    return key.hash_uint64(f"{domain}/fpe/int", np.array([d * 4 + negative * 2 + segment], dtype=np.uint64))


def _tokenize_int_big(key: MaskingKey, domain: str, ints: list[int], max_value: int, min_value: int) -> np.ndarray:
    """:func:`tokenize_int` for values beyond 64 bits, in Python integers (same results)."""
    out = [abs(v) for v in ints]
    keys = [(v < 0, len(str(abs(v)))) for v in ints]
    for sign, d in sorted({k for k, v in zip(keys, ints, strict=True) if v != 0}):
        for segment, (low, high) in enumerate(_segments(d, -min_value if sign else max_value)):
            rows = [i for i, v in enumerate(ints) if keys[i] == (sign, d) and low <= abs(v) <= high]
            if rows:
                offsets = int_objects([abs(ints[i]) - low for i in rows])
                mapped = permute_range(key, domain, offsets, high - low + 1, _int_tweak(key, domain, d, sign, segment))
                for i, m in zip(rows, mapped.tolist(), strict=True):
                    out[i] = int(m) + low
    result = np.empty(len(ints), dtype=object)
    result[:] = [-m if v < 0 else m for m, v in zip(out, ints, strict=True)]
    return result
