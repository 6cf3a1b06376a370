"""Hooks, webhook, logs and --quiet around real refreshes of the demo project."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner

import datastage
from datastage.cli import main


def _configure(config: Path, **env_settings: Any) -> None:
    """Add settings to the demo's staging environment."""
    data = yaml.safe_load(config.read_text())
    data["environments"]["staging"].update(env_settings)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log_runs(staging: Path) -> list[str]:
    conn = sqlite3.connect(staging)
    try:
        return [r[0] for r in conn.execute("SELECT run_id FROM datastage_refresh_log ORDER BY started_at")]
    finally:
        conn.close()


PROBE = (f"{sys.executable} -c \"import os, sqlite3, sys; "
         "url = os.environ.get(sys.argv[1], ''); path = url.split(':///', 1)[-1]; "
         "n = sqlite3.connect(path).execute('SELECT count(*) FROM app_settings').fetchone()[0] "
         "if os.path.exists(path) else -1; "
         "open(sys.argv[2], 'a').write(f'{os.environ[\\\"DATASTAGE_HOOK\\\"]} {sys.argv[1]} {n}\\\\n')\"")


def test_hooks_run_at_their_points_against_the_right_copy(demo_project: Path) -> None:
    trace = demo_project.parent / "trace.txt"
    _configure(demo_project, hooks={
        "pre_refresh": [{"run": f"{PROBE} DATASTAGE_TARGET_URL {trace}"}],
        "post_load": [{"sql": "INSERT INTO app_settings VALUES ('qa_login', 'qa@example.com');"},
                      {"run": f"{PROBE} DATASTAGE_SHADOW_URL {trace}"},
                      {"run": f"{PROBE} DATASTAGE_TARGET_URL {trace}"}],
        "post_refresh": [{"run": f"{PROBE} DATASTAGE_TARGET_URL {trace}", "timeout": 30}],
    })
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass", [c.summary for c in result.checks if c.status != "PASS"]
    # No copy before the first refresh; the SQL hook changed the shadow, not the live copy; then it went live.
    assert trace.read_text().splitlines() == [
        "pre_refresh DATASTAGE_TARGET_URL -1",
        "post_load DATASTAGE_SHADOW_URL 1",
        "post_load DATASTAGE_TARGET_URL -1",
        "post_refresh DATASTAGE_TARGET_URL 1",
    ]
    staging = demo_project.parent / "staging.db"
    assert sqlite3.connect(staging).execute("SELECT value FROM app_settings").fetchall() == [("qa@example.com",)]
    report = json.loads(result.report.json.read_text()) if result.report else {}
    hooks = report["operations"]["hooks"]
    assert [(h["point"], h["kind"], h["status"]) for h in hooks] == [
        ("pre_refresh", "run", "ok"), ("post_load", "sql", "ok"), ("post_load", "run", "ok"),
        ("post_load", "run", "ok"), ("post_refresh", "run", "ok")]
    assert all(h["seconds"] >= 0 for h in hooks)
    assert report["operations"]["rolled_back"] is False
    # The kept table's rows (including the hook's test account) survive the next refresh.
    _configure(demo_project, hooks={})
    datastage.refresh("staging", config=demo_project)
    assert sqlite3.connect(staging).execute("SELECT key FROM app_settings").fetchall() == [("qa_login",)]


def test_failing_post_load_hook_leaves_the_target_untouched(demo_project: Path) -> None:
    datastage.refresh("staging", config=demo_project)
    staging = demo_project.parent / "staging.db"
    before = _digest(staging)
    failure_env = demo_project.parent / "failure.txt"
    _configure(demo_project, hooks={
        "post_load": [{"run": "echo 'reset failed' >&2; exit 3"}],
        "on_failure": [{"run": f"echo \"$DATASTAGE_VERDICT|$DATASTAGE_ERROR\" > {failure_env}"}],
    })
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: hook post_load failed: post_load hook 'echo 'reset failed' >&2; exit 3' "
                                     "failed (exit code 3): reset failed")
    assert _digest(staging) == before
    assert not [p for p in staging.parent.iterdir() if ".shadow-" in p.name]
    assert failure_env.read_text().startswith("error|hook post_load failed: post_load hook")
    entry = datastage.history("staging", config=demo_project)[-1]
    report = json.loads(Path(entry["report_json"]).read_text())
    assert report["verdict"] == "error"
    assert [(h["point"], h["status"], h["exit_code"]) for h in report["operations"]["hooks"]] == [
        ("post_load", "failed", 3), ("on_failure", "ok", 0)]


