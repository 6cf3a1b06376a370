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

from typing import Any

from datastage.errors import TargetError
from datastage.source.db import dialect_of, parse_url, redact_url
from datastage.targets.base import Target


def open_target(url: str, environment: str, options: dict[str, Any] | None = None) -> Target:
    """The writer for ``url``'s dialect."""
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        from datastage.targets.sqlite import SqliteTarget

        return SqliteTarget(url, environment, options)
    if dialect == "postgresql":
        if (options or {}).get("shadow") == "database":
            from datastage.targets.postgres.database import PostgresDatabaseTarget

            return PostgresDatabaseTarget(url, environment, options)
        from datastage.targets.postgres.target import PostgresTarget

        return PostgresTarget(url, environment, options)
    if dialect == "mysql":
        from datastage.targets.mysql import MysqlTarget

        return MysqlTarget(url, environment, options)
    raise TargetError(f"{dialect} targets are not supported ({redact_url(url)})")
