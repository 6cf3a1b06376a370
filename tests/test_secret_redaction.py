"""No secret reaches any output.

Hostile passwords (URL-, HTML-, JSON- and shell-special characters) for the source and the
target, given in the userinfo and as ``?password=``, and a masking key, go through refreshes,
hooks, a webhook, a log file, a rollback, a failing hook, a failing connection, history,
envs, plan and report commands on real PostgreSQL and MariaDB servers; then every file the
project holds, every captured stdout/stderr, every webhook body and every environment a
hook saw is searched for each secret in every encoding. The hooks still connect, with the
password in ``PGPASSWORD`` / ``MYSQL_PWD``. Also here: the redactor as a unit, file modes,
key files others may read, and ``LOAD DATA LOCAL`` off on source connections.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import pymysql
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ROOT, ServerDatabases
from load_support import execute, scalar
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.ops.envops import RefreshOps, password_variables, plain_url
from datastage.ops.hooks import run_hooks, scrubbed_environment
from datastage.secrets import Secrets, key_forms, url_passwords
from datastage.settings import Environment, HookSpec, Project, SubsetSpec
from datastage.source.db import make_engine, redact_url

HOSTILE = " Pw!x%&<>\"'#/?@:+"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def password_forms(secret: str) -> set[str]:
    """``secret`` as outputs may carry it: raw, quote / quote_plus (upper and lower hex), JSON, HTML."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
             html.escape(secret, quote=False)}
    for encoded in (quote(secret), quote(secret, safe=""), quote(secret, safe=" +"), quote_plus(secret),
                    quote_plus(secret, safe="")):
        forms |= {encoded, _lower_hex(encoded)}
    return forms


def masking_key_forms(text: str) -> set[str]:
    """A hex key as stored, upper-cased, its text's bytes as hex and base64, its decoded bytes as base64."""
    raw = bytes.fromhex(text)
    return {text, text.upper(), text.encode().hex(), base64.b64encode(text.encode()).decode(),
            base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode()}


def leaks(text: str, forbidden: dict[str, set[str]]) -> list[str]:
    return [f"{name}: {form!r}" for name, forms in forbidden.items() for form in forms if form in text]


# -- the redactor as a unit ------------------------------------------------------------------

def test_every_encoding_of_a_secret_is_redacted() -> None:
    secret = f"S3cret{secrets.token_hex(3)}{HOSTILE}"
    found = Secrets([secret])
    for form in password_forms(secret) | {repr(secret), shlex.quote(secret), quote(quote(secret, safe=""), safe=""),
                                          html.escape(json.dumps(secret)), json.dumps(html.escape(secret)),
                                          "".join(c if c.isalnum() else f"&#{ord(c)};" for c in secret),
                                          "".join(c if c.isalnum() else f"&#x{ord(c):x};" for c in secret)}:
        redacted = found.redact(f"before {form} after")
        assert redacted.startswith("before ") and redacted.endswith(" after"), (form, redacted)
        assert "S3cret" not in redacted and "***" in redacted, (form, redacted)


def test_urls_give_up_every_password_form() -> None:
    encoded = quote("p@ss word/1", safe="")
    assert set(url_passwords(f"postgresql://app:{encoded}@db/prod")) >= {"p@ss word/1"}
    assert "q-secret" in url_passwords("mysql://app@db/prod?charset=utf8mb4&password=q-secret")
    assert "conn secret" in url_passwords("postgresql://db/prod?options=x&dsn=host%3Ddb%20password%3D'conn%20secret'")
    assert redact_url("mysql://app@db/prod?password=q-secret&charset=utf8mb4") == \
        "mysql+pymysql://app@db/prod?charset=utf8mb4&password=***"
    assert redact_url(f"postgresql://app:{encoded}@db/prod?sslpassword=kp1234") == \
        "postgresql+psycopg://app:***@db/prod?sslpassword=***"
    # Passwords nobody registered still look like passwords.
    found = Secrets()
    assert found.redact("psql postgresql://u:unknown1@h/db; PGPASSWORD=unknown2 mysql; x?password=unknown3&y=1") == \
        "psql postgresql://u:***@h/db; PGPASSWORD=*** mysql; x?password=***&y=1"


