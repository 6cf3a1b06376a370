"""The ``sqlite`` format: the copy as one SQLite file, ``data.sqlite``, for an environment of any dialect.

Both ways go through the copy :func:`~datastage.ops.ondemand.provision` makes (reflect, a
keep-everything policy, shadow, load, verify, swap): an export copies the environment's current copy
into a new SQLite file; an import copies the (checked, privately staged) file into the target.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from datastage.errors import ArtifactInvalid
from datastage.ops.ondemand import copy_verified
from datastage.progress import Progress
from datastage.settings import Environment, Project, SubsetSpec
from datastage.source.identifiers import SQLITE, quote_identifier
from datastage.source.schema import SYSTEM_TABLE_PREFIXES

DATA_FILE = "data.sqlite"


def table_rows(path: Path) -> dict[str, int]:
    """Rows of every table of the SQLite file ``path`` (datastage's own tables left out); opened
    read-only and immutable, so reading never changes the file."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: int(conn.execute(f"SELECT count(*) FROM {quote_identifier(SQLITE, name)}").fetchone()[0])
                for name in names if not name.startswith(SYSTEM_TABLE_PREFIXES)}
    except sqlite3.DatabaseError as exc:
        raise ArtifactInvalid(f"not a SQLite database: {exc}", file=DATA_FILE) from None
    finally:
        conn.close()


def bare_environment(name: str, url: str, like: Environment | None = None) -> Environment:
    """An environment that only receives a copy: no hooks, grants, notifications, keep tables or subset."""
    base = like or Environment(name=name, url=url, rules=None, subset=SubsetSpec())
    return replace(base, name=name, url=url, rules=None, keep=(), hooks={}, access=(), notify=None,
                   notify_secret=None, subset=SubsetSpec(), protected=False, schedule=None)


def export_sqlite(project: Project, env: Environment, scratch: Path, folder: Path, run_id: str,
                  progress: Progress, verdict: str) -> dict[str, int]:
    """Copy ``env``'s current copy into ``folder/data.sqlite`` (built in ``scratch``, where the SQLite
    target keeps its lock file); returns the rows per table."""
    built = scratch / DATA_FILE
    copy_env = replace(bare_environment(env.name, f"sqlite:///{built}", env), shadow_mode="schema")
    copy_verified(project, env, copy_env, run_id, progress, verdict, {"environment": env.name})
    built.rename(folder / DATA_FILE)
    return table_rows(folder / DATA_FILE)


def import_sqlite(project: Project, staged: Path, target_env: Environment, run_id: str, progress: Progress,
                  verdict: str, log: dict[str, Any], expected: dict[str, int]) -> tuple[int, str]:
    """Copy the checked ``staged/data.sqlite`` into ``target_env``; the file's tables and rows must be
    those of the manifest."""
    data = staged / DATA_FILE
    if not data.is_file():
        raise ArtifactInvalid(f"a sqlite artifact holds {DATA_FILE}; this one does not", file=DATA_FILE)
    found = table_rows(data)
    if found != expected:
        differ = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        raise ArtifactInvalid(f"table {differ[0]} has {found.get(differ[0], 0)} rows; the manifest says "
                              f"{expected.get(differ[0], 0)}", file=DATA_FILE)
    source_env = bare_environment("artifact", f"sqlite:///{data}")
    return copy_verified(project, source_env, target_env, run_id, progress, verdict, log)
