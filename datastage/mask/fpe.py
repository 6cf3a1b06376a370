"""Format-preserving, keyed, bijective tokenization on FF1 (NIST SP 800-38G) with AES.

**FF1.** :class:`FF1` is the FF1 mode of NIST SP 800-38G (Rev. 1) on AES: ten Feistel
rounds whose round function is AES-CBC-MAC over ``P || Q`` and, when more than 16 bytes
are needed, the counter expansion of ``R``. It is batched over a whole column: each
round is one AES-ECB call over every row (``P`` is encrypted once per parameter set,
``Q`` blocks that only hold the tweak are absorbed once per call, and the block holding
the round number and ``NUM(B)`` is encrypted for all rows at once). Numbers are numpy
``uint64`` while ``radix**ceil(n/2)`` stays below :data:`FAST_LIMIT` (2**62), which covers
values of up to 36 digits or 26 letters, mixed-radix domains below 2**116 (two 58-bit
limbs) and every 64-bit integer range. Longer values are computed with Python integers
per value (the same batched AES calls, the same results), correct at any length but
about 25 times slower (some 20,000 values a second); they are rare in keys and codes.

**Domains.** A text value is read as a mixed-radix number: each ASCII digit a symbol of
radix 10, each ASCII letter (either case) a symbol of radix 26; every other character
stays where it is, and letter case is part of the value's shape. Values whose symbols
are all digits (or all letters) are encrypted with FF1 at radix 10 (or 26) over exactly
their symbols. Mixed values are encrypted with FF1 at radix 2 over their index in the
mixed-radix domain (``n`` = bit length of the domain size), and *cycle walking* repeats
the permutation until the result is inside the domain again. Integers are encrypted the
same way over their offset in the range of numbers with the same sign and digit count
that the column's type can hold, so they keep sign, digit count and range. Values
outside the column's range (SQLite does not enforce declared types) are permuted among
themselves, so the map stays a bijection of every input set.

**No fixed points.** The permutation applied is ``Q(x) = E⁻¹(E(x) + 1)`` with ``E`` the
FF1 encryption: a conjugate of ``+1``, hence a single cycle through the whole domain, so
no value maps to itself, and cycle walking on a single cycle never returns the start.

**Tiny domains.** Domains smaller than :data:`MIN_DOMAIN` (10**6, the smallest domain
SP 800-38G Rev. 1 allows FF1 on) use a keyed table instead: the successor in a keyed
random order of ``range(size)`` (AES sort keys, built once per key, domain and size and
cached), conjugated by a keyed affine map per tweak so that different shapes of the
same size get different cycles.

**Key and tweak.** The AES-256 key is derived from subkeys of the masking key for the
masking domain (:meth:`MaskingKey.subkey`), never from the raw key. The 8-byte tweak is
a keyed hash of the value's shape (the class of every position and the length) under
the masking domain, or of the sign, digit count and range segment for integers.

Example:
    >>> from datastage.mask.keys import MaskingKey
    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> out = tokenize_text(key, "demo", np.array(["AB-1234", "AB-1235"], dtype=object))
    >>> [len(v) for v in out], out[0][2], out[0] != "AB-1234", out[0] != out[1]
    ([7, 7], '-', True, True)
    >>> FF1(bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")).encrypt(10, list(range(10)))
    [2, 4, 3, 3, 4, 7, 7, 4, 8, 4]
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from datastage.mask.keys import MaskingKey

ROUNDS = 10  # FF1 has ten Feistel rounds
MIN_DOMAIN = 1_000_000  # SP 800-38G Rev. 1: radix**minlen >= 10**6; smaller domains use a keyed table
FAST_LIMIT = 1 << 62  # halves below this run in uint64; see _step32 for why not 2**64
MIXED_FAST_BITS = 116  # mixed-radix indices up to this many bits run in two uint64 limbs
TABLE_BUDGET = 4_000_000  # table entries kept in the cache (8 bytes each: two int32)
TWEAK_BYTES = 8
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


# -- FF1 -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Params:
    """FF1 constants for one (radix, n, tweak length)."""

    radix: int
    n: int
    t: int
    u: int
    v: int
    b: int  # bytes of NUM(B)
    d: int  # bytes of S
    P: bytes
    qlen: int  # bytes of Q
    round_at: int  # offset of the round number in Q
    first_var: int  # index of the first Q block that changes between rounds
    fast: bool  # uint64 arithmetic (radix**v < FAST_LIMIT)

    @property
    def mod_u(self) -> int:
        return int(self.radix**self.u)

    @property
    def mod_v(self) -> int:
        return int(self.radix**self.v)


@lru_cache(maxsize=1024)
def _params(radix: int, n: int, t: int) -> _Params:
    if not 2 <= radix <= 1 << 16:
        raise ValueError(f"FF1 radix must be in [2, 65536], got {radix}")
    if n < 2 or radix**n < MIN_DOMAIN:
        raise ValueError(f"FF1 needs radix**n >= {MIN_DOMAIN} and n >= 2 (radix {radix}, n {n})")
    u = n // 2
    v = n - u
    b = ((radix**v - 1).bit_length() + 7) // 8  # = ceil(ceil(v * log2(radix)) / 8), exactly
    d = 4 * ((b + 3) // 4) + 4
    P = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big") \
        + t.to_bytes(4, "big")
    qlen = t + (-t - b - 1) % 16 + 1 + b
    round_at = qlen - b - 1
    return _Params(radix, n, t, u, v, b, d, P, qlen, round_at, round_at // 16, radix**v < FAST_LIMIT)


def _be_uint(columns: np.ndarray) -> np.ndarray:
    """Big-endian bytes (rows, w <= 8) as uint64."""
    rows, width = columns.shape
    padded = np.zeros((rows, 8), dtype=np.uint8)
    padded[:, 8 - width:] = columns
    return padded.view(">u8").ravel().astype(np.uint64)


def _step32(r: np.ndarray, w: np.ndarray, modulus: int) -> np.ndarray:
    """``(r * 2**32 + w) mod modulus`` for ``r < modulus < 2**62`` and 32-bit ``w``, in uint64.

    Up to 2**32 the product fits; up to 2**48 two 16-bit steps do. Above, the quotient is
    estimated in float64 (relative error below 2**-50 on a quotient below 2**32, so it is
    off by at most one), the remainder is computed modulo 2**64 (exact, as it lies in
    [-m, 2m) and 2m < 2**63) and corrected once either way.
    """
    m = _U(modulus)
    if modulus <= 1 << 32:
        return ((r << _U(32)) | w) % m
    if modulus <= 1 << 48:
        r = ((r << _U(16)) | (w >> _U(16))) % m
        return ((r << _U(16)) | (w & _U(0xFFFF))) % m
    estimate = r.astype(np.float64)
    estimate *= 2.0**32 / modulus
    estimate += w.astype(np.float64) * (1.0 / modulus)
    q = estimate.astype(np.uint64)  # truncation is floor: everything is non-negative
    with np.errstate(over="ignore"):
        rem = (((r << _U(32)) | w) - q * m).view(np.int64)
    signed_m = np.int64(modulus)
    rem = np.where(rem < 0, rem + signed_m, rem)
    rem = np.where(rem >= signed_m, rem - signed_m, rem)
    return rem.view(np.uint64)


class FF1:
    """FF1 of NIST SP 800-38G under one AES key (16, 24 or 32 bytes), batched over rows.

    :meth:`encrypt`/:meth:`decrypt` take one numeral string; :meth:`encrypt_halves` and
    :meth:`decrypt_halves` take whole columns as the two halves ``A = NUM(X[:u])`` and
    ``B = NUM(X[u:])`` (uint64 arrays, or object arrays of Python ints) with one tweak
    row per value.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("an AES key has 16, 24 or 32 bytes")
        # ECB is AES itself, block by block: FF1 builds its CBC-MAC and expansion from it.
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305
        self._p_state: dict[bytes, np.ndarray] = {}
        self._local = threading.local()

    def _encryptor(self) -> CipherContext:
        """This thread's ECB context: ECB keeps no state between whole blocks, so it is reused."""
        context: CipherContext | None = self._local.__dict__.get("context")
        if context is None:
            context = self._cipher.encryptor()
            self._local.context = context
        return context

    def ecb(self, blocks: np.ndarray) -> np.ndarray:
        """AES of every 16-byte row of ``blocks`` (rows, 16), in one call."""
        data = np.ascontiguousarray(blocks, dtype=np.uint8)
        out = np.empty(data.size + 15, dtype=np.uint8)
        written = self._encryptor().update_into(data.data, out.data)
        return out[:written].reshape(-1, 16)

    # -- one numeral string (reference interface, used for the NIST samples) -----------

    def encrypt(self, radix: int, numerals: Sequence[int], tweak: bytes = b"", exact: bool = False) -> list[int]:
        """FF1.Encrypt(K, T, X) of one numeral string (most significant numeral first)."""
        return self._one(radix, numerals, tweak, exact, decrypt=False)

    def decrypt(self, radix: int, numerals: Sequence[int], tweak: bytes = b"", exact: bool = False) -> list[int]:
        """FF1.Decrypt(K, T, Y) of one numeral string."""
        return self._one(radix, numerals, tweak, exact, decrypt=True)

    def _one(self, radix: int, numerals: Sequence[int], tweak: bytes, exact: bool, decrypt: bool) -> list[int]:
        if any(not 0 <= x < radix for x in numerals):
            raise ValueError(f"numerals must lie in [0, {radix})")
        prm = _params(radix, len(numerals), len(tweak))
        a = _num(numerals[: prm.u], radix)
        b = _num(numerals[prm.u:], radix)
        fast = prm.fast and not exact
        arr_a = np.array([a], dtype=np.uint64 if fast else object)
        arr_b = np.array([b], dtype=np.uint64 if fast else object)
        tweaks = np.frombuffer(tweak, dtype=np.uint8).reshape(1, len(tweak))
        out_a, out_b = self._rounds(prm, tweaks, arr_a, arr_b, decrypt, exact)
        return _str(int(out_a[0]), radix, prm.u) + _str(int(out_b[0]), radix, prm.v)

    # -- columns ----------------------------------------------------------------------------

    def encrypt_halves(self, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
                       exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """FF1.Encrypt of every row: ``a``/``b`` are the halves, ``tweaks`` (rows, t) uint8."""
        return self._rounds(_params(radix, n, tweaks.shape[1]), tweaks, a, b, False, exact)

    def decrypt_halves(self, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
                       exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """FF1.Decrypt of every row (the inverse of :meth:`encrypt_halves`)."""
        return self._rounds(_params(radix, n, tweaks.shape[1]), tweaks, a, b, True, exact)

    def _rounds(self, prm: _Params, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray, decrypt: bool,
                exact: bool) -> tuple[np.ndarray, np.ndarray]:
        if prm.fast and not exact:
            return self._rounds_fast(prm, tweaks, np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64),
                                     decrypt)
        a, b = _objects(a), _objects(b)
        if len(a) == 0:
            return a, b
        base, tail = self._absorb_prefix(prm, tweaks)
        mods = (prm.mod_u, prm.mod_v)
        for i in (range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)):
            m = mods[i % 2]
            y = self._round_value(prm, base, tail, i, a if decrypt else b, m)
            if decrypt:
                a, b = _objects((b - y) % m), a
            else:
                a, b = b, _objects((a + y) % m)
        return a, b

    def _rounds_fast(self, prm: _Params, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
                     decrypt: bool) -> tuple[np.ndarray, np.ndarray]:
        """The ten rounds in uint64: ``b <= 8`` bytes, so the round number and ``NUM(B)`` fill the
        last 8 (or 9) bytes of the last Q block and ``S`` is 8 or 12 bytes of one AES block."""
        rows = len(a)
        if rows == 0:
            return a, b
        base, _tail = self._absorb_prefix(prm, tweaks)
        base_be = np.ascontiguousarray(base).view(">u8")
        base_hi = base_be[:, 0].astype(np.uint64)
        base_lo = base_be[:, 1].astype(np.uint64)
        block = np.empty((rows, 2), dtype=">u8")
        out = np.empty(rows * 16 + 15, dtype=np.uint8)
        result = out[: rows * 16].view(">u8").reshape(rows, 2)
        encryptor = self._encryptor()
        shift = _U(8 * prm.b)
        mods = (prm.mod_u, prm.mod_v)
        power_of_two = prm.radix & (prm.radix - 1) == 0
        if prm.b <= 7:
            block[:, 0] = base_hi
        for i in (range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)):
            m = mods[i % 2]
            x = a if decrypt else b
            if prm.b <= 7:
                block[:, 1] = base_lo ^ (x | (_U(i) << shift))
            else:
                block[:, 0] = base_hi ^ _U(i)
                block[:, 1] = base_lo ^ x
            encryptor.update_into(block.view(np.uint8).data, out.data)
            r_hi = result[:, 0].astype(np.uint64)
            if prm.d == 8:
                y = r_hi & _U(m - 1) if power_of_two else r_hi % _U(m)
            else:
                w = (result[:, 1] >> 32).astype(np.uint64)
                y = ((r_hi << _U(32)) | w) & _U(m - 1) if power_of_two else _step32(r_hi % _U(m), w, m)
            mm = _U(m)
            c = b + (mm - y) if decrypt else a + y
            np.minimum(c, c - mm, out=c)  # c - m wraps around to above c when c < m: this is c mod m
            a, b = (c, a) if decrypt else (b, c)
        return a, b

    def _absorb_prefix(self, prm: _Params, tweaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(CBC state XOR the constant part of the first varying Q block, the later Q blocks).

        ``P`` and the Q blocks before the round number hold only the tweak and padding:
        they are the same in every round, so they are encrypted once here.
        """
        rows = len(tweaks)
        p_state = self._p_state.get(prm.P)
        if p_state is None:
            p_state = self.ecb(np.frombuffer(prm.P, dtype=np.uint8).reshape(1, 16))[0]
            self._p_state[prm.P] = p_state
        q = np.zeros((rows, prm.qlen), dtype=np.uint8)
        q[:, : prm.t] = tweaks
        state = np.broadcast_to(p_state, (rows, 16))
        for j in range(prm.first_var):
            state = self.ecb(state ^ q[:, 16 * j: 16 * j + 16])
        start = 16 * prm.first_var
        base = state ^ q[:, start: start + 16]
        return base, q[:, start + 16:]

    def _round_value(self, prm: _Params, base: np.ndarray, tail: np.ndarray, i: int, x: np.ndarray,
                     m: int) -> np.ndarray:
        """``NUM(S) mod m`` of round ``i`` for every row in Python integers, ``x`` the half fed to the PRF."""
        rows = len(x)
        xbytes = np.frombuffer(b"".join(int(v).to_bytes(prm.b, "big") for v in x),
                               dtype=np.uint8).reshape(rows, prm.b)
        start = 16 * prm.first_var
        variable = np.concatenate([np.zeros((rows, 16), dtype=np.uint8), tail], axis=1)
        variable[:, prm.round_at - start] = i
        variable[:, -prm.b:] = xbytes
        r = self.ecb(base ^ variable[:, :16])
        for j in range(1, variable.shape[1] // 16):
            r = self.ecb(r ^ variable[:, 16 * j: 16 * j + 16])
        s = r[:, : prm.d] if prm.d <= 16 else self._expand(r, prm.d)
        raw = s.tobytes()
        d = prm.d
        return _objects([int.from_bytes(raw[k * d:(k + 1) * d], "big") % m for k in range(rows)])

    def _expand(self, r: np.ndarray, d: int) -> np.ndarray:
        """``S = R || CIPH(R ^ [1]) || CIPH(R ^ [2]) || ...`` truncated to ``d`` bytes."""
        extra = -(-d // 16) - 1
        counters = np.frombuffer(b"".join(j.to_bytes(16, "big") for j in range(1, extra + 1)),
                                 dtype=np.uint8).reshape(extra, 16)
        blocks = self.ecb((r[:, None, :] ^ counters[None, :, :]).reshape(-1, 16)).reshape(len(r), extra * 16)
        return np.concatenate([r, blocks], axis=1)[:, :d]


def _objects(values: Sequence[int] | np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [int(v) for v in values]
    return out


def _num(numerals: Sequence[int], radix: int) -> int:
    value = 0
    for x in numerals:
        value = value * radix + int(x)
    return value


def _str(value: int, radix: int, length: int) -> list[int]:
    out = [0] * length
    for j in range(length - 1, -1, -1):
        value, out[j] = divmod(value, radix)
    return out


# -- keys ------------------------------------------------------------------------------------

def aes_key(key: MaskingKey, domain: str, purpose: str = "ff1") -> bytes:
    """The AES-256 key of ``domain`` for ``purpose``, from three subkeys of the masking key."""
    parts = b"".join(key.subkey(f"{domain}/{purpose}/aes256/{i}") for i in range(3))
    return hashlib.sha256(b"datastage fpe aes-256\x00" + purpose.encode() + b"\x00" + parts).digest()


@lru_cache(maxsize=256)
def _cipher(key: bytes) -> FF1:
    return FF1(key)


def cipher_for(key: MaskingKey, domain: str) -> FF1:
    """The FF1 instance of a masking domain."""
    return _cipher(aes_key(key, domain))


def _tweak_bytes(tweak: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(tweak, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(len(tweak), 8)


# -- the fixed-point-free permutation and cycle walking --------------------------------------

def _inside(a: np.ndarray, b: np.ndarray, bound_a: np.ndarray | int, bound_b: np.ndarray | int) -> np.ndarray:
    """``a * R**v + b < bound`` with the bound given as halves too."""
    return np.asarray((a < bound_a) | ((a == bound_a) & (b < bound_b)), dtype=bool)


def _step(ff1: FF1, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
          exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """``Q(x) = E⁻¹(E(x) + 1)`` on halves: a keyed single cycle through ``[0, radix**n)``."""
    prm = _params(radix, n, tweaks.shape[1])
    ea, eb = ff1.encrypt_halves(radix, n, tweaks, a, b, exact)
    fast = prm.fast and not exact
    one, zero = (_U(1), _U(0)) if fast else (1, 0)
    mod_u, mod_v = (_U(prm.mod_u), _U(prm.mod_v)) if fast else (prm.mod_u, prm.mod_v)
    eb = eb + one
    wrap = np.asarray(eb == mod_v, dtype=bool)
    eb = np.where(wrap, zero, eb)
    ea = np.where(wrap, ea + one, ea)
    ea = np.where(np.asarray(ea == mod_u, dtype=bool), zero, ea)
    if not fast:
        ea, eb = _objects(ea), _objects(eb)
    return ff1.decrypt_halves(radix, n, tweaks, ea, eb, exact)


def cycle(ff1: FF1, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
          bound: tuple[np.ndarray | int, np.ndarray | int] | None = None,
          exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``Q`` once, then again while the result lies at or beyond ``bound`` (cycle walking).

    Inputs must lie below ``bound`` (halves ``(bound // R**v, bound % R**v)``, per row or
    shared). The result is a bijection of ``[0, bound)`` without fixed points (for a bound >= 2).
    """
    out_a, out_b = _step(ff1, radix, n, tweaks, a, b, exact)
    if bound is None or len(out_a) == 0:
        return out_a, out_b
    bound_a, bound_b = bound
    pending = np.flatnonzero(~_inside(out_a, out_b, bound_a, bound_b))
    while len(pending):
        cur_a, cur_b = _step(ff1, radix, n, tweaks[pending], out_a[pending], out_b[pending], exact)
        out_a[pending], out_b[pending] = cur_a, cur_b
        ba = bound_a[pending] if isinstance(bound_a, np.ndarray) else bound_a
        bb = bound_b[pending] if isinstance(bound_b, np.ndarray) else bound_b
        pending = pending[~_inside(cur_a, cur_b, ba, bb)]
    return out_a, out_b


# -- keyed tables for domains below 10**6 ------------------------------------------------------

class _TableCache:
    """Keyed orders of ``range(size)``, least recently used first out, within an entry budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._tables: OrderedDict[tuple[bytes, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ff1: FF1, table_key: bytes, size: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            found = self._tables.get((table_key, size))
            if found is not None:
                self._tables.move_to_end((table_key, size))
                return found
        built = _build_table(ff1, size)
        with self._lock:
            self._tables[(table_key, size)] = built
            while sum(len(o) for o, _ in self._tables.values()) > self.budget and len(self._tables) > 1:
                self._tables.popitem(last=False)
        return built


_TABLES = _TableCache(TABLE_BUDGET)


def _build_table(ff1: FF1, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, position): ``order[i]`` is the element at position ``i`` of the keyed order."""
    blocks = np.zeros((size, 16), dtype=np.uint8)
    blocks[:, :8] = np.full(1, size, dtype=">u8").view(np.uint8)
    blocks[:, 8:] = np.arange(size, dtype=">u8").view(np.uint8).reshape(size, 8)
    sort_keys = _be_uint(ff1.ecb(blocks)[:, :8])  # AES is a permutation: the 128-bit outputs are distinct
    order = np.argsort(sort_keys, kind="stable").astype(np.int32)  # sizes are below 10**6
    position = np.empty(size, dtype=np.int32)
    position[order] = np.arange(size, dtype=np.int32)
    return order, position


def table_permute(key: MaskingKey, domain: str, values: np.ndarray, size: int, tweak: np.ndarray) -> np.ndarray:
    """``Q`` for a domain of ``size < 10**6`` values: the keyed successor, conjugated per tweak.

    For each tweak, ``τ(x) = (a x + c) mod size`` (``a`` invertible, both from AES of the
    tweak) maps the value into the shared keyed order; the result is ``τ⁻¹(next(τ(x)))``:
    a single cycle through the domain, so a bijection without fixed points (size >= 2).
    """
    x = np.asarray(values, dtype=np.int64)
    if size <= 1 or len(x) == 0:
        return x.copy()
    table_key = aes_key(key, domain, "table")
    ff1 = _cipher(table_key)
    order, position = _TABLES.get(ff1, table_key, size)
    distinct, which = np.unique(np.asarray(tweak, dtype=np.uint64), return_inverse=True)
    blocks = np.zeros((len(distinct), 16), dtype=np.uint8)
    blocks[:, :8] = distinct.astype(">u8").view(np.uint8).reshape(len(distinct), 8)
    blocks[:, 8:] = np.full(1, size | (1 << 63), dtype=">u8").view(np.uint8)  # never a sort-key block
    mixed = ff1.ecb(blocks)
    a_list, c_list, inv_list = [], [], []
    for first, second in zip(_be_uint(mixed[:, :8]).tolist(), _be_uint(mixed[:, 8:]).tolist(), strict=True):
        a = first % size or 1
        while math.gcd(a, size) != 1:
            a = a % (size - 1) + 1
        a_list.append(a)
        c_list.append(second % size)
        inv_list.append(pow(a, -1, size))
    a_row = np.array(a_list, dtype=np.int64)[which]
    c_row = np.array(c_list, dtype=np.int64)[which]
    inv_row = np.array(inv_list, dtype=np.int64)[which]
    moved = (a_row * x + c_row) % size
    moved = order[(position[moved].astype(np.int64) + 1) % size].astype(np.int64)
    return (inv_row * ((moved - c_row) % size)) % size


# -- text -------------------------------------------------------------------------------------

def tokenize_text(key: MaskingKey, domain: str, values: np.ndarray, letters: bool = True) -> np.ndarray:
    """Tokenize an object array of str: same length, same character classes, keyed bijection.

    ``letters=False`` tokenizes only digits and keeps letters in place (phone numbers).
    """
    values = np.asarray(values, dtype=object)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if len(values) <= CHUNK and (len(values) == 0 or len(values) * int(lengths.max()) <= CELL_BUDGET):
        return _tokenize_text(key, domain, values, letters)
    # Batches of similar lengths, each within CHUNK values and CELL_BUDGET characters: one long
    # value must not widen the character matrix of every other value (results do not depend on
    # the batch).
    order = np.argsort(lengths, kind="stable")
    out = np.empty(len(values), dtype=object)
    start = 0
    while start < len(order):
        width = max(1, int(lengths[order[min(start + CHUNK, len(order)) - 1]]))
        stop = min(start + CHUNK, len(order), start + max(1, CELL_BUDGET // width))
        rows = order[start:stop]
        out[rows] = _tokenize_text(key, domain, values[rows], letters)
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
    has_nul_tail = (lengths > 0) & (codes[np.arange(n), np.maximum(lengths - 1, 0)] == 0)
    coded = (_CODED if letters else _DIGIT_CODED)[np.minimum(codes, np.uint32(128))]
    cls = coded >> np.uint8(5)
    symbols = coded & np.uint8(31)  # 0 where not classed
    digits = np.count_nonzero(cls == 1, axis=1)
    alphas = np.count_nonzero(cls, axis=1) - digits
    tweak = _shape_tweak(key, domain, cls, lengths)
    new_symbols = _permute_symbols(key, domain, symbols, cls, digits, alphas, tweak)
    out_codes = codes - symbols + new_symbols  # unclassed positions keep their symbol 0: codes unchanged
    result = out_codes.view(f"U{width}").ravel().astype(object)
    if has_nul_tail.any():  # trailing NUL characters do not survive numpy's fixed-width strings
        for i in np.flatnonzero(has_nul_tail):
            result[i] = result[i] + values[i][len(result[i]):]
    return result


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
        return _uniform(ff1, 10 if na == 0 else 26, nd + na, dense, _tweak_bytes(tweak))
    radices = _CLASS_RADIX_U8[classes]
    if size < MIN_DOMAIN:
        index = _horner_u64(dense, radices).astype(np.int64)
        return _unhorner_u64(table_permute(key, domain, index, size, tweak).astype(np.uint64), radices)
    return _mixed(ff1, dense, radices, _tweak_bytes(tweak), exact=size >= 1 << MIXED_FAST_BITS)


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
    return _objects(values)


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
    prm = _params(radix, k, TWEAK_BYTES)
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
        sizes = _objects([math.prod(row) for row in radices.T.tolist()])
        bits = np.array([(int(s) - 1).bit_length() for s in sizes], dtype=np.int64)
        for n, rows in _groups(bits):
            v = _params(2, n, TWEAK_BYTES).v
            mask = (1 << v) - 1
            x, size = index[rows], sizes[rows]
            a, b = cycle(ff1, 2, n, tweaks[rows], _objects(x >> v), _objects(x & mask),
                         (_objects(size >> v), _objects(size & mask)), exact=True)
            out[:, rows] = _unhorner_big((a << v) | b, radices[:, rows])
        return out
    hi, lo = _limbs_horner(symbols, radices)
    size_hi, size_lo = _limbs_product(radices)
    top_hi = size_hi - (size_lo == 0)  # size - 1 (sizes are at least 10**6)
    top_lo = (size_lo - _U(1)) & _LIMB_MASK
    bits = np.where(top_hi > 0, _bit_length(top_hi) + _LIMB, _bit_length(top_lo))
    for n, rows in _groups(bits):
        v = _params(2, n, TWEAK_BYTES).v
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
                    out[rows] = _permute_range(key, domain, magnitude[rows] - _U(low), high - low + 1,
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
                offsets = _objects([abs(ints[i]) - low for i in rows])
                mapped = _permute_range(key, domain, offsets, high - low + 1, _int_tweak(key, domain, d, sign, segment))
                for i, m in zip(rows, mapped.tolist(), strict=True):
                    out[i] = int(m) + low
    result = np.empty(len(ints), dtype=object)
    result[:] = [-m if v < 0 else m for m, v in zip(out, ints, strict=True)]
    return result


def _permute_range(key: MaskingKey, domain: str, offsets: np.ndarray, size: int, tweak: np.ndarray) -> np.ndarray:
    """A keyed bijection of ``[0, size)`` without fixed points applied to ``offsets``.

    uint64 offsets give uint64 results; object arrays (sizes beyond 2**64) give Python integers.
    """
    if size < MIN_DOMAIN:
        x = np.asarray(offsets, dtype=np.int64)
        mapped = table_permute(key, domain, x, size, np.repeat(tweak, len(x)))
        return mapped.astype(np.uint64) if offsets.dtype != object else _objects(mapped.tolist())
    n = (size - 1).bit_length()
    v = _params(2, n, TWEAK_BYTES).v
    mask = (1 << v) - 1
    tweaks = np.repeat(_tweak_bytes(tweak), len(offsets), axis=0)
    ff1 = cipher_for(key, domain)
    if n <= 64 and offsets.dtype != object:
        x = np.asarray(offsets, dtype=np.uint64)
        a, b = cycle(ff1, 2, n, tweaks, x >> _U(v), x & _U(mask), (size >> v, size & mask))
        return (a << _U(v)) | b
    a, b = cycle(ff1, 2, n, tweaks, _objects(offsets >> v), _objects(offsets & mask), (size >> v, size & mask),
                 exact=n > 64)
    return _objects(((a.astype(object) << v) | b.astype(object)).tolist())
