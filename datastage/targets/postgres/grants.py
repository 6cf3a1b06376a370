"""Privileges of the new copy: the current copy's carried over, and the ``access:`` grants.

Staging has its own roles: the application's role must still read the tables after a
refresh. So the privileges on the *target's current* schema and its objects, its default
privileges and its comment are granted again on the shadow (the source's own grants name
production roles and are not copied).

Example (the grantee of a privilege: ``-`` or no role is ``PUBLIC``, any other a quoted role name):
    >>> _grantee("-").as_string(None), _grantee("app_reader").as_string(None)
    ('PUBLIC', '"app_reader"')
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from datastage.settings import AccessGrant
from datastage.source.identifiers import POSTGRESQL, quote_identifier

_OBJECT_KIND = {"r": "TABLE", "p": "TABLE", "v": "TABLE", "m": "TABLE", "f": "TABLE", "S": "SEQUENCE"}
_DEFAULT_KIND = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES"}


def _grantee(role: str | None) -> sql.Composable:
    return sql.SQL("PUBLIC") if not role or role == "-" else sql.Identifier(role)


def _attempt(conn: psycopg.Connection[Any], statement: sql.Composed, what: str, notes: list[str]) -> None:
    conn.execute("SAVEPOINT datastage_grant")
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT datastage_grant")
        notes.append(f"{what} not carried over: {str(exc).strip().splitlines()[0]}")
        return
    conn.execute("RELEASE SAVEPOINT datastage_grant")


def carry_schema_settings(conn: psycopg.Connection[Any], live: str, shadow: str) -> list[str]:
    """Owner, privileges, default privileges and comment of schema ``live`` onto ``shadow``."""
    notes: list[str] = []
    row = conn.execute("SELECT pg_get_userbyid(nspowner), obj_description(oid, 'pg_namespace') FROM pg_namespace "
                       "WHERE nspname = %s", (live,)).fetchone()
    if row is None:
        return notes
    owner, comment = row
    target = sql.Identifier(shadow)
    _attempt(conn, sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(target, sql.Identifier(owner)),
             f"owner of schema {live}", notes)
    for privilege, grantee, grantable in conn.execute(
            """SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                      a.is_grantable
               FROM pg_namespace n, aclexplode(n.nspacl) a
               WHERE n.nspname = %s AND a.grantee <> n.nspowner""", (live,)).fetchall():
        option = sql.SQL(" WITH GRANT OPTION" if grantable else "")
        _attempt(conn, sql.SQL("GRANT {} ON SCHEMA {} TO {}{}").format(
            sql.SQL(privilege), target, _grantee(grantee), option), f"{privilege} on schema {live}", notes)
    if comment is not None:
        _attempt(conn, sql.SQL("COMMENT ON SCHEMA {} IS {}").format(target, sql.Literal(comment)),
                 f"comment of schema {live}", notes)
    for role, kind, privilege, grantee, grantable in conn.execute(
            """SELECT pg_get_userbyid(d.defaclrole), d.defaclobjtype, a.privilege_type,
                      CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.is_grantable
               FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a
               WHERE n.nspname = %s""", (live,)).fetchall():
        if kind not in _DEFAULT_KIND:
            continue
        option = sql.SQL(" WITH GRANT OPTION" if grantable else "")
        _attempt(conn, sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} TO {}{}").format(
            sql.Identifier(role), target, sql.SQL(privilege), sql.SQL(_DEFAULT_KIND[kind]), _grantee(grantee),
            option), f"default privileges in schema {live}", notes)
    return notes


def carry_object_grants(conn: psycopg.Connection[Any], live: str, shadow: str) -> list[str]:
    """Privileges granted on the current copy's tables, views and sequences, onto their namesakes."""
    notes: list[str] = []
    for name, kind, privilege, grantee, grantable in conn.execute(
            """SELECT c.relname, c.relkind, a.privilege_type,
                      CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.is_grantable
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
               WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND a.grantee <> c.relowner
                 AND to_regclass(quote_ident(%s) || '.' || quote_ident(c.relname)) IS NOT NULL
               ORDER BY c.relname, a.privilege_type""", (live, shadow)).fetchall():
        option = sql.SQL(" WITH GRANT OPTION" if grantable else "")
        _attempt(conn, sql.SQL("GRANT {} ON {} {} TO {}{}").format(
            sql.SQL(privilege), sql.SQL(_OBJECT_KIND[kind]), sql.Identifier(shadow, name), _grantee(grantee), option),
            f"{privilege} on {name}", notes)
    return notes


def grant_schema_access(conn: psycopg.Connection[Any], grant: AccessGrant, schemas: list[str]) -> None:
    """Give ``grant.role`` read or write access to everything in ``schemas`` (an ``access:`` entry)."""
    role = quote_identifier(POSTGRESQL, grant.role)
    tables = "SELECT, INSERT, UPDATE, DELETE" if grant.privileges == "write" else "SELECT"
    sequences = "USAGE, SELECT, UPDATE" if grant.privileges == "write" else "USAGE, SELECT"
    for name in schemas:
        schema = quote_identifier(POSTGRESQL, name)
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT {tables} ON ALL TABLES IN SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
