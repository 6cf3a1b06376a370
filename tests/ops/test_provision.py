"""On-demand environments (provision, teardown, gc, envs) and access grants, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases

import datastage
from datastage.cli import main
from datastage.ops.ondemand import gc, load_registry
from datastage.settings import load_project


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_sqlite_provision_envs_teardown_and_gc(demo_project: Path) -> None:
    config = str(demo_project)
    code, output = _cli("provision", "pr_1", "--from", "staging", "--config", config)
    assert code == 2 and "environment 'staging' has no copy yet; refresh it first" in output
    datastage.refresh("staging", config=demo_project)
    code, output = _cli("provision", "pr_1", "--from", "staging", "--ttl", "8h", "--config", config, "--json")
    assert code == 0, output
    entry = json.loads(output)
    assert entry["name"] == "pr_1" and entry["source_environment"] == "staging" and entry["rows"] > 5000
    copy = demo_project.parent / "pr_1.db"
    staging = demo_project.parent / "staging.db"
    for table in ("customer", "orders", "payment"):
        ours = sqlite3.connect(copy).execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        theirs = sqlite3.connect(staging).execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        assert ours == theirs and ours
    assert sqlite3.connect(copy).execute("PRAGMA foreign_key_check").fetchall() == []
    code, output = _cli("provision", "pr_1", "--from", "staging", "--config", config)
    assert code == 2 and "'pr_1' already exists" in output
    code, output = _cli("provision", "Bad-Name", "--from", "staging", "--config", config)
    assert code == 2 and "'Bad-Name' is not a valid name" in output
    code, output = _cli("provision", "pr_2", "--from", "staging", "--ttl", "soon", "--config", config)
    assert code == 2 and "--ttl must be a number and a unit" in output
    code, output = _cli("envs", "--config", config, "--json")
    rows = {r["name"]: r for r in json.loads(output)}
    assert rows["staging"]["kind"] == "configured" and rows["staging"]["last_verdict"] == "pass"
    assert rows["pr_1"]["kind"] == "on-demand" and rows["pr_1"]["from"] == "staging"
    assert rows["pr_1"]["size_bytes"] == copy.stat().st_size and rows["pr_1"]["expired"] is False
    # gc drops only what has expired.
    project = load_project(demo_project)
    assert gc(project) == []
    expired = gc(project, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=9))
    assert [e.name for e in expired] == ["pr_1"] and not copy.exists()
    assert load_registry(project) == {}
    kinds = [(e["environment"], e["kind"]) for e in datastage.history(config=demo_project)]
    assert kinds[-2:] == [("pr_1", "provision"), ("pr_1", "teardown")]
    code, output = _cli("teardown", "pr_1", "--config", config)
    assert code == 2 and "no on-demand environment called 'pr_1'" in output


SOURCE_SQL = """
CREATE TABLE customer (customer_id serial PRIMARY KEY, email text NOT NULL UNIQUE, full_name text NOT NULL,
                       password_hash text NOT NULL);
CREATE TABLE orders (order_id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customer,
                     amount numeric(10, 2) NOT NULL);
