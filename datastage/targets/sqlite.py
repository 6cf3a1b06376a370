"""SQLite targets: the shadow is a new file, the swap an atomic rename.

The swap first hard-links the current file as ``<file>.previous`` and then renames the
shadow over the current file (``rename(2)`` is atomic), so a reader always finds either
the old or the new copy, and the old one stays as the rollback point. The refresh lock
is an ``flock`` on ``<file>.lock`` (released by the kernel if the process dies); right before
the swap the run checks that the lock file is still the one it locked (a removed or replaced
lock file lets another refresh in). A run holds an ``flock`` on ``<file>.shadow-<run>.owner``
for as long as its shadow is in use; a refresh drops a shadow only when that lock is free.

Example (a rollback swaps the previous copy back in):
    >>> import tempfile
    >>> target = SqliteTarget(f"sqlite:///{tempfile.mkdtemp()}/staging.db", "staging")
    >>> for path, table in ((target.previous, "old_copy"), (target.path, "new_copy")):
    ...     _ = sqlite3.connect(path).execute(f"CREATE TABLE {table} (id INTEGER)")
    >>> with target.lock("rollback-1"):
    ...     result = target.rollback()
    >>> Path(result.restored).name, Path(result.now_previous).name
    ('staging.db', 'staging.db.previous')
    >>> sqlite3.connect(target.path).execute("SELECT name FROM sqlite_master").fetchall()
    [('old_copy',)]
"""

from __future__ import annotations

import datetime as dt
import decimal
import fcntl
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from datastage.errors import ConfigError, LockHeld, TargetError
from datastage.limits import MAX_LOCK_INFO_BYTES, parse_json
from datastage.results import RollbackResult
from datastage.source.db import make_engine, sqlite_path
from datastage.source.identifiers import SQLITE, quote_identifier
from datastage.source.schema import SchemaModel, TableInfo
from datastage.source.values import rows_to_frame
from datastage.targets.base import (
    REFRESH_LOG_COLUMNS,
    REFRESH_LOG_TABLE,
    Shadow,
    Target,
    describe_holder,
    encode_log_row,
    lock_holder_info,
    wait_for_owners,
)
from datastage.targets.convert import ORIGIN_ATTR, Converter, convert_rows, converters_for
from datastage.targets.ddl import build_tables

_ADAPTERS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (decimal.Decimal, str),
    (dict, lambda v: json.dumps(v, default=str)),
    (list, lambda v: json.dumps(v, default=str)),
    (uuid.UUID, str),
    (dt.datetime, lambda v: v.isoformat(sep=" ")),
    (dt.date, lambda v: v.isoformat()),
    (dt.time, lambda v: v.isoformat()),
    (dt.timedelta, str),
    (np.integer, int),
    (np.int64, int),
    (np.floating, float),
    (np.float64, float),
    (np.bool_, bool),
)
for _type, _adapter in _ADAPTERS:
    sqlite3.register_adapter(_type, _adapter)


OWNER_SUFFIX = ".owner"  # FILE.shadow-<run>.owner: locked (flock) by the run for as long as its shadow is in use


def _hold_owner_file(path: Path) -> Any:
    """Create and lock the owner file of a shadow; the handle keeps the lock (the kernel drops it when the
    process dies). The lock is taken on the file that is still at ``path`` (a cleaner may remove it)."""
    for _ in range(5):
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the shadow is swapped or dropped
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            here = os.stat(path)
        except (BlockingIOError, FileNotFoundError):
            handle.close()
            continue
        held = os.fstat(handle.fileno())
        if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
            return handle
        handle.close()
    raise TargetError(f"cannot lock {path}")


