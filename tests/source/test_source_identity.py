"""The source is recognised by what the server says, not by how a URL spells it.

Each test points a target at the source through another spelling (host name, socket,
``hostaddr=``, ``dbname=``, ``PGHOST``/``PGDATABASE``, a libpq service file, a MySQL option
file, a hard link, a symlink, a ``file:`` URI, a relative path) and checks that the command
exits 2 with one line naming the config file and key, that every source row is unchanged,
and that nothing was created: no database, schema, table or file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import execute, mysql_fingerprint, pg_fingerprint, rows, scalar, write_project
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.errors import SafetyError
from datastage.settings import load_project
from datastage.source.identity import check_not_source, footprint, server_identity

RULES: dict[str, Any] = {"version": 1, "default": "keep",
                         "tables": {"customer": {"email": {"strategy": "email", "unique": True},
                                                 "name": "fake.first_name"}}}
SOURCE_SQL = (
    "CREATE TABLE customer (id integer PRIMARY KEY, email varchar(100) NOT NULL, name varchar(100))",
    "INSERT INTO customer VALUES (1, 'ann@example.org', 'Ann'), (2, 'bob@example.org', 'Bob'), "
    "(3, 'cy@example.org', NULL)",
    "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customer (id), "
    "amount numeric(8, 2))",
    "INSERT INTO orders VALUES (10, 1, 9.50), (11, 1, 20.00), (12, 3, 0.99)",
)
PG_SOCKET_DIR = "/var/run/postgresql"
MYSQL_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _one_line_refusal(code: int, output: str, config: Path, key: str) -> None:
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith(f"error: {config}: {key}: "), output
    assert "is the source database" in lines[0], output


def _host_name(port: int) -> str:
    """The machine's host name, when it resolves to an address the server listens on."""
    name = socket.gethostname()
    try:
        with socket.create_connection((name, port), timeout=3):
            return name
    except OSError:
        pytest.skip(f"the host name {name} does not reach the server on port {port}")
    raise AssertionError("unreachable")


# -- PostgreSQL ---------------------------------------------------------------------------------

def _pg_databases(admin: str, *names: str) -> list[str]:
    """Databases on the server whose names start with one of ``names`` (ours: nobody else uses them)."""
    found: list[str] = []
    for name in names:
        found += [r[0] for r in rows(admin, f"SELECT datname FROM pg_database WHERE datname LIKE '{name}%' "
                                            "ORDER BY 1")]
    return sorted(set(found))


@pytest.fixture
def pg_source(pg_databases: ServerDatabases) -> str:
    url = pg_databases.create("ds_idsrc")
    execute(url, *SOURCE_SQL)
    return url


