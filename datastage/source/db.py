"""Engines from URLs, read-only snapshot sessions, and URL redaction.

Every source connection runs in one read-only transaction that sees one consistent
snapshot (PostgreSQL ``REPEATABLE READ READ ONLY``, MySQL/MariaDB ``START TRANSACTION WITH
CONSISTENT SNAPSHOT, READ ONLY``, SQLite a read-only file handle inside ``BEGIN``). MySQL's
``LOAD DATA LOCAL`` (which lets the server read any file of the client) is off unless the
caller asks for it; only the MySQL target code does.

Example:
    >>> redact_url("postgresql://app:s3cret@db/prod")
    'postgresql+psycopg://app:***@db/prod'
    >>> redact_url("mysql://app@db/prod?password=s3cret&charset=utf8mb4")
    'mysql+pymysql://app@db/prod?charset=utf8mb4&password=***'
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from datastage.errors import ConfigError, DatastageError, SourceError
from datastage.secrets import MASK, PASSWORD_KEYS, redact
from datastage.settings import tuning_from_env

_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                    "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "sqlite": "sqlite"}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def parse_url(url: str | URL) -> URL:
    """Parse a database URL and choose the bundled driver when none is named.

    >>> parse_url("mysql://root@localhost/app").drivername
    'mysql+pymysql'
    """
    if isinstance(url, URL):
        parsed = url
    else:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise ConfigError(f"not a valid database URL: {_redact_text(str(url))}") from None
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    elif parsed.drivername.startswith("mariadb+"):
        parsed = parsed.set(drivername="mysql+" + parsed.drivername.split("+", 1)[1])
    if dialect_of(parsed) not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"unsupported database '{parsed.get_backend_name()}' in URL {redact_url(parsed)}; "
                          "use sqlite, postgresql, mysql or mariadb")
    return parsed


def dialect_of(url: str | URL | Engine | Connection) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
    if isinstance(url, Engine | Connection):
        return url.dialect.name if url.dialect.name != "mariadb" else "mysql"
    parsed = url if isinstance(url, URL) else make_url(url)
    backend = parsed.get_backend_name()
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)


def redact_url(url: str | URL) -> str:
    """The URL with every password replaced by ``***``: its userinfo's, ``?password=`` (and
    ``passwd``, ``pwd``, ``sslpassword``) in its query, and libpq ``password=`` text in a query value."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return _redact_text(str(url))
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    hidden = [key for key in parsed.query if key.lower() in PASSWORD_KEYS]
    text = parsed.set(query={k: v for k, v in parsed.query.items() if k not in hidden}).render_as_string(
        hide_password=True)
    if hidden:  # keep the key visible (it tells where the password came from), never its value
        text += ("&" if "?" in text else "?") + "&".join(f"{key}={MASK}" for key in hidden)
    return redact(text)


def url_without_password(url: str | URL, *, drivername: str | None = None) -> str:
    """The URL with no password at all (none in the userinfo, no password key in the query), as a
    client program takes it; ``drivername`` replaces the driver (``postgresql``, ``mysql``)."""
    parsed = url if isinstance(url, URL) else make_url(url)
    query = {k: v for k, v in parsed.query.items() if k.lower() not in PASSWORD_KEYS}
    parsed = parsed._replace(password=None).set(query=query)  # set() takes None as "leave as it is"
    if drivername is not None:
        parsed = parsed.set(drivername=drivername)
    return parsed.render_as_string(hide_password=False)


def url_password(url: str | URL) -> str | None:
    """The password a URL connects with: its userinfo's, else ``?password=`` (or ``passwd``) in its query."""
    parsed = url if isinstance(url, URL) else make_url(url)
    if parsed.password:
        return str(parsed.password)
    for key, value in parsed.query.items():
        if key.lower() in ("password", "passwd"):
            return str(value[-1] if isinstance(value, tuple) else value)
    return None


def _redact_text(text: str) -> str:
    """Hide every known secret and anything that looks like a password (for URLs too broken to parse)."""
    return redact(text)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for in-memory databases)."""
    parsed = parse_url(url)
    if dialect_of(parsed) != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str | URL, *, read_only: bool = False, role: str = "database",
                local_infile: bool = False, application_name: str = "datastage") -> Engine:
    """An engine for ``url``; ``read_only`` opens SQLite files in read-only mode.

    PostgreSQL sessions carry ``application_name`` (a refresh names its target sessions after its run).

    A SQLite file that does not exist is an error for a read-only engine (it would
    otherwise be created empty). ``local_infile`` allows MySQL's ``LOAD DATA LOCAL INFILE``
    on the connections: the server may then ask the client for any file it can read, so it is
    off by default, and refused for a ``read_only`` (source) engine.
    """
    if local_infile and read_only:
        raise ValueError("LOAD DATA LOCAL is never enabled on a read-only (source) connection")
    parsed = parse_url(url)
    try:
        if dialect_of(parsed) == "sqlite":
            path = sqlite_path(parsed)
            if read_only:
                if path is None or not path.is_file():
                    raise SourceError(f"{role} file not found: {path}")
                uri = f"{path.absolute().as_uri()}?mode=ro"  # as_uri escapes '#', '?' and '%' in the path
                return sa.create_engine(
                    "sqlite://",
                    creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
                    poolclass=sa.pool.NullPool,
                )
            return sa.create_engine(parsed, poolclass=sa.pool.NullPool)
        return sa.create_engine(parsed, poolclass=sa.pool.NullPool,
                                connect_args=connect_args_for(parsed, local_infile=local_infile,
                                                              application_name=application_name))
    except NoSuchModuleError:
        raise ConfigError(f"no driver installed for {redact_url(parsed)}") from None


def connect_args_for(url: URL, *, local_infile: bool = False, application_name: str = "datastage") -> dict[str, Any]:
    """The driver arguments datastage adds to a server URL's own (timeout, application name);
    ``local_infile`` only ever for a MySQL target's own connections."""
    timeout = tuning_from_env().connect_timeout
    if dialect_of(url) == "postgresql":
        return {"connect_timeout": timeout, "application_name": application_name}
    if dialect_of(url) == "mysql":
        return {"connect_timeout": timeout, "local_infile": local_infile}
    return {}


