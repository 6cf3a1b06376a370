"""The first refresh of a server target: it creates the target database (PostgreSQL and MariaDB
alike, after the same safety checks), and leaves no empty previous copy beside it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases
from endings_support import tiny_project
from load_support import execute

from datastage.cli import main


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _databases(admin_url: str, name: str) -> list[str]:
    """The databases of the server named ``name`` or ``name__…`` (the target's own and datastage's)."""
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                found = conn.exec_driver_sql("SELECT datname FROM pg_database").scalars()
            else:
                found = conn.exec_driver_sql("SELECT schema_name FROM information_schema.schemata").scalars()
            return sorted(d for d in found if d == name or d.startswith(name + "__"))
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar() or 0)
    finally:
        engine.dispose()


def _missing(dbs: ServerDatabases, prefix: str) -> tuple[str, str]:
    """(name, URL) of a database that does not exist yet, dropped (with its copies) after the test."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    dbs.created.append(name)
    return name, dbs.url(name)


@pytest.mark.postgres
def test_first_postgres_refresh_creates_the_target_database(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    name, url = _missing(pg_databases, "ds_first")
    config = tiny_project(tmp_path, {"staging": {"url": url}})
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 0, output
    assert _databases(pg_databases.admin_url, name) == [name]
    assert _count(url, "SELECT count(*) FROM customer") == 50 and _count(url, "SELECT count(*) FROM orders") == 200
    assert _count(url, "SELECT count(*) FROM datastage_refresh_log") == 1
    code, output = _cli("refresh", "staging", "--config", str(config))  # the database is there now
    assert code == 0, output
    assert _count(url, "SELECT count(*) FROM datastage_refresh_log") == 2


@pytest.mark.postgres
def test_a_failed_first_postgres_refresh_leaves_no_database(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    name, url = _missing(pg_databases, "ds_first")
    config = tiny_project(tmp_path, {"staging": {"url": url}})
    rules = tmp_path / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("name: fake.name", "no_such_column: fake.name"))
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 2 and "no_such_column" in output and len(output.strip().splitlines()) == 1, output
    assert _databases(pg_databases.admin_url, name) == []


@pytest.mark.postgres
def test_a_target_that_is_the_source_is_refused_before_any_database_is_created(
        pg_databases: ServerDatabases, tmp_path: Path) -> None:
    source = pg_databases.create("ds_src")
    execute(source, "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)",
            "INSERT INTO customer VALUES (1, 'Person Number1', 'person1@mail.test')")
    name, url = _missing(pg_databases, "ds_first")
    source_name = str(sa.engine.make_url(source).database)
    config = tiny_project(tmp_path, {"staging": {"url": f"{url}?dbname={source_name}"},
                                     "locked": {"url": url, "protected": True}})
    data = yaml.safe_load(config.read_text())
    data["source"] = {"url": source, "schemas": ["public"]}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 2 and "is the source database" in output and len(output.strip().splitlines()) == 1, output
    code, output = _cli("refresh", "locked", "--config", str(config))
    assert code == 2 and "protected" in output, output
    assert _databases(pg_databases.admin_url, name) == []
    assert _count(source, "SELECT count(*) FROM customer") == 1


@pytest.mark.mysql
def test_first_mariadb_refresh_leaves_no_empty_previous_copy(mysql_databases: ServerDatabases,
                                                             tmp_path: Path) -> None:
    name, url = _missing(mysql_databases, "ds_first")
    config = str(tiny_project(tmp_path, {"staging": {"url": url}}))
    code, output = _cli("refresh", "staging", "--config", config)
    assert code == 0, output
    assert _databases(mysql_databases.admin_url, name) == [name]
    code, output = _cli("rollback", "staging", "--config", config)
    assert code == 1 and "no previous copy of staging" in output
    assert _databases(mysql_databases.admin_url, name) == [name]
    code, output = _cli("refresh", "staging", "--config", config)
    assert code == 0, output
    assert _databases(mysql_databases.admin_url, name) == [name, name + "__ds_prev"]
    assert _count(url, f"SELECT count(*) FROM `{name}__ds_prev`.customer") == 50
    code, output = _cli("rollback", "staging", "--config", config)
    assert code == 0, output
    assert _count(url, "SELECT count(*) FROM datastage_refresh_log") == 1  # the first copy is live again
    assert _databases(mysql_databases.admin_url, name) == [name, name + "__ds_prev"]
    assert _count(url, f"SELECT count(*) FROM `{name}__ds_prev`.datastage_refresh_log") == 2


@pytest.mark.mysql
def test_a_refresh_of_an_empty_mariadb_target_drops_an_older_previous_copy(mysql_databases: ServerDatabases,
                                                                           tmp_path: Path) -> None:
    url = mysql_databases.create("ds_first")
    name = str(sa.engine.make_url(url).database)
    execute(url, f"CREATE DATABASE `{name}__ds_prev`", f"CREATE TABLE `{name}__ds_prev`.old (id int)")
    config = str(tiny_project(tmp_path, {"staging": {"url": url}}))
    code, output = _cli("refresh", "staging", "--config", config)
    assert code == 0, output
    # Nothing was current, so nothing became the previous copy, and the older one went out.
    assert _databases(mysql_databases.admin_url, name) == [name]
    assert _count(url, "SELECT count(*) FROM customer") == 50
