"""The bounds on every file datastage reads, in one place, and the readers that enforce them.

A config or rules file, a state file or a report handed to ``report verify`` may be
hostile or simply wrong (a 50 MB file, a YAML alias bomb, a list nested thousands of
levels deep). Every such file is read through these helpers, so it is refused with one
line naming the file (and line where possible) before it costs time or memory:

* the size is checked before parsing: at most ``limit`` bytes are ever read;
* YAML is bounded while it is composed (see :mod:`datastage.yamlfile`): nesting depth,
  items per list or mapping, values per file with aliases expanded, characters per scalar;
* JSON is bounded by its size and its nesting depth (it has no aliases, so its size bounds
  everything else).

Example:
    >>> describe_bytes(MAX_FILE_BYTES)
    '4 MiB'
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datastage.errors import ConfigError, DatastageError

# -- the limits ---------------------------------------------------------------------------

#: datastage.yaml and rules files (YAML), each.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Nesting of lists and mappings in a YAML or JSON file (aliases expanded).
MAX_DEPTH = 32
#: Items of one YAML list, or keys of one YAML mapping.
MAX_ITEMS = 100_000
#: Values (scalars, lists and mappings) of one YAML file, every alias counted as what it expands to.
MAX_NODES = 1_000_000
#: Characters of one YAML scalar (a key, a name, an SQL hook, a pattern).
MAX_SCALAR_CHARS = 256 * 1024
#: JSON state files under the state directory (schedule, on-demand registry, schema snapshots), each.
MAX_STATE_BYTES = 16 * 1024 * 1024
#: One line of ``history.jsonl`` (the file itself grows with every run; it is read line by line).
MAX_HISTORY_LINE_BYTES = 1024 * 1024
#: A compliance report given to ``report verify`` / ``report show`` (JSON or HTML).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: A masking key file.
MAX_KEY_FILE_BYTES = 64 * 1024
#: The lock-holder note of a SQLite target's lock file.
MAX_LOCK_INFO_BYTES = 64 * 1024

LIMITS: dict[str, int] = {
    "file_bytes": MAX_FILE_BYTES, "depth": MAX_DEPTH, "items": MAX_ITEMS, "nodes": MAX_NODES,
    "scalar_chars": MAX_SCALAR_CHARS, "state_bytes": MAX_STATE_BYTES,
    "history_line_bytes": MAX_HISTORY_LINE_BYTES, "report_bytes": MAX_REPORT_BYTES,
    "key_file_bytes": MAX_KEY_FILE_BYTES, "lock_info_bytes": MAX_LOCK_INFO_BYTES,
}


def describe_bytes(count: int) -> str:
    """``4 MiB``, ``64 KiB``, ``12 bytes``: a byte count for messages.

    >>> describe_bytes(50 * 1024 * 1024 + 1)
    '50.0 MiB'
    """
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= size:
            return f"{count // size} {unit}" if count % size == 0 else f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def too_large(limit: int, size: int | None = None) -> str:
    """The message for a file over ``limit`` bytes (``size`` when known)."""
    what = f" ({describe_bytes(size)})" if size is not None else ""
    return f"file is too large{what}: datastage reads at most {describe_bytes(limit)} from it"


def read_bounded(path: Path, limit: int, error_class: type[DatastageError] = ConfigError) -> bytes:
    """The bytes of ``path``, read only when it holds at most ``limit`` bytes.

    A larger file is an ``error_class`` naming it; at most ``limit + 1`` bytes are ever read
    (also from a device or a pipe whose size is unknown). ``OSError`` propagates, so each
    caller keeps its own message for a missing or unreadable file.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise error_class(too_large(limit, size), file=str(path))
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise error_class(too_large(limit), file=str(path))
    return data


def json_depth_error(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) nests too deep, or None; iterative, so any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterator[Any] = iter(item.values())
        elif isinstance(item, list):
            children = iter(item)
        else:
            continue
        if depth > limit:
            return f"nested deeper than {limit} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def parse_json(text: str | bytes, file: str, error_class: type[DatastageError] = ConfigError,
               what: str = "invalid JSON") -> Any:
    """Parse JSON text, bounded in depth; any problem is one ``error_class`` line naming ``file``.

    ``what`` starts the message of a syntax error (``invalid JSON at line 3``).
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise error_class(f"{what}: not UTF-8 text", file=file) from None
    except json.JSONDecodeError as exc:
        raise error_class(f"{what} at line {exc.lineno}", file=file) from None
    except RecursionError:
        raise error_class(f"{what}: nested deeper than {MAX_DEPTH} levels", file=file) from None
    except ValueError:  # an integer with more digits than Python converts (JSONDecodeError is handled above)
        raise error_class(f"{what}: a number with too many digits", file=file) from None
    problem = json_depth_error(data)
    if problem is not None:
        raise error_class(f"{what}: {problem}", file=file)
    return data


def read_json_file(path: Path, limit: int, error_class: type[DatastageError] = ConfigError,
                   what: str = "invalid JSON") -> Any:
    """Read and parse a JSON file of at most ``limit`` bytes; every problem is one line naming it."""
    try:
        raw = read_bounded(path, limit, error_class)
    except OSError as exc:
        raise error_class(f"cannot read file: {exc.strerror or exc.__class__.__name__}", file=str(path)) from None
    return parse_json(raw, str(path), error_class, what)


def iter_bounded_lines(path: Path, limit: int) -> Iterator[bytes | None]:
    """The lines of ``path`` (without line ends); a line longer than ``limit`` bytes yields None.

    Memory stays bounded by ``limit`` whatever the file holds.
    """
    with open(path, "rb") as handle:
        while True:
            line = handle.readline(limit + 1)
            if not line:
                return
            if len(line) > limit and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the over-long line
                    line = handle.readline(limit + 1)
                yield None
                continue
            yield line.rstrip(b"\r\n")


def read_owner_only(path: Path | str, what: str, too_open: type[DatastageError],
                    error: type[DatastageError]) -> bytes:
    """The bytes of a key file that only its owner may read, at most :data:`MAX_KEY_FILE_BYTES`.

    The mode is checked on the file that is read (not on a path checked before): a file its group
    or others may read raises ``too_open``, an oversized one ``error``; ``OSError`` passes through.

    >>> import tempfile
    >>> key = Path(tempfile.mkdtemp()) / "k"
    >>> _ = key.write_bytes(b"secret"); key.chmod(0o644)
    >>> read_owner_only(key, "demo key", ConfigError, ConfigError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    datastage.errors.ConfigError: .../k: demo key file permissions 0644 are too open: ...
    >>> key.chmod(0o600); read_owner_only(key, "demo key", ConfigError, ConfigError)
    b'secret'
    """
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            raise too_open(f"{what} file permissions {mode:04o} are too open: it must be readable "
                           f"by its owner only; run chmod 600 {path}", file=str(path))
        if status.st_size > MAX_KEY_FILE_BYTES:
            raise error(too_large(MAX_KEY_FILE_BYTES, status.st_size), file=str(path))
        raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise error(too_large(MAX_KEY_FILE_BYTES), file=str(path))
    return raw
