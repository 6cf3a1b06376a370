"""The report-signing key: an Ed25519 key of its own, never the masking key.

Reports are signed with a private key named by ``signing.key_file`` in ``datastage.yaml`` (or
``$DATASTAGE_SIGNING_KEY_FILE``), an OpenSSH private key (``ssh-keygen -t ed25519`` or
``datastage key new --signing``) readable by its owner only; a key file its group or others may
read is refused, as the masking key file is. Verifying needs only the public half, so whoever can
check a report cannot forge one. The private key is registered with :mod:`datastage.secrets`,
so no output of the process shows it.

Example:
    >>> import tempfile
    >>> key = write_signing_key(Path(tempfile.mkdtemp()) / "signing.key")
    >>> loaded = load_signing_key(key.path)
    >>> loaded.fingerprint == key.fingerprint, loaded.fingerprint.startswith("SHA256:")
    (True, True)
    >>> str(loaded).startswith("SigningKey(fingerprint='SHA256:")
    True
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_ssh_private_key,
)

from datastage.errors import SigningKeyError, UsageError
from datastage.limits import MAX_KEY_FILE_BYTES, read_owner_only, too_large
from datastage.report import sshsig
from datastage.secrets import register_key
from datastage.settings import SIGNING_KEY_ENV_VAR, Project

PUBLIC_KEY_NAME = "signing.pub"
ALLOWED_SIGNERS_NAME = "allowed_signers"


class SigningKey:
    """An Ed25519 private key that signs reports. ``repr`` and ``str`` show its fingerprint only."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None, stored: str | None = None) -> None:
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        register_key(raw, stored)  # the seed and the key file's text, in every form: never shown
        self._private = private
        self.path = path
        self.public = private.public_key()
        self.fingerprint = sshsig.fingerprint(self.public)

    def __repr__(self) -> str:
        return f"SigningKey(fingerprint={self.fingerprint!r}, path={str(self.path) if self.path else None!r})"

    __str__ = __repr__

    def sign(self, data: bytes, namespace: str = sshsig.NAMESPACE) -> str:
        """The armored SSHSIG signature of ``data`` (namespace ``datastage-report`` unless told)."""
        return sshsig.sign(self._private, data, namespace)

    def public_line(self) -> str:
        """The public key as a line of an OpenSSH ``.pub`` file."""
        return sshsig.openssh_public(self.public, sshsig.IDENTITY)

    def allowed_signers(self) -> str:
        """The public key as an ``allowed_signers`` line for ``ssh-keygen -Y verify``."""
        return sshsig.allowed_signers_line(self.public)

    def describe(self) -> dict[str, Any]:
        """What a report records of the key that signs it (all public)."""
        return {"algorithm": sshsig.KEY_TYPE, "format": "sshsig", "namespace": sshsig.NAMESPACE,
                "identity": sshsig.IDENTITY, "hash_algorithm": sshsig.HASH_ALGORITHM,
                "fingerprint": self.fingerprint, "public_key": sshsig.openssh_public(self.public)}


def signing_key_path(project: Project | None, environ: dict[str, str] | None = None) -> Path | None:
    """The configured signing key file: ``$DATASTAGE_SIGNING_KEY_FILE``, else ``signing.key_file``."""
    env = os.environ if environ is None else environ
    if env.get(SIGNING_KEY_ENV_VAR, "").strip():
        return Path(env[SIGNING_KEY_ENV_VAR].strip())
    return project.signing_key_file if project is not None else None


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 private key of ``path`` (OpenSSH or PKCS#8 PEM, unencrypted, mode 600)."""
    try:
        raw = read_owner_only(path, "signing key", SigningKeyError, SigningKeyError)
    except FileNotFoundError:
        raise SigningKeyError("signing key file not found (datastage key new --signing creates one)",
                              file=str(path)) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key file: {exc.strerror}", file=str(path)) from None
    stored = raw.decode("utf-8", "replace")
    register_key(raw.strip(), stored)  # before parsing: even a refused key is never shown
    try:
        loader = load_ssh_private_key if b"OPENSSH PRIVATE KEY" in raw else load_pem_private_key
        private = loader(raw, password=None)
    except TypeError:
        raise SigningKeyError("the signing key is encrypted; datastage needs an unencrypted key file "
                              "(mode 600)", file=str(path)) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError("not an OpenSSH or PEM private key", file=str(path)) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError("the signing key must be an Ed25519 key (ssh-keygen -t ed25519)", file=str(path))
    return SigningKey(private, path, stored)


def project_signing_key(project: Project | None, *, required: bool = False) -> SigningKey | None:
    """The project's signing key, or None when none is configured (reports are then unsigned).

    A configured key that cannot be used is an error; with ``required`` a missing one is too."""
    path = signing_key_path(project)
    if path is None:
        if required:
            raise SigningKeyError(f"no signing key: set signing.key_file in datastage.yaml or "
                                  f"${SIGNING_KEY_ENV_VAR}")
        return None
    return load_signing_key(path)


def optional_signing_key(project: Project | None) -> SigningKey | None:
    """The project's signing key if it can be used, else None (for records that must be written anyway)."""
    try:
        return project_signing_key(project)
    except SigningKeyError:
        return None


def _create(path: Path, text: str, mode: int) -> None:
    """Write a new file (never an existing one) with ``mode`` from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError("file exists; datastage never overwrites a key (move it away first)",
                         file=str(path)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def write_signing_key(path: Path) -> SigningKey:
    """Create a new Ed25519 key: ``path`` (OpenSSH private key, mode 600) and ``path.pub`` beside it."""
    public_path = Path(f"{path}.pub")
    for existing in (path, public_path):
        if existing.exists():
            raise UsageError("file exists; datastage never overwrites a key (move it away first)",
                             file=str(existing))
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode("ascii")
    key = SigningKey(private, path, pem)
    _create(path, pem, stat.S_IRUSR | stat.S_IWUSR)
    _create(public_path, key.public_line() + "\n", 0o644)
    return key


def read_trusted_keys(public_key: Path | None = None, allowed_signers: Path | None = None,
                      namespace: str = sshsig.NAMESPACE) -> list[bytes]:
    """The public-key blobs that may sign for ``namespace`` (reports unless told), from a ``.pub`` file
    or an ``allowed_signers`` file."""
    blobs: list[bytes] = []
    for path in (p for p in (public_key, allowed_signers) if p is not None):
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        except FileNotFoundError:
            raise UsageError("public key file not found", file=str(path)) from None
        except OSError as exc:
            raise UsageError(f"cannot read public key file: {exc.strerror}", file=str(path)) from None
        if len(raw) > MAX_KEY_FILE_BYTES:
            raise UsageError(too_large(MAX_KEY_FILE_BYTES), file=str(path))
        found = sshsig.read_public_keys(raw.decode("utf-8", "replace"), namespace)
        if not found:
            raise UsageError(f"no public key for namespace {namespace} in the file", file=str(path))
        blobs += found
    return blobs
