"""Refresh history and other state kept in the project's state directory (``.datastage/``).

Layout::

    .datastage/history.jsonl              one JSON line per refresh, rollback, plan, provision or teardown
    .datastage/reports/ENV/RUN_ID.json    compliance reports (and .html)
    .datastage/schemas/ENV.json           columns seen at the last refresh (schema drift)

Every file here is written 0600 in 0700 folders (:mod:`datastage.private`), and every entry
is redacted (:mod:`datastage.secrets`) when written and again when read, so a history an
older version wrote with a password in it does not show it either.

Example (a run writes ``pending`` before its swap, then its outcome; the last line stands):
    >>> import pathlib, tempfile
    >>> state = pathlib.Path(tempfile.mkdtemp()) / ".datastage"
    >>> append_history(state, {"run_id": "20261127-090102-3fa9c1", "environment": "qa", "status": "pending"})
    >>> append_history(state, {"run_id": "20261127-090102-3fa9c1", "environment": "qa", "status": "ok",
    ...                        "target": "postgresql://app:s3cret@db/qa"})
    >>> read_history(state)
    [{'environment': 'qa', 'run_id': '20261127-090102-3fa9c1', 'status': 'ok', 'target': 'postgresql://app:***@db/qa'}]
    >>> find_run(state, "20261127")["status"]
    'ok'
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from datastage.errors import ConfigError, DatastageError, UsageError
from datastage.limits import MAX_HISTORY_LINE_BYTES, MAX_STATE_BYTES, iter_bounded_lines, parse_json, read_bounded
from datastage.private import open_private, private_dir, write_private
from datastage.secrets import redact_data, redacted_json
from datastage.yamlfile import did_you_mean

HISTORY_KINDS: dict[str, tuple[str, ...]] = {
    "refresh": ("refresh", "rollback"),  # what is live in an environment: its refreshes and rollbacks
    "plan": ("plan",),
    "provision": ("provision", "teardown"),  # on-demand environments made and dropped
    "artifact": ("export", "import"),  # verified copies written as files, and restored from them
}
"""What ``history --kind`` selects; ``all`` is every entry."""


def entry_kind(entry: dict[str, Any]) -> str:
    """An entry's kind (an entry older than the ``kind`` field is a refresh)."""
    return str(entry.get("kind") or "refresh")


def of_kind(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The ``entries`` :data:`HISTORY_KINDS` ``kind`` selects (all of them for ``all``).

    >>> [e["run_id"] for e in of_kind([{"run_id": "a"}, {"run_id": "b", "kind": "plan"}], "refresh")]
    ['a']
    """
    if kind == "all":
        return entries
    if kind not in HISTORY_KINDS:
        raise UsageError(f"unknown history kind '{kind}'{did_you_mean(kind, [*HISTORY_KINDS, 'all'])}; "
                         f"expected one of {', '.join([*HISTORY_KINDS, 'all'])}")
    wanted = HISTORY_KINDS[kind]
    return [entry for entry in entries if entry_kind(entry) in wanted]


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
    line = (redacted_json(entry, sort_keys=True) + "\n").encode("utf-8")
    try:
        private_dir(state_dir, root=state_dir)
        fd = open_private(path, os.O_RDWR | os.O_APPEND)
        with os.fdopen(fd, "ab") as handle:
            size = os.fstat(fd).st_size
            try:
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # an earlier writer died mid-line: start a line of our own
                handle.write(line)
                handle.flush()
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
    except OSError as exc:
        raise DatastageError(f"cannot write the refresh history: {exc.strerror}", file=str(path),
                             step="report") from None


def read_history(state_dir: Path, environment: str | None = None) -> list[dict[str, Any]]:
    """History entries, oldest first, optionally for one environment.

    The file is read line by line; a line that is not a JSON object (a line cut short by a
    crash, one longer than the line limit, one nested too deep) is skipped. A run may write
    several lines (``pending`` before its swap, then its outcome); the last line of a run id
    stands for the run, in the place of its first line.
    """
    path = history_file(state_dir)
    if not path.is_file():
        return []
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for number, raw in enumerate(iter_bounded_lines(path, MAX_HISTORY_LINE_BYTES)):
            if raw is None or not raw.strip():
                continue
            try:
                entry = parse_json(raw, str(path))
            except ConfigError:
                continue
            if isinstance(entry, dict) and (environment is None or entry.get("environment") == environment):
                key = (str(entry.get("environment")), str(entry.get("run_id") or f"line {number}"))
                entries[key] = redact_data(entry)  # a later line of the run replaces its entry where it stands
    except OSError as exc:
        raise UsageError(f"cannot read the refresh history: {exc.strerror}", file=str(path)) from None
    return list(entries.values())


LOADED_VERDICTS = frozenset({"pass", "warn", "fail", "pending"})


def has_refreshed(state_dir: Path) -> bool:
    """Whether a refresh of the project ever loaded a masked copy: a history line of kind ``refresh`` (or
    of no kind, as older versions wrote) whose verdict is pass, warn, fail or pending. Plans, refreshes
    that failed before loading and on-demand copies do not count.

    >>> import pathlib, tempfile
    >>> state = pathlib.Path(tempfile.mkdtemp()) / ".datastage"
    >>> append_history(state, {"run_id": "r1", "environment": "qa", "kind": "plan", "verdict": "planned"})
    >>> append_history(state, {"run_id": "r2", "environment": "qa", "kind": "refresh", "verdict": "error"})
    >>> has_refreshed(state)
    False
    >>> append_history(state, {"run_id": "r3", "environment": "qa", "kind": "refresh", "verdict": "pass"})
    >>> has_refreshed(state)
    True
    """
    return any(entry.get("kind", "refresh") == "refresh" and entry.get("verdict") in LOADED_VERDICTS
               for entry in read_history(state_dir))


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
        raw = read_bounded(path, MAX_STATE_BYTES, ConfigError)  # a file over the limit is refused unread
    except OSError:
        return None
    try:
        data = parse_json(raw, str(path))
    except ConfigError:  # not a snapshot datastage wrote (cut short, edited): no drift information
        return None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        return None
    return {str(k): [str(c) for c in v] for k, v in data.items()}


def write_state(path: Path, data: Any, root: Path | None = None) -> None:
    """Write a JSON state file atomically (a reader sees the old or the new file, never half of one),
    redacted, mode 0600; ``root`` is the state directory (its folders down to the file become 0700)."""
    write_private(path, redacted_json(data, indent=1, sort_keys=True), root=root)


def save_schema(state_dir: Path, environment: str, columns: dict[str, list[str]]) -> None:
    """Record the columns seen by this refresh (for the next refresh's drift check)."""
    write_state(state_dir / "schemas" / f"{environment}.json", columns, root=state_dir)


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
