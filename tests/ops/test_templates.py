"""On-demand templates: name patterns, TTLs and the cap, grants, post_provision tests under both
policies, pre_teardown hooks on teardown and gc, the signed provision report and the webhook; on real
SQLite, PostgreSQL and MariaDB with a two-row source."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases
from report_schema import validate_report

import datastage
from datastage.cli import main
from datastage.errors import HookFailed, TargetError
from datastage.mask.keys import write_key_file
from datastage.ops import ondemand
from datastage.ops.notify import signature
from datastage.ops.ondemand import gc, load_registry, provision
from datastage.report.signing import write_signing_key
from datastage.settings import load_project

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_dGVtcGxhdGUgd2ViaG9vayBzZWNyZXQgb2YgMzI="
PY = shlex.quote(sys.executable)
# A post_provision test that really queries the copy: its row count, through DATASTAGE_TARGET_URL.
SQLITE_COUNT = (f"{PY} -c \"import os, sqlite3; u = os.environ['DATASTAGE_TARGET_URL']; "
                "n = sqlite3.connect(u.split(':///', 1)[1]).execute('SELECT count(*) FROM t').fetchone()[0]; "
                "print('rows', n, os.environ['DATASTAGE_ENVIRONMENT'], os.environ['DATASTAGE_TEMPLATE'], "
                "os.environ['DATASTAGE_SOURCE_ENVIRONMENT']); assert n == 2\"")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    raw: ClassVar[list[bytes]] = []
    headers_seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        _Receiver.raw.append(self.rfile.read(int(self.headers["Content-Length"])))
        _Receiver.bodies.append(json.loads(_Receiver.raw[-1]))
        _Receiver.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Receiver.bodies, _Receiver.raw, _Receiver.headers_seen = [], [], []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/pr-t0ken-77"
    finally:
        server.shutdown()
        server.server_close()


def _project(folder: Path, staging_url: str = "sqlite:///staging.db", **template: Any) -> Path:
    """A two-row SQLite source and a staging environment whose own ondemand: block is ``template``."""
    folder.mkdir(exist_ok=True)
    db = sqlite3.connect(folder / "prod.db")
    db.executescript("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, label TEXT NOT NULL);"
                     "INSERT OR IGNORE INTO t VALUES (1, 'one'), (2, 'two');")
    db.close()
    if not (folder / "masking.key").exists():
        write_key_file(folder / "masking.key")
        write_signing_key(folder / "signing.key")
    (folder / "rules.yaml").write_text("version: 1\ndefault: keep\n")
    staging: dict[str, Any] = {"url": staging_url, "rules": "rules.yaml"}
    if template:
        staging["ondemand"] = template
    config = {"source": {"url": "sqlite:///prod.db"}, "masking": {"key_file": "masking.key"},
              "signing": {"key_file": "signing.key"}, "environments": {"staging": staging}}
    (folder / "datastage.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder / "datastage.yaml"


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite project with staging refreshed once; tests copy its folder."""
    config = _project(tmp_path_factory.mktemp("templates"))
    assert datastage.refresh("staging", config=config).verdict == "pass"
    return config.parent


def _sqlite_project(refreshed: Path, tmp_path: Path, **template: Any) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(refreshed, folder)
    return _project(folder, **template)


def _history(config: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (config.parent / ".datastage" / "history.jsonl").read_text().splitlines()]


