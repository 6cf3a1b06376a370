"""Helpers for the load tests: projects on real servers, and fingerprints of what a target holds."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import IN_CI, ServerDatabases, datasets_dir, load_pagila, load_sakila
from sqlalchemy.engine import make_url


def _kept(why: str) -> dict[str, str]:
    return {"strategy": "keep", "reason": why}


PAGILA_RULES = {
    "version": 1,
    "default": "keep",
    "tables": {
        "customer": {"first_name": "fake.first_name", "last_name": "fake.last_name",
                     "email": {"strategy": "email", "unique": True}},
        "staff": {"first_name": "fake.first_name", "last_name": "fake.last_name", "email": "email",
                  "password": {"strategy": "hash"}, "username": _kept("role accounts of the sample stores"),
                  "picture": _kept("sample images, no photos")},
        "address": {"address": "fake.street_address", "phone": {"strategy": "partial", "keep_last": 2},
                    "address2": _kept("empty in this dataset"),
                    "postal_code": _kept("postcodes of a fictional address book")},
        "actor": {"first_name": _kept("credited screen names are public"),
                  "last_name": _kept("credited screen names are public")},
    },
}
SAKILA_RULES = {
    "version": 1,
    "default": "keep",
    "tables": {
        "customer": {"first_name": "fake.first_name", "last_name": "fake.last_name",
                     "email": {"strategy": "email", "unique": True}},
        "staff": {"email": "email", "password": {"strategy": "hash"}, "first_name": "fake.first_name",
                  "last_name": "fake.last_name", "username": _kept("role accounts of the sample stores"),
                  "picture": _kept("sample images, no photos")},
        "address": {"address": "fake.street_address", "phone": {"strategy": "partial", "keep_last": 2},
                    "address2": _kept("empty in this dataset"),
                    "postal_code": _kept("postcodes of a fictional address book")},
        "actor": {"first_name": _kept("credited screen names are public"),
                  "last_name": _kept("credited screen names are public")},
    },
}


def write_project(directory: Path, source_url: str, environments: dict[str, dict[str, Any]],
                  rules: dict[str, Any] | None = None) -> Path:
    """A datastage.yaml (and rules/pii.yaml) in ``directory``; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules").mkdir(exist_ok=True)
    (directory / "rules" / "pii.yaml").write_text(yaml.safe_dump(rules or PAGILA_RULES, sort_keys=False))
    envs = {name: {"rules": "rules/pii.yaml", **env} for name, env in environments.items()}
    config = {"source": {"url": source_url}, "environments": envs}
    path = directory / "datastage.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _engine(url: str, **options: Any) -> sa.Engine:
    """An engine for the tests' own look-ups. MariaDB connections skip PyMySQL's opportunistic TLS: its
    fresh CA-loading context costs some 30 ms per connection, and these look-ups run on loopback."""
    connect_args = {"ssl_disabled": True} if make_url(url).get_backend_name() == "mysql" else {}
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args, **options)


