"""The masking key: loading it, deriving per-domain subkeys, and keyed hashing of columns.

Masked values depend only on (master key, domain, input value). The master key never
leaves this module's objects: reports carry only :attr:`MaskingKey.key_id`, a one-way
fingerprint (HKDF-SHA256 with a fixed salt and info, see :func:`key_id_of`), and every key
is registered with :data:`datastage.secrets.KNOWN` (as stored, hex, base64), so no output
of the process shows it. A key file that its group or others may read is refused, as ssh
refuses such a private key. A key counts as strong when it holds at least
:data:`STRONG_KEY_BYTES` bytes of secret (:func:`secret_bytes`); a new project refuses a weaker
one (:func:`checked_strength`).
Hashing is SipHash-2-4 (a keyed PRF) over whole columns: strings through pandas'
vectorised implementation, integers through a numpy implementation of the same function.

Example:
    >>> key = MaskingKey(b"correct horse battery staple", source="example")
    >>> h = key.hash_text("email", np.array(["a@x.org", "a@x.org", "b@x.org"], dtype=object))
    >>> bool(h[0] == h[1]), bool(h[0] == h[2])
    (True, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from functools import lru_cache
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pandas.util import hash_array

from datastage.errors import EmptyMaskingKeyError, MaskingKeyError, UsageError, WeakMaskingKeyError
from datastage.limits import read_owner_only
from datastage.secrets import register_key
from datastage.settings import KEY_ENV_VAR

__all__ = ["STRONG_KEY_BYTES", "KeyFileTooOpen", "MaskingKey", "checked_strength", "key_id_of",
           "load_key", "optional_key", "secret_bytes", "write_key_file"]
MIN_KEY_LENGTH = 16  # shorter keys are refused everywhere
STRONG_KEY_BYTES = 32  # fewer bytes of secret are refused by a new project (``datastage key new`` writes 32)
NEW_KEY_HINT = "make one with `datastage key new --output FILE` and name FILE under masking.key_file"
KEY_ID_SALT = b"datastage key id salt"
KEY_ID_INFO = b"datastage key id v2"
KEY_ID_PREFIX = "hkdf:"
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")

_C0 = np.uint64(0x736F6D6570736575)
_C1 = np.uint64(0x646F72616E646F6D)
_C2 = np.uint64(0x6C7967656E657261)
_C3 = np.uint64(0x7465646279746573)
_LEN8 = np.uint64(8 << 56)
_FF = np.uint64(0xFF)


_SHIFTS = {r: np.uint64(r) for r in (13, 16, 17, 21, 27, 30, 31, 32, 43, 47, 48, 51)}
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 16_384  # 128 KiB per state word: the working set stays in the CPU cache


def _sipround(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray, v3: np.ndarray, tmp: np.ndarray, times: int) -> None:
    """``times`` SipRounds, in place (rotations through one scratch array, no allocations)."""
    s = _SHIFTS
    for _ in range(times):
        v0 += v1
        np.left_shift(v1, s[13], out=tmp)
        v1 >>= s[51]
        v1 |= tmp
        v1 ^= v0
        np.left_shift(v0, s[32], out=tmp)
        v0 >>= s[32]
        v0 |= tmp
        v2 += v3
        np.left_shift(v3, s[16], out=tmp)
        v3 >>= s[48]
        v3 |= tmp
        v3 ^= v2
        v0 += v3
        np.left_shift(v3, s[21], out=tmp)
        v3 >>= s[43]
        v3 |= tmp
        v3 ^= v0
        v2 += v1
        np.left_shift(v1, s[17], out=tmp)
        v1 >>= s[47]
        v1 |= tmp
        v1 ^= v2
        np.left_shift(v2, s[32], out=tmp)
        v2 >>= s[32]
        v2 |= tmp


def siphash_uint64(key16: bytes, values: np.ndarray, rounds: tuple[int, int] = (2, 4),
                   finalize: bool = True) -> np.ndarray:
    """SipHash-2-4 of each uint64 taken as its 8 little-endian bytes, vectorised.

    Equals ``pandas.util.hash_array`` of the same 8-byte strings under the same key
    (including pandas' final bijective mix). Works in cache-sized chunks with in-place
    operations: about 30 ns per value on one core. ``rounds=(1, 3)`` without ``finalize``
    is SipHash-1-3 (the variant CPython hashes strings with), for Feistel round functions.
    """
    c_rounds, d_rounds = rounds
    k0 = np.uint64(int.from_bytes(key16[:8], "little"))
    k1 = np.uint64(int.from_bytes(key16[8:16], "little"))
    m_all = np.ascontiguousarray(values, dtype=np.uint64).ravel()
    out = np.empty_like(m_all)
    size = min(_CHUNK, len(m_all))
    state = [np.empty(size, dtype=np.uint64) for _ in range(5)]
    with np.errstate(over="ignore"):
        for start in range(0, len(m_all), _CHUNK):
            m = m_all[start:start + _CHUNK]
            v0, v1, v2, v3, tmp = (a[:len(m)] for a in state)
            v0.fill(k0 ^ _C0)
            v1.fill(k1 ^ _C1)
            v2.fill(k0 ^ _C2)
            np.bitwise_xor(m, k1 ^ _C3, out=v3)
            _sipround(v0, v1, v2, v3, tmp, c_rounds)
            v0 ^= m
            v3 ^= _LEN8
            _sipround(v0, v1, v2, v3, tmp, c_rounds)
            v0 ^= _LEN8
            v2 ^= _FF
            _sipround(v0, v1, v2, v3, tmp, d_rounds)
            o = out[start:start + len(m)]
            np.bitwise_xor(v0, v1, out=o)
            o ^= v2
            o ^= v3
            if not finalize:
                continue
            # pandas finishes every hash with this bijective mix; do the same so both agree.
            np.right_shift(o, _SHIFTS[30], out=tmp)
            o ^= tmp
            o *= _MIX1
            np.right_shift(o, _SHIFTS[27], out=tmp)
            o ^= tmp
            o *= _MIX2
            np.right_shift(o, _SHIFTS[31], out=tmp)
            o ^= tmp
    return out.reshape(np.shape(values))


def key_id_of(secret: bytes) -> str:
    """The key's fingerprint: 8 bytes of HKDF-SHA256 (salt :data:`KEY_ID_SALT`, info :data:`KEY_ID_INFO`), in hex.

    >>> key_id_of(b"0123456789abcdef" * 4)
    'hkdf:4693c01d5832ad79'
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=8, salt=KEY_ID_SALT, info=KEY_ID_INFO)
    return KEY_ID_PREFIX + hkdf.derive(secret).hex()