def test_cap_name_pattern_ttl_report_and_webhook_on_sqlite(refreshed: Path, tmp_path: Path, webhook: str) -> None:
    config = _sqlite_project(
        refreshed, tmp_path, name="pr_{id}", ttl="8h", max_ttl="1d", max_copies=1,
        hooks={"post_provision": [{"run": SQLITE_COUNT}], "pre_teardown": [{"run": "echo bye $DATASTAGE_ENVIRONMENT"}]},
        notify={"url": webhook, "secret": WEBHOOK_SECRET})
    folder, cfg = config.parent, str(config)
    code, output = _cli("provision", "--from", "staging", "--var", "id=1", "--owner", "alice", "--config", cfg,
                        "--json")
    assert code == 0, output
    entry = json.loads(output)
    assert (entry["name"], entry["template"], entry["owner"], entry["state"], entry["last_test"]) == (
        "pr_1", "staging", "alice", "ready", "passed")
    assert (folder / "pr_1.db").is_file()
    # The cap: a second copy is refused, naming the cap, the copy and its expiry; nothing is created.
    code, output = _cli("provision", "--from", "staging", "--var", "id=2", "--config", cfg)
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "template 'staging' allows at most 1 copy at once (max_copies)" in output
    assert f"pr_1 (ready, expires {entry['expires_at']})" in output and "datastage gc" in output
    assert not (folder / "pr_2.db").exists() and sorted(load_registry(load_project(config))) == ["pr_1"]
    code, output = _cli("provision", "--from", "staging", "--var", "id=3", "--ttl", "2d", "--config", cfg)
    assert code == 2 and "--ttl 2d is longer than template 'staging' allows (max_ttl 1d)" in output
    # The report: signed, verifiable, naming the refresh it was copied from and that run's verdict.
    refresh = next(h for h in _history(config) if h["kind"] == "refresh")
    report_path = Path(entry["report_json"])
    report = json.loads(report_path.read_text())
    validate_report(report)
    assert (report["kind"], report["environment"], report["verdict"]) == ("provision", "pr_1", "pass")
    assert report["provision"] == {
        "template": "staging", "owner": "alice", "source_environment": "staging",
        "source_run_id": refresh["run_id"], "source_verdict": "pass", "copy_verdict": "pass",
        "expires_at": entry["expires_at"], "state": "ready", "last_test": "passed", "outcome": "pr_1 is ready"}
    assert [t["loaded_rows"] for t in report["subset"]["tables"]] == [2]
    hook = report["operations"]["hooks"][0]
    assert (hook["point"], hook["status"], hook["output"].split()) == (
        "post_provision", "ok", ["rows", "2", "pr_1", "staging", "staging"])
    code, output = _cli("report", "verify", str(report_path), "--config", cfg)
    assert code == 0 and "valid signature" in output, output
    code, output = _cli("report", "show", entry["run_id"], "--config", cfg)
    assert code == 0 and f"(its refresh {refresh['run_id']}: pass)" in output and "owner alice" in output
    assert report["legal_status"]["unmet"][0] == (
        f"a copy of an already masked copy: the report of refresh {refresh['run_id']} states how it was masked")
    tampered = report_path.read_text().replace('"owner": "alice"', '"owner": "mallory"')
    report_path.write_text(tampered)
    code, output = _cli("report", "verify", str(report_path), "--config", cfg)
    assert code != 0 and "changed after it was signed" in output
    # The webhook: provision.succeeded, signed, with the provision block and no secret.
    body = _Receiver.bodies[0]
    assert (body["event"], body["environment"], body["provision"]["source_run_id"]) == (
        "provision.succeeded", "pr_1", refresh["run_id"])
    headers = _Receiver.headers_seen[0]
    assert headers["webhook-signature"] == signature(WEBHOOK_SECRET, headers["webhook-id"],
                                                     int(headers["webhook-timestamp"]), _Receiver.raw[0])
    # envs: template, owner, expiry, state and last test; --owner filters the on-demand ones.
    code, output = _cli("envs", "--config", cfg, "--json")
    rows = {r["name"]: r for r in json.loads(output)}
    assert {k: rows["pr_1"][k] for k in ("template", "owner", "state", "last_test", "expires_at")} == {
        "template": "staging", "owner": "alice", "state": "ready", "last_test": "passed",
        "expires_at": entry["expires_at"]}
    code, output = _cli("envs", "--owner", "bob", "--config", cfg, "--json")
    assert json.loads(output) == []
    code, output = _cli("envs", "--owner", "alice", "--config", cfg, "--json")
    assert [r["name"] for r in json.loads(output)] == ["pr_1"]
    code, output = _cli("envs", "--config", cfg)
    assert code == 0 and "alice" in output and "passed" in output
    # Teardown runs pre_teardown against the copy, records it, and frees the slot.
    code, output = _cli("teardown", "pr_1", "--config", cfg)
    assert code == 0 and not (folder / "pr_1.db").exists(), output
    teardown = _history(config)[-1]
    assert teardown["kind"] == "teardown" and teardown["hooks"][0]["output"] == "bye pr_1\n"
    code, output = _cli("provision", "--from", "staging", "--var", "id=2", "--config", cfg)
    assert code == 0 and "provisioned pr_2 from staging" in output and "post_provision tests passed" in output
    everything = "\n".join(p.read_text(errors="replace") for p in (folder / ".datastage").rglob("*") if p.is_file())
    assert WEBHOOK_SECRET not in everything and "pr-t0ken-77" not in everything
    assert all("pr-t0ken-77" not in json.dumps(b) for b in _Receiver.bodies)


