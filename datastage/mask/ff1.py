"""FF1 of NIST SP 800-38G (Rev. 1) on AES, over numeral strings, batched over whole columns.

Ten Feistel rounds whose round function is AES-CBC-MAC over ``P || Q`` and, when more than
16 bytes are needed, the counter expansion of ``R``. Each round is one AES-ECB call over
every row (``P`` is encrypted once per parameter set, ``Q`` blocks that only hold the tweak
are absorbed once per call, and the block holding the round number and ``NUM(B)`` is
encrypted for all rows at once). Numbers are numpy ``uint64`` while ``radix**ceil(n/2)``
stays below :data:`FAST_LIMIT` (2**62), which covers values of up to 36 digits or 26
letters, mixed-radix domains below 2**116 (two 58-bit limbs) and every 64-bit integer
range. Longer values are computed with Python integers per value (the same batched AES
calls, the same results), correct at any length but about 25 times slower (some 20,000
values a second); they are rare in keys and codes.

Example:
    >>> FF1(bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")).encrypt(10, list(range(10)))
    [2, 4, 3, 3, 4, 7, 7, 4, 8, 4]
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

ROUNDS = 10  # FF1 has ten Feistel rounds
MIN_DOMAIN = 1_000_000  # SP 800-38G Rev. 1: radix**minlen >= 10**6; smaller domains use a keyed table
FAST_LIMIT = 1 << 62  # halves below this run in uint64; see _step32 for why not 2**64

_U = np.uint64


@dataclass(frozen=True)
class FF1Params:
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
def ff1_params(radix: int, n: int, t: int) -> FF1Params:
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
    return FF1Params(radix, n, t, u, v, b, d, P, qlen, round_at, round_at // 16, radix**v < FAST_LIMIT)


def be_uint64(columns: np.ndarray) -> np.ndarray:
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
        prm = ff1_params(radix, len(numerals), len(tweak))
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
        return self._rounds(ff1_params(radix, n, tweaks.shape[1]), tweaks, a, b, False, exact)

    def decrypt_halves(self, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
                       exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """FF1.Decrypt of every row (the inverse of :meth:`encrypt_halves`)."""
        return self._rounds(ff1_params(radix, n, tweaks.shape[1]), tweaks, a, b, True, exact)

    def _rounds(self, prm: FF1Params, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray, decrypt: bool,
                exact: bool) -> tuple[np.ndarray, np.ndarray]:
        if prm.fast and not exact:
            return self._rounds_fast(prm, tweaks, np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64),
                                     decrypt)
        a, b = int_objects(a), int_objects(b)
        if len(a) == 0:
            return a, b
        base, tail = self._absorb_prefix(prm, tweaks)
        mods = (prm.mod_u, prm.mod_v)
        for i in (range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)):
            m = mods[i % 2]
            y = self._round_value(prm, base, tail, i, a if decrypt else b, m)
            if decrypt:
                a, b = int_objects((b - y) % m), a
            else:
                a, b = b, int_objects((a + y) % m)
        return a, b

    def _rounds_fast(self, prm: FF1Params, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
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

    def _absorb_prefix(self, prm: FF1Params, tweaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def _round_value(self, prm: FF1Params, base: np.ndarray, tail: np.ndarray, i: int, x: np.ndarray,
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
        return int_objects([int.from_bytes(raw[k * d:(k + 1) * d], "big") % m for k in range(rows)])

    def _expand(self, r: np.ndarray, d: int) -> np.ndarray:
        """``S = R || CIPH(R ^ [1]) || CIPH(R ^ [2]) || ...`` truncated to ``d`` bytes."""
        extra = -(-d // 16) - 1
        counters = np.frombuffer(b"".join(j.to_bytes(16, "big") for j in range(1, extra + 1)),
                                 dtype=np.uint8).reshape(extra, 16)
        blocks = self.ecb((r[:, None, :] ^ counters[None, :, :]).reshape(-1, 16)).reshape(len(r), extra * 16)
        return np.concatenate([r, blocks], axis=1)[:, :d]


def int_objects(values: Sequence[int] | np.ndarray) -> np.ndarray:
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