def secret_bytes(secret: bytes | str) -> int:
    """How many bytes of secret a key holds: its decoded bytes when it reads as hex or as base64
    (standard or URL-safe, padded or not), else its bytes as UTF-8 text.

    >>> secret_bytes("ab" * 32), secret_bytes(base64.b64encode(bytes(32)).decode())
    (32, 32)

    Text that reads as base64 counts decoded even when it was meant as a passphrase:
    >>> secret_bytes("passphrase" * 4), secret_bytes("pass phrase " * 4)
    (30, 48)
    >>> secret_bytes("correct horse battery staple")
    28
    """
    data = secret.encode("utf-8") if isinstance(secret, str) else secret
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return len(data)
    if _HEX.fullmatch(text):
        return len(text) // 2
    if _BASE64.fullmatch(text) and len(text.rstrip("=")) % 4 != 1:
        body = text.rstrip("=")
        altchars = b"-_" if "-" in body or "_" in body else None
        try:
            return len(base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True))
        except (binascii.Error, ValueError):
            pass
    return len(data)


class MaskingKey:
    """A master key with per-domain subkeys. ``repr`` and ``str`` never show the secret."""

    def __init__(self, secret: bytes, source: str, stored: str | None = None) -> None:
        register_key(secret, stored)  # even a key refused below is never shown
        if len(secret) < MIN_KEY_LENGTH:
            raise MaskingKeyError(f"masking key from {source} is too short (at least {MIN_KEY_LENGTH} characters): "
                                  f"{NEW_KEY_HINT}")
        self._secret = secret
        self.source = source
        self.key_id = key_id_of(secret)
        self.secret_bytes = secret_bytes(secret)

    @property
    def strong(self) -> bool:
        """Whether the key holds at least :data:`STRONG_KEY_BYTES` bytes of secret."""
        return self.secret_bytes >= STRONG_KEY_BYTES

    def strength(self) -> dict[str, object]:
        """What a report records of the key's strength (never the key): its bytes, and a warning when weak."""
        warning = None if self.strong else (
            f"the masking key holds {self.secret_bytes} bytes of secret, fewer than {STRONG_KEY_BYTES}: "
            "make a new one with `datastage key new` (masked values change with the key)")
        return {"bytes": self.secret_bytes, "strong": self.strong, "warning": warning}

    def __repr__(self) -> str:
        return f"MaskingKey(key_id={self.key_id!r}, source={self.source!r})"

    __str__ = __repr__

    def secret_material(self) -> bytes:
        """The key itself, for an executor to hand its workers in memory (never to show, log or store)."""
        return self._secret

    def subkey(self, domain: str) -> bytes:
        """16 bytes for ``domain`` (7 bits each, so pandas can take them as a text key)."""
        return _subkey(self._secret, domain)

    def hash_text(self, domain: str, values: np.ndarray) -> np.ndarray:
        """Keyed uint64 of each string in an object array (no ``None`` allowed)."""
        if len(values) == 0:
            return np.zeros(0, dtype=np.uint64)
        key = self.subkey(domain).decode("ascii")
        return hash_array(np.asarray(values, dtype=object), hash_key=key, categorize=False)

    def hash_uint64(self, domain: str, values: np.ndarray) -> np.ndarray:
        """Keyed uint64 of each 64-bit integer, vectorised."""
        return siphash_uint64(self.subkey(domain), values)


