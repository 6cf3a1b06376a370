"""Files and folders only their owner can read: reports, history, state files and log files.

Every writer of the state directory (``.datastage/``) and of ``--log-file`` goes through
here. Files are created with mode ``0600`` and folders with ``0700`` whatever the umask;
a file or state folder an older version left wider is tightened to that mode when this user
owns it (an existing folder above the state directory, such as ``/var/log``, is left alone).

Example:
    >>> import tempfile
    >>> state = Path(tempfile.mkdtemp()) / ".datastage"
    >>> write_private(state / "schemas" / "qa.json", "{}", root=state)
    >>> oct((state / "schemas" / "qa.json").stat().st_mode & 0o777), oct((state / "schemas").stat().st_mode & 0o777)
    ('0o600', '0o700')
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def _tighten(path: Path | str, mode: int, fd: int | None = None) -> None:
    """Set ``mode`` on a file or folder this user owns (others' files are not ours to change)."""
    try:
        info = os.fstat(fd) if fd is not None else os.stat(path)
        if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) == mode:
            return
        if fd is not None:
            os.fchmod(fd, mode)
        else:
            os.chmod(path, mode)
    except OSError:
        pass  # a file system without modes (or a file that just went away) keeps what it has


def private_dir(path: Path, root: Path | None = None) -> None:
    """Create folder ``path`` (and its missing parents) with mode 0700; with ``root``, every existing
    folder from ``root`` down to ``path`` is tightened to 0700 too."""
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.is_dir() and current.parent != current:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
        _tighten(folder, DIR_MODE)
    if root is not None:
        root = Path(root)
        try:
            inside = path.relative_to(root)
        except ValueError:
            return
        _tighten(root, DIR_MODE)
        folder = root
        for part in inside.parts:
            folder = folder / part
            _tighten(folder, DIR_MODE)


def open_private(path: Path | str, flags: int) -> int:
    """A file descriptor of ``path`` opened with ``flags`` (``O_CREAT`` added), the file at mode 0600."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    _tighten(path, FILE_MODE, fd)
    return fd


def write_private(path: Path, text: str, root: Path | None = None) -> None:
    """Replace ``path`` atomically with ``text`` (a reader sees the old or the new file, never half of
    one); the file is 0600 from its first byte, its folder 0700 (see :func:`private_dir` for ``root``)."""
    private_dir(path.parent, root)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        _tighten(tmp, FILE_MODE, fd)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PrivateFileHandler(logging.FileHandler):
    """A logging file handler whose file is created 0600 (and its missing folders 0700)."""

    def __init__(self, filename: Path, encoding: str = "utf-8") -> None:
        private_dir(Path(filename).absolute().parent)
        super().__init__(filename, mode="a", encoding=encoding)

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(self.baseFilename, os.O_WRONLY | os.O_APPEND)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
