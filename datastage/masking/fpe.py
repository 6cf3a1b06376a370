"""Format-preserving, keyed, bijective tokenization (the ``tokenize`` strategy's engine).

A value is read as a mixed-radix number: each digit is a symbol of radix 10, each
lower-case letter of radix 26, each upper-case letter of radix 26; every other character
stays where it is. That number is mapped by a keyed permutation of the same domain and
written back in the same shape, so digits stay digits, letters stay letters and the
length is kept. Integers map to integers with the same number of digits and sign.

The permutation is ``Q(x) = P⁻¹(P(x) + 1)`` where ``P`` is a keyed Feistel network over
the blocks of the number (modular addition per block, SipHash-1-3 round function under
per-round subkeys, the value's shape as tweak). ``Q`` is a bijection and, being a
conjugate of ``+1``, a single cycle through the whole domain: no value maps to itself.
Tiny domains (at most :data:`TABLE_LIMIT` values) use a keyed lookup table instead of a
Feistel network. Integers whose image must stay within a column's range walk the cycle
until they land inside it (cycle walking), which keeps the map a bijection of the range.

Everything is vectorised with numpy over whole columns; there is no per-value Python loop.

Example:
    >>> from datastage.masking.keys import MaskingKey, siphash_uint64
    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> out = tokenize_text(key, "demo", np.array(["AB-1234", "AB-1235"], dtype=object))
    >>> [len(v) for v in out], out[0][2], out[0] != "AB-1234", out[0] != out[1]
    ([7, 7], '-', True, True)
"""

from __future__ import annotations

import numpy as np

from datastage.masking.keys import MaskingKey, siphash_uint64

TABLE_LIMIT = 1024  # domains up to this size use a keyed table permutation
BLOCK_SYMBOLS = 12  # symbols per Feistel block: 26**12 < 2**57, so block sums fit in uint64
ROUNDS_PER_BLOCK = 4

_U = np.uint64
_CLASS_BASE = np.array([0, 48, 97, 65], dtype=np.uint32)  # other, digit, lower, upper
_CLASS_RADIX = np.array([1, 10, 26, 26], dtype=np.uint64)
_CLASS_RADIX_U8 = _CLASS_RADIX.astype(np.uint8)


# -- the permutation over blocks ---------------------------------------------------------

def _round_key(key: MaskingKey, domain: str, round_no: int) -> bytes:
    return key.subkey(f"{domain}/fpe/round{round_no}")


def _feistel(key: MaskingKey, domain: str, blocks: np.ndarray, radices: np.ndarray, tweak: np.ndarray,
             inverse: bool) -> np.ndarray:
    """Keyed Feistel permutation of rows of ``blocks`` (n, k), each block mod its radix (n, k)."""
    _n, k = blocks.shape
    rounds = ROUNDS_PER_BLOCK * k
    out = blocks.copy()
    order = range(rounds - 1, -1, -1) if inverse else range(rounds)
    with np.errstate(over="ignore"):
        for r in order:
            target = r % k
            round_key = _round_key(key, domain, r)
            h = tweak.copy()
            for j in range(k):
                if j != target:
                    h = round_hash(round_key, h ^ out[:, j])
            modulus = radices[:, target]
            f = _scale(h, modulus)
            column = out[:, target]
            column = column + (modulus - f) if inverse else column + f
            column -= modulus * (column >= modulus)
            out[:, target] = column
    return out


def _scale(h: np.ndarray, modulus: np.ndarray) -> np.ndarray:
    """Map uniform 64-bit hashes into ``[0, modulus)`` (multiply-shift via float; no division)."""
    scaled = ((h >> _U(11)).astype(np.float64) * (1.0 / 2**53) * modulus.astype(np.float64)).astype(np.uint64)
    return np.minimum(scaled, modulus - _U(1))


def key_hash(key16: bytes, values: np.ndarray) -> np.ndarray:
    """SipHash-2-4 of uint64 values under a raw 16-byte key."""
    return siphash_uint64(key16, values)


def round_hash(key16: bytes, values: np.ndarray) -> np.ndarray:
    """The Feistel round function: SipHash-1-3 of uint64 values under the round's subkey."""
    return siphash_uint64(key16, values, rounds=(1, 3), finalize=False)