def test_hook_urls_carry_no_password_and_the_client_variable_does() -> None:
    secret = f"Tgt{secrets.token_hex(3)}{HOSTILE}"
    for url, variable in ((f"postgresql+psycopg://qa:{quote(secret, safe='')}@db:5432/x?options=-csearch_path%3Ds",
                           "PGPASSWORD"),
                          (f"mysql://qa@db:3306/x?password={quote_plus(secret)}&charset=utf8mb4", "MYSQL_PWD")):
        shown = plain_url(url)
        assert "Tgt" not in shown and "password" not in shown and shown.startswith(url.split("+")[0].split(":")[0])
        assert make_url(shown).username == "qa" and make_url(shown).host == "db"
        assert password_variables(url) == {variable: secret}
    assert "options=-csearch_path" in plain_url(f"postgresql://qa:{quote(secret, safe='')}@db/x?options=-csearch_path")
    assert password_variables("sqlite:///staging.db") == {} and password_variables("postgresql://qa@db/x") == {}


def test_hooks_never_get_a_password_the_source_shares(tmp_path: Path) -> None:
    shared, own = f"Src{secrets.token_hex(3)}{HOSTILE}", f"Tgt{secrets.token_hex(3)}{HOSTILE}"
    source = f"postgresql://prod:{quote(shared, safe='')}@prod-db/app"
    for password, expected in ((own, {"PGPASSWORD": own}), (shared, {})):
        env = Environment("staging", f"postgresql://qa:{quote(password, safe='')}@stage-db/app", None, SubsetSpec())
        ops = RefreshOps(Project(tmp_path / "datastage.yaml", source, {"staging": env}), env, "r1")
        variables = ops.environment_variables(DATASTAGE_SHADOW_URL=f"postgresql+psycopg://qa:{quote(password)}@"
                                              "stage-db/app?options=-csearch_path%3Ds")
        assert {k: v for k, v in variables.items() if k == "PGPASSWORD"} == expected
        assert variables["DATASTAGE_TARGET_URL"] == "postgresql://qa@stage-db/app"
        assert variables["DATASTAGE_SHADOW_URL"] == "postgresql://qa@stage-db/app?options=-csearch_path%3Ds"
        assert ops.drop == ("PGPASSWORD", "PGPASSFILE")


def test_masking_key_forms_cover_hex_and_base64() -> None:
    text = secrets.token_hex(32)
    found = Secrets()
    for form in key_forms(text.encode(), text + "\n"):
        found.add(form)
    for form in masking_key_forms(text):
        assert found.redact(f"[{form}]") == "[***]", form


def test_hook_environment_drops_source_credentials_in_any_encoding(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"Src{secrets.token_hex(3)}{HOSTILE}"
    monkeypatch.setenv("COPY_QUOTED", quote_plus(secret))
    monkeypatch.setenv("COPY_JSON", json.dumps({"pw": secret}))
    monkeypatch.setenv("PGPASSFILE", "/somewhere/.pgpass")
    monkeypatch.setenv("UNRELATED", "kept")
    env = scrubbed_environment({"EXTRA": "x"}, [secret], drop=["PGPASSFILE"])
    assert "COPY_QUOTED" not in env and "COPY_JSON" not in env and "PGPASSFILE" not in env
    assert "DATASTAGE_MASKING_KEY" not in env and env["UNRELATED"] == "kept" and env["EXTRA"] == "x"
    # The recorded command and output hide the environment's own password too.
    own = f"Tgt{secrets.token_hex(3)}{HOSTILE}"
    spec = HookSpec(run=f"printf '%s\\n' {shlex.quote(own)} {quote(own, safe='')}; true {shlex.quote(own)}",
                    timeout=10)
    result = run_hooks("post_refresh", [spec], env_vars={}, cwd=tmp_path, redact=[own])[0]
    assert result.status == "ok" and result.output.splitlines() == ["***", "***"]
    assert "Tgt" not in result.command and "Tgt" not in result.output


def test_the_report_schema_rejects_a_query_password(demo_project: Path) -> None:
    from report_schema import validate_report

    result = datastage.refresh("staging", config=demo_project)
    assert result.report is not None
    report = json.loads(result.report.json.read_text())
    for shown, valid in (("mysql+pymysql://app@db/staging?password=s3cret&charset=utf8mb4", False),
                         ("mysql+pymysql://app@db/staging?charset=utf8mb4&PASSWORD=s3cret", False),
                         ("mysql+pymysql://app@db/staging?charset=utf8mb4&password=***", True),
                         (redact_url("mysql://app@db/staging?password=s3cret&charset=utf8mb4"), True)):
        report["provenance"]["target"] = shown
        if valid:
            validate_report(report)
        else:
            with pytest.raises(AssertionError):
                validate_report(report)


# -- file modes and key files --------------------------------------------------------------------

def _modes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.rglob("*")]}


