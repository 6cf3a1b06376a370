"""Detached Ed25519 signatures in OpenSSH's SSHSIG format, so ``ssh-keygen -Y verify`` checks them.

A signature covers the exact bytes of a file. Its armored text is what ``ssh-keygen -Y sign -n
NAMESPACE`` writes (``PROTOCOL.sshsig`` of OpenSSH): the magic ``SSHSIG``, version 1, the public
key, the namespace, an empty reserved field, the hash algorithm (sha512) and the signature over
the SSHSIG signed-data structure (magic, namespace, reserved, hash algorithm, hash of the file).
Keys are named by their OpenSSH fingerprint (``SHA256:...``, as ``ssh-keygen -lf`` prints it).
This module holds only public operations and the framing; private keys live in
:mod:`datastage.report.signing`.

Example:
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> private = Ed25519PrivateKey.from_private_bytes(bytes(32))
    >>> armored = sign(private, b"report bytes")
    >>> armored.splitlines()[0]
    '-----BEGIN SSH SIGNATURE-----'
    >>> verify(armored, b"report bytes") == public_blob(private.public_key())
    True
    >>> fingerprint(private.public_key())
    'SHA256:tAXFyTXI8xtDaujAEcwJslAYc9/6FKcUkd2Lw0xDhPo'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAGIC = b"SSHSIG"
VERSION = 1
NAMESPACE = "datastage-report"
IDENTITY = "datastage"  # the principal of the allowed_signers line datastage writes
HASH_ALGORITHM = "sha512"
KEY_TYPE = "ssh-ed25519"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
LINE_WIDTH = 70  # as ssh-keygen wraps the armored signature


class SignatureError(ValueError):
    """A signature that is malformed, of another kind, or does not match the bytes it claims to sign."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise SignatureError("the signature is cut short")
    (size,) = struct.unpack(">I", blob[offset:offset + 4])
    end = offset + 4 + size
    if end > len(blob):
        raise SignatureError("the signature is cut short")
    return blob[offset + 4:end], end


def public_blob(key: Ed25519PublicKey) -> bytes:
    """The SSH wire encoding of ``key`` (string "ssh-ed25519", string the 32 key bytes)."""
    return base64.b64decode(openssh_public(key).split()[1])


def openssh_public(key: Ed25519PublicKey, comment: str = "") -> str:
    """``key`` as one line of an OpenSSH ``.pub`` file (``ssh-ed25519 AAAA... comment``)."""
    line = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    return f"{line} {comment}".rstrip()


