"""PostgreSQL targets with ``shadow: database``: the shadow is a new database, the swap renames databases.

A refresh creates ``DB__ds_shadow_<run>`` (from ``template0``, with the target's encoding and
locale, its extensions, owner, database privileges and settings), loads and verifies it like
a schema shadow (:class:`~datastage.targets.postgres.target.PostgresShadow`, with the schemas under
their live names), then swaps in one transaction: ``DB__ds_prev`` away, ``DB`` to
``DB__ds_prev``, the shadow to ``DB``. A database cannot be renamed while sessions use it, so
the swap first stops new connections to ``DB`` and ends the open ones (applications
reconnect to the new copy); the refresh lock and every administrative statement use the
server's ``postgres`` database. The first refresh creates ``DB`` if it does not exist.

The role in the URL needs ``CREATEDB`` and must own ``DB`` (or be a superuser). Object-level
grants of the previous copy are not carried across databases: grant with ``access:``.

Example (``shadow: database`` picks this writer; opening it does not connect yet):
    >>> from datastage.targets.registry import open_target
    >>> target = open_target("postgresql+psycopg://app@db/staging", "staging", "database")
    >>> type(target).__name__, target.database
    ('PostgresDatabaseTarget', 'staging')
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from datastage.errors import ConfigError, TargetError
from datastage.results import RollbackResult
from datastage.source.schema import SchemaModel, TableInfo
from datastage.targets.base import wait_for_owners
from datastage.targets.postgres.errors import first_line, pg_errors
from datastage.targets.postgres.lock import run_sessions
from datastage.targets.postgres.schemas import (
    MAX_SCHEMA_NAME,
    PREVIOUS_SUFFIX,
    SHADOW_TAG,
    STALE_TAG,
    SWAP_TAG,
    run_tag,
)
from datastage.targets.postgres.target import PostgresShadow, PostgresTarget

ADMIN_DATABASE = "postgres"
EVICT_SECONDS = 30.0  # how long the swap waits for the sessions it ended to go away


LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"})
LIST_ITEM = re.compile(r'\s*("(?:[^"]|"")*"|[^,]*?)\s*(?:,|$)')


def _name(value: str) -> sql.Identifier:
    # psycopg composes (and escapes, in the connection's encoding) its own Identifier objects
    return sql.Identifier(value)


def short_tag(run_id: str) -> str:
    """The run id's random part: database names keep room for the suffixes within 63 bytes.

    >>> short_tag("20261127-122955-31930b")
    '31930b'
    """
    return run_tag(run_id).rsplit("_", 1)[-1][:8]


def _locale_columns(conn: psycopg.Connection[Any]) -> str:
    """(provider, locale, ICU rules) of ``pg_database`` as this server's catalog names them."""
    version = int(conn.info.server_version)
    if version >= 170000:
        return "datlocprovider, datlocale, daticurules"
    if version >= 160000:
        return "datlocprovider, daticulocale, daticurules"
    if version >= 150000:
        return "datlocprovider, daticulocale, NULL"
    return "'c', NULL, NULL"