def test_state_files_are_private_and_tightened(demo_project: Path, tmp_path: Path) -> None:
    state = demo_project.parent / ".datastage"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    (state / "history.jsonl").write_text("")
    os.chmod(state / "history.jsonl", 0o644)  # as an older version left it
    old = os.umask(0o022)
    try:
        log = tmp_path / "new-logs" / "deeper" / "refresh.jsonl"
        result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project), "--log-file", str(log)])
        assert result.exit_code == 0, result.output
        datastage.plan("staging", config=demo_project)
    finally:
        os.umask(old)
    modes = _modes(state)
    assert {p for p, m in modes.items() if (state / p).is_dir() and m != "0o700"} == set(), modes
    assert {p for p, m in modes.items() if (state / p).is_file() and m != "0o600"} == set(), modes
    assert {"history.jsonl", "schemas/staging.json"} <= set(modes)
    # refresh and plan, JSON and HTML, each with its detached signature
    assert sum(1 for p in modes if p.startswith("reports/staging/")) == 8
    assert {p for p in modes if p.startswith("reports/staging/") and p.endswith(".sig")} == \
        {f"{p}.sig" for p in modes if p.startswith("reports/staging/") and not p.endswith(".sig")}
    assert {"signing.pub", "allowed_signers"} <= set(modes)
    assert oct(stat.S_IMODE(log.stat().st_mode)) == "0o600"
    assert oct(stat.S_IMODE(log.parent.stat().st_mode)) == oct(stat.S_IMODE(log.parent.parent.stat().st_mode)) \
        == "0o700"


def test_a_key_file_others_may_read_is_refused_everywhere(demo_project: Path, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.delenv("DATASTAGE_MASKING_KEY")
    key = demo_project.parent / "masking.key"
    assert oct(stat.S_IMODE(key.stat().st_mode)) == "0o600"
    result = datastage.refresh("staging", config=demo_project)  # readable by its owner only: used
    assert result.verdict == "pass" and result.report is not None
    expected = f"masking key file permissions 0644 are too open: it must be readable by its owner only; " \
               f"run chmod 600 {key}"
    for mode in (0o644, 0o640, 0o604):
        os.chmod(key, mode)
        for command in (["refresh", "staging"], ["plan", "staging"]):
            run = CliRunner().invoke(main, [*command, "--config", str(demo_project)])
            assert run.exit_code == 2, (command, run.output)
            assert run.output.strip() == f"error: {key}: {expected.replace('0644', f'{mode:04o}')}", run.output
        # Verifying a report needs only the public signing key: the masking key is never read for it.
        run = CliRunner().invoke(main, ["report", "verify", str(result.report.json), "--config", str(demo_project)])
        assert run.exit_code == 0 and run.output.startswith("valid:"), run.output
    os.chmod(key, 0o644)
    with pytest.raises(datastage.ConfigError, match="too open"):
        datastage.provision("pr_open_key", from_env="staging", config=demo_project)
    assert not (demo_project.parent / "pr_open_key.db").exists()


# -- LOAD DATA LOCAL -------------------------------------------------------------------------------

@pytest.mark.mysql
def test_source_connections_never_allow_load_data_local(mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    url = mysql_databases.create("ds_infile")
    execute(url, "CREATE TABLE t (line TEXT)")
    probe = tmp_path / "client-file.txt"
    probe.write_text("a file of the client\n")
    source = make_engine(url, read_only=True, role="source database")
    try:
        with source.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, pymysql.connections.Connection)
            assert not raw.client_flag & pymysql.constants.CLIENT.LOCAL_FILES
            with pytest.raises(sa.exc.DBAPIError) as info:
                conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{probe}' INTO TABLE t")
            code, message = info.value.orig.args[:2]  # the client refused: MariaDB says 4166, MySQL 1148
            assert code in (1148, 4166) and "not allowed" in message, info.value.orig
    finally:
        source.dispose()
    assert scalar(url, "SELECT count(*) FROM t") == 0
    with pytest.raises(ValueError, match="never enabled on a read-only"):
        make_engine(url, read_only=True, local_infile=True)
    from datastage.targets.mysql import MysqlTarget

    # The same statement on the shadow's loading connection (the only place that enables it) does read
    # the file: the server allows it, so what refused it above was the source connection's client flag.
    # The target's other connections (lock, verification) do not enable it either.
    target = MysqlTarget(url, "staging")
    try:
        with target.engine().connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, pymysql.connections.Connection)
            assert not raw.client_flag & pymysql.constants.CLIENT.LOCAL_FILES
        with target.load_engine().connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, pymysql.connections.Connection)
            assert raw.client_flag & pymysql.constants.CLIENT.LOCAL_FILES
            conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{probe}' INTO TABLE `{make_url(url).database}`.t")
            conn.commit()
    finally:
        target.engine().dispose()
        target.load_engine().dispose()
    assert scalar(url, "SELECT line FROM t") == "a file of the client"