def _pg_spellings(source: str, tmp_path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(label, target URL, environment variables) — every one reaches the source database."""
    parsed = make_url(source)
    name, port, user = parsed.database, parsed.port or 5432, parsed.username or "postgres"
    other = f"ds_idother_{secrets.token_hex(3)}"
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(f"[ds_src]\nhost=127.0.0.1\nport={port}\ndbname={name}\nuser={user}\n")
    spellings = [
        ("dbname= query parameter", f"postgresql://{user}@127.0.0.1:{port}/{other}?dbname={name}", {}),
        ("Unix socket in host=", f"postgresql://{user}@/{name}?host={PG_SOCKET_DIR}", {}),
        ("localhost", f"postgresql://{user}@localhost:{port}/{name}", {}),
        ("host name", f"postgresql://{user}@{_host_name(port)}:{port}/{name}", {}),
        ("hostaddr=", f"postgresql://{user}@dummy.invalid:{port}/{name}?hostaddr=127.0.0.1", {}),
        ("PGHOST and PGDATABASE", f"postgresql://{user}@", {"PGHOST": "127.0.0.1", "PGPORT": str(port),
                                                            "PGDATABASE": name or ""}),
        ("service file", "postgresql://?service=ds_src", {"PGSERVICEFILE": str(service_file)}),
    ]
    return spellings


@pytest.mark.postgres
def test_postgres_spellings_of_the_source_are_refused(pg_source: str, pg_server: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source_name = make_url(pg_source).database or ""
    before = pg_fingerprint(pg_source)
    databases = _pg_databases(pg_server, source_name, "ds_idother_")
    source_identity = server_identity(pg_source)
    for number, (label, url, variables) in enumerate(_pg_spellings(pg_source, tmp_path)):
        with monkeypatch.context() as patch:
            for variable, value in variables.items():
                patch.setenv(variable, value)
            # The authority: the server's identity, whatever the URL text says.
            assert server_identity(url).same_database(source_identity), label
            for shadow in ("schema", "database"):
                folder = tmp_path / f"p{number}-{shadow}"
                marker = folder / "hook-ran"
                # Hooks get the environment's URL: refused before the lock, none of them runs.
                hooks = {"pre_refresh": [{"sql": "DELETE FROM orders"}], "on_failure": [{"run": f"touch {marker}"}]}
                env: dict[str, Any] = {"url": url, "hooks": hooks}
                if shadow == "database":
                    env["shadow"] = "database"
                config = write_project(folder, pg_source, {"staging": env}, RULES)
                code, output = _cli("refresh", "staging", "--config", str(config))
                _one_line_refusal(code, output, config, "environments.staging.url")
                with pytest.raises(SafetyError, match="is the source database"):
                    datastage.refresh("staging", config=config)
                assert not marker.exists()
        assert pg_fingerprint(pg_source) == before, label
        assert _pg_databases(pg_server, source_name, "ds_idother_") == databases, label


@pytest.mark.postgres
def test_postgres_target_named_after_the_source_is_refused_before_it_exists(pg_source: str, pg_server: str,
                                                                            tmp_path: Path) -> None:
    """``shadow: database`` creates the database its path names; a query naming another one does not hide it."""
    name = make_url(pg_source).database
    missing = f"ds_idmissing_{secrets.token_hex(3)}"
    before = pg_fingerprint(pg_source)
    url = f"postgresql://postgres@localhost:{make_url(pg_source).port or 5432}/{name}?dbname={missing}"
    reach = footprint(url)
    assert not reach.identities[0].exists and reach.connected == missing and reach.named == name
    config = write_project(tmp_path, pg_source, {"staging": {"url": url, "shadow": "database"}}, RULES)
    code, output = _cli("refresh", "staging", "--config", str(config))
    _one_line_refusal(code, output, config, "environments.staging.url")
    assert pg_fingerprint(pg_source) == before
    assert _pg_databases(pg_server, missing, name or "") == [name]


@pytest.mark.postgres
def test_postgres_url_whose_query_overrides_its_database_is_refused(pg_source: str, pg_databases: ServerDatabases,
                                                                   tmp_path: Path) -> None:
    """Not the source, but the copies and hooks would follow the path while the connection follows the query."""
    path_db, query_db = pg_databases.create("ds_idpath"), pg_databases.create("ds_idquery")
    url = f"{path_db}?dbname={make_url(query_db).database}"
    config = write_project(tmp_path, pg_source, {"staging": {"url": url}}, RULES)
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "environments.staging.url" in output and "but its connection opens" in output
    for db in (path_db, query_db):
        assert pg_fingerprint(db)["schemas"] == ["public"] and pg_fingerprint(db)["tables"] == {}


@pytest.mark.postgres
def test_postgres_other_database_on_the_same_server_still_refreshes(pg_source: str, pg_databases: ServerDatabases,
                                                                   tmp_path: Path) -> None:
    target = make_url(pg_databases.create("ds_idok"))
    spelled = f"postgresql://postgres@{_host_name(target.port or 5432)}:{target.port or 5432}/{target.database}"
    before = pg_fingerprint(pg_source)
    config = write_project(tmp_path, pg_source, {"staging": {"url": spelled}}, RULES)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass" and result.exit_code == 0 and result.rows == 6
    assert scalar(target.render_as_string(hide_password=False), "SELECT count(*) FROM public.customer") == 3
    assert scalar(target.render_as_string(hide_password=False),
                  "SELECT count(*) FROM public.customer WHERE email LIKE '%@example.org'") == 0
    assert pg_fingerprint(pg_source) == before


@pytest.mark.postgres
def test_postgres_rollback_of_the_source_is_refused(pg_source: str, tmp_path: Path) -> None:
    # A previous copy beside the source's tables: a rollback would swap it in.
    execute(pg_source, "CREATE SCHEMA public__ds_prev", "CREATE TABLE public__ds_prev.customer (id integer)")
    before = pg_fingerprint(pg_source)
    port = make_url(pg_source).port or 5432
    config = write_project(tmp_path, pg_source, {"staging": {"url": f"postgresql://postgres@/"
                                                 f"{make_url(pg_source).database}?host={PG_SOCKET_DIR}&port={port}"}},
                           RULES)
    code, output = _cli("rollback", "staging", "--config", str(config))
    _one_line_refusal(code, output, config, "environments.staging.url")
    with pytest.raises(SafetyError):
        datastage.rollback("staging", config=config)
    assert pg_fingerprint(pg_source) == before


@pytest.mark.postgres
def test_postgres_provision_teardown_and_gc_never_reach_the_source(pg_source: str, pg_databases: ServerDatabases,
                                                                  pg_server: str, tmp_path: Path) -> None:
    source = make_url(pg_source)
    name, port = source.database or "", source.port or 5432
    staging = make_url(pg_databases.create("ds_idstage"))
    before = pg_fingerprint(pg_source)
    config = write_project(tmp_path, pg_source, {
        "staging": {"url": f"postgresql://postgres@{_host_name(port)}:{port}/{staging.database}"},
        "alias": {"url": f"postgresql://postgres@dummy.invalid:{port}/{name}?hostaddr=127.0.0.1"},
    }, RULES)
    # The environment to copy from is the source under another name: copying it would spread unmasked rows.
    code, output = _cli("provision", "pr_alias", "--from", "alias", "--config", str(config))
    _one_line_refusal(code, output, config, "environments.alias.url")
    assert _pg_databases(pg_server, "pr_alias") == []
    # The new copy would be the source database (same server as staging, the source's name).
    code, output = _cli("provision", name, "--from", "staging", "--config", str(config))
    _one_line_refusal(code, output, config, "environments.staging.url")
    # A registry entry that names the source (edited by hand, or a source moved next to staging).
    registry = tmp_path / ".datastage" / "provisioned.json"
    registry.parent.mkdir(exist_ok=True)
    expired = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    registry.write_text(json.dumps({name: {
        "name": name, "source_environment": "staging", "dialect": "postgresql", "database": name,
        "created_at": "2026-01-01T00:00:00Z", "expires_at": expired, "created_by": "x", "run_id": "r", "rows": 6}}))
    code, output = _cli("teardown", name, "--config", str(config))
    _one_line_refusal(code, output, config, "environments.staging.url")
    code, output = _cli("gc", "--config", str(config))
    assert code == 2 and "is the source database" in output and len(output.strip().splitlines()) == 1, output
    assert name in json.loads(registry.read_text())
    assert pg_fingerprint(pg_source) == before
    assert _pg_databases(pg_server, name) == [name]


@pytest.mark.postgres
def test_postgres_roles_that_see_less_are_still_told_apart_or_refused(pg_source: str, pg_databases: ServerDatabases,
                                                                       pg_server: str, tmp_path: Path) -> None:
    """A role without ``pg_read_all_settings`` sees no data directory; one that may not call
    ``pg_control_system()`` sees no system identifier, and then the guard refuses rather than guess."""
    role = f"ds_idrole_{secrets.token_hex(3)}"
    hidden = pg_databases.create("ds_idhidden")
    execute(pg_server, f"CREATE ROLE {role} LOGIN")
    try:
        execute(hidden, "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
        source, port = make_url(pg_source), make_url(pg_source).port or 5432
        alias = f"postgresql://{role}@localhost:{port}/{source.database}?host={PG_SOCKET_DIR}"
        seen = server_identity(alias)
        assert "data_directory" not in seen.facts() and seen.same_database(server_identity(pg_source))
        before = pg_fingerprint(pg_source)
        config = write_project(tmp_path / "a", pg_source, {"staging": {"url": alias}}, RULES)
        _one_line_refusal(*_cli("refresh", "staging", "--config", str(config)), config, "environments.staging.url")
        blind = f"postgresql://{role}@127.0.0.1:{port}/{make_url(hidden).database}"
        assert "system_identifier" not in server_identity(blind).facts()
        config = write_project(tmp_path / "b", pg_source, {"staging": {"url": blind}}, RULES)
        code, output = _cli("refresh", "staging", "--config", str(config))
        assert code == 2 and len(output.strip().splitlines()) == 1, output
        assert "cannot tell whether the target of 'staging'" in output and "environments.staging.url" in output
        assert pg_fingerprint(pg_source) == before and pg_fingerprint(hidden)["tables"] == {}
    finally:
        execute(pg_server, f"DROP ROLE IF EXISTS {role}")


@pytest.mark.postgres
def test_unreachable_servers_are_one_line_errors(pg_source: str, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    config = write_project(tmp_path / "t", pg_source, {"staging": {"url": f"postgresql://postgres@127.0.0.1:{port}/x"}},
                           RULES)
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 1 and len(output.strip().splitlines()) == 1 and "Traceback" not in output, output
    assert "environments.staging.url" in output and "to identify it" in output
    config = write_project(tmp_path / "s", f"postgresql://postgres@127.0.0.1:{port}/x",
                           {"staging": {"url": pg_source}}, RULES)
    code, output = _cli("rollback", "staging", "--config", str(config))
    assert code == 1 and len(output.strip().splitlines()) == 1 and "Traceback" not in output, output
    assert "source database" in output


@pytest.mark.postgres
def test_protected_environments_are_still_refused(pg_source: str, pg_databases: ServerDatabases,
                                                  tmp_path: Path) -> None:
    target = pg_databases.create("ds_idprot")
    config = write_project(tmp_path, pg_source, {"staging": {"url": target, "protected": True}}, RULES)
    code, output = _cli("refresh", "staging", "--config", str(config))
    assert code == 2 and "marked protected" in output
    code, output = _cli("rollback", "staging", "--config", str(config))
    assert code == 2 and "marked protected" in output
    assert pg_fingerprint(target)["tables"] == {}


# -- MariaDB / MySQL ----------------------------------------------------------------------------

@pytest.fixture
def mysql_source(mysql_databases: ServerDatabases) -> str:
    url = mysql_databases.create("ds_idsrc")
    execute(url, *SOURCE_SQL)
    return url


def _mysql_socket() -> str:
    for path in MYSQL_SOCKETS:
        if os.path.exists(path):
            return path
    pytest.skip("no MariaDB/MySQL socket found")
    raise AssertionError("unreachable")


def _mysql_spellings(source: str, tmp_path: Path) -> list[tuple[str, str]]:
    parsed = make_url(source)
    name, port, user = parsed.database, parsed.port or 3306, parsed.username or "root"
    password = f":{parsed.password}" if parsed.password else ""
    option_file = tmp_path / "my.cnf"
    option_file.write_text(f"[client]\nhost=127.0.0.1\nport={port}\ndatabase={name}\n")
    return [
        ("Unix socket", f"mysql+pymysql://{user}{password}@localhost/{name}?unix_socket={_mysql_socket()}"),
        ("localhost", f"mysql+pymysql://{user}{password}@localhost:{port}/{name}"),
        ("host name", f"mysql+pymysql://{user}{password}@{_host_name(port)}:{port}/{name}"),
        ("database= query parameter", f"mysql+pymysql://{user}{password}@127.0.0.1:{port}/ds_idother?database={name}"),
        ("option file (read_default_file)", f"mysql+pymysql://{user}{password}@/?read_default_file={option_file}"),
    ]


@pytest.mark.mysql
def test_mysql_spellings_of_the_source_are_refused(mysql_source: str, tmp_path: Path) -> None:
    before = mysql_fingerprint(mysql_source)
    source_identity = server_identity(mysql_source)
    for number, (label, url) in enumerate(_mysql_spellings(mysql_source, tmp_path)):
        assert server_identity(url).same_database(source_identity), label
        config = write_project(tmp_path / f"p{number}", mysql_source, {"staging": {"url": url}}, RULES)
        code, output = _cli("refresh", "staging", "--config", str(config))
        _one_line_refusal(code, output, config, "environments.staging.url")
        with pytest.raises(SafetyError, match="is the source database"):
            datastage.refresh("staging", config=config)
        assert mysql_fingerprint(mysql_source) == before, label
    assert rows(mysql_source, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE "
                              "'ds\\_idother%'") == []


@pytest.mark.mysql
def test_mysql_databases_the_source_reads_through_schemas_are_the_source(mysql_source: str,
                                                                       mysql_databases: ServerDatabases,
                                                                       tmp_path: Path) -> None:
    second = make_url(mysql_databases.create("ds_idsecond"))
    execute(second.render_as_string(hide_password=False), *SOURCE_SQL)
    before = mysql_fingerprint(second.render_as_string(hide_password=False))
    url = f"mysql+pymysql://root@{_host_name(second.port or 3306)}/{second.database}"
    config = write_project(tmp_path, mysql_source, {"staging": {"url": url}}, RULES)
    text = yaml.safe_load(config.read_text())
    text["source"]["schemas"] = [make_url(mysql_source).database, second.database]
    config.write_text(yaml.safe_dump(text, sort_keys=False))
    _one_line_refusal(*_cli("refresh", "staging", "--config", str(config)), config, "environments.staging.url")
    assert mysql_fingerprint(second.render_as_string(hide_password=False)) == before


@pytest.mark.mysql
def test_mysql_target_that_does_not_exist_yet_is_identified_by_the_name_it_would_use(
        mysql_source: str, mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    source = make_url(mysql_source)
    missing = f"ds_idmissing_{secrets.token_hex(3)}"
    # The first refresh creates the database its path names, whatever the query says.
    url = f"mysql+pymysql://root@{_host_name(source.port or 3306)}/{source.database}?database={missing}"
    reach = footprint(url)
    assert not reach.identities[0].exists and reach.connected == missing
    before = mysql_fingerprint(mysql_source)
    config = write_project(tmp_path / "a", mysql_source, {"staging": {"url": url}}, RULES)
    _one_line_refusal(*_cli("refresh", "staging", "--config", str(config)), config, "environments.staging.url")
    # A target owns NAME__ds_prev: a source of that name would be dropped at the swap.
    owner = mysql_databases.create("ds_idowner")
    owned = make_url(owner).set(database=make_url(owner).database + "__ds_prev").render_as_string(
        hide_password=False)
    execute(owner, f"CREATE DATABASE `{make_url(owned).database}`")
    execute(owned, *SOURCE_SQL)
    owned_before = mysql_fingerprint(owned)
    spelled = f"mysql+pymysql://root@localhost/{make_url(owner).database}?unix_socket={_mysql_socket()}"
    config = write_project(tmp_path / "b", owned, {"staging": {"url": spelled}}, RULES)
    _one_line_refusal(*_cli("refresh", "staging", "--config", str(config)), config, "environments.staging.url")
    assert mysql_fingerprint(owned) == owned_before and mysql_fingerprint(mysql_source) == before
    assert rows(mysql_source, f"SELECT schema_name FROM information_schema.schemata WHERE schema_name = "
                              f"'{missing}'") == []


@pytest.mark.mysql
def test_mysql_other_database_on_the_same_server_still_refreshes(mysql_source: str, mysql_databases: ServerDatabases,
                                                                tmp_path: Path) -> None:
    target = make_url(mysql_databases.create("ds_idok"))
    spelled = f"mysql+pymysql://root@localhost/{target.database}?unix_socket={_mysql_socket()}"
    before = mysql_fingerprint(mysql_source)
    config = write_project(tmp_path, mysql_source, {"staging": {"url": spelled}}, RULES)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass" and result.rows == 6
    plain = target.render_as_string(hide_password=False)
    assert scalar(plain, "SELECT count(*) FROM customer") == 3
    assert scalar(plain, "SELECT count(*) FROM customer WHERE email LIKE '%@example.org'") == 0
    assert mysql_fingerprint(mysql_source) == before


@pytest.mark.mysql
def test_mysql_rollback_provision_and_teardown_of_the_source_are_refused(mysql_source: str,
                                                                        mysql_databases: ServerDatabases,
                                                                        tmp_path: Path) -> None:
    source = make_url(mysql_source)
    staging = make_url(mysql_databases.create("ds_idstage"))
    execute(mysql_source, f"CREATE DATABASE `{source.database}__ds_prev`")  # a rollback would swap it in
    before = mysql_fingerprint(mysql_source)
    config = write_project(tmp_path, mysql_source, {
        "alias": {"url": f"mysql+pymysql://root@{_host_name(source.port or 3306)}/{source.database}"},
        "staging": {"url": f"mysql+pymysql://root@localhost/{staging.database}?unix_socket={_mysql_socket()}"},
    }, RULES)
    _one_line_refusal(*_cli("rollback", "alias", "--config", str(config)), config, "environments.alias.url")
    _one_line_refusal(*_cli("provision", "pr_x", "--from", "alias", "--config", str(config)), config,
                      "environments.alias.url")
    _one_line_refusal(*_cli("provision", source.database or "", "--from", "staging", "--config", str(config)),
                      config, "environments.staging.url")
    registry = tmp_path / ".datastage" / "provisioned.json"
    registry.parent.mkdir(exist_ok=True)
    registry.write_text(json.dumps({source.database: {
        "name": source.database, "source_environment": "staging", "dialect": "mysql", "database": source.database,
        "created_at": "2026-01-01T00:00:00Z", "expires_at": None, "created_by": "x", "run_id": "r", "rows": 6}}))
    _one_line_refusal(*_cli("teardown", source.database or "", "--config", str(config)), config,
                      "environments.staging.url")
    assert mysql_fingerprint(mysql_source) == before
    assert rows(mysql_source, "SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'pr_x'") == []


# -- SQLite -------------------------------------------------------------------------------------

def _sqlite_source(path: Path) -> Path:
    conn = sqlite3.connect(path)
    for statement in SOURCE_SQL:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path


def _listing(*folders: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_ino, p.lstat().st_size) for folder in folders for p in sorted(folder.rglob("*"))}


@pytest.fixture
def sqlite_layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(source file, a folder of other names for it, the project folder) — the project is apart from both."""
    data, links, project = tmp_path / "data", tmp_path / "links", tmp_path / "project"
    for folder in (data, links, project):
        folder.mkdir()
    return _sqlite_source(data / "prod.db"), links, project


def test_sqlite_spellings_of_the_source_are_refused(sqlite_layout: tuple[Path, Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from load_support import sqlite_fingerprint

    source, links, project = sqlite_layout
    os.link(source, links / "hard.db")
    (links / "soft.db").symlink_to(source)
    (links / "lock.db.lock").symlink_to(source)  # the target's lock file would truncate the source
    os.link(source, links / "prev.db.previous")  # its previous copy is the source file
    monkeypatch.chdir(source.parent.parent)
    spellings = {
        "hard link": f"sqlite:///{links / 'hard.db'}",
        "symlink": f"sqlite:///{links / 'soft.db'}",
        "relative path with ..": "sqlite:///../../data/prod.db",
        "lock file is the source": f"sqlite:///{links / 'lock.db'}",
        "previous copy is the source": f"sqlite:///{links / 'prev.db'}",
    }
    before, files = sqlite_fingerprint(source), _listing(source.parent, links)
    for label, url in spellings.items():
        config = write_project(project / label.replace(" ", "_"), f"sqlite:///{source}", {"staging": {"url": url}},
                               RULES)
        code, output = _cli("refresh", "staging", "--config", str(config))
        _one_line_refusal(code, output, config, "environments.staging.url")
        with pytest.raises(SafetyError):
            datastage.refresh("staging", config=config)
        assert sqlite_fingerprint(source) == before, label
        assert _listing(source.parent, links) == files, label
    # Library use with URLs as written (not through datastage.yaml): a file: URI and a path relative to the
    # working directory reach the source too.
    base = load_project(write_project(project / "lib", f"sqlite:///{source}", {"staging": {"url": "sqlite://"}},
                                      RULES))
    for label, url, source_url in [("file: URI", f"sqlite:///file:{source}?uri=true", f"sqlite:///{source}"),
                                   ("file: URI with localhost", f"sqlite:///file://localhost{source}?mode=rw&uri=true",
                                    f"sqlite:///{source}"),
                                   ("relative source, absolute target", f"sqlite:///{source}", "sqlite:///data/prod.db")]:
        project_ = replace(base, source_url=source_url,
                           environments={"staging": replace(base.environments["staging"], url=url)})
        with pytest.raises(SafetyError, match="is the source database"):
            datastage.refresh("staging", config=project_)
        with pytest.raises(SafetyError, match="is the source database"):
            datastage.rollback("staging", config=project_)
        assert sqlite_fingerprint(source) == before, label
        assert _listing(source.parent, links) == files, label


def test_sqlite_copy_of_the_source_still_refreshes(sqlite_layout: tuple[Path, Path, Path]) -> None:
    source, links, project = sqlite_layout
    (links / "copy.db").write_bytes(source.read_bytes())  # the same bytes, another file: not the source
    config = write_project(project, f"sqlite:///{source}", {"staging": {"url": f"sqlite:///{links / 'copy.db'}"}},
                           RULES)
    assert datastage.refresh("staging", config=config).verdict == "pass"
    masked = sqlite3.connect(links / "copy.db").execute("SELECT count(*) FROM customer WHERE email LIKE "
                                                        "'%@example.org'").fetchone()
    assert masked == (0,)


def test_sqlite_provision_teardown_and_gc_never_touch_the_source(sqlite_layout: tuple[Path, Path, Path]) -> None:
    from load_support import sqlite_fingerprint

    source, links, project = sqlite_layout
    staging = links / "staging.db"
    os.link(source, links / "pr_1.db")  # the copy's file would be the source
    config = write_project(project, f"sqlite:///{source}", {"staging": {"url": f"sqlite:///{staging}"},
                                                             "alias": {"url": f"sqlite:///{links / 'pr_1.db'}"}},
                           RULES)
    before, files = sqlite_fingerprint(source), _listing(source.parent, links)
    _one_line_refusal(*_cli("provision", "pr_1", "--from", "staging", "--config", str(config)), config,
                      "environments.staging.url")
    _one_line_refusal(*_cli("provision", "pr_2", "--from", "alias", "--config", str(config)), config,
                      "environments.alias.url")
    registry = project / ".datastage" / "provisioned.json"
    registry.parent.mkdir(exist_ok=True)
    expired = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    registry.write_text(json.dumps({"pr_1": {
        "name": "pr_1", "source_environment": "staging", "dialect": "sqlite", "database": str(links / "pr_1.db"),
        "created_at": "2026-01-01T00:00:00Z", "expires_at": expired, "created_by": "x", "run_id": "r", "rows": 6}}))
    _one_line_refusal(*_cli("teardown", "pr_1", "--config", str(config)), config, "environments.staging.url")
    code, output = _cli("gc", "--config", str(config))
    assert code == 2 and "is the source database" in output and len(output.strip().splitlines()) == 1, output
    assert sqlite_fingerprint(source) == before and _listing(source.parent, links) == files
    assert "pr_1" in json.loads(registry.read_text())


def test_the_guard_compares_identities_not_text(sqlite_layout: tuple[Path, Path, Path]) -> None:
    """Without the quick text check the identity check alone still refuses (it is the authority)."""
    source, links, _ = sqlite_layout
    os.link(source, links / "hard.db")
    with pytest.raises(SafetyError, match="is the source database"):
        check_not_source(f"sqlite:///{source}", (), f"sqlite:///{links / 'hard.db'}", what="the target", key="k")
    check_not_source(f"sqlite:///{source}", (), f"sqlite:///{links / 'new.db'}", what="the target", key="k")
    assert not (links / "new.db").exists()
