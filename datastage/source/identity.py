"""Which database a URL really reaches, by what the server says — and the guard built on it.

A target is the source when both URLs reach the same database, however they are spelled:
another host name or address for the same server, a Unix socket, ``hostaddr=``, a
``dbname=``/``database=`` query parameter, a libpq service file, ``PGHOST``/``PGDATABASE``,
a MySQL option file, a hard link, a symlink or a ``file:`` URI. So sameness is decided after
connecting, from the identity each server reports:

* PostgreSQL: ``pg_control_system().system_identifier``, ``current_setting('port')`` and,
  where the role may read it, ``data_directory``; the database is ``current_database()``.
* MySQL: ``@@server_uuid``; MariaDB, which has none: ``@@hostname``, ``@@port``,
  ``@@datadir`` and ``@@server_id``; the database is ``DATABASE()`` (and the source's
  ``schemas:``), compared without case when ``lower_case_table_names`` says so.
* SQLite: the device and inode of the file (symlinks followed); never opened, so nothing is
  created by looking.

A database that does not exist yet is identified by its server plus the name the driver
would use, so a target the refresh would create is compared as well. A target also owns the
databases and files named after it (``DB__ds_prev``, ``DB__ds_shadow_<run>``;
``FILE.previous``, ``FILE.lock``): they must not be the source either. :func:`check_target_safety`
is the whole guard a refresh (or rollback) passes before it writes: not protected, not the
source, no ``access:`` on SQLite.

Example (a symlink to the source file reaches the source):
    >>> import sqlite3, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> sqlite3.connect(f"{folder}/prod.db").close()
    >>> os.symlink(f"{folder}/prod.db", f"{folder}/staging.db")
    >>> server_identity(f"sqlite:///{folder}/staging.db") == server_identity(f"sqlite:///{folder}/prod.db")
    True
    >>> check_not_source(f"sqlite:///{folder}/prod.db", [], f"sqlite:///{folder}/staging.db",
    ...                  what="the target of 'staging'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    datastage.errors.SafetyError: the target of 'staging' (...) is the source database; refusing to write to it
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy.engine import URL

from datastage.errors import ConfigError, DatastageError, SafetyError, SourceError, TargetError
from datastage.settings import Environment, Project
from datastage.source.db import connect_args_for, dialect_of, parse_url, redact_url, same_database, sqlite_path

OWNED_TAG = "__ds_"  # targets name their shadow, previous and parked copies NAME__ds_...
_PRIMARY = {"postgresql": ("system_identifier",), "mysql": ("server_uuid", "hostname"), "sqlite": ("device",)}
_PG_BAD_DATABASE = "3D000"
_MYSQL_BAD_DATABASE = 1049


class IdentityError(DatastageError):
    """The server behind a URL could not be asked who it is."""


@dataclass(frozen=True)
class Identity:
    """What answers at a URL: a server (cluster, instance, file system) and one database there.

    ``server`` holds only the facts the server let us read. ``database`` is the name the
    connection uses (None when the URL names none); for SQLite it is the file's inode.
    """

    dialect: str
    server: tuple[tuple[str, str], ...]
    database: str | None
    fold_case: bool = False
    exists: bool = True

    def facts(self) -> dict[str, str]:
        return dict(self.server)

    def decidable_with(self, other: Identity) -> bool:
        """Whether both sides show a fact that tells servers apart (a system identifier, a host name)."""
        common = self.facts().keys() & other.facts().keys()
        return any(name in common for name in _PRIMARY.get(self.dialect, ()))

    def same_server(self, other: Identity) -> bool:
        """Same server: every fact both sides could read agrees (at least one that tells servers apart)."""
        if self.dialect != other.dialect or not self.decidable_with(other):
            return False
        mine, theirs = self.facts(), other.facts()
        return all(mine[name] == theirs[name] for name in mine.keys() & theirs.keys())

    def name_key(self, name: str) -> str:
        return name.casefold() if self.fold_case else name

    def same_database(self, other: Identity) -> bool:
        """Same server and same database."""
        if self.database is None or other.database is None or not self.same_server(other):
            return False
        fold = self.fold_case or other.fold_case
        a, b = self.database, other.database
        return (a.casefold() == b.casefold()) if fold else a == b

    def describe(self) -> str:
        """The server in words, for messages."""
        facts = self.facts()
        if self.dialect == "sqlite":
            return f"file inode {self.database} on device {facts.get('device')}"
        if self.dialect == "postgresql":
            text = f"PostgreSQL cluster {facts.get('system_identifier', '?')} (port {facts.get('port', '?')}"
            return text + (f", {facts['data_directory']})" if "data_directory" in facts else ")")
        if "server_uuid" in facts:
            return f"MySQL server {facts['server_uuid']} (port {facts.get('port', '?')})"
        return f"MariaDB server {facts.get('hostname', '?')}:{facts.get('port', '?')} ({facts.get('datadir', '?')})"


# -- identifying one URL ---------------------------------------------------------------------------

def server_identity(url: str | URL, *, role: str = "database") -> Identity:
    """The identity of the database ``url`` reaches (connecting; SQLite files are only stat'ed).

    A database that does not exist (yet) is its server plus the name the driver would ask
    for, with ``exists`` False. Raises :class:`IdentityError` (one line) when the server
    cannot be reached at all.
    """
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        files = sqlite_identities(parsed)
        if files:
            return files[0]
        path = sqlite_path(parsed)
        return Identity("sqlite", (), str(path.absolute()) if path else None, exists=False)
    if dialect == "postgresql":
        return _pg_identity(parsed, role)
    return _mysql_identity(parsed, role)


def _driver_args(parsed: URL) -> tuple[list[Any], dict[str, Any]]:
    """The arguments SQLAlchemy would hand the driver for ``parsed`` (with datastage's connect args)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(parsed, poolclass=NullPool)
    try:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    return list(cargs), {**cparams, **connect_args_for(parsed)}


def _one_line(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[1], str):  # pymysql: (code, message)
        return args[1].splitlines()[0] if args[1] else str(args[0])
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _pg_identity(parsed: URL, role: str) -> Identity:
    import psycopg

    cargs, kwargs = _driver_args(parsed)
    try:
        conn = psycopg.connect(*cargs, **kwargs, autocommit=True)
    except psycopg.Error as exc:
        pgconn = getattr(exc, "pgconn", None)
        raw = pgconn.db if pgconn is not None else None
        name = raw.decode("utf-8", "replace") if raw else None
        return _pg_probe(parsed, role, name, exc)
    try:
        server, database = _pg_facts(conn)
    finally:
        conn.close()
    return Identity("postgresql", server, database)


def _pg_facts(conn: Any) -> tuple[tuple[tuple[str, str], ...], str | None]:
    import psycopg

    facts: list[tuple[str, str]] = []
    try:
        row = conn.execute("SELECT (pg_control_system()).system_identifier::text").fetchone()
        if row and row[0]:
            facts.append(("system_identifier", str(row[0])))
    except psycopg.Error:
        pass  # not granted to this role: the identity says so, and the guard refuses to guess
    row = conn.execute("SELECT current_setting('port'), (SELECT setting FROM pg_settings WHERE name = "
                       "'data_directory'), current_database()").fetchone()
    facts.append(("port", str(row[0])))
    if row[1]:
        facts.append(("data_directory", os.path.normpath(str(row[1]))))
    return tuple(sorted(facts)), row[2]


def _pg_probe(parsed: URL, role: str, name: str | None, error: BaseException) -> Identity:
    """The server of a URL whose database cannot be opened: connect to a maintenance database instead."""
    import psycopg

    base = parsed.difference_update_query(["dbname"])
    for maintenance in ("postgres", "template1"):
        cargs, kwargs = _driver_args(base.set(database=maintenance))
        try:
            conn = psycopg.connect(*cargs, **kwargs, autocommit=True)
        except psycopg.Error:
            continue
        try:
            server, _ = _pg_facts(conn)
            exists = bool(name) and bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                                      (name,)).fetchone())
        finally:
            conn.close()
        return Identity("postgresql", server, name, exists=exists)
    raise IdentityError(f"cannot connect to the {role} {redact_url(parsed)} to identify it: {_one_line(error)}")


