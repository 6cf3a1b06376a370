"""PostgreSQL targets with ``shadow: database``: a new database per refresh, swapped in by renaming
databases; one previous copy, rollback, failure paths, lock and stale shadows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import PAGILA_RULES, execute, pagila_source, rows, scalar, write_project
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.targets.registry import open_target

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pagila(pg_server: str) -> Iterator[str]:
    yield from pagila_source(pg_server)


@pytest.fixture
def target(pg_databases: ServerDatabases) -> Iterator[tuple[str, str]]:
    """(URL, name) of a target database that does not exist yet; it and its copies are dropped afterwards."""
    name = make_url(pg_databases.create("ds_dbshadow")).database or ""
    with pg_databases.engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{name}"')
    try:
        yield pg_databases.url(name), name
    finally:
        with pg_databases.engine.connect() as conn:
            for (database,) in conn.exec_driver_sql(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (name,)).all():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in ("ds_dbshadow_reader", "ds_dbshadow_owner"):
                with contextlib.suppress(sa.exc.DBAPIError):  # still in use by another test's databases
                    conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def _databases(admin: str, name: str) -> list[str]:
    return [r[0] for r in rows(admin, f"SELECT datname FROM pg_database WHERE datname LIKE '{name}%' ORDER BY 1")]


def _log(url: str) -> set[str]:
    return {r[0] for r in rows(url, "SELECT run_id FROM datastage_refresh_log")}


def test_refreshes_swap_databases_keep_one_previous_and_roll_back(
        pagila: str, pg_server: str, target: tuple[str, str], tmp_path: Path) -> None:
    url, name = target
    config = write_project(tmp_path, pagila, {"staging": {"url": url, "shadow": "database", "keep": ["app_settings"]}})
    first = datastage.refresh("staging", config=config)  # creates the database
    assert first.verdict == "pass", first.checks
    assert _databases(pg_server, name) == [name]
    assert scalar(url, "SELECT count(*) FROM rental") == scalar(pagila, "SELECT count(*) FROM rental")
    assert scalar(url, "SELECT count(*) FROM pg_partitioned_table") == scalar(pagila, "SELECT count(*) FROM "
                                                                                    "pg_partitioned_table")
    assert scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%%__ds_%%'") == 0
    assert scalar(url, "SELECT count(*) FROM app_settings") == 0  # nothing to keep yet

    execute(url, "INSERT INTO app_settings VALUES ('payment_gateway', 'https://sandbox.example.com')")
    execute(pg_server, f'ALTER DATABASE "{name}" SET work_mem = \'7MB\'',
            f'ALTER DATABASE "{name}" SET search_path = "$user", public, extensions',
            f'COMMENT ON DATABASE "{name}" IS \'staging for the shop\'',
            "DO $$ BEGIN CREATE ROLE ds_dbshadow_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC',
            f'GRANT CONNECT ON DATABASE "{name}" TO ds_dbshadow_reader WITH GRANT OPTION',
            f'ALTER ROLE ds_dbshadow_reader IN DATABASE "{name}" SET statement_timeout = \'5s\'')
    acl = f"SELECT datacl::text FROM pg_database WHERE datname = '{name}'"
    grants = scalar(pg_server, acl)
    session = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)  # an application still connected
    second = datastage.refresh("staging", config=config)
    assert second.verdict == "pass", second.checks
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # ended by the swap: it now reconnects to the new copy
    session.close()
    assert _databases(pg_server, name) == [name, f"{name}__ds_prev"]
    assert rows(url, "SELECT key, value FROM app_settings") == [("payment_gateway", "https://sandbox.example.com")]
    assert scalar(url, "SHOW work_mem") == "7MB"
    assert scalar(url, "SHOW search_path") == '"$user", public, extensions'
    assert scalar(pg_server, acl) == grants and "=Tc/" not in grants  # PUBLIC stays shut out
    assert scalar(pg_server, f"SELECT s.setconfig::text FROM pg_db_role_setting s JOIN pg_database d ON "
                             f"d.oid = s.setdatabase WHERE d.datname = '{name}' AND s.setrole <> 0") == \
        "{statement_timeout=5s}"
    assert scalar(pg_server, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                             f"WHERE datname = '{name}'") == "staging for the shop"
    assert _log(url) == {first.run_id, second.run_id}

    third = datastage.refresh("staging", config=config)
    assert third.verdict == "pass"
    assert _databases(pg_server, name) == [name, f"{name}__ds_prev"]
    assert _log(url) == {first.run_id, second.run_id, third.run_id}

    restored = datastage.rollback("staging", config=config)
    assert restored.restored == f"database {name}"
    assert _log(url) == {first.run_id, second.run_id}
    assert _databases(pg_server, name) == [name, f"{name}__ds_prev"]
    assert scalar(url, "SELECT count(*) FROM customer") > 0

    # An on-demand copy of it is one plain database, and teardown leaves nothing behind.
    copy = f"{name}_pr"
    entry = datastage.provision(copy, from_env="staging", config=config)
    assert entry.rows > 0
    assert _databases(pg_server, copy) == [copy]
    datastage.teardown(copy, config=config)
    assert _databases(pg_server, copy) == []


def test_a_failed_verification_drops_the_shadow_database_and_keeps_the_target(
        pagila: str, pg_server: str, target: tuple[str, str], tmp_path: Path) -> None:
    url, name = target
    leaky = {**PAGILA_RULES, "tables": {**PAGILA_RULES["tables"], "customer": {
        **PAGILA_RULES["tables"]["customer"], "email": {"strategy": "partial", "keep_first": 200}}}}
    config = write_project(tmp_path, pagila, {"staging": {"url": url, "shadow": "database"}})
    first = datastage.refresh("staging", config=config)
    assert first.verdict == "pass"
    write_project(tmp_path, pagila, {"staging": {"url": url, "shadow": "database"}}, rules=leaky)
    outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config), "--json"])
    assert outcome.exit_code == 3, outcome.output
    assert _databases(pg_server, name) == [name]
    assert _log(url) == {first.run_id}


def test_lock_stale_shadows_and_configuration_errors(pagila: str, pg_server: str, target: tuple[str, str],
                                                     tmp_path: Path) -> None:
    url, name = target
    config = write_project(tmp_path, pagila, {"staging": {"url": url, "shadow": "database"}})
    with open_target(url, "staging", "database").lock("20261127-101500-abc123"):
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 4, outcome.output
    assert "another refresh of staging is running" in outcome.output and "run 20261127-101500-abc123" in outcome.output
    assert _databases(pg_server, name) == []

    execute(pg_server, f'CREATE DATABASE "{name}__ds_shadow_20261127_000000_dead00"')  # left by a killed refresh
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert _databases(pg_server, name) == [name]
    # Killed in the middle of a swap: connections to the target still switched off.
    execute(pg_server, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert scalar(url, "SELECT count(*) FROM datastage_refresh_log") == 2

    admin = write_project(tmp_path / "admin", pagila, {"staging": {"url": pg_server.rsplit("/", 1)[0] + "/postgres",
                                                                   "shadow": "database"}})
    outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(admin)])
    assert outcome.exit_code == 2
    assert "environments.staging.shadow: shadow: database cannot swap the 'postgres' database" in outcome.output


def test_an_owner_with_createdb_only_refreshes_and_notes_what_it_cannot_carry(
        pagila: str, pg_server: str, target: tuple[str, str], tmp_path: Path) -> None:
    url, name = target
    execute(pg_server,
            "DO $$ BEGIN CREATE ROLE ds_dbshadow_owner LOGIN CREATEDB; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            "DO $$ BEGIN CREATE ROLE ds_dbshadow_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f'CREATE DATABASE "{name}" OWNER ds_dbshadow_owner',
            f'ALTER ROLE ds_dbshadow_reader IN DATABASE "{name}" SET work_mem = \'9MB\'')
    owner_url = str(make_url(url).set(username="ds_dbshadow_owner").render_as_string(hide_password=False))
    config = write_project(tmp_path, pagila, {"staging": {"url": owner_url, "shadow": "database"}})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert result.load is not None
    assert any("setting work_mem of role ds_dbshadow_reader not carried" in note for note in result.load.notes)
    assert scalar(url, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()") == \
        "ds_dbshadow_owner"
    assert scalar(url, "SELECT count(*) FROM customer") > 0
    assert _databases(pg_server, name) == [name, f"{name}__ds_prev"]