@pytest.mark.parametrize(("args", "expected"), [
    (["--var", "id=ABC"], "--var id='ABC': a value may hold only lower-case letters, digits and _"),
    (["--var", "id=../x"], "--var id='../x': a value may hold only"),
    (["--var", "id=1;drop"], "--var id='1;drop': a value may hold only"),
    (["--var", "id=a'b\"c"], "a value may hold only lower-case letters"),
    (["--var", "id=" + "9" * 60], "is not a valid name: lower-case letters, digits and _, starting with a letter, at "
                                  "most 48 characters"),
    (["--var", "id="], "a value may hold only"),
    (["--var", "colour=red"], "--var colour: template 'staging' names its copies pr_{id}, whose placeholders are id"),
    (["--var", "oops"], "--var expects NAME=VALUE, such as id=1234; got 'oops'"),
    ([], "template 'staging' names its copies pr_{id}: give --var id=VALUE"),
    (["qa_7"], "'qa_7' does not fit template 'staging''s name pattern pr_{id}"),
    (["pr_7", "--var", "id=8"], "'pr_7' is not the name --var gives ('pr_8')"),
    (["--ttl", "0h", "--var", "id=1"], "--ttl must be a number and a unit"),
])
def test_hostile_names_and_vars_are_one_line_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    config = _project(tmp_path / "p", name="pr_{id}", max_ttl="1d")
    code, output = _cli("provision", *args, "--from", "staging", "--config", str(config))
    assert code == 2, output
    assert expected in output and len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert sorted(p.name for p in config.parent.glob("*.db")) == ["prod.db"]


def test_without_a_pattern_var_and_unknown_from_are_refused(tmp_path: Path) -> None:
    config = _project(tmp_path / "p", max_copies=2)
    code, output = _cli("provision", "--from", "staging", "--config", str(config))
    assert code == 2 and "give the NAME of the new environment" in output
    code, output = _cli("provision", "pr_1", "--var", "id=1", "--from", "staging", "--config", str(config))
    assert code == 2 and "template 'staging' has none; give the NAME" in output
    code, output = _cli("provision", "pr_1", "--from", "stagin", "--config", str(config))
    assert code == 2 and "no environment or template called 'stagin' (did you mean 'staging'?)" in output
    text = config.read_text().replace("    ondemand:", "    ondemand:\n      access: [{role: ro, privileges: read}]")
    config.write_text(text)
    code, output = _cli("provision", "pr_1", "--from", "staging", "--config", str(config))
    assert code == 2 and "environments.staging.ondemand.access: SQLite has no roles" in output