def _mysql_identity(parsed: URL, role: str) -> Identity:
    import pymysql
    from pymysql.constants import CLIENT

    cargs, kwargs = _driver_args(parsed)

    def connection(database: bool) -> pymysql.connections.Connection:
        conn = pymysql.connect(*cargs, **kwargs, defer_connect=True)  # reads an option file like a real connect
        if not database:
            conn.db = None
            conn.client_flag &= ~CLIENT.CONNECT_WITH_DB
        return conn

    exists = True
    try:
        conn = connection(True)
        raw = conn.db
        name = raw.decode() if isinstance(raw, bytes) else raw
        try:
            conn.connect()
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] != _MYSQL_BAD_DATABASE:
                raise
            exists = False  # the server is there, the database is not (yet)
            conn = connection(False)
            conn.connect()
    except (pymysql.Error, ValueError, TypeError, OSError) as exc:
        raise IdentityError(f"cannot connect to the {role} {redact_url(parsed)} to identify it: "
                            f"{_one_line(exc)}") from None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@hostname, @@port, @@datadir, @@server_id, @@lower_case_table_names, "
                           "DATABASE(), VERSION()")
            hostname, port, datadir, server_id, lower_case, database, version = cursor.fetchone()
            facts = [("hostname", str(hostname).lower()), ("port", str(port)), ("server_id", str(server_id))]
            if datadir:
                facts.append(("datadir", os.path.normpath(str(datadir))))
            if "mariadb" not in str(version).lower():
                cursor.execute("SELECT @@server_uuid")
                facts.append(("server_uuid", str(cursor.fetchone()[0])))
    except pymysql.Error as exc:
        raise IdentityError(f"cannot identify the {role} {redact_url(parsed)}: {_one_line(exc)}") from None
    finally:
        conn.close()
    return Identity("mysql", tuple(sorted(facts)), database if exists else name, fold_case=int(lower_case or 0) != 0,
                    exists=exists)


