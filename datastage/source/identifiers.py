"""SQL identifiers: the one place that quotes a table, column, schema or database name.

:func:`quote_identifier` always quotes, doubling the quote character inside the name
(double quotes on PostgreSQL and SQLite, backticks on MySQL/MariaDB), so any name is safe
in generated SQL. :func:`quote_as_needed` quotes the way SQLAlchemy does for a connection:
only names that need it (reserved words, upper case, unusual characters).

Example:
    >>> quote_identifier("postgresql", 'a"b')
    '"a""b"'
    >>> quote_identifier("mysql", "order`s")
    '`order``s`'
    >>> qualified_name("postgresql", "public", "orders")
    '"public"."orders"'
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Connection, Engine

POSTGRESQL, MYSQL, SQLITE = "postgresql", "mysql", "sqlite"  # the dialect names datastage uses
_QUOTE = {POSTGRESQL: '"', SQLITE: '"', MYSQL: "`"}


def quote_identifier(dialect: str, name: str) -> str:
    """``name`` quoted for ``dialect`` (``postgresql``, ``sqlite`` or ``mysql``), always."""
    quote = _QUOTE[dialect]
    return quote + name.replace(quote, quote + quote) + quote


def qualified_name(dialect: str, *parts: str) -> str:
    """A dotted name, e.g. ``schema.table`` or ``database.table``, each part quoted."""
    return ".".join(quote_identifier(dialect, part) for part in parts)


def quote_as_needed(conn: Connection | Engine, name: str) -> str:
    """``name`` as the connection's dialect writes it: quoted only if it has to be."""
    return conn.dialect.identifier_preparer.quote(name)


def quote_like_postgresql(name: str) -> str:
    """``name`` as PostgreSQL prints it in a definition (``pg_get_indexdef``, ``pg_get_triggerdef``):
    bare when it is lower-case letters, digits, ``_`` and ``$``, quoted otherwise.

    >>> quote_like_postgresql("orders"), quote_like_postgresql("Order Lines")
    ('orders', '"Order Lines"')
    """
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else quote_identifier(POSTGRESQL, name)
