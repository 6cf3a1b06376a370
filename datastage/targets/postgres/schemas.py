"""The schemas of a PostgreSQL schema shadow: their names, and the renames that swap and roll back.

For a live schema ``S`` a run builds ``S__ds_shadow_<run>``; the swap renames ``S__ds_prev``
away (``S__ds_stale_<run>``, dropped afterwards), ``S`` to ``S__ds_prev`` and the shadow to
``S``; the rollback parks ``S`` (``S__ds_swap_rollback``) and exchanges it with ``S__ds_prev``.

Example:
    >>> run_tag("20261127-101500-AB12cd")
    '20261127_101500_ab12cd'
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from datastage.errors import TargetError
from datastage.source.identifiers import POSTGRESQL, quote_identifier

SHADOW_TAG = "__ds_shadow_"
PREVIOUS_SUFFIX = "__ds_prev"
STALE_TAG = "__ds_stale_"
SWAP_TAG = "__ds_swap_"
MAX_SCHEMA_NAME = 40  # leaves room for the suffixes within PostgreSQL's 63-byte identifiers
SWAP_LOCK_TIMEOUT = "30s"


def run_tag(run_id: str) -> str:
    """The part of a shadow schema's name that names its run."""
    return re.sub(r"[^0-9a-zA-Z]", "_", run_id).lower()


def drop_schema(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Drop a datastage schema and what it holds, unless objects elsewhere depend on it."""
    outside = conn.execute(
        """SELECT count(*) FROM pg_depend d
           JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
           LEFT JOIN pg_class rc ON rc.oid = r.ev_class
           LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
           WHERE n.nspname = %s AND d.deptype = 'n' AND rn.nspname IS NOT NULL AND rn.nspname <> %s""",
        (schema, schema)).fetchone()
    if outside and outside[0]:
        return False
    conn.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(POSTGRESQL, schema)} CASCADE")
    return True


def rename_schema(conn: psycopg.Connection[Any], old: str, new: str, carry_extensions_to: str | None = None) -> None:
    """Rename a schema; relocatable extensions in it move to ``carry_extensions_to`` first."""
    if carry_extensions_to is not None:
        for name, relocatable in conn.execute(
                "SELECT e.extname, e.extrelocatable FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE n.nspname = %s", (old,)).fetchall():
            if not relocatable:
                raise TargetError(f"extension {name} lives in schema {old} and cannot be moved; install it in a "
                                  "schema of its own (e.g. CREATE SCHEMA extensions) before refreshing")
            conn.execute(f"ALTER EXTENSION {quote_identifier(POSTGRESQL, name)} "
                         f"SET SCHEMA {quote_identifier(POSTGRESQL, carry_extensions_to)}")
    conn.execute(f"ALTER SCHEMA {quote_identifier(POSTGRESQL, old)} RENAME TO {quote_identifier(POSTGRESQL, new)}")


def schema_names(conn: psycopg.Connection[Any]) -> set[str]:
    """Every schema of the connection's database."""
    return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}


def swap_schemas(conn: psycopg.Connection[Any], shadow_of: dict[str, str], tag: str) -> list[str]:
    """In the swap's transaction: each live schema becomes the previous copy and its shadow the live one.

    Returns the older copies renamed out of the way, to drop once the swap has committed.
    """
    conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
    existing = schema_names(conn)
    stale: list[str] = []
    for live, shadow in shadow_of.items():
        previous = live + PREVIOUS_SUFFIX
        if previous in existing:
            stale.append(live + STALE_TAG + tag)
            rename_schema(conn, previous, stale[-1])
        if live in existing:
            rename_schema(conn, live, previous, carry_extensions_to=shadow)
        rename_schema(conn, shadow, live)
    return stale


def restore_previous(conn: psycopg.Connection[Any], environment: str, database: str) -> list[str]:
    """In the rollback's transaction: exchange every previous copy with its live schema; returns the live names."""
    schemas = schema_names(conn)
    previous = sorted(s for s in schemas if s.endswith(PREVIOUS_SUFFIX))
    if not previous:
        raise TargetError(f"no previous copy of {environment} to roll back to "
                          f"(no schema *{PREVIOUS_SUFFIX} in database {database})")
    conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
    restored: list[str] = []
    for prev in previous:
        live = prev[: -len(PREVIOUS_SUFFIX)]
        parking = live + SWAP_TAG + "rollback"
        if live in schemas:
            rename_schema(conn, live, parking, carry_extensions_to=prev)
        rename_schema(conn, prev, live)
        if live in schemas:
            rename_schema(conn, parking, prev)
        restored.append(live)
    return restored
