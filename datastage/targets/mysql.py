"""MariaDB/MySQL targets: the shadow is a new database, the swap one multi-table ``RENAME TABLE``.

A refresh of database ``db`` builds ``db__ds_shadow_<run>``: tables without secondary indexes
and foreign keys, rows by ``LOAD DATA LOCAL INFILE`` (batches encoded a column at a time by
:mod:`datastage.targets.mysql_load`) with foreign-key and unique checks off, then indexes and
foreign keys, ``ANALYZE TABLE``. Where the server does not allow ``LOAD DATA LOCAL``
(``local_infile=OFF``) rows go by multi-row ``INSERT`` and the load notes say so.

``LOAD DATA LOCAL`` lets the server ask the client for a file by name, so only the one
connection loading the shadow enables it: the target server is trusted (it receives the masked
copy); the lock, verification and keep-table connections do not have it, and source
connections never do (:func:`datastage.source.db.make_engine` refuses it for read-only ones).
Each batch is written to a file in a new private (0700) directory, loaded and removed at once.

The swap is one ``RENAME TABLE`` statement, which
MariaDB and MySQL execute atomically: every current table moves to ``db__ds_prev`` and every
shadow table into ``db`` (the first refresh creates ``db``, and ``db__ds_prev`` exists only
while it holds a previous copy). Views in ``db`` name their tables, so they see the new copy at once.
Triggers are not created in the shadow: MariaDB cannot move a table with triggers to another
database, which the swap does.

The refresh lock is ``GET_LOCK('datastage:<db>')`` held by a dedicated connection, which records
who it is (run, user, host, pid, connection) in the comment of an empty table in ``<db>__ds_lock``
(dropped when the lock is released); a second refresh names the holder from it, and only the
connection when the record is missing or belongs to another connection. The swap runs on the lock
connection, which checks ``IS_USED_LOCK(name) = CONNECTION_ID()`` right before its one ``RENAME
TABLE``: if the connection was killed, the swap cannot run at all. The connection loading a
shadow holds ``GET_LOCK('datastage:run:<db>:<tag>')``; a refresh drops a shadow only when that
lock is free.

Example (the swap's one statement, and the lock a shadow's loader holds):
    >>> print(rename_sql([("staging", "staging__ds_prev", "t"), ("staging__ds_shadow_1", "staging", "t")]))
    RENAME TABLE `staging`.`t` TO `staging__ds_prev`.`t`, `staging__ds_shadow_1`.`t` TO `staging`.`t`
    >>> MysqlTarget.run_lock_name("staging", "20261127_090102_3fa9c1")
    'datastage:run:staging:20261127_090102_3fa9c1'
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import pandas as pd
import pymysql
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.engine import Connection, Engine

from datastage.errors import LockHeld, TargetError
from datastage.results import RollbackResult
from datastage.settings import AccessGrant
from datastage.source.db import make_engine, parse_url
from datastage.source.identifiers import MYSQL, qualified_name, quote_identifier
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
from datastage.targets.mysql_load import EncodedBatch, column_family, encode_batch, load_file

SHADOW_TAG = "__ds_shadow_"
PREVIOUS_SUFFIX = "__ds_prev"
ROLLBACK_SUFFIX = "__ds_rollback"
STALE_SUFFIX = "__ds_stale"  # the previous copy's tables on their way out, within the swap's one RENAME
HOLDER_SUFFIX = "__ds_lock"  # who holds the refresh lock, for a second refresh to name (a table comment)
HOLDER_TABLE = "holder"
MAX_DATABASE_NAME = 40  # leaves room for the suffixes within MariaDB's 64-character names
LOAD_SQL_MODE = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
# Server errors meaning LOAD DATA LOCAL is not allowed: ER_NOT_ALLOWED_COMMAND (MariaDB, MySQL 5),
# ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8).
LOCAL_INFILE_REFUSED = (1148, 3948)
LOAD_BYTES = 8 << 20  # one LOAD DATA statement carries batches of one table up to 8 MiB ...
LOAD_ROWS = 100_000  # ... or this many rows


def _first_line(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1].splitlines()[0] if args[1] else str(args[0])
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def my_errors(what: str, table: str | None = None) -> Iterator[None]:
    """Driver errors as one-line :class:`TargetError` naming what was being done."""
    try:
        yield
    except pymysql.Error as exc:
        raise TargetError(f"{what}: {_first_line(exc)}", table=table) from None
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        raise TargetError(f"{what}: {_first_line(orig if orig is not None else exc)}", table=table) from None


class MysqlTarget(Target):
    """A MariaDB/MySQL database as a refresh target."""

    def __init__(self, url: str, environment: str) -> None:
        super().__init__(url, environment)
        parsed = parse_url(url)
        self.parsed = parsed
        self.database = parsed.database or ""
        if not self.database:
            raise TargetError(f"the target URL of {environment} names no database")
        if len(self.database) > MAX_DATABASE_NAME:
            raise TargetError(f"target database name '{self.database}' is longer than {MAX_DATABASE_NAME} characters")
        self.server_url = parsed._replace(database=None)
        self.previous = self.database + PREVIOUS_SUFFIX
        self._engine: Engine | None = None
        self._load_engine: Engine | None = None
        self._lock_conn: pymysql.connections.Connection | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.server_url, role="target database")
        return self._engine

    def load_engine(self) -> Engine:
        """The engine of the connection that loads a shadow: the only one with ``LOAD DATA LOCAL``
        (never a source connection's)."""
        if self._load_engine is None:
            self._load_engine = make_engine(self.server_url, role="target database", local_infile=True)
        return self._load_engine

    def raw(self, *, load: bool = False) -> pymysql.connections.Connection:
        """An autocommit pymysql connection to the target server (the caller closes it); ``load``:
        the shadow's loading connection, which may send rows by ``LOAD DATA LOCAL INFILE``."""
        with my_errors(f"cannot connect to the target {self.display_url}"):
            proxy = (self.load_engine() if load else self.engine()).raw_connection()
            conn = proxy.driver_connection
            proxy.detach()
            assert conn is not None
            conn.autocommit(True)
        return conn

    @staticmethod
    def fetch(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def tables_of(self, conn: pymysql.connections.Connection, database: str) -> list[str]:
        return [r[0] for r in self.fetch(
            conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                  "AND table_type = 'BASE TABLE' ORDER BY table_name", (database,))]

    def databases(self, conn: pymysql.connections.Connection) -> set[str]:
        return {r[0] for r in self.fetch(conn, "SELECT schema_name FROM information_schema.schemata")}

    # -- lock --------------------------------------------------------------------------------
    @property
    def lock_name(self) -> str:
        return f"datastage:{self.database}"[:64]

    @property
    def holder_database(self) -> str:
        return self.database + HOLDER_SUFFIX

    @staticmethod
    def run_lock_name(database: str, tag: str) -> str:
        """The lock a run's loading connection holds for as long as its shadow ``database__ds_shadow_<tag>``
        is in use: a second refresh drops a shadow only when this lock is free."""
        return f"datastage:run:{database}:{tag}"[:64]

    @contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        self.run_id = run_id
        conn = self.raw()
        try:
            with my_errors(f"cannot take the refresh lock on {self.display_url}"):
                got = self.fetch(conn, "SELECT GET_LOCK(%s, 0)", (self.lock_name,))
            if not got or got[0][0] != 1:
                with my_errors(f"reading who holds the refresh lock on {self.display_url}"):
                    holder = self._holder(conn)
                raise LockHeld(f"another refresh of {self.environment} is running: {holder}")
            with suppress(pymysql.Error):  # the session sits idle for the whole refresh: no idle timeout
                self.fetch(conn, "SET SESSION wait_timeout = 31536000")
            self._publish_holder(conn, run_id)
            self._lock_conn = conn
            try:
                yield
            finally:
                self._lock_conn = None
                with suppress(pymysql.Error):
                    self.fetch(conn, f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, self.holder_database)}")
        finally:
            with suppress(pymysql.Error):
                conn.close()  # ends the session, which releases the lock

    def _publish_holder(self, conn: pymysql.connections.Connection, run_id: str) -> None:
        """Record who holds the lock where a second refresh can read it: the comment of an empty table in
        ``<db>__ds_lock`` (MariaDB cannot name a session). Best effort: without it the holder is named
        by its connection only."""
        info = {**lock_holder_info(run_id, self.environment), "connection": conn.thread_id()}
        holder = qualified_name(MYSQL, self.holder_database, HOLDER_TABLE)
        with suppress(pymysql.Error):
            self.fetch(conn, f"CREATE DATABASE IF NOT EXISTS {quote_identifier(MYSQL, self.holder_database)} "
                             "CHARACTER SET utf8mb4")
            self.fetch(conn, f"DROP TABLE IF EXISTS {holder}")
            self.fetch(conn, f"CREATE TABLE {holder} (connection_id BIGINT) COMMENT = %s",
                       (json.dumps(info, sort_keys=True),))

    def _holder(self, conn: pymysql.connections.Connection) -> str:
        rows = self.fetch(conn, "SELECT p.ID, p.USER, p.HOST, p.TIME FROM information_schema.PROCESSLIST p "
                                "WHERE p.ID = IS_USED_LOCK(%s)", (self.lock_name,))
        if not rows:
            return describe_holder(None)
        ident, user, host, seconds = rows[0]
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(seconds or 0))).isoformat(timespec="seconds")
        try:
            comment = self.fetch(conn, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                       "AND TABLE_NAME = %s", (self.holder_database, HOLDER_TABLE))
            info = json.loads(comment[0][0]) if comment else None
        except (pymysql.Error, TypeError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("connection") == ident:
            return describe_holder({**info, "pid": f"{info.get('pid', '?')}, connection {ident}"})
        # No record of the holder (or one a killed holder left): name the session only, never a guess.
        return (f"connection {ident} of {user}@{str(host).rsplit(':', 1)[0]} holds the lock since "
                f"{since.replace('+00:00', 'Z')} (it recorded no run)")

    @contextmanager
    def swap_connection(self, committed: Callable[[], bool] | None = None) -> Iterator[pymysql.connections.Connection]:
        """The connection that holds the refresh lock, once it checked that it still holds it. MariaDB DDL is
        not transactional, so the swap runs on this very connection: if the lock's session ends, the
        swap's statements cannot run at all. ``committed()`` tells, if the session ends during the
        swap's one ``RENAME``, whether the rename went through."""
        conn = self._lock_conn
        if conn is None:
            raise TargetError(f"swapping {self.environment} needs its refresh lock")
        self.check_lock(conn)
        try:
            yield conn
        except pymysql.Error as exc:
            if self._alive(conn):
                raise
            self.settle(f"its session ended: {_first_line(exc)}", committed or (lambda: False))

    def check_lock(self, conn: pymysql.connections.Connection) -> None:
        """Raise :class:`~datastage.errors.LockLost` unless ``conn`` still holds the refresh lock."""
        try:
            row = self.fetch(conn, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.lock_name,))
        except pymysql.Error as exc:
            if self._alive(conn):
                raise TargetError(f"checking the refresh lock: {_first_line(exc)}") from None
            raise self.lock_lost(f"its session ended: {_first_line(exc)}") from None
        if not row or row[0][0] != 1:
            raise self.lock_lost("its session no longer holds it")

    @staticmethod
    def _alive(conn: pymysql.connections.Connection) -> bool:
        try:
            conn.ping(reconnect=False)
        except pymysql.Error:
            return False
        return True

    # -- housekeeping --------------------------------------------------------------------------
    def cleanup_stale(self) -> list[str]:
        conn = self.raw()
        removed: list[str] = []
        leftovers = (self.database + ROLLBACK_SUFFIX, self.database + STALE_SUFFIX)

        def sweep() -> list[str]:
            left = []
            for name in sorted(self.databases(conn)):
                if not name.startswith(self.database + SHADOW_TAG) and name not in leftovers:
                    continue
                if name.startswith(self.database + SHADOW_TAG):
                    tag = name[len(self.database + SHADOW_TAG):]
                    owner = self.fetch(conn, "SELECT IS_USED_LOCK(%s)", (self.run_lock_name(self.database, tag),))
                    if owner and owner[0][0] is not None:
                        left.append(f"the refresh that owns shadow database {name} (connection {owner[0][0]}) is "
                                    "still connected")
                        continue
                with conn.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, name)}")
                removed.append(name)
            return left

        try:
            with my_errors("removing stale shadow databases"):
                wait_for_owners(self.environment, sweep)
        finally:
            conn.close()
        return removed

    def exists(self) -> bool:
        conn = self.raw()
        try:
            with my_errors("reading the target"):
                return bool(self.tables_of(conn, self.database))
        finally:
            conn.close()

    def create_shadow(self, model: SchemaModel, run_id: str) -> MysqlShadow:
        conn = self.raw()
        try:
            with my_errors("reading the target"):
                triggers = self.fetch(conn, "SELECT trigger_name, event_object_table FROM information_schema.triggers "
                                            "WHERE trigger_schema = %s", (self.database,))
        finally:
            conn.close()
        if triggers:
            names = ", ".join(f"{t} on {table}" for t, table in triggers)
            raise TargetError(f"the target database {self.database} has triggers ({names}); MariaDB cannot move "
                              "tables with triggers between databases, which the atomic swap does. Drop them "
                              "or recreate them in a post-refresh hook")
        return MysqlShadow(self, model, run_id)

    # -- rollback ----------------------------------------------------------------------------
    def rollback(self) -> RollbackResult:
        parking = self.database + ROLLBACK_SUFFIX
        live_before = [str(r.get("run_id")) for r in self.refresh_log()]
        with my_errors(f"rolling back {self.environment}"), \
                self.swap_connection(lambda: [str(r.get("run_id")) for r in self.refresh_log()] != live_before) \
                as conn:
            previous = self.tables_of(conn, self.previous)
            if not previous:
                raise TargetError(f"no previous copy of {self.environment} to roll back to "
                                  f"(database {self.previous} is missing or empty)")
            current = self.tables_of(conn, self.database)
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, parking)}")
                cursor.execute(f"CREATE DATABASE {quote_identifier(MYSQL, parking)}")
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(MYSQL, self.database)}")
                moves = [(self.database, parking, t) for t in current]
                moves += [(self.previous, self.database, t) for t in previous]
                moves += [(parking, self.previous, t) for t in current]
                self.check_lock(conn)
                cursor.execute(rename_sql(moves))
                cursor.execute(f"DROP DATABASE {quote_identifier(MYSQL, parking)}")
                if not current:  # there was no current copy to become the previous one
                    cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, self.previous)}")
        return RollbackResult(self.environment, f"database {self.database}", f"database {self.previous}")

    # -- reading the current copy ----------------------------------------------------------------
    def current_rows(self, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
        conn = self.raw()
        try:
            with my_errors(f"reading the current rows of {table.key}", table.key):
                present = [r[0] for r in self.fetch(
                    conn, "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                          "AND table_name = %s ORDER BY ordinal_position", (self.database, table.name))]
                columns = self.keep_columns(table, present)
                if not columns:
                    return
                cursor = conn.cursor(pymysql.cursors.SSCursor)
                try:
                    cursor.execute(f"SELECT {', '.join(quote_identifier(MYSQL, c) for c in columns)} "
                                   f"FROM {qualified_name(MYSQL, self.database, table.name)}")
                    while rows := cursor.fetchmany(batch_size):
                        frame = rows_to_frame(rows, columns)
                        frame.attrs[ORIGIN_ATTR] = "mysql"
                        yield frame
                finally:
                    cursor.close()
        finally:
            conn.close()

    def refresh_log(self) -> list[dict[str, Any]]:
        conn = self.raw()
        try:
            with my_errors("reading the refresh log"):
                if REFRESH_LOG_TABLE not in self.tables_of(conn, self.database):
                    return []
                with conn.cursor() as cursor:
                    log = qualified_name(MYSQL, self.database, REFRESH_LOG_TABLE)
                    cursor.execute(f"SELECT * FROM {log} ORDER BY started_at")
                    names = [d[0] for d in cursor.description or []]
                    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()


class BackgroundLoads:
    """One thread running the shadow's loads one batch behind the caller (at most one more waits).

    The first failure is kept and raised by the next :meth:`submit` or :meth:`drain`; the batches
    after it are not loaded (the shadow is discarded).

    >>> loads = BackgroundLoads("example")
    >>> done = []
    >>> loads.submit(lambda: done.append(1)); loads.drain(); loads.stop(); done
    [1]
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"datastage {name}"[:60], daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None and not self._stopping:
                    job()
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def check(self) -> None:
        """Raise the first failure of a job, if one failed."""
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        self.check()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted job ran; raise the first failure."""
        self._jobs.join()
        self.check()

    def stop(self, timeout: float = 60.0) -> None:
        """Skip the jobs not started, wait for the running one (at most ``timeout`` s), end the thread."""
        self._stopping = True
        with suppress(queue.Full):
            self._jobs.put(None, timeout=timeout)
        self._thread.join(timeout)


def local_infile_refusal(conn: pymysql.connections.Connection) -> str | None:
    """Why ``conn`` cannot send rows by ``LOAD DATA LOCAL INFILE`` (None: it can).

    The connection must enable it (only a target's loading connection does) and the server must
    allow it (``local_infile``).
    """
    if not getattr(conn, "_local_infile", False):
        return "the connection does not enable local_infile"
    with conn.cursor() as cursor:
        cursor.execute("SHOW VARIABLES LIKE 'local_infile'")
        row = cursor.fetchone()
    if row is None or str(row[1]).upper() not in ("ON", "1"):
        return "the target server does not allow it (local_infile is OFF)"
    return None


def _add_index_clause(create_index: str) -> str:
    """``CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX n ON t (cols)`` as an ``ALTER TABLE`` clause."""
    match = re.match(r"\s*CREATE (UNIQUE |FULLTEXT |SPATIAL )?INDEX (`[^`]+`|\S+) ON "
                     r"(?:`[^`]+`|\S+)\.?(?:`[^`]+`|\S+)? (\(.*)$", create_index, re.S)
    if match is None:
        raise TargetError(f"unexpected index definition: {create_index[:80]}")
    return f"ADD {match.group(1) or ''}INDEX {match.group(2)} {match.group(3).strip()}"


def _add_constraint_clause(alter: str) -> str:
    """``ALTER TABLE t ADD CONSTRAINT ...`` as a clause of another ``ALTER TABLE``."""
    position = alter.find(" ADD ")
    if position < 0:
        raise TargetError(f"unexpected constraint definition: {alter[:80]}")
    return alter[position + 1:].strip()


def rename_sql(moves: list[tuple[str, str, str]]) -> str:
    """One ``RENAME TABLE`` statement moving ``(from_db, to_db, table)`` in order (atomic as a whole)."""
    return "RENAME TABLE " + ", ".join(f"{qualified_name(MYSQL, a, t)} TO {qualified_name(MYSQL, b, t)}"
                                       for a, b, t in moves)


class MysqlShadow(Shadow):
    """A new database on the target server."""

    def __init__(self, target: MysqlTarget, model: SchemaModel, run_id: str) -> None:
        self.target = target
        self.model = model
        self.tag = run_id.rsplit("-", 1)[-1]
        self.database = f"{target.database}{SHADOW_TAG}{self.tag}"
        self.name = self.database
        self.notes: list[str] = []
        self._post_load: list[tuple[str, str]] = []
        self._tables: list[TableInfo] = []
        self._inserts: dict[str, tuple[list[str], dict[str, Converter], str]] = {}
        self._families: dict[str, dict[str, str]] = {}
        self._grants: list[str] = []
        self.run_id = run_id
        self.conn: pymysql.connections.Connection | None = target.raw(load=True)
        self.load_data = False
        self._loads: BackgroundLoads | None = None
        # Encoded batches of one table not yet handed to the loads: (key, table, columns, assignments,
        # the INSERT fallback's (columns, converters, sql), data chunks, frames).
        self._pending: tuple[Any, ...] = ()
        try:
            self._create_database()
            refusal = local_infile_refusal(self.conn)
            self.load_data = refusal is None
            if refusal is not None:
                self._fall_back(refusal)
        except BaseException:
            self._close()
            raise

    def _fall_back(self, why: str) -> None:
        self.load_data = False
        self.target.notes.append(f"rows written by multi-row INSERT, not LOAD DATA LOCAL INFILE: {why}")

    def _create_database(self) -> None:
        target = self.target
        assert self.conn is not None
        with my_errors("creating the shadow database"), self.conn.cursor() as cursor:
            # Held for as long as this connection lives: a second refresh leaves the shadow alone meanwhile.
            cursor.execute("SELECT GET_LOCK(%s, 0)", (target.run_lock_name(target.database, self.tag),))
            if cursor.fetchone() != (1,):
                raise TargetError(f"another session holds the lock of shadow database {self.database}")
            cursor.execute("SET SESSION wait_timeout = 31536000")
            charset = target.fetch(self.conn, "SELECT default_character_set_name, default_collation_name FROM "
                                              "information_schema.schemata WHERE schema_name = %s", (target.database,))
            collate = f" COLLATE {charset[0][1]}" if charset and charset[0][0] == "utf8mb4" else ""
            cursor.execute(f"CREATE DATABASE {quote_identifier(MYSQL, self.database)} CHARACTER SET utf8mb4{collate}")
            cursor.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0, time_zone = '+00:00', "
                           f"sql_mode = '{LOAD_SQL_MODE}'")

    def _db(self, *, drain: bool = True) -> pymysql.connections.Connection:
        """The loading connection; first (``drain``) every batch handed to the background loads is loaded,
        and the first failure among them raised, so the connection is the caller's alone."""
        if drain:
            self._submit_pending()
        if drain and self._loads is not None:
            self._loads.drain()
        if self.conn is None:
            raise TargetError("the shadow copy is already closed")
        return self.conn

    def sql_name(self, table: TableInfo, conn: Connection) -> str:
        return qualified_name(MYSQL, self.database, table.name)

    def create_tables(self, tables: list[TableInfo]) -> list[str]:
        self._tables = list(tables)
        _, built, notes = build_tables(self.model, tables, "mysql", schema=self.database)
        dialect = mysql_dialect.dialect()
        conn = self._db()
        for table in tables:
            sa_table = built[table.key]
            ddl = str(sa.schema.CreateTable(sa_table, include_foreign_key_constraints=[]).compile(dialect=dialect))
            with my_errors(f"creating table {table.key} in the shadow", table.key), conn.cursor() as cursor:
                cursor.execute(ddl)
            self._families[table.key] = {
                column.name: column_family(str(column.type.compile(dialect=dialect))) for column in sa_table.columns}
            clauses = [_add_index_clause(str(sa.schema.CreateIndex(index).compile(dialect=dialect)))
                       for index in sa_table.indexes]
            clauses += [_add_constraint_clause(str(sa.schema.AddConstraint(fk).compile(dialect=dialect)))
                        for fk in sa_table.foreign_key_constraints]
            if clauses:  # one ALTER per table: InnoDB builds all its indexes in one pass
                name = qualified_name(MYSQL, self.database, table.name)
                self._post_load.append((f"indexes and foreign keys of {table.key}",
                                        f"ALTER TABLE {name} " + ", ".join(clauses)))
        return [*notes, *self.notes]

    def write(self, table: TableInfo, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        origin = str(frame.attrs.get(ORIGIN_ATTR, self.model.dialect))
        cache_key = f"{table.key}\0{origin}\0{','.join(frame.columns)}"
        cached = self._inserts.get(cache_key)
        if cached is None:
            columns = [c for c in table.insertable_columns if c in frame.columns]
            converters = converters_for(table, columns, "mysql", origin)
            names = ", ".join(quote_identifier(MYSQL, c) for c in columns)
            sql = (f"INSERT INTO {qualified_name(MYSQL, self.database, table.name)} ({names}) "
                   f"VALUES ({', '.join('%s' for _ in columns)})")
            cached = (columns, converters, sql)
            self._inserts[cache_key] = cached
        columns, converters, sql = cached
        if self.load_data:
            batch = encode_batch(frame, columns, converters, self._families.get(table.key, {}))
            if batch is not None:
                self._add_pending(table, batch, frame, cached)
                return batch.rows
        rows = convert_rows(frame, columns, converters)
        self._insert(self._db(), table, rows, sql)
        return len(rows)

    def _add_pending(self, table: TableInfo, batch: EncodedBatch, frame: pd.DataFrame,
                     insert: tuple[list[str], dict[str, Converter], str]) -> None:
        """Gather batches of one table into one ``LOAD DATA`` of up to ``LOAD_BYTES`` or ``LOAD_ROWS``."""
        if self._loads is not None:
            self._loads.check()  # a load that failed fails the next write
        key = f"{table.key}\0{batch.columns}\0{batch.assignments}\0{insert[2]}"
        if self._pending and self._pending[0] != key:
            self._submit_pending()
        if not self._pending:
            self._pending = (key, table, batch.columns, batch.assignments, insert, [], [])
        self._pending[5].append(batch.data)
        self._pending[6].append(frame)
        if sum(map(len, self._pending[5])) >= LOAD_BYTES or sum(map(len, self._pending[6])) >= LOAD_ROWS:
            self._submit_pending()

    def _submit_pending(self) -> None:
        if not self._pending:
            return
        _, table, names, assignments, (columns, converters, sql), chunks, frames = self._pending
        self._pending = ()
        batch = EncodedBatch(b"".join(chunks), names, assignments, sum(map(len, frames)))
        conn = self._db(drain=False)

        def load() -> None:
            if not self._load(conn, table, batch):
                for frame in frames:
                    self._insert(conn, table, convert_rows(frame, columns, converters), sql)

        # The server loads these rows while the caller reads and masks the next ones.
        self._loader().submit(load)

    @staticmethod
    def _insert(conn: pymysql.connections.Connection, table: TableInfo, rows: list[tuple[Any, ...]],
                sql: str) -> None:
        with my_errors(f"writing {table.key} into the shadow failed", table.key), conn.cursor() as cursor:
            cursor.executemany(sql, rows)  # PyMySQL sends multi-row INSERTs up to max_allowed_packet

    def flush(self) -> None:
        """Wait until every batch written so far is in the shadow; raise the first load that failed."""
        self._db()

    def when_committed(self, table: TableInfo, then: Callable[[], None]) -> None:
        self._submit_pending()

        def after_its_loads() -> None:  # the loads run one after the other: the table's are all in
            with suppress(Exception):  # not worth failing the copy for: the table is flagged after the load
                then()

        self._loader().submit(after_its_loads)

    def _loader(self) -> BackgroundLoads:
        if self._loads is None:
            self._loads = BackgroundLoads(f"loading {self.database}")
        return self._loads

    def _load(self, conn: pymysql.connections.Connection, table: TableInfo, batch: EncodedBatch) -> bool:
        """Load one encoded batch; False (and INSERT from then on) if the server refuses LOAD DATA LOCAL.

        ``LOAD DATA LOCAL`` turns what would be errors in strict mode into warnings (the server cannot
        stop the client's file half-way), so any warning above a note fails the load as ``INSERT``
        would have failed.
        """
        statement = batch.statement(qualified_name(MYSQL, self.database, table.name))
        with my_errors(f"writing {table.key} into the shadow failed", table.key), conn.cursor() as cursor:
            conn.begin()  # one transaction per batch: a refused batch leaves no row behind
            try:
                with load_file(batch.data) as path:
                    cursor.execute(statement, (path,))
                if cursor.warning_count:
                    cursor.execute("SHOW WARNINGS")
                    for level, code, message in cursor.fetchall():
                        if level != "Note":
                            raise TargetError(f"writing {table.key} into the shadow failed: ({code}) {message}",
                                              table=table.key)
                conn.commit()
            except BaseException as exc:
                with suppress(pymysql.Error):
                    conn.rollback()
                if isinstance(exc, pymysql.OperationalError) and exc.args and exc.args[0] in LOCAL_INFILE_REFUSED:
                    self._fall_back(f"the target server refused it ({_first_line(exc)})")
                    return False
                raise
        return True

    def finish(self) -> None:
        conn = self._db()
        for what, sql in self._post_load:
            with my_errors(f"creating {what} in the shadow"), conn.cursor() as cursor:
                cursor.execute(sql)
        if self._tables:
            with my_errors("analyzing the shadow"), conn.cursor() as cursor:
                cursor.execute("ANALYZE TABLE " + ", ".join(qualified_name(MYSQL, self.database, t.name)
                                                            for t in self._tables))
                cursor.fetchall()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with my_errors("connecting to the shadow for verification"), self.target.engine().connect() as conn:
            yield conn

    def connect(self) -> AbstractContextManager[Connection]:
        return self._connect()

    def reader_url(self) -> str | None:
        # The server, not the live database (which a first refresh creates only at the swap): shadow
        # tables are named with their database, and committed before verification.
        return self.target.server_url.render_as_string(hide_password=False)

    def hook_url(self) -> str | None:
        url = self.target.parsed.set(drivername="mysql", database=self.database)
        return url.render_as_string(hide_password=False)

    @contextmanager
    def _hook_connect(self) -> Iterator[Connection]:
        with self._connect() as conn:
            conn.exec_driver_sql(f"USE {quote_identifier(MYSQL, self.database)}")
            conn.commit()
            yield conn

    def hook_connection(self) -> AbstractContextManager[Connection]:
        return self._hook_connect()

    def grant(self, grants: list[AccessGrant]) -> None:
        # MariaDB keeps privileges by name and RENAME TABLE does not move them, so the grants go
        # on the environment's database — after the swap, so a refresh that fails changes nothing.
        # Here every grantee is checked to exist, so the grants cannot fail once the copy is live.
        with my_errors("checking the roles of access:"), self._db().cursor() as cursor:
            for grant in grants:
                user, _, host = (part.strip("'`\"") for part in grant.role.partition("@"))
                if host:
                    cursor.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
                else:
                    cursor.execute("SELECT 1 FROM mysql.user WHERE User = %s", (user,))
                if cursor.fetchone() is None:
                    raise TargetError(f"access: no user or role '{grant.role}' on the target server")
                grantee = "'" + user.replace("'", "''") + "'" + (f"@'{host.replace(chr(39), chr(39) * 2)}'" if host
                                                                  else "")
                privileges = "SELECT, INSERT, UPDATE, DELETE" if grant.privileges == "write" else "SELECT"
                database = quote_identifier(MYSQL, self.target.database)
                self._grants.append(f"GRANT {privileges} ON {database}.* TO {grantee}")

    def record_refresh(self, row: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        name = qualified_name(MYSQL, self.database, REFRESH_LOG_TABLE)
        columns = ", ".join(f"{c} {'VARCHAR(64)' if c == 'run_id' else 'TEXT'}" for c in REFRESH_LOG_COLUMNS)
        placeholders = ", ".join("%s" for _ in REFRESH_LOG_COLUMNS)
        with my_errors("writing the refresh log"), self._db().cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY (run_id)) "
                           "DEFAULT CHARSET=utf8mb4")
            for entry in [*previous, row]:
                encoded = encode_log_row(entry)
                cursor.execute(f"INSERT IGNORE INTO {name} VALUES ({placeholders})",
                               [encoded.get(c) for c in REFRESH_LOG_COLUMNS])

    def _close(self) -> None:
        self._pending = ()
        if self._loads is not None:
            self._loads.stop()  # batches not loaded yet are dropped with the shadow
            self._loads = None
        if self.conn is not None:
            with suppress(pymysql.Error):
                self.conn.close()
            self.conn = None

    def swap(self) -> None:
        target = self.target
        stale = target.database + STALE_SUFFIX
        with my_errors("swapping the shadow in"), \
                target.swap_connection(lambda: target.swapped_in(self.run_id) is not None) as conn, \
                conn.cursor() as cursor:
            current = target.tables_of(conn, target.database)
            shadow = target.tables_of(conn, self.database)
            previous = target.tables_of(conn, target.previous)
            cursor.execute("SET SESSION foreign_key_checks = 1")
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, stale)}")
            cursor.execute(f"CREATE DATABASE {quote_identifier(MYSQL, stale)}")
            # A previous copy exists only where there is a current copy to keep: the first refresh
            # creates the target database and leaves no empty previous one behind.
            for database in ((target.previous,) if current else ()) + (target.database,):
                name = quote_identifier(MYSQL, database)
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")
            # One statement, atomic as a whole: the older copy out, the current one to the previous
            # copy, the shadow in. Nothing before it changed a copy, so a lost lock changes nothing.
            moves = [(target.previous, stale, t) for t in previous]
            moves += [(target.database, target.previous, t) for t in current]
            moves += [(self.database, target.database, t) for t in shadow]
            target.check_lock(conn)
            cursor.execute(rename_sql(moves))
            cursor.execute(f"DROP DATABASE {quote_identifier(MYSQL, stale)}")
            cursor.execute(f"DROP DATABASE {quote_identifier(MYSQL, self.database)}")
            if not current:  # nothing became the previous copy: an older one went out, leaving no empty one
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, target.previous)}")
        with my_errors("granting access to the new copy"), self._db().cursor() as cursor:
            for statement in self._grants:
                cursor.execute(statement)
        self._close()

    def discard(self) -> None:
        self._close()
        try:
            conn = self.target.raw()
        except TargetError:
            return  # the server is gone; the next refresh cleans up
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, self.database)}")
        except pymysql.Error:
            pass
        finally:
            with suppress(pymysql.Error):
                conn.close()