# -- the whole way out, on real servers ------------------------------------------------------------

class _RawReceiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _RawReceiver.bodies.append(self.rfile.read(length).decode("utf-8"))  # as sent, not parsed
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def raw_webhook() -> Iterator[str]:
    _RawReceiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _RawReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/token-{secrets.token_hex(4)}"
    finally:
        server.shutdown()


PROBE = r'''
"""Runs as a hook: connects with the client's own password variable, records what it saw, and prints
the password in every encoding (so the report, the log and stderr have something to hide)."""
import hashlib, html, json, os, re, subprocess, sys
from urllib.parse import quote, quote_plus, unquote, urlsplit

mode, url_variable, out_dir = sys.argv[1:4]
url = os.environ[url_variable]
variable = "PGPASSWORD" if url.startswith("postgresql") else "MYSQL_PWD"
password = os.environ.get(variable, "")
lower = lambda t: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), t)
forms = [url, password, quote(password), quote(password, safe=""), lower(quote(password, safe="")),
         quote_plus(password), lower(quote_plus(password)), json.dumps(password), json.dumps({"pw": password}),
         html.escape(password)]
if mode == "connect":
    parts = urlsplit(url)
    if variable == "PGPASSWORD":
        command = ["psql", "-X", "-At", "-d", url, "-c", "SELECT count(*) FROM customer"]
    else:
        command = ["mariadb", "-h", parts.hostname, "-P", str(parts.port), "-u", unquote(parts.username), "-N",
                   "-B", "-e", "SELECT count(*) FROM customer", unquote(parts.path.lstrip("/"))]
    done = subprocess.run(command, capture_output=True, text=True)
    record = {"url": url, "variable": variable, "sha256": hashlib.sha256(password.encode()).hexdigest(),
              "returncode": done.returncode, "count": done.stdout.strip(), "stderr": done.stderr[-300:]}
    name = f"connect-{os.environ['DATASTAGE_HOOK']}-{os.environ['DATASTAGE_RUN_ID']}.json"
    with open(os.path.join(out_dir, name), "w") as handle:
        json.dump(record, handle)
    print("\n".join(forms))
else:
    print("\n".join(forms), file=sys.stderr)
    sys.exit(int(mode))
'''

SOURCE_ROWS = 50