def _locale_options(provider: str | None, locale: str | None, rules: str | None) -> sql.Composable:
    """``CREATE DATABASE`` options for an ICU or builtin locale (the libc one is LC_COLLATE/LC_CTYPE).

    >>> _locale_options("i", "de-DE", None).as_string(None)
    " LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'"
    """
    if provider == "i" and locale:
        options = sql.SQL(" LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(locale))
        return options + sql.SQL(" ICU_RULES {}").format(sql.Literal(rules)) if rules else options
    if provider == "b" and locale:
        return sql.SQL(" LOCALE_PROVIDER builtin BUILTIN_LOCALE {}").format(sql.Literal(locale))
    return sql.SQL("")


def setting_value(key: str, value: str) -> sql.Composable:
    """A stored ``key=value`` database setting as SQL: list settings item by item.

    >>> from psycopg import sql
    >>> setting_value("search_path", '"$user", app').as_string(None)
    "'$user', 'app'"
    """
    if key not in LIST_SETTINGS:
        return sql.Literal(value)
    items = [m.group(1) for m in LIST_ITEM.finditer(value) if m.group(1)]
    items = [i[1:-1].replace('""', '"') if i.startswith('"') else i for i in items]
    return sql.SQL(", ").join(sql.Literal(i) for i in items)


class PostgresDatabaseTarget(PostgresTarget):
    """A PostgreSQL database whose shadow is a whole new database (``shadow: database``)."""

    def __init__(self, url: str, environment: str) -> None:
        super().__init__(url, environment)
        key = f"environments.{environment}.shadow"
        if self.database == ADMIN_DATABASE:
            raise ConfigError(f"shadow: database cannot swap the '{ADMIN_DATABASE}' database, which datastage "
                              "connects to for the swap; give the environment a database of its own", key=key)
        if len(self.database.encode()) > MAX_SCHEMA_NAME:
            raise ConfigError(f"database name '{self.database}' is longer than {MAX_SCHEMA_NAME} bytes, "
                              "which leaves no room for the shadow's suffix", key=key)
        self.previous = self.database + PREVIOUS_SUFFIX

    # -- connections -------------------------------------------------------------------------
    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the server's ``postgres`` database (the caller closes it)."""
        url = self.parsed.set(drivername="postgresql", database=ADMIN_DATABASE)
        with pg_errors(f"cannot connect to the server of {self.display_url}"):
            return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True,
                                   connect_timeout=10, application_name=self.session_label)

    def _databases(self, conn: psycopg.Connection[Any]) -> set[str]:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}

    def _live(self) -> bool:
        conn = self.admin()
        try:
            with pg_errors("reading the target's databases"):
                return self.database in self._databases(conn)
        finally:
            conn.close()

    def create_database(self) -> bool:
        """Nothing before the lock: the first refresh's swap renames its shadow database to the target's name."""
        return False

    def lock_session(self) -> psycopg.Connection[Any]:
        """The lock is held in the admin database: the target's own sessions are ended at the swap."""
        return self.admin()

    # -- housekeeping --------------------------------------------------------------------------
    def cleanup_stale(self) -> list[str]:
        conn = self.admin()
        removed: list[str] = []

        def sweep() -> list[str]:
            running = {short_tag(run): who for run, who in run_sessions(conn).items()}
            left = []
            existing = self._databases(conn)
            for name in sorted(existing):
                tail = name[len(self.database):]
                if not (name.startswith(self.database) and tail.startswith((SHADOW_TAG, STALE_TAG, SWAP_TAG))):
                    continue
                owner = running.get(tail[len(SHADOW_TAG):]) if tail.startswith(SHADOW_TAG) else None
                if owner is not None:
                    left.append(f"{owner} is still connected and owns shadow database {name}")
                    continue
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_name(name)))
                removed.append(name)
            return left

        try:
            with pg_errors("removing stale shadow databases"):
                wait_for_owners(self.environment, sweep)
                # A refresh killed during its swap may have left connections switched off.
                existing = self._databases(conn)
                self._allow(conn, [n for n in (self.database, self.previous) if n in existing])
        finally:
            conn.close()
        return removed

    def exists(self) -> bool:
        return self._live() and super().exists()

    def current_rows(self, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
        if not self._live():
            self.notes.append(f"keep table {table.key}: no current copy yet; created empty")
            return iter(())
        return super().current_rows(table, batch_size)

    def refresh_log(self) -> list[dict[str, Any]]:
        return super().refresh_log() if self._live() else []

    # -- shadow ------------------------------------------------------------------------------
    def create_shadow(self, model: SchemaModel, run_id: str) -> PostgresShadow:
        name = f"{self.database}{SHADOW_TAG}{short_tag(run_id)}"
        conn = self.admin()
        try:
            with pg_errors(f"creating the shadow database {name}"):
                live = self.database in self._databases(conn)
                try:
                    notes = self._create_database(conn, name, live)
                except BaseException:
                    self._drop(name)
                    raise
        finally:
            conn.close()
        inner = PostgresTarget(self.parsed.set(database=name).render_as_string(hide_password=False), self.environment)
        inner.run_id = run_id  # the shadow's sessions are named after the run, as the target's are
        try:
            inner._default_schema = self.default_schema if live else "public"
            if live:
                self._carry_extensions(inner)
            shadow = PostgresDatabaseShadow(self, inner, model, run_id, name)
        except BaseException:
            self._drop(name)
            raise
        self.notes.extend(notes)  # reported with the load's notes
        return shadow

    def _create_database(self, conn: psycopg.Connection[Any], name: str, live: bool) -> list[str]:
        """``name`` from ``template0`` with the target's encoding, locale, owner, privileges and settings;
        returns notes on what could not be carried."""
        notes: list[str] = []
        if not live:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(_name(name)))
            return notes
        row = conn.execute(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba), "
            f"shobj_description(oid, 'pg_database'), datacl IS NOT NULL, {_locale_columns(conn)} "
            "FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
        assert row is not None
        encoding, collate, ctype, owner, comment, has_acl, provider, locale, rules = row
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}{}").format(
            _name(name), sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype),
            _locale_options(provider, locale, rules)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(_name(name), _name(owner)))
        if comment is not None:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(_name(name), sql.Literal(comment)))
        if has_acl:  # privileges were changed from the defaults: the copy gets exactly the same ones
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(_name(name)))
            for privilege, grantee, grantable in conn.execute(
                    """SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                              a.is_grantable
                       FROM pg_database d, aclexplode(d.datacl) a
                       WHERE d.datname = %s AND a.grantee <> d.datdba""", (self.database,)).fetchall():
                conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(privilege), _name(name), sql.SQL("PUBLIC") if grantee is None else _name(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else "")))
        for role, settings in conn.execute(
                "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, s.setconfig "
                "FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s",
                (self.database,)).fetchall():
            for setting in settings or []:
                key, _, value = str(setting).partition("=")
                scope = sql.SQL("DATABASE {}").format(_name(name)) if role is None else \
                    sql.SQL("ROLE {} IN DATABASE {}").format(_name(role), _name(name))
                try:
                    conn.execute(sql.SQL("ALTER {} SET {} = {}").format(scope, _name(key), setting_value(key, value)))
                except psycopg.Error as exc:  # e.g. a role's setting, which only a role admin may change
                    notes.append(f"setting {key}{f' of role {role}' if role else ''} not carried to the new "
                                 f"database: {first_line(exc)}")
        return notes

    def _carry_extensions(self, inner: PostgresTarget) -> None:
        """The target's extensions, in schemas of the same names, in the new database."""
        source = self.raw(autocommit=True)
        try:
            with pg_errors("reading the target's extensions"):
                extensions = source.execute(
                    "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                    "WHERE e.extname <> 'plpgsql' ORDER BY e.oid").fetchall()
        finally:
            source.close()
        if not extensions:
            return
        conn = inner.raw(autocommit=True)
        try:
            for extension, schema in extensions:
                with pg_errors(f"creating extension {extension} in the shadow database"):
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_name(schema)))
                    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {} CASCADE").format(
                        _name(extension), _name(schema)))
        finally:
            conn.close()

    def _drop(self, name: str) -> None:
        with suppress(TargetError, psycopg.Error):
            conn = self.admin()
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_name(name)))
            finally:
                conn.close()

    # -- swap and rollback ---------------------------------------------------------------------
    def _evict(self, conn: psycopg.Connection[Any], names: list[str]) -> None:
        """Stop new sessions to ``names`` and end the open ones (a database in use cannot be renamed)."""
        for name in names:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(_name(name)))
        deadline = time.monotonic() + EVICT_SECONDS
        while True:
            row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", (names,)).fetchone()
            if not row or not row[0]:
                return
            if time.monotonic() > deadline:
                raise TargetError(f"sessions on {', '.join(names)} did not end within {EVICT_SECONDS:.0f} s")
            time.sleep(0.1)

    def _allow(self, conn: psycopg.Connection[Any], names: list[str]) -> None:
        """Switch connections back on (on a new admin session if ``conn`` broke); the live copy must open."""
        for name in names:
            statement = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(_name(name))
            try:
                conn.execute(statement)
            except psycopg.Error:
                retry = self.admin()
                try:
                    if name in self._databases(retry):
                        retry.execute(statement)
                except psycopg.Error as exc:
                    if name == self.database:
                        raise TargetError(f"connections to {name} are switched off and could not be switched "
                                          f"back on ({first_line(exc)}): run ALTER DATABASE {name} WITH "
                                          "ALLOW_CONNECTIONS true") from None
                finally:
                    retry.close()

    def _rename(self, conn: psycopg.Connection[Any], moves: list[tuple[str, str]], checked: bool = False) -> None:
        """Rename databases in one transaction (all or none); ``checked``: the transaction first checks that
        ``conn`` still holds the refresh lock."""
        with conn.transaction():
            if checked:
                self.check_lock(conn)
            for old, new in moves:
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(_name(old), _name(new)))

    def _lock_session(self) -> psycopg.Connection[Any]:
        if self._lock_conn is None:
            raise TargetError(f"swapping {self.environment} needs its refresh lock")
        return self._lock_conn

    def _swap_databases(self, moves: list[tuple[str, str]], busy: list[str], committed: Callable[[], bool]) -> None:
        """On the lock session, once it is known to hold the lock: end the sessions of ``busy`` and rename
        in one transaction (which checks the lock again); connections are switched back on after."""
        conn = self._lock_session()
        self.check_lock(conn)  # right before anything changes: sessions are ended only while the lock is held
        try:
            self._evict(conn, busy)
            self._rename(conn, moves, checked=True)
        except psycopg.Error as exc:
            if not (conn.closed or conn.broken):
                raise
            self.settle(f"its session ended: {first_line(exc)}", committed)
        finally:
            self._allow(conn, [self.database, self.previous])

    def swap_in(self, shadow: str, run_id: str) -> None:
        """Make ``shadow`` the target database; the current one becomes the previous copy."""
        conn = self._lock_session()
        stale = f"{self.database}{STALE_TAG}{short_tag(run_id)}"
        self.check_lock(conn)
        with pg_errors("swapping the shadow database in"):
            existing = self._databases(conn)
            busy = [n for n in (self.database, self.previous, shadow) if n in existing]
            moves = []
            if self.previous in existing:
                moves.append((self.previous, stale))
            if self.database in existing:
                moves.append((self.database, self.previous))
            moves.append((shadow, self.database))
            self._swap_databases(moves, busy, lambda: self.swapped_in(run_id) is not None)
        with suppress(psycopg.Error):  # a leftover is removed by the next refresh's cleanup
            if self.previous in existing:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_name(stale)))

    def rollback(self) -> RollbackResult:
        conn = self._lock_session()
        live_before = [str(r.get("run_id")) for r in self.refresh_log()]
        self.check_lock(conn)
        try:
            with pg_errors(f"rolling back {self.environment}"):
                existing = self._databases(conn)
                if self.previous not in existing:
                    raise TargetError(f"no previous copy of {self.environment} to roll back to "
                                      f"(no database {self.previous})")
                parking = self.database + SWAP_TAG + "rollback"
                moves = [(self.previous, self.database)]
                if self.database in existing:
                    moves = [(self.database, parking), *moves, (parking, self.previous)]
                busy = [n for n in (self.database, self.previous) if n in existing]
                self._swap_databases(moves, busy,
                                     lambda: [str(r.get("run_id")) for r in self.refresh_log()] != live_before)
        except psycopg.Error as exc:
            raise TargetError(f"rolling back {self.environment}: {first_line(exc)}") from None
        return RollbackResult(self.environment, f"database {self.database}", self.previous)


class PostgresDatabaseShadow(PostgresShadow):
    """A schema shadow built in place inside a new database; the swap renames the databases."""

    def __init__(self, owner: PostgresDatabaseTarget, inner: PostgresTarget, model: SchemaModel, run_id: str,
                 database: str) -> None:
        self.owner = owner
        self.database = database
        super().__init__(inner, model, run_id, in_place=True)
        self.name = f"database {database}"

    def swap(self) -> None:
        self._close()
        self.target.engine().dispose()
        self.owner.swap_in(self.database, self.run_id)

    def discard(self) -> None:
        self._abandon()
        with suppress(TargetError):
            self.target.engine().dispose()
        self.owner._drop(self.database)
