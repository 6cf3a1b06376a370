"""``source.schemas`` applied per dialect: PostgreSQL schemas, MariaDB databases, SQLite only ``main``;
an environment's copy is read back (``provision``) where its own dialect put it."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases
from endings_support import tiny_project
from load_support import execute, rows

from datastage.cli import main


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _set_source(config: Path, source: dict[str, object]) -> None:
    data = yaml.safe_load(config.read_text())
    data["source"] = source
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.postgres
@pytest.mark.mysql
def test_provision_from_mariadb_and_sqlite_environments_of_a_postgres_source_with_schemas(
        pg_databases: ServerDatabases, mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    source = pg_databases.create("ds_src")
    execute(source, "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)",
            "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customer, amount int)",
            "INSERT INTO customer SELECT i, 'Person Number' || i, 'person' || i || '@mail.test' "
            "FROM generate_series(1, 50) i",
            "INSERT INTO orders SELECT i, 1 + i % 50, i * 3 FROM generate_series(1, 200) i")
    maria = mysql_databases.create("ds_maria")
    copy_name = f"ds_pr_{secrets.token_hex(3)}"
    mysql_databases.created.append(copy_name)
    config = tiny_project(tmp_path, {"maria": {"url": maria}, "lite": {"url": "sqlite:///lite.db"}})
    _set_source(config, {"url": source, "schemas": ["public"]})  # as README's example config has it
    for env in ("maria", "lite"):
        code, output = _cli("refresh", env, "--config", str(config))
        assert code == 0, output
    code, output = _cli("provision", copy_name, "--from", "maria", "--config", str(config))
    assert code == 0, output
    copy_url = mysql_databases.url(copy_name)
    assert rows(copy_url, "SELECT count(*) FROM customer") == [(50,)]
    assert rows(copy_url, "SELECT name, email FROM customer ORDER BY id") == rows(
        maria, "SELECT name, email FROM customer ORDER BY id")
    code, output = _cli("provision", "pr_lite", "--from", "lite", "--config", str(config))
    assert code == 0, output
    copied = sqlite3.connect(tmp_path / "pr_lite.db").execute("SELECT count(*) FROM orders").fetchone()
    assert copied == (200,)
    for name in (copy_name, "pr_lite"):
        code, output = _cli("teardown", name, "--config", str(config))
        assert code == 0, output


def test_a_sqlite_source_takes_only_main(tmp_path: Path) -> None:
    config = tiny_project(tmp_path, {"staging": {"url": "sqlite:///staging.db"}})
    source = str(yaml.safe_load(config.read_text())["source"]["url"])
    _set_source(config, {"url": source, "schemas": ["main"]})
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 0, output
    _set_source(config, {"url": source, "schemas": ["public"]})
    for command in (["refresh", "staging"], ["plan", "staging"], ["provision", "pr_1", "--from", "staging"]):
        code, output = _cli(*command, "--config", str(config))
        assert code == 2, output
        assert output.strip() == (f"error: {config}:3: source.schemas: a SQLite source has one schema, main, "
                                  "so 'public' cannot be read; remove schemas: (schemas are PostgreSQL schemas, "
                                  "or MariaDB/MySQL databases)")
    assert sqlite3.connect(tmp_path / "staging.db").execute("SELECT count(*) FROM customer").fetchone() == (50,)


@pytest.mark.mysql
def test_a_mariadb_source_reads_databases_as_its_schemas(mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    shop = mysql_databases.create("ds_shop")
    crm = mysql_databases.create("ds_crm")
    execute(shop, "CREATE TABLE orders (id int PRIMARY KEY, amount int)", "INSERT INTO orders VALUES (1, 10)")
    execute(crm, "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, email varchar(80) NOT NULL UNIQUE)",
            "INSERT INTO customer VALUES (1, 'Person Number1', 'person1@mail.test')")
    config = tiny_project(tmp_path, {"staging": {"url": "sqlite:///staging.db"}})
    crm_name = str(sa.engine.make_url(crm).database)
    rules = tmp_path / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("  customer:", f"  {crm_name}.customer:"))
    _set_source(config, {"url": shop, "schemas": [str(sa.engine.make_url(shop).database), crm_name]})
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 0, output
    staged = sqlite3.connect(tmp_path / "staging.db")
    assert staged.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    assert staged.execute("SELECT email FROM customer").fetchone() != ("person1@mail.test",)
    _set_source(config, {"url": shop, "schemas": ["public"]})
    for command in ("refresh", "plan"):
        code, output = _cli(command, "staging", "--config", str(config))
        assert code == 2, output
        assert output.strip() == (f"error: {config}:3: source.schemas: no database 'public' on the source server "
                                  "(on MariaDB/MySQL each schema is a database); list existing databases, or "
                                  "remove schemas: to read the URL's database")


@pytest.mark.postgres
def test_a_postgres_schema_that_does_not_exist_is_named(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    source = pg_databases.create("ds_src")
    execute(source, "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)")
    config = tiny_project(tmp_path, {"staging": {"url": "sqlite:///staging.db"}})
    _set_source(config, {"url": source, "schemas": ["public", "sales"]})
    code, output = _cli("plan", "staging", "--config", str(config))
    assert code == 2, output
    assert output.strip() == (f"error: {config}:3: source.schemas: no schema 'sales' in the source database; "
                              "list existing schemas, or remove schemas: to read the default one")