def blob_fingerprint(blob: bytes) -> str:
    """The OpenSSH fingerprint of a public-key blob: ``SHA256:`` and unpadded base64 of its SHA-256."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def fingerprint(key: Ed25519PublicKey) -> str:
    """The OpenSSH fingerprint of ``key`` (what ``ssh-keygen -lf KEY.pub`` prints)."""
    return blob_fingerprint(public_blob(key))


def allowed_signers_line(key: Ed25519PublicKey, identity: str = IDENTITY, namespace: str = NAMESPACE) -> str:
    """One line of an ``allowed_signers`` file for ``ssh-keygen -Y verify -f``."""
    return f'{identity} namespaces="{namespace}" {openssh_public(key)}'


def _signed_data(data: bytes, namespace: str) -> bytes:
    digest = hashlib.sha512(data).digest()
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(HASH_ALGORITHM.encode()) + _string(digest)


def sign(private: Ed25519PrivateKey, data: bytes, namespace: str = NAMESPACE) -> str:
    """The armored SSHSIG signature of ``data`` under ``namespace``."""
    signature = private.sign(_signed_data(data, namespace))
    blob = (MAGIC + struct.pack(">I", VERSION) + _string(public_blob(private.public_key()))
            + _string(namespace.encode()) + _string(b"") + _string(HASH_ALGORITHM.encode())
            + _string(_string(KEY_TYPE.encode()) + _string(signature)))
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i:i + LINE_WIDTH] for i in range(0, len(text), LINE_WIDTH)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


@dataclass(frozen=True)
class Parsed:
    """The fields of an SSHSIG signature."""

    public_key: bytes
    namespace: str
    hash_algorithm: str
    signature: bytes


def parse(armored: str) -> Parsed:
    """The fields of an armored SSHSIG signature (:class:`SignatureError` when it is not one)."""
    text = armored.strip()
    if not (text.startswith(BEGIN) and text.endswith(END)):
        raise SignatureError("not an SSH signature (no BEGIN/END SSH SIGNATURE lines)")
    body = "".join(text[len(BEGIN):-len(END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("not an SSH signature (invalid base64)") from None
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise SignatureError("not an SSH signature (no SSHSIG magic)")
    (version,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    if version != VERSION:
        raise SignatureError(f"unsupported SSH signature version {version}")
    offset = len(MAGIC) + 4
    fields = []
    for _ in range(5):
        value, offset = _read_string(blob, offset)
        fields.append(value)
    if offset != len(blob):
        raise SignatureError("data after the SSH signature")
    public, namespace, _reserved, hash_algorithm, signature = fields
    return Parsed(public, namespace.decode("utf-8", "replace"), hash_algorithm.decode("utf-8", "replace"), signature)


def _ed25519_key(blob: bytes) -> Ed25519PublicKey:
    kind, offset = _read_string(blob, 0)
    raw, offset = _read_string(blob, offset)
    if kind != KEY_TYPE.encode() or len(raw) != 32 or offset != len(blob):
        raise SignatureError(f"signed with a {kind.decode('utf-8', 'replace')} key; only {KEY_TYPE} is accepted")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(armored: str, data: bytes, namespace: str = NAMESPACE) -> bytes:
    """Check that ``armored`` signs exactly ``data`` under ``namespace``; returns the signer's public-key
    blob (compare it with a trusted key). Raises :class:`SignatureError` otherwise."""
    parsed = parse(armored)
    if parsed.namespace != namespace:
        raise SignatureError(f"signed for namespace {parsed.namespace!r}, not {namespace!r}")
    if parsed.hash_algorithm not in ("sha512", "sha256"):
        raise SignatureError(f"unsupported hash algorithm {parsed.hash_algorithm!r}")
    key = _ed25519_key(parsed.public_key)
    kind, offset = _read_string(parsed.signature, 0)
    raw, offset = _read_string(parsed.signature, offset)
    if kind != KEY_TYPE.encode() or offset != len(parsed.signature):
        raise SignatureError("the signature is not an ssh-ed25519 signature")
    digest = getattr(hashlib, parsed.hash_algorithm)(data).digest()
    signed = (MAGIC + _string(namespace.encode()) + _string(b"") + _string(parsed.hash_algorithm.encode())
              + _string(digest))
    try:
        key.verify(raw, signed)
    except InvalidSignature:
        raise SignatureError("signature does not match: the file was changed after it was signed") from None
    return parsed.public_key


_PUBLIC_KEY = re.compile(r"(?:^|\s)(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)")
_NAMESPACES = re.compile(r'(?:^|[\s,])namespaces="([^"]*)"')


def read_public_keys(text: str, namespace: str = NAMESPACE) -> list[bytes]:
    """The public-key blobs of an OpenSSH ``.pub`` file or an ``allowed_signers`` file: every key line
    (comments and blank lines skipped) whose ``namespaces=`` option, if any, allows ``namespace``."""
    blobs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _PUBLIC_KEY.search(line)
        if match is None:
            continue
        options = _NAMESPACES.search(line[:match.start()])
        if options is not None and namespace not in [n.strip() for n in options.group(1).split(",")]:
            continue
        try:
            blobs.append(base64.b64decode(match.group(2), validate=True))
        except (binascii.Error, ValueError):
            continue
    return blobs