@dataclass
class Scenario:
    """One project on the servers: its secrets, folders, and everything its commands printed."""

    project: Path
    hooks: Path
    env: dict[str, str]
    forbidden: dict[str, set[str]]
    source_forbidden: dict[str, set[str]]
    target_password: str
    target_url: str
    target_dialect: str
    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "datastage", *args, "--config", str(self.project / "datastage.yaml")]
        done = subprocess.run(command, cwd=self.project, env=self.env, capture_output=True, text=True, timeout=600)
        self.outputs += [done.stdout, done.stderr]
        assert done.returncode == expect, (args, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        return done


def _pg_role(pg_server: str, name: str, password: str) -> None:
    literal = "'" + password.replace("'", "''") + "'"
    execute(pg_server, f"CREATE ROLE {name} LOGIN PASSWORD {literal}")


def _mysql_user(mysql_server: str, name: str, password: str, grants: list[str]) -> None:
    engine = sa.create_engine(mysql_server, poolclass=sa.pool.NullPool)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
            for grant in grants:
                cursor.execute(f"GRANT {grant} TO '{name}'@'%'")
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


@pytest.fixture
def accounts(pg_server: str, mysql_server: str) -> Iterator[list[tuple[str, str]]]:
    """Throwaway PostgreSQL roles and MariaDB users, dropped after the databases (request it first)."""
    made: list[tuple[str, str]] = []
    yield made
    for kind, name in made:
        if kind == "postgresql":
            execute(pg_server, f"DROP ROLE IF EXISTS {name}")
        else:
            execute(mysql_server, f"DROP USER IF EXISTS '{name}'@'%'")


def _source_sql(dialect: str) -> list[str]:
    text = "TEXT" if dialect == "postgresql" else "VARCHAR(200)"
    values = ", ".join(f"({i}, 'person{i}@mail.example', 'Person Number {i}')" for i in range(1, SOURCE_ROWS + 1))
    return [f"CREATE TABLE customer (customer_id INT PRIMARY KEY, email {text} NOT NULL, full_name {text} NOT NULL)",
            f"INSERT INTO customer VALUES {values}"]


def _server_url(admin: str, dialect: str, user: str, password: str, database: str, *, in_query: bool) -> str:
    parsed = make_url(admin)
    scheme = "postgresql" if dialect == "postgresql" else "mysql"
    host, port = parsed.host or "127.0.0.1", parsed.port or (5432 if dialect == "postgresql" else 3306)
    if in_query:
        return f"{scheme}://{user}@{host}:{port}/{database}?password={quote_plus(password)}"
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}:{port}/{database}"