INSERT INTO customer (email, full_name, password_hash)
SELECT 'person' || i || '@mail.example', 'Person Number' || i, md5(i::text) FROM generate_series(1, 300) i;
INSERT INTO orders (customer_id, amount) SELECT 1 + mod(i, 300), i / 10.0 FROM generate_series(1, 900) i;
"""
RULES = {
    "version": 1,
    "default": "fail",
    "tables": {
        "customer": {"email": {"strategy": "email", "unique": True}, "full_name": "person.full_name",
                     "password_hash": {"strategy": "hash", "length": 32}},
        "orders": {"amount": "keep"},
    },
}


class _Batches:
    """A progress display that remembers the size of every batch written."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def stage(self, name: str) -> None:
        pass

    def table(self, name: str, rows: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        self.sizes.append(rows)


def test_provision_copies_in_the_configured_batch_size(demo_project: Path) -> None:
    demo_project.write_text(demo_project.read_text().replace("    keep: [app_settings]",
                                                             "    keep: [app_settings]\n    batch_size: 500"))
    datastage.refresh("staging", config=demo_project)
    batches = _Batches()
    entry = datastage.provision("pr_batch", from_env="staging", config=demo_project, progress=batches)
    assert sum(batches.sizes) == entry.rows and entry.rows > 5000
    assert max(batches.sizes) == 500  # staging's batch_size, not the 10,000 default


@pytest.fixture
def roles(pg_server: str) -> Iterator[tuple[str, str]]:
    """Two throwaway roles (dropped with their privileges afterwards)."""
    suffix = secrets.token_hex(3)
    reader, writer = f"ds_reader_{suffix}", f"ds_writer_{suffix}"
    engine = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {reader}")
        conn.exec_driver_sql(f"CREATE ROLE {writer}")
    try:
        yield reader, writer
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {reader}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {writer}")
        engine.dispose()


def _pg_project(tmp_path: Path, dbs: ServerDatabases, **staging: object) -> tuple[Path, str, str]:
    source = dbs.create("ds_src")
    target = dbs.create("ds_stage")
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        for statement in SOURCE_SQL.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(RULES))
    config = {"source": {"url": source},
              "environments": {"staging": {"url": target, "rules": "rules.yaml", **staging}}}
    (tmp_path / "datastage.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path / "datastage.yaml", source, target


def _privileges(url: str, role: str, table: str) -> dict[str, bool]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {p: bool(conn.execute(sa.text("SELECT has_table_privilege(:r, :t, :p)"),
                                         {"r": role, "t": f"public.{table}", "p": p}).scalar())
                    for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_grants_and_post_load_sql_on_postgres(roles: tuple[str, str], pg_databases: ServerDatabases,
                                               tmp_path: Path) -> None:
    # ``roles`` first: its teardown runs after the databases holding the grants are dropped.
    reader, writer = roles
    config, _, target = _pg_project(
        tmp_path, pg_databases,
        access=[{"role": reader, "privileges": "read"}, {"role": writer, "privileges": "write"}],
        hooks={"post_load": [{"sql": "UPDATE customer SET password_hash = 'reset-for-staging' "
                                     "WHERE customer_id <= 10 AND email LIKE '%@example.com';"}]})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", [c.summary for c in result.checks if c.status != "PASS"]
    assert _privileges(target, reader, "customer") == {"SELECT": True, "INSERT": False, "UPDATE": False,
                                                       "DELETE": False}
    assert _privileges(target, writer, "orders") == {"SELECT": True, "INSERT": True, "UPDATE": True,
                                                     "DELETE": True}
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        grantees = {r[0] for r in conn.exec_driver_sql(
            "SELECT grantee FROM information_schema.role_table_grants WHERE table_schema = 'public' "
            "AND table_name = 'customer'")}
        reset = conn.exec_driver_sql("SELECT count(*) FROM customer WHERE password_hash = 'reset-for-staging'"
                                     ).scalar()
        schemas = {r[0] for r in conn.exec_driver_sql("SELECT nspname FROM pg_namespace")}
    engine.dispose()
    assert {reader, writer} <= grantees
    assert reset == 10
    assert not [s for s in schemas if "__ds_shadow" in s]
    report = json.loads(result.report.json.read_text()) if result.report else {}
    assert report["operations"]["access"] == [{"role": reader, "privileges": "read"},
                                              {"role": writer, "privileges": "write"}]
    assert report["operations"]["hooks"][0]["point"] == "post_load"


@pytest.mark.postgres
def test_grant_to_a_missing_role_fails_and_leaves_the_target(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    config, _, target = _pg_project(tmp_path, pg_databases,
                                    access=[{"role": "ds_no_such_role_x", "privileges": "read"}])
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 1
    assert 'role "ds_no_such_role_x" does not exist' in output and len(output.strip().splitlines()) == 1
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                                      "('pg_catalog', 'information_schema')").scalar()
    engine.dispose()
    assert tables == 0


@pytest.mark.postgres
def test_postgres_provision_teardown_and_gc(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    config, _, target = _pg_project(tmp_path, pg_databases)
    assert datastage.refresh("staging", config=config).verdict == "pass"
    name = f"ds_pr_{secrets.token_hex(3)}"
    pg_databases.created.append(name)  # dropped at the end even if the test fails
    entry = datastage.provision(name, from_env="staging", ttl="1h", config=config)
    assert entry.rows == 1200 and entry.dialect == "postgresql" and entry.database == name
    copy_url = pg_databases.url(name)
    engine = sa.create_engine(copy_url)
    with engine.connect() as conn:
        copied = conn.exec_driver_sql("SELECT email, full_name FROM customer ORDER BY customer_id").all()
        fks = conn.exec_driver_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").scalar()
        next_id = conn.exec_driver_sql("SELECT nextval('customer_customer_id_seq')").scalar()
    engine.dispose()
    staged = sa.create_engine(target)
    with staged.connect() as conn:
        original = conn.exec_driver_sql("SELECT email, full_name FROM customer ORDER BY customer_id").all()
    staged.dispose()
    assert copied == original and len(copied) == 300 and fks == 1 and next_id == 301
    code, output = _cli("envs", "--config", str(config), "--json")
    assert code == 0, output
    rows = {r["name"]: r for r in json.loads(output)}
    assert rows[name]["size_bytes"] > 1_000_000 and rows["staging"]["size_bytes"] > 1_000_000
    project = load_project(config)
    assert [e.name for e in gc(project, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))] == [name]
    admin = sa.create_engine(pg_databases.admin_url)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
    admin.dispose()
    assert exists == 0
    assert [e["kind"] for e in datastage.history(config=config)][-2:] == ["provision", "teardown"]


@pytest.fixture
def mysql_users(mysql_server: str) -> Iterator[tuple[str, str]]:
    """Two throwaway MariaDB users (dropped afterwards)."""
    suffix = secrets.token_hex(3)
    reader, writer = f"ds_ro_{suffix}", f"ds_rw_{suffix}"
    engine = sa.create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for user in (reader, writer):
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'not-used-{suffix}'")
    try:
        yield reader, writer
    finally:
        with engine.connect() as conn:
            for user in (reader, writer):
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        engine.dispose()


def _grants(admin_url: str, user: str) -> list[str]:
    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql(f"SHOW GRANTS FOR '{user}'@'%%'")]
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mariadb_post_load_sql_and_grants_only_after_a_good_swap(demo_project: Path, mysql_users: tuple[str, str],
                                                                 mysql_databases: ServerDatabases) -> None:
    reader, writer = mysql_users
    target = mysql_databases.create()
    database = sa.engine.make_url(target).database
    data = yaml.safe_load(demo_project.read_text())
    data["environments"]["staging"].update(
        url=target, access=[{"role": f"{reader}@%", "privileges": "read"}],
        hooks={"post_load": [{"sql": "UPDATE customer SET phone = NULL WHERE customer_id <= 50 "
                                     "AND phone LIKE '%';"}]})
    demo_project.write_text(yaml.safe_dump(data, sort_keys=False))
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass", [c.summary for c in result.checks if c.status != "PASS"]
    assert any(f"GRANT SELECT ON `{database}`.*" in g for g in _grants(mysql_databases.admin_url, reader))
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        nulled = conn.exec_driver_sql("SELECT count(*) FROM customer WHERE customer_id <= 50 AND phone IS NULL"
                                      ).scalar()
        staged = conn.exec_driver_sql("SELECT count(*) FROM customer WHERE customer_id <= 50").scalar()
    engine.dispose()
    assert staged and nulled == staged
    # A refresh that fails verification grants nothing, although its shadow got that far.
    data["environments"]["staging"]["access"].append({"role": f"{writer}@%", "privileges": "write"})
    demo_project.write_text(yaml.safe_dump(data, sort_keys=False))
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("    ship_email: email ", "    ship_email: {strategy: email, "
                                               "when: \"order_id < 0\"} "))
    failed = datastage.refresh("staging", config=demo_project)
    assert failed.verdict == "fail"
    assert not any(database in g for g in _grants(mysql_databases.admin_url, writer))