@pytest.mark.parametrize("policy", ["teardown", "keep"])
def test_a_failing_post_provision_test_under_both_policies(refreshed: Path, tmp_path: Path, webhook: str,
                                                            policy: str) -> None:
    config = _sqlite_project(refreshed, tmp_path, on_test_failure=policy, notify={"url": webhook},
                             hooks={"post_provision": [{"run": "echo smoke failed; exit 3"}],
                                    "pre_teardown": [{"run": "echo archived $DATASTAGE_ENVIRONMENT"}]})
    code, output = _cli("provision", "pr_9", "--from", "staging", "--config", str(config))
    assert code == 1 and len(output.strip().splitlines()) == 1, output
    assert "post_provision hook 'echo smoke failed; exit 3' failed (exit code 3): smoke failed" in output
    registry = load_registry(load_project(config))
    last = _history(config)[-1]
    assert (last["kind"], last["verdict"], last["exit_code"], last["last_test"]) == ("provision", "fail", 1, "failed")
    report = json.loads(Path(last["report_json"]).read_text())
    validate_report(report)
    assert _Receiver.bodies[-1]["event"] == "provision.failed"
    if policy == "teardown":
        assert "pr_9 was torn down (on_test_failure: teardown)" in output
        assert not (config.parent / "pr_9.db").exists() and registry == {}
        assert [h["point"] for h in report["operations"]["hooks"]] == ["post_provision", "pre_teardown"]
        assert report["operations"]["hooks"][1]["output"] == "archived pr_9\n"
        assert report["provision"]["state"] == last["state"] == "torn-down"
    else:
        assert "pr_9 is kept, marked failed (on_test_failure: keep): `datastage teardown pr_9` drops it" in output
        assert (config.parent / "pr_9.db").is_file()
        assert (registry["pr_9"].state, registry["pr_9"].last_test) == ("failed", "failed")
        code, output = _cli("envs", "--config", str(config), "--json")
        row = next(r for r in json.loads(output) if r["name"] == "pr_9")
        assert (row["state"], row["last_test"]) == ("failed", "failed")


def test_gc_runs_pre_teardown_and_a_failing_one_keeps_only_that_copy(refreshed: Path, tmp_path: Path) -> None:
    config = _sqlite_project(refreshed, tmp_path, ttl="1m",
                             hooks={"pre_teardown": [{"run": "test -f allow_$DATASTAGE_ENVIRONMENT || "
                                                             "{ echo not archived; exit 1; }"}]})
    project = load_project(config)
    for name in ("pr_a", "pr_b"):
        provision(project, name, "staging")
    (config.parent / "allow_pr_b").touch()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert gc(project) == []  # nothing has expired yet
    with pytest.raises(TargetError, match=r"tore down pr_b; could not tear down pr_a: pre_teardown hook .* not "
                                        r"archived; pr_a was kept") as caught:
        gc(project, now=later)
    assert caught.value.exit_code == 1
    assert (config.parent / "pr_a.db").is_file() and not (config.parent / "pr_b.db").exists()
    assert sorted(load_registry(project)) == ["pr_a"]
    outcomes = [(h["environment"], h["verdict"], h["hooks"][0]["status"]) for h in _history(config)
                if h["kind"] == "teardown"]
    assert outcomes == [("pr_a", "fail", "failed"), ("pr_b", "pass", "ok")]
    code, output = _cli("teardown", "pr_a", "--force", "--config", str(config))
    assert code == 0 and "tore down pr_a" in output and not (config.parent / "pr_a.db").exists()