def _increment(blocks: np.ndarray, radices: np.ndarray) -> np.ndarray:
    """``blocks + 1`` as one mixed-radix number (last block least significant), wrapping to 0."""
    out = blocks.copy()
    carry = np.ones(len(out), dtype=bool)
    for j in range(out.shape[1] - 1, -1, -1):
        if not carry.any():
            break
        bumped = out[:, j] + carry.astype(np.uint64)
        wrap = bumped >= radices[:, j]
        out[:, j] = np.where(wrap, _U(0), bumped)
        carry = carry & wrap
    return out


def cycle_step(key: MaskingKey, domain: str, blocks: np.ndarray, radices: np.ndarray,
               tweak: np.ndarray) -> np.ndarray:
    """``Q(x) = P⁻¹(P(x) + 1)``: a keyed bijection without fixed points (for domains > 1)."""
    if len(blocks) == 0:
        return blocks.copy()
    forward = _feistel(key, domain, blocks, radices, tweak, inverse=False)
    return _feistel(key, domain, _increment(forward, radices), radices, tweak, inverse=True)


def table_step(key: MaskingKey, domain: str, values: np.ndarray, sizes: np.ndarray,
               tweak: np.ndarray) -> np.ndarray:
    """``Q`` for tiny domains: the successor in a keyed random order of ``range(size)``."""
    out = values.copy()
    if len(values) == 0:
        return out
    table_key = key.subkey(f"{domain}/fpe/table")
    groups = np.unique(np.stack([tweak, sizes], axis=1), axis=0)
    for group_tweak, size in groups:
        rows = (tweak == group_tweak) & (sizes == size)
        if size <= 1:
            continue
        with np.errstate(over="ignore"):
            salt = group_tweak * _U(0x9E3779B97F4A7C15)
        ranks = key_hash(table_key, np.arange(size, dtype=np.uint64) ^ salt)
        order = np.argsort(ranks, kind="stable")  # order[i]: the element at position i
        position = np.empty(int(size), dtype=np.int64)
        position[order] = np.arange(int(size))
        x = values[rows].astype(np.int64)
        out[rows] = order[(position[x] + 1) % int(size)].astype(np.uint64)
    return out


def permute(key: MaskingKey, domain: str, blocks: np.ndarray, radices: np.ndarray,
            tweak: np.ndarray) -> np.ndarray:
    """Apply ``Q`` to mixed-radix values given as blocks (n, k) with per-row radices (n, k)."""
    total_small = np.ones(len(blocks), dtype=bool)
    size = np.ones(len(blocks), dtype=np.uint64)
    for j in range(blocks.shape[1]):
        total_small &= radices[:, j] <= TABLE_LIMIT
        size = np.where(total_small, size * np.minimum(radices[:, j], _U(TABLE_LIMIT + 1)), size)
        total_small &= size <= TABLE_LIMIT
    out = blocks.copy()
    if total_small.any():
        small_blocks, small_radices = blocks[total_small], radices[total_small]
        flat = np.zeros(len(small_blocks), dtype=np.uint64)
        for j in range(blocks.shape[1]):
            flat = flat * small_radices[:, j] + small_blocks[:, j]
        mapped = table_step(key, domain, flat, size[total_small], tweak[total_small])
        unpacked = np.empty_like(small_blocks)
        for j in range(blocks.shape[1] - 1, -1, -1):
            unpacked[:, j] = mapped % small_radices[:, j]
            mapped = mapped // small_radices[:, j]
        out[total_small] = unpacked
    large = ~total_small
    if large.any():
        out[large] = cycle_step(key, domain, blocks[large], radices[large], tweak[large])
    return out


# -- text --------------------------------------------------------------------------------

def _char_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes uint32 (width, n), lengths) of an object array of str; one column per value."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    width = int(lengths.max()) if len(values) else 0
    if width == 0:
        return np.zeros((0, len(values)), dtype=np.uint32), lengths
    fixed = np.array(values, dtype=f"U{width}")
    return np.ascontiguousarray(fixed.view(np.uint32).reshape(len(values), width).T), lengths


