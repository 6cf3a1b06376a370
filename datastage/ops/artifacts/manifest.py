"""The manifest of an artifact folder: what it holds, every file's SHA-256, and a signature over them.

An export writes ``manifest.json`` (format, versions, run ids, tables and rows, and every data
file with its size and SHA-256), then ``SHA256SUMS`` in the format ``sha256sum -c`` reads (every
file, ``manifest.json`` included), then ``SHA256SUMS.sig``: an SSHSIG signature of ``SHA256SUMS``
under the namespace ``datastage-artifact``, made with the report-signing key. So OpenSSH and
coreutils check an artifact without datastage::

    ssh-keygen -Y verify -f allowed_signers -I datastage -n datastage-artifact -s SHA256SUMS.sig < SHA256SUMS
    sha256sum -c SHA256SUMS

:func:`verify_folder` checks the same before anything is restored, and more: no file that is not
listed, no listed path that leaves the folder, no symbolic link, a manifest that agrees with
``SHA256SUMS``. It copies each file it checks into a private folder, so what is restored is exactly
what was checked, and never writes into the artifact.

Example (sign a folder with one file, then change a byte of it):
    >>> import tempfile
    >>> from datastage.report.signing import write_signing_key
    >>> key = write_signing_key(Path(tempfile.mkdtemp()) / "signing.key")
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "data.sqlite").write_bytes(b"rows")
    >>> _ = write_manifest(folder, {"format": "sqlite", "tables": {}}, key)
    >>> sorted(p.name for p in folder.iterdir())
    ['SHA256SUMS', 'SHA256SUMS.sig', 'data.sqlite', 'manifest.json']
    >>> verify_folder(folder, [sshsig.public_blob(key.public)], Path(tempfile.mkdtemp()) / "x").manifest["format"]
    'sqlite'
    >>> _ = (folder / "data.sqlite").write_bytes(b"rowz")
    >>> verify_folder(folder, [sshsig.public_blob(key.public)], Path(tempfile.mkdtemp()) / "x")
    Traceback (most recent call last):
    ...
    datastage.errors.ArtifactInvalid: data.sqlite: its SHA-256 is not the one SHA256SUMS lists: the file was changed
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from datastage.errors import ArtifactInvalid, UsageError
from datastage.limits import MAX_STATE_BYTES, parse_json
from datastage.report import sshsig
from datastage.report.signing import SigningKey

NAMESPACE = "datastage-artifact"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
MANIFEST_VERSION = 1
FORMATS = ("sqlite", "parquet", "pgdump")
_CHUNK = 1024 * 1024
_SUMS_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_SAFE = re.compile(r"[A-Za-z0-9_-]")
_MAX_NAME = 160  # bytes of an encoded name before it is shortened (file systems allow 255)


def safe_file_name(name: str) -> str:
    """``name`` as a file name that is safe on any file system and tells names apart: letters, digits,
    ``_`` and ``-`` stay, every other character becomes ``%XX`` of its UTF-8 bytes (dots and slashes
    too); a very long name is cut and ends with a hash of the whole.

    >>> safe_file_name("orders"), safe_file_name("../etc/pass wd"), safe_file_name("Straße.v2")
    ('orders', '%2E%2E%2Fetc%2Fpass%20wd', 'Stra%C3%9Fe%2Ev2')
    """
    encoded = "".join(c if _SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in name)
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        cut = encoded[:_MAX_NAME - 17]
        if "%" in cut[-2:]:  # never half of a %XX
            cut = cut[:cut.rindex("%")]
        encoded = cut + "~" + digest
    return encoded or "%"


def sha256_file(path: Path, copy_to: Path | None = None) -> tuple[str, int]:
    """(SHA-256 hex, bytes) of ``path``, read in chunks; with ``copy_to``, the bytes are copied there
    (a new file, mode 600) as they are hashed."""
    digest = hashlib.sha256()
    size = 0
    out = None
    if copy_to is not None:
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        out = os.fdopen(os.open(copy_to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
    try:
        # Never through a link, never a FIFO or device put there after the folder was listed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest(), size


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` as a relative POSIX path (sorted); a link or special file is refused."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise ArtifactInvalid("a symbolic link; an artifact holds plain files only", file=relative)
            if name in files and not stat.S_ISREG(mode):
                raise ArtifactInvalid("not a plain file; an artifact holds plain files only", file=relative)
            if name in files:
                found.append(relative)
    return sorted(found)


def write_manifest(folder: Path, manifest: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """Complete ``manifest`` with every file of ``folder`` and write ``manifest.json``, ``SHA256SUMS``
    and its signature ``SHA256SUMS.sig`` there; returns the manifest written."""
    entries = []
    for relative in _files(folder):
        digest, size = sha256_file(folder / relative)
        entries.append({"path": relative, "bytes": size, "sha256": digest})
    full = {"manifest_version": MANIFEST_VERSION, **manifest, "files": entries,
            "signature": {"file": SIGNATURE, "signs": SUMS, "format": "sshsig", "namespace": NAMESPACE,
                          "identity": sshsig.IDENTITY, "fingerprint": key.fingerprint}}
    (folder / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    digest, _ = sha256_file(folder / MANIFEST)
    lines = [f"{e['sha256']}  {e['path']}" for e in entries] + [f"{digest}  {MANIFEST}"]
    sums = ("\n".join(sorted(lines, key=lambda line: line[66:])) + "\n").encode("utf-8")
    (folder / SUMS).write_bytes(sums)
    (folder / SIGNATURE).write_text(key.sign(sums, NAMESPACE), encoding="ascii")
    return full


@dataclass
class Verified:
    """An artifact whose checks passed: its manifest, signer and the private copy of its files."""

    manifest: dict[str, Any]
    fingerprint: str
    staged: Path  # the checked bytes of every listed file, copied here (restore reads only these)


def _read_small(path: Path, name: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        raise ArtifactInvalid("missing: an artifact always has it", file=name) from None
    except OSError as exc:
        raise ArtifactInvalid(f"cannot read it: {exc.strerror}", file=name) from None
    if len(data) > MAX_STATE_BYTES:
        raise ArtifactInvalid("too large for this part of an artifact", file=name)
    return data


def _listed(sums: bytes) -> dict[str, str]:
    """path -> SHA-256 of ``SHA256SUMS``; a path that could leave the folder is refused."""
    try:
        text = sums.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactInvalid("not UTF-8 text", file=SUMS) from None
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SUMS_LINE.match(line)
        if match is None:
            raise ArtifactInvalid(f"line {number} is not 'SHA256  PATH'", file=SUMS)
        digest, name = match.groups()
        parts = PurePosixPath(name).parts
        if (name.startswith(("/", "\\")) or "\\" in name or not parts or any(p in ("..", ".") for p in parts)
                or name in (SUMS, SIGNATURE) or "\0" in name):
            raise ArtifactInvalid(f"line {number} names a path outside the artifact folder: {name!r}", file=SUMS)
        if name in listed:
            raise ArtifactInvalid(f"line {number} lists {name} twice", file=SUMS)
        listed[name] = digest
    if MANIFEST not in listed:
        raise ArtifactInvalid(f"does not list {MANIFEST}", file=SUMS)
    return listed


def verify_folder(folder: Path, trusted: list[bytes], staged: Path) -> Verified:
    """Check artifact ``folder``: ``SHA256SUMS`` signed by a ``trusted`` key, exactly the files it
    lists present, each with its hash, and a manifest that agrees; copies the checked files into
    ``staged`` (a new folder). Any mismatch is an :class:`ArtifactInvalid` naming the file."""
    if not folder.exists():
        raise UsageError("no such folder", file=str(folder))
    if folder.is_symlink() or not folder.is_dir():
        raise ArtifactInvalid("not an artifact folder (a folder, not a link to one)", file=str(folder))
    if not trusted:
        raise ArtifactInvalid("no trusted public key to check the signature with: give --public-key or "
                              "--allowed-signers (or run in the project that signed it)", file=str(folder))
    present = _files(folder)
    sums = _read_small(folder / SUMS, SUMS)
    armored = _read_small(folder / SIGNATURE, SIGNATURE)
    try:
        signer = sshsig.verify(armored.decode("ascii", "replace"), sums, NAMESPACE)
    except sshsig.SignatureError as exc:
        raise ArtifactInvalid(f"does not verify: {exc}", file=SIGNATURE) from None
    if signer not in trusted:
        known = ", ".join(sshsig.blob_fingerprint(b) for b in trusted)
        raise ArtifactInvalid(f"signed by {sshsig.blob_fingerprint(signer)}, which is not a trusted key "
                              f"(trusted: {known})", file=SIGNATURE)
    listed = _listed(sums)
    for name in present:
        if name not in listed and name not in (SUMS, SIGNATURE):
            raise ArtifactInvalid("not listed in SHA256SUMS: an artifact holds only the files it lists", file=name)
    staged.mkdir(mode=0o700)
    sizes: dict[str, int] = {}
    for name, expected in sorted(listed.items()):
        if name not in present:
            raise ArtifactInvalid("listed in SHA256SUMS but missing", file=name)
        try:
            digest, sizes[name] = sha256_file(folder / name, copy_to=staged / name)
        except OSError as exc:  # replaced by a link or a special file since the folder was listed
            raise ArtifactInvalid(f"cannot read it as a plain file: {exc.strerror or exc}", file=name) from None
        if digest != expected:
            raise ArtifactInvalid("its SHA-256 is not the one SHA256SUMS lists: the file was changed", file=name)
    manifest = parse_json((staged / MANIFEST).read_bytes(), MANIFEST, ArtifactInvalid, "not valid JSON")
    _check_manifest(manifest, listed, sizes)
    return Verified(manifest, sshsig.blob_fingerprint(signer), staged)


def _check_manifest(manifest: Any, listed: dict[str, str], sizes: dict[str, int]) -> None:
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ArtifactInvalid(f"not a manifest of version {MANIFEST_VERSION}", file=MANIFEST)
    if manifest.get("format") not in FORMATS:
        raise ArtifactInvalid(f"unknown format {manifest.get('format')!r}", file=MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise ArtifactInvalid("'files' is not a list of files", file=MANIFEST)
    named = {str(f.get("path")): f for f in files}
    expected = {k for k in listed if k != MANIFEST}
    if set(named) != expected or len(named) != len(files):
        differ = sorted(set(named) ^ expected) or ["a file listed twice"]
        raise ArtifactInvalid(f"its files do not match SHA256SUMS: {differ[0]}", file=MANIFEST)
    for name, entry in named.items():
        if entry.get("sha256") != listed[name] or entry.get("bytes") != sizes[name]:
            raise ArtifactInvalid(f"its entry of {name} does not match SHA256SUMS and the file", file=MANIFEST)
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not all(isinstance(v, int) for v in tables.values()):
        raise ArtifactInvalid("'tables' is not a mapping of table to rows", file=MANIFEST)


def remove_tree(path: Path) -> None:
    """Remove a folder datastage made (a temporary export or staged copy), whatever it holds."""
    shutil.rmtree(path, ignore_errors=True)