def test_warn_only_hook_failure_is_reported_and_the_refresh_passes(demo_project: Path) -> None:
    _configure(demo_project, hooks={"post_refresh": [{"run": "exit 5", "warn_only": True}]})
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass" and result.exit_code == 0
    report = json.loads(result.report.json.read_text()) if result.report else {}
    assert [(h["status"], h["warn_only"], h["exit_code"]) for h in report["operations"]["hooks"]] == [
        ("failed", True, 5)]


def test_failing_smoke_test_rolls_back_when_configured(demo_project: Path) -> None:
    staging = demo_project.parent / "staging.db"
    first = datastage.refresh("staging", config=demo_project)
    _configure(demo_project, hooks={"post_refresh": [{"run": "echo '2 smoke tests failed'; exit 1"}]},
               rollback_on_failure=True)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 1
    assert result.output.strip().endswith("2 smoke tests failed; rolled back to the previous copy")
    assert _log_runs(staging) == [first.run_id]
    entry = datastage.history("staging", config=demo_project)[-1]
    report = json.loads(Path(entry["report_json"]).read_text())
    assert report["operations"]["rolled_back"] is True and report["verdict"] == "error"


def test_failing_smoke_test_without_rollback_keeps_the_new_copy(demo_project: Path) -> None:
    staging = demo_project.parent / "staging.db"
    datastage.refresh("staging", config=demo_project)
    _configure(demo_project, hooks={"post_refresh": [{"run": "exit 1"}]})
    with pytest.raises(datastage.DatastageError, match="post_refresh hook 'exit 1' failed"):
        datastage.refresh("staging", config=demo_project)
    assert len(_log_runs(staging)) == 2


def test_on_failure_hook_runs_when_verification_fails(demo_project: Path) -> None:
    seen = demo_project.parent / "seen.txt"
    _configure(demo_project, hooks={"on_failure": [{"run": f"echo \"$DATASTAGE_VERDICT\" > {seen}"}]})
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("    ship_email: email ", "    ship_email: {strategy: email, "
                                               "when: \"order_id < 0\"} "))
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "fail" and result.exit_code == 3
    assert seen.read_text().strip() == "fail"


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Receiver.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/datastage"
    finally:
        server.shutdown()


def test_webhook_gets_a_summary_on_success_and_on_failure(demo_project: Path, webhook: str) -> None:
    _configure(demo_project, notify=webhook)
    result = datastage.refresh("staging", config=demo_project)
    success = _Receiver.bodies[-1]
    assert success["event"] == "refresh.succeeded" and success["run_id"] == result.run_id
    assert success["verdict"] == "pass" and success["exit_code"] == 0 and success["rows"] == result.rows
    assert success["environment"] == "staging" and success["trigger"] == "library"
    assert Path(success["report_html"]).is_file() and success["failed_checks"] == []
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("  product: keep", "  produkt: keep"))
    with pytest.raises(datastage.RulesError):
        datastage.refresh("staging", config=demo_project)
    failure = _Receiver.bodies[-1]
    assert failure["event"] == "refresh.failed" and failure["verdict"] == "error" and failure["exit_code"] == 2
    assert "unknown table 'produkt'" in failure["error"]
    prod = sqlite3.connect(demo_project.parent / "prod.db")
    emails = [r[0] for r in prod.execute("SELECT email FROM customer LIMIT 50")]
    assert not any(email in json.dumps(_Receiver.bodies) for email in emails)


def test_log_file_and_quiet(demo_project: Path) -> None:
    log_file = demo_project.parent / "logs" / "refresh.jsonl"
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project), "--quiet",
                                       "--log-file", str(log_file)])
    assert result.exit_code == 0 and result.output == ""
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    started = next(line for line in lines if line["event"] == "refresh started")
    finished = next(line for line in lines if line["event"] == "refresh finished")
    assert started["environment"] == "staging" and started["trigger"] == "cli"
    assert finished["verdict"] == "pass" and finished["exit_code"] == 0 and finished["rows"] > 1000
    assert all({"time", "level", "logger", "event"} <= set(line) for line in lines)
    assert "test-masking-key" not in log_file.read_text()
    plan = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project), "-q"])
    assert plan.exit_code == 0 and plan.output == ""
    bad = CliRunner().invoke(main, ["refresh", "nope", "--config", str(demo_project), "--quiet",
                                    "--log-file", str(log_file)])
    assert bad.exit_code == 2 and bad.output.startswith("error: ")
    failed = json.loads(log_file.read_text().splitlines()[-1])
    assert failed["event"] == "command failed" and failed["error"]["exit_code"] == 2