def test_a_named_template_and_its_hooks_environment(refreshed: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = _sqlite_project(refreshed, tmp_path)
    data = yaml.safe_load(config.read_text())
    data["ondemand"] = {"review": {"from": "staging", "name": "rv_{id}", "max_copies": 1,
                                   "hooks": {"post_provision": [{"run": "env | grep -E '^(DATASTAGE|LEAKY)' | sort"}]}}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    # Something of the source in datastage's environment: hooks never inherit it.
    monkeypatch.setenv("LEAKY_SOURCE", load_project(config).source_url)
    entry = datastage.provision(None, from_env="review", variables={"id": "1"}, owner="ci", config=config)
    assert (entry.name, entry.template, entry.owner, entry.last_test) == ("rv_1", "review", "ci", "passed")
    seen = json.loads(Path(entry.report_json or "").read_text())["operations"]["hooks"][0]["output"]
    expected = {f"DATASTAGE_TARGET_URL=sqlite:///{config.parent}/rv_1.db", "DATASTAGE_ENVIRONMENT=rv_1",
                "DATASTAGE_TEMPLATE=review", "DATASTAGE_SOURCE_ENVIRONMENT=staging", f"DATASTAGE_RUN_ID={entry.run_id}"}
    assert expected <= set(seen.splitlines()), seen
    assert "LEAKY_SOURCE" not in seen and "DATASTAGE_MASKING_KEY" not in seen
    # staging itself has no template: a copy of it gets no hooks, grants or cap.
    plain = datastage.provision("plain_1", from_env="staging", config=config)
    assert (plain.template, plain.last_test, plain.state) == (None, None, "ready")
    code, output = _cli("provision", "--from", "review", "--var", "id=2", "--config", str(config))
    assert code == 2 and "template 'review' allows at most 1 copy at once" in output and "rv_1 (ready" in output


def test_two_provisions_racing_for_the_last_slot(refreshed: Path, tmp_path: Path) -> None:
    config = _sqlite_project(refreshed, tmp_path, name="pr_{id}", max_copies=1,
                             hooks={"post_provision": [{"run": "sleep 0.3"}]})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    racers = [subprocess.Popen([sys.executable, "-m", "datastage", "provision", "--from", "staging", "--var",
                                f"id={n}", "--config", str(config)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for n in (1, 2)]
    results = sorted((p.wait(60), p.stdout.read() if p.stdout else "") for p in racers)
    assert [code for code, _ in results] == [0, 2], results
    assert "allows at most 1 copy at once (max_copies)" in results[1][1]
    assert len(load_registry(load_project(config))) == 1
    assert len(list(config.parent.glob("pr_*.db"))) == 1


def test_a_ctrl_c_during_the_tests_removes_the_copy_and_its_reservation(refreshed: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = _sqlite_project(refreshed, tmp_path, max_copies=1, hooks={"post_provision": [{"run": "exit 0"}]})
    project = load_project(config)

    def interrupted(*args: Any) -> HookFailed | None:
        assert load_registry(project)["pr_x"].state == "provisioning"  # reserved while it is being made
        assert (config.parent / "pr_x.db").is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(ondemand, "_test", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provision(project, "pr_x", "staging")
    assert load_registry(project) == {} and not (config.parent / "pr_x.db").exists()


def _server_project(tmp_path: Path, staging_url: str, access: list[dict[str, str]], hook: str) -> Path:
    config = _project(tmp_path / "p", staging_url, name="ds_pr_{id}", access=access,
                      hooks={"post_provision": [{"run": hook}, {"run": 'echo "pw=$PGPASSWORD$MYSQL_PWD"'}]})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    return config


def _assert_no_password(config: Path, output: str, password: str) -> None:
    assert password not in output
    for path in (config.parent / ".datastage").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path


@pytest.mark.postgres
def test_postgres_template_grants_are_in_the_catalog_of_the_copy(pg_server: str, pg_databases: ServerDatabases,
                                                                tmp_path: Path) -> None:
    role = f"ds_tpl_reader_{secrets.token_hex(3)}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role}")
    password = "tpl-pw-" + secrets.token_hex(4)  # the server trusts local connections; hooks must not show it
    try:
        staging = sa.engine.make_url(pg_databases.create("ds_stage")).set(password=password)
        psql = "psql -X -tA \"$DATASTAGE_TARGET_URL\" -c 'SELECT count(*) FROM t'"
        config = _server_project(tmp_path, staging.render_as_string(hide_password=False),
                                 [{"role": role, "privileges": "read"}], psql)
        suffix = secrets.token_hex(3)
        name = f"ds_pr_{suffix}"
        pg_databases.created.append(name)
        code, output = _cli("provision", "--from", "staging", "--var", f"id={suffix}", "--config", str(config),
                            "--json")
        assert code == 0, output
        entry = json.loads(output)
        engine = sa.create_engine(pg_databases.url(name))
        with engine.connect() as conn:
            granted = {p: conn.execute(sa.text("SELECT has_table_privilege(:r, 'public.t', :p)"),
                                       {"r": role, "p": p}).scalar() for p in ("SELECT", "INSERT")}
            grantees = {r[0] for r in conn.exec_driver_sql(
                "SELECT grantee FROM information_schema.role_table_grants WHERE table_name = 't'")}
        engine.dispose()
        assert granted == {"SELECT": True, "INSERT": False} and role in grantees
        report = json.loads(Path(entry["report_json"]).read_text())
        assert report["operations"]["access"] == [{"role": role, "privileges": "read"}]
        hooks = report["operations"]["hooks"]
        assert hooks[0]["output"].strip() == "2" and hooks[1]["output"].strip() == "pw=***"
        _assert_no_password(config, output, password)
        datastage.teardown(name, config=config)
    finally:
        pg_databases.drop_all()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


@pytest.mark.mysql
def test_mariadb_template_grants_are_in_the_catalog_of_the_copy(mysql_server: str,
                                                               mysql_databases: ServerDatabases,
                                                               tmp_path: Path) -> None:
    user = f"ds_tpl_{secrets.token_hex(3)}"
    admin = sa.create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'unused-{user}'")
    try:
        count = (f"{PY} -c \"import os, pymysql, urllib.parse as p; "
                 "u = p.urlsplit(os.environ['DATASTAGE_TARGET_URL']); "
                 "c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username, "
                 "password=os.environ.get('MYSQL_PWD', ''), database=u.path[1:]).cursor(); "
                 "c.execute('SELECT count(*) FROM t'); print(c.fetchone()[0])\"")
        config = _server_project(tmp_path, mysql_databases.create("ds_stage"),
                                 [{"role": f"{user}@%", "privileges": "write"}], count)
        suffix = secrets.token_hex(3)
        name = f"ds_pr_{suffix}"
        mysql_databases.created.append(name)
        entry = datastage.provision(None, from_env="staging", variables={"id": suffix}, config=config)
        assert (entry.name, entry.state, entry.last_test) == (name, "ready", "passed")
        with admin.connect() as conn:
            grants = [r[0] for r in conn.exec_driver_sql(f"SHOW GRANTS FOR '{user}'@'%%'")]
            privileges = {r[0] for r in conn.exec_driver_sql(
                "SELECT privilege_type FROM information_schema.SCHEMA_PRIVILEGES WHERE table_schema = %s "
                "AND grantee = %s", (name, f"'{user}'@'%'"))}
        assert any(f"ON `{name}`.*" in g and "INSERT" in g for g in grants), grants
        assert privileges == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        hooks = json.loads(Path(entry.report_json or "").read_text())["operations"]["hooks"]
        assert hooks[0]["output"].strip() == "2"
        datastage.teardown(name, config=config)
        with admin.connect() as conn:
            left = conn.exec_driver_sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                                        (name,)).scalar()
        assert left == 0
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        admin.dispose()


@pytest.mark.parametrize("owner", ["alice\nforged: line", "bob\x1b[2J", "   ", "x" * 101, "tab\there"])
def test_an_owner_that_is_not_printable_text_is_refused_before_anything_is_made(
        refreshed: Path, tmp_path: Path, owner: str) -> None:
    config = _sqlite_project(refreshed, tmp_path, name="pr_{id}")
    code, output = _cli("provision", "--from", "staging", "--var", "id=9", "--owner", owner, "--config", str(config))
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "--owner" in output and "printable" in output and "\x1b" not in output
    assert not (config.parent / "pr_9.db").exists()
    assert load_registry(load_project(config)) == {}