def _scenario(tmp_path: Path, accounts: list[tuple[str, str]], pg_server: str, mysql_server: str,
              pg: ServerDatabases, my: ServerDatabases, source_dialect: str, webhook: str,
              key_in_file: bool) -> Scenario:
    token = secrets.token_hex(3)
    source_password, target_password = f"Src{token}{HOSTILE}", f"Tgt{token}{HOSTILE}"
    broken_password = f"Bad{token}{HOSTILE}"
    target_dialect = "mysql" if source_dialect == "postgresql" else "postgresql"
    servers = {"postgresql": (pg_server, pg), "mysql": (mysql_server, my)}
    names = {}
    for role, dialect, password in (("src", source_dialect, source_password), ("tgt", target_dialect, target_password)):
        admin, dbs = servers[dialect]
        database = make_url(dbs.create(f"ds_{role}")).database
        assert database is not None
        user = f"ds_{role}_{token}"
        accounts.append((dialect, user))
        if dialect == "postgresql":
            _pg_role(admin, user, password)
            if role == "src":
                execute(admin, f"GRANT pg_read_all_data TO {user}")
            else:
                execute(admin, f'ALTER DATABASE "{database}" OWNER TO {user}')
        else:
            pattern = database.replace("_", "\\_")
            grants = [f"SELECT ON `{database}`.*"] if role == "src" else [f"ALL PRIVILEGES ON `{pattern}%`.*"]
            _mysql_user(admin, user, password, grants)
        if role == "src":
            execute(dbs.url(database), *_source_sql(dialect))
        names[role] = (user, database)
    # The source gives its password in the userinfo on PostgreSQL and as ?password= on MariaDB; the
    # target the other way round: both forms, both servers, both roles.
    source_url = _server_url(servers[source_dialect][0], source_dialect, names["src"][0], source_password,
                             names["src"][1], in_query=source_dialect == "mysql")
    target_url = _server_url(servers[target_dialect][0], target_dialect, names["tgt"][0], target_password,
                             names["tgt"][1], in_query=target_dialect == "mysql")
    broken_url = _server_url(servers[target_dialect][0], target_dialect, names["tgt"][0], broken_password,
                             f"ds_missing_{token}", in_query=False)
    project, hooks = tmp_path / "project", tmp_path / "hooks"
    project.mkdir()
    hooks.mkdir()
    (hooks / "probe.py").write_text(PROBE)
    key_text = secrets.token_hex(32)
    python = shlex.quote(sys.executable)
    probe = f"{python} {hooks / 'probe.py'}"
    quoted = shlex.quote(target_password)
    env_vars = {
        "url": "${DS_TARGET_URL}", "rules": "rules.yaml", "rollback_on_failure": True, "notify": "${DS_WEBHOOK}",
        "hooks": {
            "post_load": [{"run": f"env > {hooks}/env-post_load-$DATASTAGE_RUN_ID.txt"},
                          {"run": f"{probe} connect DATASTAGE_SHADOW_URL {hooks}"}],
            "post_refresh": [
                {"run": f"env > {hooks}/env-post_refresh-$DATASTAGE_RUN_ID.txt; "
                        "env | grep -E '^(PG|MYSQL|DATASTAGE_)' | sort; echo \"target: $DATASTAGE_TARGET_URL\""},
                {"run": f"{probe} connect DATASTAGE_TARGET_URL {hooks}"},
                {"run": f"{probe} 3 DATASTAGE_TARGET_URL {hooks}", "warn_only": True},
                # A password written into a hook command is recorded hidden, whatever its quoting.
                {"run": f"true {quoted} 'mysql://u:{quote(target_password, safe='')}@h/db' PGPASSWORD={quoted}"},
                {"run": f"if [ -f {hooks}/fail.flag ]; then {probe} 7 DATASTAGE_TARGET_URL {hooks}; fi"},
            ],
            "on_failure": [{"run": f"env > {hooks}/env-on_failure-$DATASTAGE_RUN_ID.txt; echo \"$DATASTAGE_ERROR\""}],
        },
    }
    config: dict[str, Any] = {"source": {"url": "${DS_SOURCE_URL}"},
                              "environments": {"staging": env_vars,
                                               "broken": {"url": "${DS_BROKEN_URL}", "rules": "rules.yaml"}}}
    if key_in_file:
        config["masking"] = {"key_file": "masking.key"}
        key_file = project / "masking.key"
        key_file.write_text(key_text + "\n")
        os.chmod(key_file, 0o600)
    (project / "datastage.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (project / "rules.yaml").write_text(yaml.safe_dump({
        "version": 1, "default": "fail",
        "tables": {"customer": {"email": {"strategy": "email", "unique": True}, "full_name": "person.full_name"}}}))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)), "LANG": "C.UTF-8",
           "PYTHONPATH": str(ROOT), "DS_SOURCE_URL": source_url, "DS_TARGET_URL": target_url,
           "DS_BROKEN_URL": broken_url, "DS_WEBHOOK": webhook,
           # What the source may log in with, inherited by datastage: no hook may see any of it.
           "COPY_OF_SOURCE_PASSWORD": quote_plus(source_password), "KEY_COPY": base64.b64encode(
               bytes.fromhex(key_text)).decode()}
    if source_dialect == "postgresql":
        env |= {"PGPASSWORD": source_password, "PGPASSFILE": str(tmp_path / "source.pgpass")}
    else:
        env |= {"MYSQL_PWD": source_password, "MYSQL_TEST_LOGIN_FILE": str(tmp_path / "source.mylogin.cnf"),
                "PGPASSFILE": str(tmp_path / "target.pgpass")}
    if not key_in_file:
        env["DATASTAGE_MASKING_KEY"] = key_text
    source_forbidden = {"source password": password_forms(source_password), "masking key": masking_key_forms(key_text),
                        "source token": {f"Src{token}"}}
    forbidden = {**source_forbidden, "target password": password_forms(target_password),
                 "broken password": password_forms(broken_password),
                 "secret tokens": {f"Tgt{token}", f"Bad{token}"}, "webhook path": {webhook.split("/", 3)[3]}}
    return Scenario(project, hooks, env, forbidden, source_forbidden, target_password, target_url, target_dialect)


