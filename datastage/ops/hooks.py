"""Hooks: SQL statements or shell commands run at fixed points of a refresh.

Points: ``pre_refresh`` (before anything is read), ``post_load`` (against the shadow copy,
before verification and swap — e.g. reset passwords, insert test accounts),
``post_refresh`` (after the swap — e.g. a smoke test) and ``on_failure``. A hook has a
timeout; a failing hook fails the refresh unless it is ``warn_only``. Shell hooks get the
environment's own URL in ``DATASTAGE_TARGET_URL`` (and the shadow's in
``DATASTAGE_SHADOW_URL`` for ``post_load``) without its password, which they get in the
client's own variable (``PGPASSWORD``, ``MYSQL_PWD``; see :mod:`datastage.ops.envops`). The
masking key, anything carrying a source secret (in any encoding) and the variables
``drop`` names are removed from their environment. A hook's command and output are
redacted (:mod:`datastage.secrets`) before they are recorded.

Example:
    >>> spec = HookSpec(run="echo ok", timeout=5)
    >>> [r.status for r in run_hooks("post_refresh", [spec], env_vars={}, cwd=Path("."))]
    ['ok']
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import sqlparse
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import HookFailed
from datastage.secrets import KEYS, Secrets, combined, key_forms
from datastage.settings import KEY_ENV_VAR, HookSpec
from datastage.source.db import db_error_message, dialect_of

OUTPUT_TAIL = 2000


@dataclass
class HookResult:
    """The outcome of one hook, as the report shows it."""

    point: str
    kind: str
    command: str
    status: str  # ok | failed | timeout
    seconds: float
    warn_only: bool = False
    exit_code: int | None = None
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "kind": self.kind, "command": self.command, "status": self.status,
                "seconds": round(self.seconds, 3), "warn_only": self.warn_only, "exit_code": self.exit_code,
                "output": self.output}


SqlRunner = Callable[[str, float], None]


def scrubbed_environment(extra: dict[str, str], secrets: Secrets | Iterable[str],
                         drop: Iterable[str] = ()) -> dict[str, str]:
    """The process environment for a hook, plus ``extra``: without the masking key (its variable, and
    any variable carrying a masking key this process has seen), without any variable carrying one of
    ``secrets`` in any encoding, and without the variables named in ``drop``."""
    hidden = Secrets(secrets)
    hidden.update(KEYS)
    if os.environ.get(KEY_ENV_VAR):
        for form in key_forms(os.environ[KEY_ENV_VAR].strip().encode("utf-8"), os.environ[KEY_ENV_VAR]):
            hidden.add(form)
    dropped = {KEY_ENV_VAR, *drop}
    env = {name: value for name, value in os.environ.items() if name not in dropped and not hidden.found_in(value)}
    env.update(extra)
    return env


def _recorded(text: str | bytes | None, hidden: Secrets) -> str:
    """Hook output as the report keeps it: redacted whole, then its last characters (so a cut never
    leaves part of a secret)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return hidden.redact(text)[-OUTPUT_TAIL:]


def run_hooks(
    point: str,
    specs: Sequence[HookSpec],
    *,
    env_vars: dict[str, str],
    cwd: Path,
    sql_runner: SqlRunner | None = None,
    secrets: Secrets | Iterable[str] = (),
    redact: Iterable[str] = (),
    drop: Iterable[str] = (),
    raise_on_failure: bool = True,
) -> list[HookResult]:
    """Run the hooks of one point in order; raise :class:`HookFailed` on the first hard failure.

    ``secrets`` (the source's) are kept out of the hooks' environment and, with every known
    secret, out of their recorded command and output; ``redact`` (the environment's own
    password, which hooks get) only out of what is recorded; ``drop`` names variables the
    hooks' environment must not inherit.
    """
    hidden_from_env = Secrets(secrets)
    hidden = combined(hidden_from_env, redact)
    dropped = tuple(drop)
    results: list[HookResult] = []
    for spec in specs:
        result = _run_one(point, spec, env_vars, cwd, sql_runner, hidden_from_env, hidden, dropped)
        results.append(result)
        if not result.ok and not spec.warn_only and raise_on_failure:
            detail = f" (exit code {result.exit_code})" if result.exit_code is not None else ""
            last = result.output.strip().splitlines()[-1] if result.output.strip() else ""
            failure = HookFailed(f"{point} hook '{result.command}' {result.status}{detail}"
                                 + (f": {last}" if last else ""), step=f"hook {point}")
            failure.results = results
            raise failure
    return results