def test_access_on_a_sqlite_target_is_a_config_error(demo_project: Path) -> None:
    _configure(demo_project, access=[{"role": "qa", "privileges": "read"}])
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert "environments.staging.access: a SQLite database has no access control" in result.output
    assert not (demo_project.parent / "staging.db").exists()


def test_bad_hook_and_access_settings_are_config_errors(demo_project: Path) -> None:
    _configure(demo_project, hooks={"post_lod": [{"run": "true"}]})
    result = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2 and "unknown hook point 'post_lod' (did you mean 'post_load'?)" in result.output
    _configure(demo_project, hooks={"post_load": [{"run": "true", "sql": "SELECT 1"}]})
    result = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2 and "a hook needs exactly one of 'sql' or 'run'" in result.output
    _configure(demo_project, hooks={}, access=[{"role": "qa", "privileges": "admin"}])
    result = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2 and "environments.staging.access[0].privileges: must be read or write" in result.output


def test_refused_or_locked_refreshes_run_no_hooks_and_announce_nothing(demo_project: Path, webhook: str) -> None:
    marker = demo_project.parent / "on_failure.txt"
    _configure(demo_project, hooks={"on_failure": [{"run": f"touch {marker}"}]}, notify=webhook,
               url="sqlite:///./prod.db")  # the target is the source: refused before anything happens
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2 and "is the source database" in result.output
    assert not marker.exists() and _Receiver.bodies == []
    _configure(demo_project, url="sqlite:///staging.db")
    datastage.refresh("staging", config=demo_project)
    _Receiver.bodies.clear()
    history_before = len(datastage.history("staging", config=demo_project))
    import fcntl

    with open(demo_project.parent / "staging.db.lock", "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 4
    assert not marker.exists() and _Receiver.bodies == []
    assert len(datastage.history("staging", config=demo_project)) == history_before


def test_failure_webhook_carries_the_report_paths(demo_project: Path, webhook: str) -> None:
    _configure(demo_project, notify=webhook, hooks={"post_load": [{"run": "exit 9"}]})
    with pytest.raises(datastage.DatastageError):
        datastage.refresh("staging", config=demo_project)
    body = _Receiver.bodies[-1]
    assert body["event"] == "refresh.failed" and body["exit_code"] == 1
    assert Path(body["report_json"]).is_file() and Path(body["report_html"]).is_file()


def test_smoke_test_failure_without_rollback_says_the_new_copy_is_live(demo_project: Path) -> None:
    _configure(demo_project, hooks={"post_refresh": [{"run": "exit 1"}]})
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 1
    assert result.output.strip().endswith("the new copy is live (rollback_on_failure is off)")
    assert len(_log_runs(demo_project.parent / "staging.db")) == 1


def test_unreachable_database_for_sql_hooks_is_a_one_line_error(demo_project: Path) -> None:
    from datastage.errors import HookFailed
    from datastage.ops.envops import RefreshOps
    from datastage.settings import load_project

    _configure(demo_project, hooks={"pre_refresh": [{"sql": "SELECT 1"}]},
               url="postgresql://nobody@127.0.0.1:9/staging")  # nothing listens on port 9
    project = load_project(demo_project)
    ops = RefreshOps(project, project.environment("staging"), "run-1")
    with pytest.raises(HookFailed) as info:
        ops.run("pre_refresh", ops.target_connection())
    assert str(info.value).startswith("hook pre_refresh failed: pre_refresh hooks cannot reach the database: ")
    assert len(str(info.value).splitlines()) == 1 and info.value.exit_code == 1


def test_notify_must_be_a_web_address(demo_project: Path) -> None:
    _configure(demo_project, notify="hooks.example.com/token")
    result = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2 and "environments.staging.notify: expected an http:// or https://" in result.output