def _release_if_free(path: Path) -> Callable[[], None] | None:
    """None if a running refresh holds the owner file ``path``; else a function that removes it (call it
    once the shadow's files are gone). No owner file: the owner is gone."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return lambda: None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None

    def release() -> None:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    return release


class SqliteTarget(Target):
    """A SQLite file as a refresh target."""

    def __init__(self, url: str, environment: str) -> None:
        super().__init__(url, environment)
        path = sqlite_path(url)
        if path is None:
            raise TargetError("an in-memory SQLite database cannot be a refresh target")
        self.path = path.absolute()
        self.previous = self.path.with_name(self.path.name + ".previous")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_handle: Any = None

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        self.run_id = run_id
        if not self.path.parent.is_dir():
            raise TargetError(f"target directory does not exist: {self.path.parent}")
        handle = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole refresh
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                try:  # the holder's note; a lock file of anything else names no holder
                    info = parse_json(handle.read(MAX_LOCK_INFO_BYTES) or "{}", str(self.lock_path))
                except (ConfigError, UnicodeDecodeError):
                    info = {}
                if not isinstance(info, dict):
                    info = {}
                raise LockHeld(f"another refresh of {self.environment} is running: {describe_holder(info)}") from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(lock_holder_info(run_id, self.environment)))
            handle.flush()
            self._lock_handle = handle
            try:
                yield
            finally:
                self._lock_handle = None
        finally:
            handle.close()

    def check_lock(self) -> None:
        """Raise :class:`~datastage.errors.LockLost` unless the lock file is still the one this run locked.

        The ``flock`` lasts as long as the handle; but once the file was removed or replaced, another
        refresh can lock a new file of the same name.
        """
        if self._lock_handle is None:
            raise TargetError(f"swapping {self.environment} needs its refresh lock")
        held = os.fstat(self._lock_handle.fileno())
        try:
            now = os.stat(self.lock_path)
        except FileNotFoundError:
            raise self.lock_lost(f"{self.lock_path} was removed") from None
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise self.lock_lost(f"{self.lock_path} was replaced")

    def cleanup_stale(self) -> list[str]:
        prefix = self.path.name + ".shadow-"

        def sweep() -> list[str]:
            runs: dict[str, list[Path]] = {}
            for item in self.path.parent.glob(prefix + "*"):
                run = item.name[len(prefix):]
                for suffix in (OWNER_SUFFIX, "-journal", "-wal", "-shm"):
                    run = run.removesuffix(suffix)
                runs.setdefault(run, []).append(item)
            left = []
            for run, files in sorted(runs.items()):
                owner = self.path.with_name(prefix + run + OWNER_SUFFIX)
                released = _release_if_free(owner)
                if released is None:
                    left.append(f"run {run} still holds its shadow {self.path.with_name(prefix + run)}")
                    continue
                for item in files:
                    if item != owner:
                        item.unlink(missing_ok=True)
                        removed.append(str(item))
                released()
            return left

        removed: list[str] = []
        wait_for_owners(self.environment, sweep)
        return removed

    def create_shadow(self, model: SchemaModel, run_id: str) -> SqliteShadow:
        return SqliteShadow(self, model, run_id)

    def rollback(self) -> RollbackResult:
        if not self.previous.is_file():
            raise TargetError(f"no previous copy of {self.environment} to roll back to ({self.previous} is missing)")
        self.check_lock()
        if not self.path.is_file():
            os.replace(self.previous, self.path)
            return RollbackResult(self.environment, str(self.path), "")
        swap_tmp = self.path.with_name(self.path.name + ".rollback-tmp")
        swap_tmp.unlink(missing_ok=True)
        try:
            os.link(self.path, swap_tmp)
            os.replace(self.previous, self.path)
            os.replace(swap_tmp, self.previous)
        finally:
            swap_tmp.unlink(missing_ok=True)
        return RollbackResult(self.environment, str(self.path), str(self.previous))

    def _read_only(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def current_rows(self, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
        if not self.exists():
            return
        conn = self._read_only()
        try:
            present = [r[1] for r in conn.execute(f"PRAGMA table_info({quote_identifier(SQLITE, table.name)})")]
            columns = self.keep_columns(table, present)
            if not columns:
                return
            names = ", ".join(quote_identifier(SQLITE, c) for c in columns)
            cursor = conn.execute(f"SELECT {names} FROM {quote_identifier(SQLITE, table.name)}")
            while rows := cursor.fetchmany(batch_size):
                frame = rows_to_frame(rows, columns)
                frame.attrs[ORIGIN_ATTR] = "sqlite"
                yield frame
        finally:
            conn.close()

    def refresh_log(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        conn = self._read_only()
        try:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                  (REFRESH_LOG_TABLE,)).fetchone()
            if not exists:
                return []
            cursor = conn.execute(f"SELECT * FROM {REFRESH_LOG_TABLE} ORDER BY started_at")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.DatabaseError:
            return []
        finally:
            conn.close()


class SqliteShadow(Shadow):
    """A new SQLite file next to the target."""

    def __init__(self, target: SqliteTarget, model: SchemaModel, run_id: str) -> None:
        self.target = target
        self.model = model
        self.path = target.path.with_name(f"{target.path.name}.shadow-{run_id}")
        self.name = str(self.path)
        self.owner_path = self.path.with_name(self.path.name + OWNER_SUFFIX)
        self._owner = _hold_owner_file(self.owner_path)  # before the shadow exists: never a shadow without owner
        self.conn: sqlite3.Connection | None = None
        try:
            self.path.unlink(missing_ok=True)
            self.conn = conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("BEGIN")
        except BaseException:
            self.discard()
            raise
        self._post_load: list[str] = []
        self._insert_sql: dict[str, tuple[str, dict[str, Converter]]] = {}

    def _db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise TargetError("the shadow copy is already closed")
        return self.conn

    def create_tables(self, tables: list[TableInfo]) -> list[str]:
        notes: list[str] = []
        conn = self._db()
        native = [t for t in tables if self.model.dialect == "sqlite" and t.ddl]
        for table in native:
            conn.execute(table.ddl)  # type: ignore[arg-type]
            self._post_load.extend(table.index_ddl)
            self._post_load.extend(table.trigger_ddl)
        others = [t for t in tables if t not in native]
        if others:
            _, built, notes = build_tables(self.model, others, "sqlite")
            dialect = sqlite_dialect.dialect()
            for table in others:
                sa_table = built[table.key]
                conn.execute(str(sa.schema.CreateTable(sa_table).compile(dialect=dialect)))
                for index in sa_table.indexes:
                    self._post_load.append(str(sa.schema.CreateIndex(index).compile(dialect=dialect)))
            skipped = [t.key for t in others if t.trigger_ddl]
            notes.extend(f"{key}: triggers not copied across dialects" for key in skipped)
        return notes

    def write(self, table: TableInfo, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        columns = [c for c in table.insertable_columns if c in frame.columns]
        origin = str(frame.attrs.get(ORIGIN_ATTR, self.model.dialect))
        cache_key = f"{table.key}\0{origin}\0{','.join(columns)}"
        cached = self._insert_sql.get(cache_key)
        if cached is None:
            names = ", ".join(quote_identifier(SQLITE, c) for c in columns)
            sql = (f"INSERT INTO {quote_identifier(SQLITE, table.name)} ({names}) "
                   f"VALUES ({', '.join('?' for _ in columns)})")
            cached = (sql, converters_for(table, columns, "sqlite", origin))
            self._insert_sql[cache_key] = cached
        sql, converters = cached
        rows = convert_rows(frame, columns, converters)
        try:
            self._db().executemany(sql, rows)
        except sqlite3.Error as exc:
            raise TargetError(f"writing {table.key} into the shadow failed: {exc}", table=table.key) from None
        return len(rows)

    def finish(self) -> None:
        conn = self._db()
        for statement in self._post_load:
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        engine = make_engine(f"sqlite:///{self.path}")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def connect(self) -> AbstractContextManager[Connection]:
        return self._connect()

    def hook_url(self) -> str | None:
        return f"sqlite:///{self.path}"

    def reader_url(self) -> str | None:
        return f"sqlite:///{self.path}"  # committed by finish(), before verification

    def record_refresh(self, row: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        conn = self._db()
        columns = ", ".join(f"{c} TEXT" for c in REFRESH_LOG_COLUMNS)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {REFRESH_LOG_TABLE} ({columns}, PRIMARY KEY (run_id))")
        placeholders = ", ".join("?" for _ in REFRESH_LOG_COLUMNS)
        for entry in [*previous, row]:
            encoded = encode_log_row(entry)
            conn.execute(f"INSERT OR REPLACE INTO {REFRESH_LOG_TABLE} VALUES ({placeholders})",
                         [encoded.get(c) for c in REFRESH_LOG_COLUMNS])

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _release_owner(self) -> None:
        if self._owner is not None:
            owner, self._owner = self._owner, None
            try:
                self.owner_path.unlink(missing_ok=True)
            finally:
                owner.close()

    def swap(self) -> None:
        self._close()
        with open(self.path, "rb") as handle:
            os.fsync(handle.fileno())
        current, previous = self.target.path, self.target.previous
        self.target.check_lock()  # the last moment before the current copy changes
        if current.exists():
            link_tmp = current.with_name(current.name + ".previous-tmp")
            link_tmp.unlink(missing_ok=True)
            try:
                os.link(current, link_tmp)
                os.replace(link_tmp, previous)
            finally:
                link_tmp.unlink(missing_ok=True)
        os.replace(self.path, current)
        self._release_owner()
        for suffix in ("-journal", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        directory = os.open(current.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self) -> None:
        self._close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self._release_owner()
