"""The refresh lock of a PostgreSQL target: a session advisory lock, and who holds it.

The key is derived from the target database's name; the holding session's
``application_name`` (``ds:<run>:<pid>:<user>@<host>``) names the run, so a second refresh
can say who holds the lock and since when. Every other session of a run is named
``datastage:<run_id>``.

Example:
    >>> lock_key("staging") == lock_key("staging") != lock_key("qa")
    True
"""

from __future__ import annotations

import zlib
from typing import Any

import psycopg

from datastage.targets.base import RUN_LABEL, describe_holder

LOCK_CLASS = 0x64730000  # "ds": the first half of every datastage advisory lock key


def lock_key(database: str) -> int:
    """The second half of the advisory lock key of ``database``'s refresh lock."""
    return zlib.crc32(f"datastage:{database}".encode()) & 0x7FFFFFFF


def holds_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    """Whether ``conn``'s own session holds the advisory lock ``key``."""
    row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                       "AND objid = %s AND objsubid = 2 AND granted AND pid = pg_backend_pid()",
                       (LOCK_CLASS, key)).fetchone()
    return bool(row and row[0])


def run_sessions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The runs that have a session on the server (any database), by run id: who the session is."""
    running: dict[str, str] = {}
    for pid, name in conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'ds:%%' "
            "OR application_name LIKE %s", (RUN_LABEL + "%",)).fetchall():
        name = str(name)
        run = name[len(RUN_LABEL):] if name.startswith(RUN_LABEL) else name.split(":")[1]
        running.setdefault(run, f"run {run} (session pid {pid})")
    return running


def lock_holder(conn: psycopg.Connection[Any], key: int) -> str:
    """Who holds the advisory lock ``key``, for the message of a refresh that could not take it."""
    row = conn.execute(
        """SELECT a.application_name, a.usename, a.pid, to_char(a.backend_start AT TIME ZONE 'UTC',
                  'YYYY-MM-DD"T"HH24:MI:SS"Z"')
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 AND l.granted""",
        (LOCK_CLASS, key)).fetchone()
    if row is None:
        return describe_holder(None)
    parts = str(row[0] or "").split(":", 3)
    if len(parts) == 4 and parts[0] == "ds":
        user, _, host = parts[3].partition("@")
        return describe_holder({"run_id": parts[1], "pid": parts[2], "user": user, "host": host,
                                "started_at": row[3]})
    return describe_holder({"run_id": "?", "user": row[1], "host": "?", "pid": row[2], "started_at": row[3]})
