"""The one place that maps a target URL's dialect to its writer.

``sqlite`` URLs get :class:`~datastage.targets.sqlite.SqliteTarget`, ``postgresql`` ones
:class:`~datastage.targets.postgres.target.PostgresTarget` (or, with ``shadow: database``,
:class:`~datastage.targets.postgres.database.PostgresDatabaseTarget`), ``mysql`` ones
:class:`~datastage.targets.mysql.MysqlTarget`. The writers are imported only when asked for.

Example:
    >>> open_target("sqlite:///staging.db", "staging").environment
    'staging'
"""

from __future__ import annotations

from datastage.errors import TargetError
from datastage.settings import ShadowMode
from datastage.source.db import dialect_of, parse_url, redact_url
from datastage.targets.base import Target


def open_target(url: str, environment: str, shadow_mode: ShadowMode = "schema") -> Target:
    """The writer for ``url``'s dialect (``shadow_mode`` "database": a PostgreSQL shadow database)."""
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        from datastage.targets.sqlite import SqliteTarget

        return SqliteTarget(url, environment)
    if dialect == "postgresql":
        if shadow_mode == "database":
            from datastage.targets.postgres.database import PostgresDatabaseTarget

            return PostgresDatabaseTarget(url, environment)
        from datastage.targets.postgres.target import PostgresTarget

        return PostgresTarget(url, environment)
    if dialect == "mysql":
        from datastage.targets.mysql import MysqlTarget

        return MysqlTarget(url, environment)
    raise TargetError(f"{dialect} targets are not supported ({redact_url(url)})")