def _exercise(scenario: Scenario) -> dict[str, Any]:
    """Every command with an output, in an order that covers success, rollback and both failures."""
    log = scenario.project / "logs" / "datastage.jsonl"
    scenario.run("refresh", "staging", "--log-file", str(log))
    second = json.loads(scenario.run("refresh", "staging", "--json", "--log-file", str(log)).stdout)
    assert second["verdict"] == "pass"
    scenario.run("rollback", "staging", "--json", "--log-file", str(log))
    (scenario.hooks / "fail.flag").touch()
    failed = scenario.run("refresh", "staging", "--log-file", str(log), expect=1)
    (scenario.hooks / "fail.flag").unlink()
    broken = scenario.run("refresh", "broken", "--log-file", str(log), "--json", expect=1)
    scenario.run("plan", "staging", "--json", "--log-file", str(log))
    history = json.loads(scenario.run("history", "--kind", "all", "--json").stdout)
    scenario.run("history", "--kind", "all")
    envs = json.loads(scenario.run("envs", "--json").stdout)
    scenario.run("envs")
    for entry in history:
        if entry.get("report_json"):
            scenario.run("report", "show", entry["run_id"], "--json")
            scenario.run("report", "show", entry["run_id"])
    return {"failed": failed, "broken": broken, "history": history, "envs": envs, "log": log}