# -- SQLite files ----------------------------------------------------------------------------------

def sqlite_files(url: str | URL) -> list[Path]:
    """The files a SQLite URL opens: its path and, with ``uri=true``, the file its ``file:`` URI names."""
    parsed = parse_url(url)
    files: list[Path] = []
    path = sqlite_path(parsed)
    if path is not None:
        files.append(path.absolute())
    uri = str(parsed.query.get("uri", "")).lower() in ("1", "true", "yes", "on")
    database = parsed.database or ""
    if uri and database.startswith("file:"):
        opened = _uri_file(database, parsed.query.get("mode"))
        if opened is not None:
            files.append(opened.absolute())
    return files


def _uri_file(uri: str, mode: Any) -> Path | None:
    """The file of an SQLite ``file:`` URI (None for an in-memory database)."""
    rest = uri[len("file:"):]
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    if rest.startswith("//"):
        _authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
    options = dict(part.partition("=")[::2] for part in query.split("&") if part)
    if (options.get("mode") or mode) == "memory" or not rest or unquote(rest) == ":memory:":
        return None
    return Path(unquote(rest))


def _file_identity(path: Path) -> Identity | None:
    try:
        info = path.stat()  # follows symlinks: a link to the source is the source
    except OSError:
        return None
    return Identity("sqlite", (("device", str(info.st_dev)),), str(info.st_ino))


def sqlite_identities(url: str | URL, *, owned: bool = False) -> list[Identity]:
    """Identities of the existing files a SQLite URL opens (and, with ``owned``, the files its
    target keeps beside it: ``FILE.previous``, ``FILE.lock``, ``FILE.shadow-*``)."""
    found: list[Identity] = []
    for path in sqlite_files(url):
        candidates = [path]
        if owned and path.parent.is_dir():
            candidates += sorted(path.parent.glob(glob.escape(path.name) + ".*"))
        for candidate in candidates:
            identity = _file_identity(candidate)
            if identity is not None and identity not in found:
                found.append(identity)
    return found


# -- the guard -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Footprint:
    """Everything a writer at a URL would touch: what the URL opens and the databases named after it."""

    identities: tuple[Identity, ...]
    owned_prefixes: tuple[Identity, ...] = ()  # database NAME: also NAME__ds_* on that server
    named: str | None = None                    # the database the URL's path names (what targets use)
    connected: str | None = None                # the database the connection uses

    def reaches(self, source: Identity) -> bool:
        if any(item.same_database(source) for item in self.identities):
            return True
        return any(owner.database and source.database and owner.same_server(source)
                   and owner.name_key(source.database).startswith(owner.name_key(owner.database + OWNED_TAG))
                   for owner in self.owned_prefixes)


