"""Refresh history and other state kept in the project's state directory (``.datastage/``).

Layout::

    .datastage/history.jsonl              one JSON line per refresh or plan
    .datastage/reports/ENV/RUN_ID.json    compliance reports (and .html)
    .datastage/schemas/ENV.json           columns seen at the last refresh (schema drift)

Example:
    >>> run_id = new_run_id()
    >>> len(run_id.split("-")) == 3
    True
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import secrets
from pathlib import Path
from typing import Any

from datastage.errors import DatastageError, UsageError


def current_user() -> str:
    """The operating-system user running datastage (recorded as the actor)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261127-090102-3fa9c1``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def history_file(state_dir: Path) -> Path:
    return state_dir / "history.jsonl"


def reports_dir(state_dir: Path, environment: str) -> Path:
    return state_dir / "reports" / environment


def append_history(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append one entry to the history file (created on first use).

    A write that fails (disk full) is cut off again, so no half line is left for the next
    entry to run into.
    """
    path = history_file(state_dir)
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            try:
                if size and os.pread(handle.fileno(), 1, size - 1) != b"\n":
                    line = b"\n" + line  # an earlier writer died mid-line: start a line of our own
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(handle.fileno(), size)
                raise
    except OSError as exc:
        raise DatastageError(f"cannot write the refresh history: {exc.strerror}", file=str(path),
                             step="report") from None


def read_history(state_dir: Path, environment: str | None = None) -> list[dict[str, Any]]:
    """History entries, oldest first, optionally for one environment.

    A run may write several lines (``pending`` before its swap, then its outcome); the last
    line of a run id stands for the run, in the place of its first line.
    """
    path = history_file(state_dir)
    if not path.is_file():
        return []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        if environment is None or entry.get("environment") == environment:
            key = (str(entry.get("environment")), str(entry.get("run_id") or f"line {number}"))
            entries[key] = entry  # a later line of the run replaces its entry where it stands
    return list(entries.values())


def find_run(state_dir: Path, run_id: str) -> dict[str, Any]:
    """The history entry of ``run_id`` (a unique prefix is enough)."""
    matches = [e for e in read_history(state_dir) if str(e.get("run_id", "")).startswith(run_id)]
    if not matches:
        raise UsageError(f"no refresh with run id '{run_id}' in {history_file(state_dir)}")
    if len({e["run_id"] for e in matches}) > 1:
        raise UsageError(f"run id '{run_id}' is ambiguous; give more characters")
    return matches[-1]


def last_schema(state_dir: Path, environment: str) -> dict[str, list[str]] | None:
    """Columns per table recorded at the environment's last successful refresh."""
    path = state_dir / "schemas" / f"{environment}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return {str(k): list(v) for k, v in data.items()} if isinstance(data, dict) else None


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a reader sees the old or the new file, never half
    of one, and a write that fails (disk full, read-only) leaves no temporary file behind."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_state(path: Path, data: Any) -> None:
    """Write a JSON state file atomically (a reader sees the old or the new file, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str))


def save_schema(state_dir: Path, environment: str, columns: dict[str, list[str]]) -> None:
    """Record the columns seen by this refresh (for the next refresh's drift check)."""
    write_state(state_dir / "schemas" / f"{environment}.json", columns)


def schema_drift(previous: dict[str, list[str]] | None, current: dict[str, list[str]]) -> dict[str, list[str]]:
    """Tables and columns added or removed since the previous refresh.

    >>> schema_drift({"t": ["a"]}, {"t": ["a", "b"], "u": ["x"]})
    {'added_tables': ['u'], 'removed_tables': [], 'added_columns': ['t.b'], 'removed_columns': []}
    """
    if previous is None:
        return {"added_tables": [], "removed_tables": [], "added_columns": [], "removed_columns": []}
    added_tables = sorted(set(current) - set(previous))
    removed_tables = sorted(set(previous) - set(current))
    added_columns, removed_columns = [], []
    for table in sorted(set(current) & set(previous)):
        added_columns += [f"{table}.{c}" for c in current[table] if c not in previous[table]]
        removed_columns += [f"{table}.{c}" for c in previous[table] if c not in current[table]]
    return {"added_tables": added_tables, "removed_tables": removed_tables,
            "added_columns": added_columns, "removed_columns": removed_columns}
