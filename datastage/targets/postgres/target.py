"""PostgreSQL targets: the shadow is a new schema, the swap a schema rename in one transaction.

For every copied schema ``S`` (``public`` by default) a refresh builds ``S__ds_shadow_<run>``
in the target database: types, sequences and tables first, rows by ``COPY``, then primary and
unique keys, indexes, foreign keys and triggers (so no trigger fires during the load),
functions and views, sequences and identities set past the loaded maximum, ``ANALYZE``. The
swap renames, in one transaction, ``S__ds_prev`` away, ``S`` to ``S__ds_prev`` and the shadow
to ``S``; the previous copy stays as the rollback point and the older one is dropped.

From a PostgreSQL source the objects are recreated from the source catalog
(:mod:`datastage.source.catalog`); from other sources the tables come from :func:`build_tables`.
The refresh lock is a session advisory lock on a key derived from the target database; its
holding session's ``application_name`` names the run, user and host, so a second refresh can
say who holds it and since when. The swap runs in a transaction on that very session, which
first checks in ``pg_locks`` that the session still holds the lock: if the session ended
(``idle_session_timeout``, a pooler, a network drop), the swap cannot commit and the run stops
with the target unchanged. Every other target session of a run is named ``datastage:<run_id>``;
a refresh drops a shadow only when no session of its run is left on the server.

Sessions that keep using the previous tables (prepared statements, open transactions) keep
seeing them until they reconnect: the swap moves names, not data.

Example (opening a target does not connect yet; what it shows of its URL hides the password):
    >>> target = PostgresTarget("postgresql://app:secret@db/staging", "staging")
    >>> target.database, target.display_url
    ('staging', 'postgresql+psycopg://app:***@db/staging')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy.engine import Connection, Engine

from datastage.errors import LockHeld, TargetError
from datastage.results import RollbackResult
from datastage.settings import AccessGrant, tuning_from_env
from datastage.source.db import make_engine, parse_url
from datastage.source.identifiers import POSTGRESQL, qualified_name, quote_identifier
from datastage.source.schema import SchemaModel, TableInfo
from datastage.source.values import rows_to_frame
from datastage.targets.base import (
    REFRESH_LOG_COLUMNS,
    REFRESH_LOG_TABLE,
    Shadow,
    Target,
    encode_log_row,
    lock_holder_info,
    wait_for_owners,
)
from datastage.targets.convert import ORIGIN_ATTR, Converter, convert_rows, converters_for
from datastage.targets.postgres.builder import IndexBuilder
from datastage.targets.postgres.ddl import CatalogDDL, create_built_tables
from datastage.targets.postgres.errors import first_line, pg_errors
from datastage.targets.postgres.grants import carry_object_grants, carry_schema_settings, grant_schema_access
from datastage.targets.postgres.lock import LOCK_CLASS, holds_lock, lock_holder, lock_key, run_sessions
from datastage.targets.postgres.schemas import (
    MAX_SCHEMA_NAME,
    PREVIOUS_SUFFIX,
    SHADOW_TAG,
    STALE_TAG,
    SWAP_TAG,
    drop_schema,
    restore_previous,
    run_tag,
    swap_schemas,
)
from datastage.targets.postgres.stream import stream_table, streamable

MAINTENANCE_DATABASES = ("postgres", "template1")


class PostgresTarget(Target):
    """A PostgreSQL database as a refresh target (one shadow schema per copied schema)."""

    def __init__(self, url: str, environment: str) -> None:
        super().__init__(url, environment)
        self.parsed = parse_url(url)
        self.database = self.parsed.database or ""
        if not self.database:
            raise TargetError(f"the target URL of {environment} names no database")
        self._engine: Engine | None = None
        self._engine_label = ""
        self._default_schema: str | None = None
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._created = False  # this process created the target database (see :meth:`create_database`)

    # -- connections -------------------------------------------------------------------------
    def engine(self) -> Engine:
        """The target's engine; its sessions are named after the run (``datastage:<run_id>``)."""
        if self._engine is not None and self._engine_label != self.session_label:
            self._engine.dispose()
            self._engine = None
        if self._engine is None:
            self._engine_label = self.session_label
            self._engine = make_engine(self.url, role="target database", application_name=self._engine_label)
        return self._engine

    def raw(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A psycopg connection to the target (the caller closes it)."""
        with pg_errors(f"cannot connect to the target {self.display_url}"):
            proxy = self.engine().raw_connection()
        conn = proxy.driver_connection
        assert isinstance(conn, psycopg.Connection)
        proxy.detach()
        conn.autocommit = autocommit
        return conn

    @property
    def default_schema(self) -> str:
        """The target schema that receives the source's default schema (``current_schema()``)."""
        if self._default_schema is None:
            conn = self.raw(autocommit=True)
            try:
                with pg_errors("reading the target's schema"):
                    row = conn.execute("SELECT current_schema()").fetchone()
                    self._default_schema = (row[0] if row else None) or "public"
            finally:
                conn.close()
        return self._default_schema

    def target_schema(self, source_schema: str | None, model_default: str | None = None) -> str:
        """The live target schema for tables of ``source_schema`` (None: the source's default schema)."""
        if source_schema is None or source_schema == model_default:
            return self.default_schema
        return source_schema

    # -- lock --------------------------------------------------------------------------------
    @property
    def lock_key(self) -> int:
        return lock_key(self.database)

    def lock_session(self) -> psycopg.Connection[Any]:
        """The session that holds the refresh lock (closing it releases the lock)."""
        return self.raw(autocommit=True)

    @contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        self.run_id = run_id
        info = lock_holder_info(run_id, self.environment)
        label = f"ds:{run_id}:{info['pid']}:{info['user']}@{info['host']}"[:63]
        conn = self.lock_session()
        try:
            with pg_errors(f"cannot take the refresh lock on {self.display_url}"):
                conn.execute("SELECT set_config('application_name', %s, false)", (label,))
                got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, self.lock_key)).fetchone()
            if not got or not got[0]:
                raise LockHeld(f"another refresh of {self.environment} is running: {lock_holder(conn, self.lock_key)}")
            with pg_errors(f"cannot keep the refresh lock on {self.display_url}"):
                # The session sits idle for the whole refresh: a server's idle timeouts must not end it.
                conn.execute("SELECT set_config('idle_in_transaction_session_timeout', '0', false)")
                if conn.info.server_version >= 140000:
                    conn.execute("SELECT set_config('idle_session_timeout', '0', false)")
            self._lock_conn = conn
            try:
                yield
            finally:
                self._lock_conn = None
        finally:
            conn.close()  # ends the session, which releases the advisory lock

    @contextmanager
    def swap_transaction(self, committed: Callable[[], bool] | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A transaction on the session that holds the refresh lock, which first checks that the session
        still holds it: the swap commits only while the lock is held, or not at all.

        The lock session ending raises :class:`~datastage.errors.LockLost` (the transaction was not
        committed). If it ends during the commit itself, ``committed()`` tells whether the commit went
        through; if it did, the block counts as done.
        """
        conn = self._lock_conn
        if conn is None:
            raise TargetError(f"swapping {self.environment} needs its refresh lock")
        committing = False
        try:
            with conn.transaction():
                self.check_lock(conn)
                yield conn
                committing = True
        except psycopg.Error as exc:
            if not (conn.closed or conn.broken):
                raise
            why = f"its session ended: {first_line(exc)}"
            if not committing:
                raise self.lock_lost(why) from None
            self.settle(why, committed or (lambda: False))

    def check_lock(self, conn: psycopg.Connection[Any]) -> None:
        """Raise :class:`~datastage.errors.LockLost` unless ``conn`` (the lock session) still holds the lock."""
        try:
            held = holds_lock(conn, self.lock_key)
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                raise self.lock_lost(f"its session ended: {first_line(exc)}") from None
            raise
        if not held:
            raise self.lock_lost("its session no longer holds it")

    # -- housekeeping --------------------------------------------------------------------------
    def cleanup_stale(self) -> list[str]:
        conn = self.raw(autocommit=True)
        removed: list[str] = []

        def sweep() -> list[str]:
            running = {run_tag(run): who for run, who in run_sessions(conn).items()}
            left = []
            for schema in [r[0] for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE strpos(nspname, %s) > 0 OR strpos(nspname, %s) > 0 "
                    "OR strpos(nspname, %s) > 0 ORDER BY nspname", (SHADOW_TAG, STALE_TAG, SWAP_TAG)).fetchall()]:
                owner = running.get(schema.split(SHADOW_TAG, 1)[1]) if SHADOW_TAG in schema else None
                if owner is not None:
                    left.append(f"{owner} is still connected and owns shadow schema {schema}")
                elif drop_schema(conn, schema):
                    removed.append(schema)
            return left

        try:
            with pg_errors("removing stale shadow schemas"):
                wait_for_owners(self.environment, sweep)
        finally:
            conn.close()
        return removed

    def exists(self) -> bool:
        conn = self.raw(autocommit=True)
        try:
            with pg_errors("reading the target"):
                row = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                   "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                                   (self.default_schema,)).fetchone()
            return bool(row and row[0])
        finally:
            conn.close()

    def maintenance(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the server's ``postgres`` (else ``template1``) database, for
        statements about the target database itself (the caller closes it)."""
        failure: psycopg.Error | None = None
        for name in MAINTENANCE_DATABASES:
            url = self.parsed.set(drivername="postgresql", database=name)
            try:
                return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True,
                                       connect_timeout=tuning_from_env().connect_timeout,
                                       application_name=self.session_label)
            except psycopg.Error as exc:
                failure = exc
        raise TargetError(f"cannot connect to the server of {self.display_url}: "
                          f"{first_line(failure) if failure else 'no maintenance database'}")

    def create_database(self) -> bool:
        """Create the target database (from ``template1``, owned by the URL's role) when the server has
        none of its name: the first refresh of a PostgreSQL target needs no database made by hand."""
        try:
            conn = self.maintenance()
        except TargetError:
            return False  # the server's maintenance databases are closed to this role: the target must exist
        try:
            with pg_errors(f"creating the target database {self.database} (create it, or give the role CREATEDB)"):
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                    return False
                try:
                    conn.execute(f"CREATE DATABASE {quote_identifier(POSTGRESQL, self.database)}")
                except psycopg.errors.DuplicateDatabase:
                    return False  # another first refresh created it a moment ago; the lock decides who goes on
        finally:
            conn.close()
        self._created = True
        return True

    def drop_created(self) -> None:
        """Drop the database this run created when its first refresh ends without a copy: no session may
        use it (a refresh that took the lock since keeps it), and it must hold no copy."""
        if not self._created:
            return
        self._created = False
        if self._engine is not None:
            self._engine.dispose()
        with suppress(TargetError, psycopg.Error):
            if self.exists():
                return
            conn = self.maintenance()
            try:
                conn.execute(f"DROP DATABASE IF EXISTS {quote_identifier(POSTGRESQL, self.database)}")
            finally:
                conn.close()

    def copy_schemas(self, source_schemas: tuple[str, ...]) -> tuple[str, ...]:
        """The default schema (which receives the source's default one) and each listed schema the
        target has: a source schema of another name lives under its own name."""
        if not source_schemas:
            return ()
        conn = self.raw(autocommit=True)
        try:
            with pg_errors("reading the target's schemas"):
                existing = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        finally:
            conn.close()
        return (self.default_schema, *[s for s in source_schemas if s in existing and s != self.default_schema])

    def create_shadow(self, model: SchemaModel, run_id: str) -> PostgresShadow:
        return PostgresShadow(self, model, run_id)

    # -- rollback ----------------------------------------------------------------------------
    def rollback(self) -> RollbackResult:
        restored: list[str] = []
        live_before = [str(r.get("run_id")) for r in self.refresh_log()]
        with pg_errors(f"rolling back {self.environment}"), \
                self.swap_transaction(lambda: [str(r.get("run_id")) for r in self.refresh_log()] != live_before) \
                as conn:
            restored = restore_previous(conn, self.environment, self.database)
        names = ", ".join(restored)
        return RollbackResult(self.environment, f"schema {names} of {self.database}",
                              ", ".join(s + PREVIOUS_SUFFIX for s in restored))

    # -- reading the current copy ----------------------------------------------------------------
    def current_rows(self, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
        schema = self.target_schema(table.schema)
        conn = self.raw()
        try:
            with pg_errors(f"reading the current rows of {table.key}", table.key):
                present = [r[0] for r in conn.execute(
                    "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
                    "AND NOT a.attisdropped ORDER BY a.attnum",
                    (qualified_name(POSTGRESQL, schema, table.name),)).fetchall()]
                columns = self.keep_columns(table, present)
                if not columns:
                    return
                select = (f"SELECT {', '.join(quote_identifier(POSTGRESQL, c) for c in columns)} "
                          f"FROM {qualified_name(POSTGRESQL, schema, table.name)}")
                with conn.cursor(name="datastage_keep") as cursor:
                    cursor.itersize = batch_size
                    cursor.execute(select)
                    while rows := cursor.fetchmany(batch_size):
                        frame = rows_to_frame(rows, columns)
                        frame.attrs[ORIGIN_ATTR] = "postgresql"
                        yield frame
        finally:
            conn.close()

    def refresh_log(self) -> list[dict[str, Any]]:
        conn = self.raw(autocommit=True)
        try:
            with pg_errors("reading the refresh log"):
                name = qualified_name(POSTGRESQL, self.default_schema, REFRESH_LOG_TABLE)
                found = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
                if not found or found[0] is None:
                    return []
                cursor = conn.execute(f"SELECT * FROM {name} ORDER BY started_at")
                names = [d.name for d in cursor.description or []]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            conn.close()


class PostgresShadow(Shadow):
    """New schemas in the target database, loaded in one transaction and committed by :meth:`finish`.

    ``in_place``: the target is itself a new, empty database (``shadow: database``), so the
    schemas get their live names and nothing is carried over from a previous copy beside them.
    """

    def __init__(self, target: PostgresTarget, model: SchemaModel, run_id: str, in_place: bool = False) -> None:
        self.target = target
        self.in_place = in_place
        self.model = model
        self.run_id = run_id
        sources = [None, *sorted({t.schema for t in model.tables.values() if t.schema is not None})]
        if model.catalog is not None:
            sources = [None, *[s for s in model.catalog.schemas if s != model.default_schema]]
        self.schema_map: dict[str | None, str] = {}
        self.shadow_of: dict[str, str] = {}
        tag = run_tag(run_id)
        for source in sources:
            live = target.target_schema(source, model.default_schema)
            if len(live.encode()) > MAX_SCHEMA_NAME:
                raise TargetError(f"target schema name '{live}' is longer than {MAX_SCHEMA_NAME} bytes")
            self.shadow_of[live] = live if in_place else f"{live}{SHADOW_TAG}{tag}"
            self.schema_map[source] = self.shadow_of[live]
            if source == model.default_schema:
                self.schema_map[None] = self.shadow_of[live]
        self.name = ", ".join(self.shadow_of.values())
        self.conn: psycopg.Connection[Any] | None = target.raw()
        self.notes: list[str] = []
        self.post_load: list[tuple[str | None, str, str, bool]] = []  # (table or None, what, sql, required)
        self._builder: IndexBuilder | None = None
        self._current: str | None = None
        self._submitted: set[str] = set()
        self._search_path = ""
        self.sequence_resets: list[str] = []
        self._converters: dict[str, tuple[list[str], dict[str, Converter], str]] = {}
        self.stored: dict[str, dict[str, str]] = {}
        self._tables: list[TableInfo] = []
        try:
            self._create_schemas()
        except BaseException:
            self._close()  # the transaction, and with it every schema it created, is rolled back
            raise

    def _create_schemas(self) -> None:
        assert self.conn is not None
        with pg_errors("creating the shadow schemas"):
            self.conn.execute("SET synchronous_commit = off")
            self.conn.execute("SET check_function_bodies = off")
            for live, shadow in self.shadow_of.items():
                if self.in_place:
                    self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(POSTGRESQL, shadow)}")
                    continue
                self.conn.execute(f"CREATE SCHEMA {quote_identifier(POSTGRESQL, shadow)}")
                self.notes.extend(carry_schema_settings(self.conn, live, shadow))
            # Extensions in a live schema stay visible (and move with the copy at the swap).
            extension_schemas = [r[0] for r in self.conn.execute(
                "SELECT DISTINCT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE n.nspname = ANY(%s) ORDER BY 1", (list(self.shadow_of),)).fetchall()]
            path = ", ".join(quote_identifier(POSTGRESQL, s) for s in [*self.shadow_of.values(), *extension_schemas])
            self._search_path = f"SET search_path = {path}"
            self.conn.execute(self._search_path)

    def db(self) -> psycopg.Connection[Any]:
        if self.conn is None:
            raise TargetError("the shadow copy is already closed")
        return self.conn

    def shadow_schema(self, source_schema: str | None) -> str:
        return self.schema_map.get(source_schema, self.schema_map[None])

    def sql_name(self, table: TableInfo, conn: Connection) -> str:
        return self._shadow_name(table)

    def _shadow_name(self, table: TableInfo) -> str:
        return qualified_name(POSTGRESQL, self.shadow_schema(table.schema), table.name)

    # -- tables ----------------------------------------------------------------------------------
    def create_tables(self, tables: list[TableInfo]) -> list[str]:
        self._tables = list(tables)
        if self.model.catalog is not None:
            with pg_errors("creating the shadow tables"):
                CatalogDDL(self, self.model.catalog, tables).create()
            self._start_builder()
            return self.notes
        notes = create_built_tables(self, self.model, tables)
        self._start_builder()
        return notes

    # -- table by table: rows in one transaction each, keys and indexes built alongside ---------------
    def _start_builder(self) -> None:
        """Commit the empty tables and start the worker that builds keys and indexes of loaded tables."""
        with pg_errors("creating the shadow tables"):
            self.db().commit()
        self._builder = IndexBuilder(lambda: self.target.raw(), [self._search_path, "SET synchronous_commit = off"])

    def _start_table(self, table: TableInfo) -> None:
        if self._current == table.key:
            return
        if self._current is not None:
            self._table_done(self._current)
        self._current = table.key
        if not table.partitions:  # lets COPY ... FREEZE load it (the table is "truncated in this transaction")
            with pg_errors(f"preparing {table.key} in the shadow", table.key):
                self.db().execute(f"TRUNCATE {self._shadow_name(table)}")

    def _table_done(self, key: str) -> None:
        with pg_errors(f"writing {key} into the shadow failed", key):
            self.db().commit()
        self._current = None
        self._submit(key)

    def _submit(self, key: str) -> None:
        if key in self._submitted or self._builder is None:
            return
        self._submitted.add(key)
        statements = [(what, sql) for owner, what, sql, _ in self.post_load if owner == key]
        table = next((t for t in self._tables if t.key == key), None)
        if table is not None:
            statements.append((f"statistics of {key}",
                               f"ANALYZE {self._shadow_name(table)}"))
        self._builder.submit(key, statements)

    # -- rows ------------------------------------------------------------------------------------
    def write(self, table: TableInfo, frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        origin = str(frame.attrs.get(ORIGIN_ATTR, self.model.dialect))
        cache_key = f"{table.key}\0{origin}\0{','.join(frame.columns)}"
        cached = self._converters.get(cache_key)
        if cached is None:
            columns = [c for c in table.insertable_columns if c in frame.columns]
            converters = converters_for(table, columns, "postgresql", origin, self.stored.get(table.key))
            names = ", ".join(quote_identifier(POSTGRESQL, c) for c in columns)
            copy_sql = f"COPY {self._shadow_name(table)} ({names}) FROM STDIN{self.copy_options(table)}"
            cached = (columns, converters, copy_sql)
            self._converters[cache_key] = cached
        columns, converters, copy_sql = cached
        rows = convert_rows(frame, columns, converters)
        self._start_table(table)
        with pg_errors(f"writing {table.key} into the shadow failed", table.key):
            cursor = self.db().cursor()
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return len(rows)

    accepts_chunks = True

    def chunk_table(self, table: TableInfo) -> tuple[str, dict[str, str]]:
        if self._current is not None:
            self._table_done(self._current)  # no lock of this session on a table others write
        return self._shadow_name(table), dict(self.stored.get(table.key, {}))

    def chunks_written(self, table: TableInfo) -> None:
        self._submit(table.key)

    def copy_options(self, table: TableInfo) -> str:
        """``WITH (FREEZE)`` for tables this transaction created: rows land frozen, so the scans that
        verify them do not rewrite every page to set hint bits (partitioned tables cannot)."""
        return "" if table.partitions else " WITH (FREEZE)"

    def stream_table(self, source: Connection, table: TableInfo, plan: Any, engine: Any, batch_size: int,
                     progress: Any, observer: Any = None) -> tuple[int, Any] | None:
        decoded = streamable(self, table, plan, engine, observer)
        raw = source.connection.driver_connection
        if decoded is None or not isinstance(raw, psycopg.Connection) or \
                {raw.info.encoding, self.db().info.encoding} != {"utf-8"}:
            return None  # COPY text passes through as bytes: only between UTF-8 sessions
        self._start_table(table)
        streamed = stream_table(source, self, table, decoded, engine, batch_size, progress, observer)
        self._table_done(table.key)
        return streamed.rows, streamed.stats

    def finish(self) -> None:
        conn = self.db()
        if self._current is not None:
            self._table_done(self._current)
        for table in self._tables:
            self._submit(table.key)  # tables that received no rows
        if self._builder is not None:
            builder, self._builder = self._builder, None
            builder.close()
        for owner, what, sql, required in self.post_load:
            if owner is not None:
                continue
            if required:
                with pg_errors(f"creating {what} in the shadow"):
                    conn.execute(sql)
            else:
                self._best_effort(what, sql)
        with pg_errors("setting sequences past the loaded rows"):
            for sql in self.sequence_resets:
                conn.execute(sql)
            for live, shadow in self.shadow_of.items():
                if not self.in_place:
                    self.notes.extend(carry_object_grants(conn, live, shadow))
            conn.commit()

    def _best_effort(self, what: str, sql: str) -> bool:
        conn = self.db()
        conn.execute("SAVEPOINT datastage_object")
        try:
            conn.execute(sql)
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT datastage_object")
            self.notes.append(f"{what} not copied: {first_line(exc)}")
            return False
        conn.execute("RELEASE SAVEPOINT datastage_object")
        return True

    # -- verification, log, swap -----------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with pg_errors("connecting to the shadow for verification"), self.target.engine().connect() as conn:
            yield conn

    def connect(self) -> AbstractContextManager[Connection]:
        return self._connect()

    def reader_url(self) -> str | None:
        return self.target.url  # shadow tables are named schema-qualified, and committed before verification

    def when_committed(self, table: TableInfo, then: Callable[[], None]) -> None:
        if self._current == table.key:  # written batch by batch: commit it now, not when the next table starts
            self._table_done(table.key)
        if table.key in self._submitted:  # committed, then handed to the index builder
            then()

    def _search_path_value(self) -> str:
        """The load's own search path: the shadow schemas, then the schemas holding extensions."""
        return self._search_path.removeprefix("SET search_path = ")

    def hook_url(self) -> str | None:
        url = self.target.parsed.set(drivername="postgresql")
        path = self._search_path_value().replace(", ", ",")
        existing = url.query.get("options")
        options = (f"{existing} " if isinstance(existing, str) and existing else "") + f"-csearch_path={path}"
        return url.update_query_dict({"options": options}).render_as_string(hide_password=False)

    @contextmanager
    def _hook_connect(self) -> Iterator[Connection]:
        with self._connect() as conn:
            conn.exec_driver_sql(f"SET search_path = {self._search_path_value()}")
            conn.commit()
            yield conn

    def hook_connection(self) -> AbstractContextManager[Connection]:
        return self._hook_connect()

    def grant(self, grants: list[AccessGrant]) -> None:
        conn = self.target.raw()
        try:
            for grant in grants:
                with pg_errors(f"granting {grant.privileges} access to {grant.role}"):
                    grant_schema_access(conn, grant, list(self.shadow_of.values()))
            conn.commit()
        finally:
            conn.close()

    def record_refresh(self, row: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        name = qualified_name(POSTGRESQL, self.shadow_schema(None), REFRESH_LOG_TABLE)
        columns = ", ".join(f"{c} text" for c in REFRESH_LOG_COLUMNS)
        placeholders = ", ".join("%s" for _ in REFRESH_LOG_COLUMNS)
        conn = self.target.raw()
        try:
            with pg_errors("writing the refresh log"):
                conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY (run_id))")
                for entry in [*previous, row]:
                    encoded = encode_log_row(entry)
                    conn.execute(f"INSERT INTO {name} VALUES ({placeholders}) ON CONFLICT (run_id) DO NOTHING",
                                 [encoded.get(c) for c in REFRESH_LOG_COLUMNS])
                conn.commit()
        finally:
            conn.close()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def swap(self) -> None:
        self._close()
        target = self.target
        stale: list[str] = []
        with pg_errors("swapping the shadow in"), \
                target.swap_transaction(lambda: target.swapped_in(self.run_id) is not None) as conn:
            stale = swap_schemas(conn, self.shadow_of, run_tag(self.run_id))
        lock_conn = target._lock_conn
        if lock_conn is not None:
            with suppress(psycopg.Error):
                for schema in stale:
                    drop_schema(lock_conn, schema)  # a leftover is removed by the next refresh's cleanup

    def _abandon(self) -> None:
        """Stop the index builder and end the load's transaction (nothing of it is committed after this)."""
        if self._builder is not None:
            builder, self._builder = self._builder, None
            builder.cancel()
        if self.conn is not None:
            with suppress(psycopg.Error):
                self.conn.rollback()
        self._close()

    def discard(self) -> None:
        self._abandon()
        try:
            conn = self.target.raw(autocommit=True)
        except TargetError:
            return  # the target is gone; the next refresh cleans up
        try:
            for shadow in self.shadow_of.values():
                drop_schema(conn, shadow)
        except psycopg.Error:
            pass
        finally:
            conn.close()