def footprint(url: str | URL, *, role: str = "target") -> Footprint:
    """What a target (or a copy to drop) at ``url`` would write: identified by the servers, not the text."""
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        return Footprint(tuple(sqlite_identities(parsed, owned=True)))
    reached = server_identity(parsed, role=role)
    identities = [reached]
    named = parsed.database or None
    if named and (reached.database is None or reached.name_key(named) != reached.name_key(reached.database)):
        identities.append(Identity(dialect, reached.server, named, reached.fold_case, exists=False))
    owner = Identity(dialect, reached.server, named, reached.fold_case, exists=False) if named else None
    return Footprint(tuple(identities), (owner,) if owner else (), named, reached.database)


def source_identities(url: str | URL, schemas: Iterable[str] = ()) -> list[Identity]:
    """The databases a source URL reads: the one it opens and, on MySQL, its ``schemas:`` too."""
    parsed = parse_url(url)
    if dialect_of(parsed) == "sqlite":
        return sqlite_identities(parsed)
    try:
        opened = server_identity(parsed, role="source database")
    except IdentityError as exc:
        raise SourceError(exc.message) from None
    found = [opened]
    if dialect_of(parsed) == "mysql":
        found += [Identity("mysql", opened.server, name, opened.fold_case) for name in schemas]
    return found


def check_not_source(source_url: str, source_schemas: Iterable[str], url: str, *, what: str,
                     file: str | None = None, key: str | None = None, verb: str = "write to") -> None:
    """Refuse (:class:`SafetyError`, exit 2) when ``url`` reaches the source or a database the source is.

    The URL text is compared first (a quick refusal); then both servers are asked who they
    are. Also refuses (:class:`ConfigError`) a server URL whose connection opens another
    database than its path names, since the copies and hooks of a target follow the path.
    Nothing is created or written by the check.
    """
    shown = redact_url(url)
    if dialect_of(parse_url(source_url)) != dialect_of(parse_url(url)):
        return  # a database of another kind is never the source
    if same_database(source_url, url):
        raise SafetyError(f"{what} ({shown}) is the source database; refusing to {verb} it", file=file, key=key)
    sources = source_identities(source_url, source_schemas)
    try:
        reach = footprint(url)
    except IdentityError as exc:
        raise TargetError(f"{what}: {exc.message}", file=file, key=key) from None
    servers = [item for item in reach.identities if item.server]
    for source in sources:
        if any(not item.decidable_with(source) for item in servers):
            raise SafetyError(f"cannot tell whether {what} ({shown}) is the source database: the server does not "
                              f"show its system identifier to this role; refusing to {verb} it", file=file, key=key)
        if reach.reaches(source):
            name = "" if source.dialect == "sqlite" else f"database '{source.database}' of "
            raise SafetyError(f"{what} ({shown}) is the source database ({name}{source.describe()}); "
                              f"refusing to {verb} it", file=file, key=key)
    if reach.named and reach.connected and reach.identities:
        first = reach.identities[0]
        if first.name_key(reach.named) != first.name_key(reach.connected):
            raise ConfigError(f"{what} ({shown}) names database '{reach.named}' but its connection opens "
                              f"'{reach.connected}' (a dbname=/database= query parameter or an option or service "
                              "file decides it); name the database only in the URL's path", file=file, key=key)


def check_target_safety(project: Project, env: Environment) -> None:
    """Refuse protected environments and targets that are the source, before anything is written.

    Sameness is what the servers say (:func:`check_not_source`), not how the
    URLs are spelled; the check connects to both but creates nothing.
    """
    if env.protected:
        raise SafetyError(f"environment '{env.name}' is marked protected: true; datastage never writes to it",
                          file=str(project.path), key=f"environments.{env.name}.protected")
    check_not_source(project.source_url, project.source_schemas, env.url, what=f"the target of '{env.name}'",
                     file=str(project.path), key=f"environments.{env.name}.url")
    if env.access and dialect_of(parse_url(env.url)) == "sqlite":
        raise ConfigError("a SQLite database has no access control; remove access: or use a server target",
                          file=str(project.path), key=f"environments.{env.name}.access")