CHUNK = 16_384  # values per pass: the working arrays stay in the CPU cache


def tokenize_text(key: MaskingKey, domain: str, values: np.ndarray, letters: bool = True) -> np.ndarray:
    """Tokenize an object array of str: same length, same character classes, keyed bijection.

    ``letters=False`` tokenizes only digits and keeps letters in place (phone numbers).
    """
    values = np.asarray(values, dtype=object)
    if len(values) <= CHUNK:
        return _tokenize_text(key, domain, values, letters)
    return np.concatenate([_tokenize_text(key, domain, values[s:s + CHUNK], letters)
                           for s in range(0, len(values), CHUNK)])


def _tokenize_text(key: MaskingKey, domain: str, values: np.ndarray, letters: bool) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=object)
    codes, lengths = _char_matrix(values)
    width = codes.shape[0]
    has_nul_tail = (codes == 0).sum(axis=0) > (width - lengths) if width else np.zeros(n, dtype=bool)
    cls = np.zeros(codes.shape, dtype=np.uint8)
    cls[(codes >= 48) & (codes <= 57)] = 1
    if letters:
        cls[(codes >= 97) & (codes <= 122)] = 2
        cls[(codes >= 65) & (codes <= 90)] = 3
    classed = cls > 0
    base = _CLASS_BASE[cls]
    digits = (codes - base).astype(np.uint8)  # symbols < 26: small matrices keep the work in cache
    digits[~classed] = 0
    count = classed.sum(axis=0)
    tweak = _shape_tweak(key, domain, cls, lengths)
    new_digits = digits
    blocks_needed = np.maximum(2, -(-count // BLOCK_SYMBOLS))
    for k in np.unique(blocks_needed[count > 0]):
        chosen = (blocks_needed == k) & (count > 0)
        if chosen.all():
            new_digits = _tokenize_rows(key, domain, digits, cls, classed, count, int(k), tweak)
        else:
            rows = np.flatnonzero(chosen)
            new_digits = new_digits.copy() if new_digits is digits else new_digits
            new_digits[:, rows] = _tokenize_rows(key, domain, digits[:, rows], cls[:, rows], classed[:, rows],
                                                 count[rows], int(k), tweak[rows])
    out_codes = np.where(classed, base + new_digits.astype(np.uint32), codes)
    fixed = np.ascontiguousarray(out_codes.T).view(f"U{width}").ravel()
    result = fixed.astype(object)
    if has_nul_tail.any():  # trailing NUL characters do not survive numpy's fixed-width strings
        for i in np.flatnonzero(has_nul_tail):
            result[i] = result[i] + values[i][len(result[i]):]
    return result


def _shape_tweak(key: MaskingKey, domain: str, cls: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A keyed 64-bit tweak per value from its shape (class of every position and the length)."""
    shape = lengths.astype(np.uint64)
    with np.errstate(over="ignore"):
        for j in range(cls.shape[0]):
            inside = lengths > j  # positions past a value's end (batch padding) must not count
            shape = np.where(inside, shape * _U(0x100000001B3) + cls[j] + _U(1), shape)
    return key.hash_uint64(f"{domain}/fpe/shape", shape)


def _tokenize_rows(key: MaskingKey, domain: str, digits: np.ndarray, cls: np.ndarray, classed: np.ndarray,
                   count: np.ndarray, k: int, tweak: np.ndarray) -> np.ndarray:
    """Pack the classed symbols of each value (columns of ``digits``) into k blocks, permute, unpack."""
    width, n = digits.shape
    block_of = np.empty((width, n), dtype=np.int32)
    seen = np.zeros(n, dtype=np.int32)
    denominator = np.maximum(count, 1).astype(np.int32)
    for j in range(width):
        block_of[j] = (seen * k) // denominator
        seen += classed[j]
    block_of[~classed] = -1
    radix = _CLASS_RADIX_U8[cls]
    blocks = np.zeros((n, k), dtype=np.uint64)
    radices = np.ones((n, k), dtype=np.uint64)
    block_radix = []
    for b in range(k):
        in_block = block_of == b
        rb = np.where(in_block, radix, np.uint8(1))
        db = np.where(in_block, digits, np.uint8(0))
        value = np.zeros(n, dtype=np.uint64)
        for j in range(width):
            value *= rb[j]
            value += db[j]
        blocks[:, b] = value
        radices[:, b] = np.prod(rb, axis=0, dtype=np.uint64)
        block_radix.append(rb)
    mapped = permute(key, domain, blocks, radices, tweak)
    out = np.zeros_like(digits)
    for b in range(k):
        rb = block_radix[b]
        value = np.ascontiguousarray(mapped[:, b])
        for j in range(width - 1, -1, -1):
            value, rem = np.divmod(value, rb[j])
            np.add(out[j], rem, out=out[j], casting="unsafe")
    return out


# -- integers ----------------------------------------------------------------------------

_POW10 = np.array([10**i for i in range(20)], dtype=np.uint64)


def tokenize_int(key: MaskingKey, domain: str, values: np.ndarray, max_value: int = 2**63 - 1,
                 min_value: int = -(2**63)) -> np.ndarray:
    """Tokenize integers: same sign and number of digits, within [min_value, max_value], bijective.

    0 stays 0; 1..9 map within 1..9; a d-digit number maps to a d-digit number.
    """
    if len(values) > CHUNK:
        return np.concatenate([tokenize_int(key, domain, values[s:s + CHUNK], max_value, min_value)
                               for s in range(0, len(values), CHUNK)])
    try:
        signed = np.asarray(values, dtype=np.int64)
        negative = signed < 0
        magnitude = np.abs(signed).astype(np.uint64)
        magnitude[signed == np.iinfo(np.int64).min] = np.uint64(2**63)
    except OverflowError:  # beyond int64: numbers this large only occur unsigned
        ints = [int(v) for v in values]
        negative = np.fromiter((v < 0 for v in ints), dtype=bool, count=len(ints))
        magnitude = np.fromiter((abs(v) for v in ints), dtype=np.uint64, count=len(ints))
    out = magnitude.copy()
    ndigits = np.searchsorted(_POW10, magnitude, side="right")  # 0 for 0, 1 for 1..9, ...
    for sign in (False, True):
        bound = (-min_value if sign else max_value)
        for d in np.unique(ndigits[(negative == sign) & (ndigits > 0)]):
            rows = np.flatnonzero((negative == sign) & (ndigits == d))
            out[rows] = _tokenize_magnitudes(key, domain, magnitude[rows], int(d), sign, bound)
    if (out < np.uint64(2**63)).all():
        signed_out = out.astype(np.int64)
        return np.where(negative, -signed_out, signed_out).astype(object)
    result = np.empty(len(out), dtype=object)
    result[:] = [-int(m) if s else int(m) for m, s in zip(out.tolist(), negative.tolist(), strict=True)]
    return result


def _tokenize_magnitudes(key: MaskingKey, domain: str, magnitude: np.ndarray, d: int, negative: bool,
                         bound: int) -> np.ndarray:
    low = 10 ** (d - 1) if d > 1 else 1
    high = min(10**d - 1, bound)
    if high <= low:
        return magnitude
    size = 9 * 10 ** (d - 1)
    low_digits = d // 2
    radices = np.tile(np.array([size // 10**low_digits, 10**low_digits], dtype=np.uint64), (len(magnitude), 1))
    tweak = np.full(len(magnitude), key.hash_uint64(f"{domain}/fpe/int", np.array([d * 2 + negative],
                                                                                  dtype=np.uint64))[0])
    offset = magnitude - _U(low)
    current = np.stack([offset // _U(10**low_digits), offset % _U(10**low_digits)], axis=1)
    result = np.empty_like(magnitude)
    pending = np.arange(len(magnitude))
    limit = _U(high - low)
    while len(pending):
        current = permute(key, domain, current, radices[: len(current)], tweak[: len(current)])
        value = current[:, 0] * _U(10**low_digits) + current[:, 1]
        inside = value <= limit
        result[pending[inside]] = value[inside] + _U(low)
        pending, current = pending[~inside], current[~inside]
    return result