@pytest.mark.postgres
def test_postgres_provision_carries_the_source_warn_verdict_and_run_id(pg_databases: ServerDatabases,
                                                                        tmp_path: Path) -> None:
    config, source, _ = _pg_project(tmp_path, pg_databases)
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE customer ADD COLUMN phone text")
        conn.exec_driver_sql("UPDATE customer SET phone = '+47 9' || lpad((customer_id * 7919)::text, 7, '0')")
    engine.dispose()
    rules = dict(RULES, checks={"kept_identifiers": "warn", "leak_identifiers": "warn"})
    # Phone numbers "masked" whole are found by the leak check: a warning, by the rules.
    phone = {"strategy": "partial", "keep_first": 40}
    rules["tables"] = {**RULES["tables"], "customer": {**RULES["tables"]["customer"], "phone": phone}}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    refreshed = datastage.refresh("staging", config=config)
    assert refreshed.verdict == "warn", [c.summary for c in refreshed.checks if c.status != "PASS"]
    name = f"ds_pr_{secrets.token_hex(3)}"
    pg_databases.created.append(name)  # dropped at the end even if the test fails
    code, output = _cli("provision", name, "--from", "staging", "--config", str(config), "--json")
    assert code == 0, output
    entry = json.loads(output)
    assert (entry["verdict"], entry["source_verdict"], entry["source_run_id"]) == ("warn", "warn",
                                                                                    refreshed.run_id)
    assert entry["run_id"] != refreshed.run_id and entry["rows"] == 1200
    code, output = _cli("provision", f"{name}_t", "--from", "staging", "--config", str(config))
    pg_databases.created.append(f"{name}_t")
    assert code == 0, output
    assert f"(its refresh {refreshed.run_id}: warn)" in output and "verdict warn" in output
    provisioned = [h for h in datastage.history(config=config) if h.get("kind") == "provision"]
    assert [(h["environment"], h["verdict"], h["source_verdict"], h["source_run_id"]) for h in provisioned] == [
        (name, "warn", "warn", refreshed.run_id), (f"{name}_t", "warn", "warn", refreshed.run_id)]
    code, output = _cli("envs", "--config", str(config), "--json")
    assert code == 0, output
    rows = {r["name"]: r for r in json.loads(output)}
    assert rows["staging"]["last_verdict"] == "warn" and rows["staging"]["source_run_id"] is None
    assert (rows[name]["last_verdict"], rows[name]["source_verdict"], rows[name]["source_run_id"]) == (
        "warn", "warn", refreshed.run_id)
    # The copy's own refresh log says warn too, so a copy of the copy is not a clean pass either.
    engine = sa.create_engine(pg_databases.url(name))
    with engine.connect() as conn:
        logged = conn.exec_driver_sql("SELECT run_id, verdict FROM datastage_refresh_log").all()
    engine.dispose()
    assert [tuple(r) for r in logged] == [(entry["run_id"], "warn")]
    project = load_project(config)
    registry = load_registry(project)
    assert registry[name].source_run_id == refreshed.run_id and registry[name].verdict == "warn"
    assert sorted(e.name for e in gc(project, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))) == []
    for copy in (name, f"{name}_t"):
        datastage.teardown(copy, config=config)
    assert load_registry(project) == {}