@lru_cache(maxsize=4096)
def _subkey(secret: bytes, domain: str) -> bytes:
    digest = hmac.new(secret, b"datastage domain\x00" + domain.encode("utf-8"), hashlib.sha256).digest()
    return bytes(b & 0x7F for b in digest[:16])


class KeyFileTooOpen(MaskingKeyError):
    """The key file may be read by its group or by others: it is refused, whoever asks for the key."""


def load_key(key_file: Path | None, environ: dict[str, str] | None = None) -> MaskingKey:
    """The key from ``$DATASTAGE_MASKING_KEY``, else from ``key_file``; missing is an error, and so is
    a key file its group or others may read (:class:`KeyFileTooOpen`).

    The variable set but empty (or only blanks) is an error of its own, never a silent fall-back
    to the key file: whoever set it meant a key.
    """
    env = os.environ if environ is None else environ
    if KEY_ENV_VAR in env:
        if not env[KEY_ENV_VAR].strip():
            raise EmptyMaskingKeyError(f"{KEY_ENV_VAR} is set but empty; give it the key or unset it "
                                       "to use masking.key_file")
        return MaskingKey(env[KEY_ENV_VAR].strip().encode("utf-8"), source=f"${KEY_ENV_VAR}",
                          stored=env[KEY_ENV_VAR])
    if key_file is None:
        raise MaskingKeyError(
            f"no masking key: set ${KEY_ENV_VAR} or name a key file under masking.key_file in datastage.yaml "
            "(`datastage key new --output FILE` makes one)"
        )
    try:
        raw = read_owner_only(key_file, "masking key", KeyFileTooOpen, MaskingKeyError)
        stored = raw.decode("utf-8")
    except FileNotFoundError:
        raise MaskingKeyError(f"masking key file not found (`datastage key new --output {key_file}` creates one)",
                              file=str(key_file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MaskingKeyError(f"cannot read masking key file: {reason}", file=str(key_file)) from None
    text = stored.strip()
    if not text:
        raise MaskingKeyError("masking key file is empty", file=str(key_file))
    return MaskingKey(text.encode("utf-8"), source=str(key_file), stored=stored)


def optional_key(key_file: Path | None, *, refuse_unsafe: bool = True) -> MaskingKey | None:
    """The key if one is configured and readable, else None (for work that records its fingerprint but does not
    need it).

    With ``refuse_unsafe`` an empty ``$DATASTAGE_MASKING_KEY`` (:class:`EmptyMaskingKeyError`) and a
    key file others may read (:class:`KeyFileTooOpen`) are still errors: they are refused whoever asks.
    """
    try:
        return load_key(key_file)
    except (EmptyMaskingKeyError, KeyFileTooOpen):
        if refuse_unsafe:
            raise
        return None
    except MaskingKeyError:
        return None


def checked_strength(key: MaskingKey, *, new_project: bool) -> dict[str, object]:
    """The key's :meth:`~MaskingKey.strength` for the report; a weak key is refused in a ``new_project``
    (one with no refresh yet) with a one-line error that names the key file or variable.

    >>> checked_strength(MaskingKey(b"ab" * 32, source="k"), new_project=True)
    {'bytes': 32, 'strong': True, 'warning': None}
    >>> weak = MaskingKey(b"a key of 28 bytes, too short", source="masking.key")
    >>> checked_strength(weak, new_project=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    datastage.errors.WeakMaskingKeyError: masking.key: masking key holds 28 ...key new --output FILE`...
    """
    if new_project and not key.strong:
        raise WeakMaskingKeyError(
            f"masking key holds {key.secret_bytes} bytes of secret; a new project needs at least {STRONG_KEY_BYTES} "
            f"(64 hex digits): {NEW_KEY_HINT}", file=key.source)
    return key.strength()


def write_key_file(path: Path, encoding: str = "hex") -> MaskingKey:
    """Create a new key file of 32 random bytes (as ``hex`` or ``base64`` text) readable only by its owner
    (mode 600); an existing file is never overwritten."""
    if encoding not in ("hex", "base64"):
        raise UsageError(f"unknown key encoding {encoding!r} (hex or base64)")
    raw = secrets.token_bytes(32)
    text = raw.hex() if encoding == "hex" else base64.b64encode(raw).decode("ascii")
    key = MaskingKey(text.encode("ascii"), source=str(path), stored=text)  # registered before it is written
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        raise UsageError("file exists; datastage never overwrites a key (move it away first)",
                         file=str(path)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return key