def _run_one(point: str, spec: HookSpec, env_vars: dict[str, str], cwd: Path, sql_runner: SqlRunner | None,
             secrets: Secrets, hidden: Secrets, drop: Sequence[str]) -> HookResult:
    started = time.monotonic()
    if spec.run is not None:
        env = scrubbed_environment({**env_vars, "DATASTAGE_HOOK": point}, secrets, drop)
        code, output, timed_out = _shell(spec.run, cwd, env, spec.timeout)
        status = "timeout" if timed_out else ("ok" if code == 0 else "failed")
        return HookResult(point, "run", hidden.redact(spec.run), status, time.monotonic() - started,
                          spec.warn_only, None if timed_out else code, _recorded(output, hidden))
    sql = spec.sql or ""
    label = hidden.redact(" ".join(sql.split()))[:200]
    if sql_runner is None:
        return HookResult(point, "sql", label, "failed", 0.0, spec.warn_only, None,
                          "SQL hooks need a database at this point")
    try:
        sql_runner(sql, spec.timeout)
    except HookTimeout:
        return HookResult(point, "sql", label, "timeout", time.monotonic() - started, spec.warn_only)
    except _DB_ERRORS as exc:
        return HookResult(point, "sql", label, "failed", time.monotonic() - started, spec.warn_only, None,
                          _recorded(db_error_message(exc), hidden))
    return HookResult(point, "sql", label, "ok", time.monotonic() - started, spec.warn_only)


_DB_ERRORS = (SQLAlchemyError, sqlite3.Error, psycopg.Error, pymysql.MySQLError)


def _shell(command: str, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, bytes, bool]:
    """(exit code, output, timed out) of a shell command in its own process group.

    On timeout, or when datastage itself is interrupted, the whole group is killed, so no
    child of the hook keeps changing the database after datastage moved on.
    """
    process = subprocess.Popen(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE,  # noqa: S602
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output, False
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        return -1, output, True
    except BaseException:
        _kill_group(process)
        process.wait()
        raise


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class HookTimeout(Exception):
    """A SQL hook ran past its timeout."""


def sql_runner_for(conn: Connection) -> SqlRunner:
    """Run a hook's statements on ``conn`` in one transaction, with the hook's timeout."""
    dialect = dialect_of(conn)

    def run(sql: str, timeout: float) -> None:
        statements = [s for s in sqlparse.split(sql) if s.strip().strip(";").strip()]
        if dialect == "sqlite":
            _run_sqlite(conn, statements, timeout)
            return
        try:
            with conn.begin():
                # The driver's own cursor, without parameters: a '%' in the SQL is just a '%'.
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    if dialect == "postgresql":
                        cursor.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                    elif getattr(conn.dialect, "is_mariadb", False):
                        cursor.execute(f"SET SESSION max_statement_time = {float(timeout)}")
                    else:  # MySQL bounds only SELECT statements
                        cursor.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
                    for statement in statements:
                        cursor.execute(statement.rstrip(";"))
                finally:
                    cursor.close()
        except _DB_ERRORS as exc:
            text = str(getattr(exc, "orig", exc)).lower()
            if "statement timeout" in text or "max_statement_time" in text or "query execution was interrupted" \
                    in text:
                raise HookTimeout() from None
            raise

    return run


def _run_sqlite(conn: Connection, statements: list[str], timeout: float) -> None:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    deadline = time.monotonic() + timeout
    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    try:
        with conn.begin():
            for statement in statements:
                conn.exec_driver_sql(statement.rstrip(";"))
    except SQLAlchemyError as exc:
        if "interrupted" in str(getattr(exc, "orig", exc)).lower():
            raise HookTimeout() from None
        raise
    finally:
        raw.set_progress_handler(None, 0)