def _check(scenario: Scenario, done: dict[str, Any], webhook_bodies: list[str]) -> None:
    project, forbidden = scenario.project, scenario.forbidden
    # The failing hook's stderr line, the failing connection and the rolled-back refresh, in their words.
    failed_line = done["failed"].stderr.strip().splitlines()[-1]
    assert failed_line.startswith("error: hook post_refresh failed: post_refresh hook") and \
        failed_line.endswith("failed (exit code 7): ***; rolled back to the previous copy"), failed_line
    assert json.loads(done["broken"].stdout)["exit_code"] == 1
    broken_line = done["broken"].stderr.strip()
    assert broken_line.startswith("error: ") and ":***@" in broken_line and "\n" not in broken_line, broken_line
    staging = [e for e in done["history"] if e["environment"] == "staging"]
    assert [(e.get("kind"), e["verdict"]) for e in staging] == \
        [("refresh", "pass"), ("refresh", "pass"), ("rollback", "pass"), ("refresh", "error"), ("plan", "planned")]
    # provenance and envs show where the passwords were, never what they are.
    envs = {row["name"]: row for row in done["envs"]}
    target_shown = envs["staging"]["url"]
    assert ("password=***" in target_shown) if scenario.target_dialect == "mysql" else (":***@" in target_shown)
    report = json.loads(Path(done["history"][0]["report_json"]).read_text())
    source_shown = report["provenance"]["source"]
    assert ("password=***" in source_shown) if scenario.target_dialect == "postgresql" else (":***@" in source_shown)
    # The hooks printed the password in every encoding, and the report kept each line hidden.
    ran = [h for h in report["operations"]["hooks"] if h["point"] == "post_refresh"]
    variable = "PGPASSWORD" if scenario.target_dialect == "postgresql" else "MYSQL_PWD"
    assert f"{variable}=***" in ran[0]["output"] and "DATASTAGE_TARGET_URL=" in ran[0]["output"], ran[0]
    assert ran[1]["output"].splitlines()[1:] == ["***"] * 6 + ['"***"', '{"pw": "***"}', "***"], ran[1]
    assert ran[2]["status"] == "failed" and ran[2]["output"].splitlines()[1:] == ran[1]["output"].splitlines()[1:]
    assert ran[3]["command"].startswith("true '***' 'mysql://u:***@h/db' PGPASSWORD=***"), ran[3]
    # The hooks connected with the password they got in the client's variable, and only there.
    records = [json.loads(p.read_text()) for p in sorted(scenario.hooks.glob("connect-*.json"))]
    assert len(records) == 2 * 3  # post_load and post_refresh of the three staging refreshes
    digest = hashlib.sha256(scenario.target_password.encode()).hexdigest()
    for record in records:
        assert record["variable"] == variable and record["sha256"] == digest, record
        assert record["returncode"] == 0 and record["count"] == str(SOURCE_ROWS), record
        assert not leaks(record["url"], forbidden) and "***" not in record["url"], record["url"]
    # What each hook's environment held: nothing of the source, the key or the target's password but in
    # the client's variable (and in the user's own variable that names the target).
    dumps = sorted(scenario.hooks.glob("env-*.txt"))
    assert {p.name.split("-")[1] for p in dumps} == {"post_load", "post_refresh", "on_failure"}
    for dump in dumps:
        seen = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line and
                    re.match(r"^[A-Z_][A-Z0-9_]*=", line))
        assert not leaks(dump.read_text(), scenario.source_forbidden), dump.name
        for name in ("DATASTAGE_MASKING_KEY", "KEY_COPY", "COPY_OF_SOURCE_PASSWORD", "DS_SOURCE_URL",
                     "PGPASSFILE" if scenario.target_dialect == "mysql" else "MYSQL_TEST_LOGIN_FILE"):
            assert name not in seen, (dump.name, name)
        assert seen[variable] == scenario.target_password, dump.name
        for name, value in seen.items():
            if name not in (variable, "DS_TARGET_URL", "DS_BROKEN_URL", "DS_WEBHOOK"):  # the user's own
                assert not leaks(value, forbidden), (dump.name, name)
        if scenario.target_dialect == "postgresql":
            assert seen["PGPASSFILE"] == str(scenario.project.parent / "target.pgpass")  # not the source's
    # Every file of the project (reports, history, state, logs), every output, every webhook body.
    files = [p for p in project.rglob("*") if p.is_file() and p.name not in ("datastage.yaml", "masking.key")]
    assert {p.suffix for p in files} >= {".json", ".html", ".jsonl"} and len(files) >= 10
    for path in files:
        assert not leaks(path.read_text(encoding="utf-8", errors="replace"), forbidden), path
    for text in scenario.outputs:
        assert not leaks(text, forbidden), text[-3000:]
    assert len(webhook_bodies) == 3  # two successes and the rolled-back refresh
    for body in webhook_bodies:
        assert not leaks(body, forbidden), body
    assert '"event": "refresh.failed"' in webhook_bodies[-1]
    config_text = (project / "datastage.yaml").read_text()
    assert "${DS_SOURCE_URL}" in config_text and not leaks(config_text, scenario.source_forbidden)
    # The target's own refresh log shows the source without its password.
    engine = make_engine(scenario.target_url)
    try:
        with engine.connect() as conn:
            logged = [r[0] for r in conn.exec_driver_sql("SELECT source FROM datastage_refresh_log")]
    finally:
        engine.dispose()
    assert logged and all(not leaks(value, forbidden) and "***" in value for value in logged), logged
    # Private files: 0600 in 0700 folders.
    state = project / ".datastage"
    for path in [state, *state.rglob("*"), done["log"], done["log"].parent]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.slow
@pytest.mark.parametrize("source_dialect", ["postgresql", "mysql"])
def test_no_secret_reaches_any_output(source_dialect: str, accounts: list[tuple[str, str]], pg_server: str,
                                      mysql_server: str, pg_databases: ServerDatabases,
                                      mysql_databases: ServerDatabases, raw_webhook: str, tmp_path: Path) -> None:
    # ``accounts`` first: its roles and users are dropped after the databases that name them.
    scenario = _scenario(tmp_path, accounts, pg_server, mysql_server, pg_databases, mysql_databases,
                         source_dialect, raw_webhook, key_in_file=source_dialect == "postgresql")
    done = _exercise(scenario)
    _check(scenario, done, list(_RawReceiver.bodies))