@contextmanager
def connected(url: str) -> Iterator[sa.Connection]:
    """One connection for several look-ups (closed at the end)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def scalar(url: str, sql: str) -> Any:
    with connected(url) as conn:
        return conn.execute(sa.text(sql)).scalar()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with connected(url) as conn:
        return _rows(conn, sql)


def _rows(conn: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def execute(url: str, *statements: str) -> None:
    engine = _engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def pg_fingerprint(url: str) -> dict[str, Any]:
    """Every schema of the database and, per table, an md5 over all its rows (in a stable order)."""
    with connected(url) as conn:
        schemas = [r[0] for r in _rows(conn, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
                                             "AND nspname <> 'information_schema' ORDER BY 1")]
        tables = _rows(conn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                             "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg_%' "
                             "AND n.nspname <> 'information_schema' ORDER BY 1, 2")
        digests = {}
        for schema, table in tables:
            name = f'"{schema}"."{table}"'
            digests[f"{schema}.{table}"] = conn.execute(sa.text(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) || ':' || count(*) "
                f"FROM {name} t")).scalar()
    return {"schemas": schemas, "tables": digests}


def mysql_fingerprint(url: str) -> dict[str, Any]:
    """The databases of the target (its own and datastage's) and an order-independent digest per table."""
    database = make_url(url).database
    with connected(url) as conn:
        dbs = [r[0] for r in _rows(conn, f"SELECT schema_name FROM information_schema.schemata WHERE schema_name "
                                         f"LIKE '{database}%' ORDER BY 1")]
        digests = {}
        for db in dbs:
            for (table,) in _rows(conn, f"SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                        f"'{db}' AND table_type = 'BASE TABLE' ORDER BY 1"):
                digest = _rows(conn, f"CHECKSUM TABLE `{db}`.`{table}` EXTENDED")[0][1]
                count = conn.execute(sa.text(f"SELECT count(*) FROM `{db}`.`{table}`")).scalar()
                digests[f"{db}.{table}"] = f"{digest}:{count}"
    return {"databases": dbs, "tables": digests}


def sqlite_fingerprint(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    finally:
        conn.close()


def pg_schema_dump(url: str, schema: str = "public") -> list[str]:
    """``pg_dump --schema-only`` of one schema, without comments, owners, grants and dump markers."""
    parsed = make_url(url).set(drivername="postgresql")
    out = subprocess.run(["pg_dump", "-s", "-n", schema, "-d", parsed.render_as_string(hide_password=False)],
                         check=True, capture_output=True, text=True).stdout
    keep = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("--") or re.match(r"^\\(un)?restrict ", line):
            continue
        if " OWNER TO " in line or line.startswith(("GRANT ", "REVOKE ", "COMMENT ON SCHEMA")):
            continue
        keep.append(line)
    return keep


def without_table(lines: list[str], table: str) -> list[str]:
    """Dump lines minus the statements that create ``table`` and its primary key."""
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith((f"CREATE TABLE public.{table} ", f"ALTER TABLE ONLY public.{table}")):
            skipping = True
        if not skipping:
            out.append(line)
        if skipping and line.rstrip().endswith(";"):
            skipping = False
    return out


def report_of(result: Any) -> dict[str, Any]:
    return json.loads(Path(result.report.json).read_text())


EXTRA_SOURCE_OBJECTS = (
    # A trigger that would rewrite every inserted row: the load must not fire it.
    """CREATE FUNCTION public.shout_last_name() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.last_name := 'TRIGGERED'; RETURN NEW; END $$""",
    "CREATE TRIGGER shout BEFORE INSERT ON public.actor FOR EACH ROW EXECUTE FUNCTION public.shout_last_name()",
    # Identity, generated, json and range columns.
    """CREATE TABLE public.ds_extra (
         id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         price numeric(8,2) NOT NULL, qty integer NOT NULL,
         total numeric GENERATED ALWAYS AS (price * qty) STORED,
         tags text[], doc jsonb, meta json, span int4range, CHECK (qty >= 0))""",
    """INSERT INTO public.ds_extra (price, qty, tags, doc, meta, span) VALUES
         (1.50, 2, '{a,"b c"}', '"just a string"', '[1, 2]', '[1,5)'),
         (10, 0, '{}', '{"k": {"n": [1, null]}}', 'true', NULL),
         (3, 7, NULL, NULL, '{"x": "y"}', 'empty')""",
    "CREATE TABLE public.app_settings (key text PRIMARY KEY, value text NOT NULL)",
    "INSERT INTO public.app_settings VALUES ('payment_gateway', 'https://pay.example.com/live')",
)


def pagila_source(pg_server: str) -> Iterator[str]:
    """A Pagila source (plus a few extra objects) for a module-scoped fixture; dropped afterwards."""
    datasets = datasets_dir()
    if not (datasets / "pagila").is_dir():
        if IN_CI:
            pytest.fail(f"sample datasets not found at {datasets}")
        pytest.skip(f"sample datasets not found at {datasets}")
    dbs = ServerDatabases(pg_server)
    try:
        url = dbs.create("ds_pagila")
        load_pagila(datasets, url)
        execute(url, *EXTRA_SOURCE_OBJECTS, "REFRESH MATERIALIZED VIEW public.rental_by_category", "ANALYZE")
        yield url
    finally:
        dbs.drop_all()


def sakila_source(mysql_server: str) -> Iterator[str]:
    """A Sakila source on MariaDB for a module-scoped fixture; dropped afterwards."""
    datasets = datasets_dir()
    if not (datasets / "sakila-mysql").is_dir():
        if IN_CI:
            pytest.fail(f"sample datasets not found at {datasets}")
        pytest.skip(f"sample datasets not found at {datasets}")
    dbs = ServerDatabases(mysql_server)
    try:
        url = dbs.create("ds_sakila")
        load_sakila(datasets, url)
        yield url
    finally:
        dbs.drop_all()
