"""Keyed bijections without fixed points of integer ranges ``[0, size)``, on FF1 and keyed tables.

**No fixed points.** The permutation applied is ``Q(x) = E⁻¹(E(x) + 1)`` with ``E`` the
FF1 encryption: a conjugate of ``+1``, hence a single cycle through the whole domain, so
no value maps to itself, and cycle walking on a single cycle never returns the start.

**Tiny domains.** Domains smaller than :data:`~datastage.mask.ff1.MIN_DOMAIN` (10**6, the
smallest domain SP 800-38G Rev. 1 allows FF1 on) use a keyed table instead: the successor
in a keyed random order of ``range(size)`` (AES sort keys, built once per key, domain and
size and cached), conjugated by a keyed affine map per tweak so that different shapes of
the same size get different cycles.

**Key.** The AES-256 key is derived from subkeys of the masking key for the masking
domain (:meth:`MaskingKey.subkey`), never from the raw key.

Example:
    >>> from datastage.mask.keys import MaskingKey
    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> out = permute_range(key, "demo", np.arange(5, dtype=np.uint64), 5, np.zeros(1, dtype=np.uint64))
    >>> sorted(out.tolist()), bool((out != np.arange(5)).all())
    ([0, 1, 2, 3, 4], True)
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from datastage.mask.ff1 import FF1, MIN_DOMAIN, be_uint64, ff1_params, int_objects
from datastage.mask.keys import MaskingKey

TABLE_BUDGET = 4_000_000  # table entries kept in the cache (8 bytes each: two int32)
TWEAK_BYTES = 8

_U = np.uint64


# -- keys ----------------------------------------------------------------------------------

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


def tweak_bytes(tweak: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(tweak, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(len(tweak), 8)


# -- the fixed-point-free permutation and cycle walking --------------------------------------

def _inside(a: np.ndarray, b: np.ndarray, bound_a: np.ndarray | int, bound_b: np.ndarray | int) -> np.ndarray:
    """``a * R**v + b < bound`` with the bound given as halves too."""
    return np.asarray((a < bound_a) | ((a == bound_a) & (b < bound_b)), dtype=bool)


def _step(ff1: FF1, radix: int, n: int, tweaks: np.ndarray, a: np.ndarray, b: np.ndarray,
          exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """``Q(x) = E⁻¹(E(x) + 1)`` on halves: a keyed single cycle through ``[0, radix**n)``."""
    prm = ff1_params(radix, n, tweaks.shape[1])
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
        ea, eb = int_objects(ea), int_objects(eb)
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
    sort_keys = be_uint64(ff1.ecb(blocks)[:, :8])  # AES is a permutation: the 128-bit outputs are distinct
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
    for first, second in zip(be_uint64(mixed[:, :8]).tolist(), be_uint64(mixed[:, 8:]).tolist(), strict=True):
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


# -- ranges of integers ----------------------------------------------------------------------

def permute_range(key: MaskingKey, domain: str, offsets: np.ndarray, size: int, tweak: np.ndarray) -> np.ndarray:
    """A keyed bijection of ``[0, size)`` without fixed points applied to ``offsets``.

    uint64 offsets give uint64 results; object arrays (sizes beyond 2**64) give Python integers.
    """
    if size < MIN_DOMAIN:
        x = np.asarray(offsets, dtype=np.int64)
        mapped = table_permute(key, domain, x, size, np.repeat(tweak, len(x)))
        return mapped.astype(np.uint64) if offsets.dtype != object else int_objects(mapped.tolist())
    n = (size - 1).bit_length()
    v = ff1_params(2, n, TWEAK_BYTES).v
    mask = (1 << v) - 1
    tweaks = np.repeat(tweak_bytes(tweak), len(offsets), axis=0)
    ff1 = cipher_for(key, domain)
    if n <= 64 and offsets.dtype != object:
        x = np.asarray(offsets, dtype=np.uint64)
        a, b = cycle(ff1, 2, n, tweaks, x >> _U(v), x & _U(mask), (size >> v, size & mask))
        return (a << _U(v)) | b
    a, b = cycle(ff1, 2, n, tweaks, int_objects(offsets >> v), int_objects(offsets & mask), (size >> v, size & mask),
                 exact=n > 64)
    return int_objects(((a.astype(object) << v) | b.astype(object)).tolist())