def db_error_message(exc: BaseException) -> str:
    """A short, single-line description of a driver error, without SQL or parameters."""
    if isinstance(exc, DatastageError):
        return str(exc)
    orig = getattr(exc, "orig", None)
    base = orig if orig is not None else exc
    text = str(base).strip().splitlines()[0] if str(base).strip() else type(base).__name__
    if isinstance(exc, DBAPIError) and orig is None:
        text = type(exc).__name__
    return _redact_text(text)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection inside one read-only, consistent-snapshot transaction.

    The transaction is always rolled back at the end; nothing can be written through it.
    """
    dialect = dialect_of(engine)
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot connect to {redact_url(engine.url)}: {db_error_message(exc)}") from None
    try:
        if dialect == "sqlite":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()  # takes the read snapshot
        elif dialect == "postgresql":
            conn.begin()
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        else:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    except SQLAlchemyError as exc:
        conn.close()
        raise SourceError(f"cannot open a read-only snapshot on {redact_url(engine.url)}: "
                          f"{db_error_message(exc)}") from None
    try:
        yield conn
    finally:
        try:
            if dialect in ("sqlite", "mysql"):
                conn.exec_driver_sql("ROLLBACK")
            else:
                conn.rollback()
        except Exception:  # noqa: BLE001, S110 - the connection must be closed whatever the driver says
            pass
        finally:
            conn.close()


def default_schema(conn: Connection) -> str | None:
    """The schema unqualified names refer to (``public``, the MySQL database, ``main``)."""
    name = conn.dialect.default_schema_name
    if dialect_of(conn) == "sqlite":
        return "main"
    if dialect_of(conn) == "mysql":
        return conn.exec_driver_sql("SELECT DATABASE()").scalar() or name
    return name


def same_database(a: str | URL, b: str | URL) -> bool:
    """Whether two URLs spell the same database (same host, port and database name in the text).

    Only a quick first check: URLs that differ in text can still reach the same database (another
    name of the host, a socket, a service file); :func:`datastage.source.identity.check_not_source` asks
    the servers. A ``dbname=``/``database=`` query parameter counts as the database it names.

    >>> same_database("postgresql://u@localhost/app", "postgresql+psycopg://v:x@127.0.0.1:5432/app")
    True
    >>> same_database("postgresql://u@127.0.0.1/other?dbname=app", "postgresql://u@127.0.0.1/app")
    True
    >>> same_database("postgresql://u@127.0.0.1/app", "postgresql://u@127.0.0.1/app_copy")
    False
    """
    ua, ub = parse_url(a), parse_url(b)
    if dialect_of(ua) != dialect_of(ub):
        return False
    if dialect_of(ua) == "sqlite":
        pa, pb = sqlite_path(ua), sqlite_path(ub)
        if pa is None or pb is None:
            return False
        return os.path.realpath(pa) == os.path.realpath(pb)
    return (
        _host(ua) == _host(ub)
        and (ua.port or _DEFAULT_PORTS[dialect_of(ua)]) == (ub.port or _DEFAULT_PORTS[dialect_of(ub)])
        and _database_text(ua) == _database_text(ub)
    )


def _database_text(url: URL) -> str:
    """The database a URL's text names (a query override wins over the path, as the drivers do)."""
    for key in ("dbname", "database", "db"):
        value = url.query.get(key)
        if value:
            return str(value[-1] if isinstance(value, tuple) else value)
    return url.database or ""


def on_this_machine(url: str | URL) -> bool:
    """Whether ``url``'s server runs on this machine (a loopback address, ``localhost``, a socket, a file).

    >>> on_this_machine("postgresql://u@127.0.0.1/app"), on_this_machine("postgresql://u@db.internal/app")
    (True, False)
    >>> on_this_machine("postgresql://u@/app?host=/var/run/postgresql"), on_this_machine("sqlite:///x.db")
    (True, True)
    """
    parsed = parse_url(url)
    if dialect_of(parsed) == "sqlite":
        return True
    host = _host(parsed)
    return host == "localhost" or host.startswith("/")


def _host(url: URL) -> str:
    host = (url.host or url.query.get("host") or "localhost")
    if isinstance(host, tuple):
        host = host[0]
    return "localhost" if host in ("127.0.0.1", "::1", "localhost", "") else host.lower()

