"""The databases of on-demand environments: where one lives next to its environment, creating,
dropping and measuring it (PostgreSQL, MariaDB/MySQL, SQLite).

Example:
    >>> derived_url("postgresql://app@db:5432/staging", "pr_1")
    'postgresql+psycopg://app@db:5432/pr_1'
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import TargetError, UsageError
from datastage.pipeline import step
from datastage.source.db import db_error_message, dialect_of, make_engine, parse_url
from datastage.source.identifiers import MYSQL, POSTGRESQL, quote_identifier


def derived_url(env_url: str, name: str) -> str:
    """The URL of on-demand environment ``name`` next to ``env_url`` (same server or same folder)."""
    parsed = parse_url(env_url)
    if dialect_of(parsed) == "sqlite":
        path = Path(parsed.database or "")
        return parsed.set(database=str(path.with_name(f"{name}.db"))).render_as_string(hide_password=False)
    return parsed.set(database=name).render_as_string(hide_password=False)


def _server_execute(url: str, sql: str) -> None:
    """Run one statement outside a transaction on the server of ``url`` (CREATE/DROP DATABASE)."""
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(sql)
    except SQLAlchemyError as exc:
        raise TargetError(db_error_message(exc)) from None
    finally:
        engine.dispose()


def create_database(env_url: str, name: str) -> None:
    dialect = dialect_of(parse_url(env_url))
    if dialect == "sqlite":
        path = Path(parse_url(derived_url(env_url, name)).database or "")
        if path.exists():
            raise UsageError(f"{path} already exists; choose another name")
        return
    with step("provision"):
        _server_execute(env_url, f"CREATE DATABASE {quote_identifier(dialect, name)}")


def drop_database(env_url: str, name: str) -> None:
    """Drop on-demand environment ``name`` (and what its target created beside it)."""
    parsed = parse_url(env_url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        path = Path(parse_url(derived_url(env_url, name)).database or "")
        for item in path.parent.glob(path.name + "*"):
            if item.name == path.name or item.name.startswith(path.name + "."):
                item.unlink(missing_ok=True)
        return
    if dialect == "postgresql":
        _server_execute(env_url, f"DROP DATABASE IF EXISTS {quote_identifier(POSTGRESQL, name)} WITH (FORCE)")
        return
    engine = make_engine(env_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            names = [r[0] for r in conn.exec_driver_sql(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s "
                "OR schema_name LIKE %s", (name, name.replace("_", "\\_") + "\\_\\_ds\\_%")).all()]
            for database in names:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, database)}")
    except SQLAlchemyError as exc:
        raise TargetError(db_error_message(exc)) from None
    finally:
        engine.dispose()


def database_size(url: str) -> int | None:
    """Bytes used by the database at ``url`` (None when it cannot be measured)."""
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        path = Path(parsed.database or "")
        return path.stat().st_size if path.is_file() else None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if dialect == "postgresql":
                return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
            value = conn.execute(sa.text("SELECT COALESCE(SUM(data_length + index_length), 0) FROM "
                                         "information_schema.tables WHERE table_schema = DATABASE()")).scalar()
            return int(value or 0)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
