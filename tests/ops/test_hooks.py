"""Hooks as units: shell commands and SQL with timeouts, scrubbed environments, notifications."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa

from datastage.errors import HookFailed
from datastage.ops.hooks import run_hooks, sql_runner_for
from datastage.ops.notify import Retry, send, summary_payload
from datastage.settings import HookSpec

FAST_RETRY = Retry(attempts=2, first_delay=0.01)  # the backoff itself is tested in test_notify.py


def test_shell_hook_gets_target_url_but_no_source_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql://app:s3cret-prod@db/prod")
    monkeypatch.setenv("UNRELATED", "kept")
    out = tmp_path / "env.txt"
    spec = HookSpec(run=f"env > {out}", timeout=10)
    results = run_hooks("post_refresh", [spec], env_vars={"DATASTAGE_TARGET_URL": "sqlite:///staging.db"},
                        cwd=tmp_path, secrets=["s3cret-prod"])
    assert [r.status for r in results] == ["ok"]
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert seen["DATASTAGE_TARGET_URL"] == "sqlite:///staging.db"
    assert seen["DATASTAGE_HOOK"] == "post_refresh"
    assert seen["UNRELATED"] == "kept"
    assert "PROD_DATABASE_URL" not in seen and "DATASTAGE_MASKING_KEY" not in seen
    assert "s3cret-prod" not in out.read_text()


def test_failing_shell_hook_raises_with_its_output(tmp_path: Path) -> None:
    spec = HookSpec(run="echo 'smoke test: 2 failed' >&2; exit 3", timeout=10)
    with pytest.raises(HookFailed) as info:
        run_hooks("post_refresh", [spec], env_vars={}, cwd=tmp_path)
    assert str(info.value) == ("hook post_refresh failed: post_refresh hook 'echo 'smoke test: 2 failed' >&2; "
                               "exit 3' failed (exit code 3): smoke test: 2 failed")
    assert info.value.exit_code == 1


def test_warn_only_hook_is_recorded_not_raised(tmp_path: Path) -> None:
    specs = [HookSpec(run="exit 1", timeout=10, warn_only=True), HookSpec(run="true", timeout=10)]
    results = run_hooks("pre_refresh", specs, env_vars={}, cwd=tmp_path)
    assert [(r.status, r.exit_code, r.warn_only) for r in results] == [("failed", 1, True), ("ok", 0, False)]


def test_shell_hook_timeout(tmp_path: Path) -> None:
    results = run_hooks("post_refresh", [HookSpec(run="sleep 5", timeout=0.3, warn_only=True)], env_vars={},
                        cwd=tmp_path)
    assert results[0].status == "timeout" and results[0].seconds < 3


def test_sql_hook_runs_several_statements_in_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    sqlite3.connect(db).executescript("CREATE TABLE account (name TEXT, password TEXT);"
                                      "INSERT INTO account VALUES ('a', 'real-hash');")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        spec = HookSpec(sql="UPDATE account SET password = 'x;y'; INSERT INTO account VALUES ('qa', 'test');",
                        timeout=10)
        results = run_hooks("post_load", [spec], env_vars={}, cwd=tmp_path, sql_runner=sql_runner_for(conn))
        assert results[0].status == "ok"
        bad = HookSpec(sql="INSERT INTO account VALUES ('z', 'z'); INSERT INTO nope VALUES (1);", timeout=10,
                       warn_only=True)
        failed = run_hooks("post_load", [bad], env_vars={}, cwd=tmp_path, sql_runner=sql_runner_for(conn))
        assert failed[0].status == "failed" and "no such table: nope" in failed[0].output
    rows = sqlite3.connect(db).execute("SELECT name, password FROM account ORDER BY name").fetchall()
    assert rows == [("a", "x;y"), ("qa", "test")]  # the failed hook's first statement was rolled back


def test_sql_hook_timeout_on_sqlite(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}")
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
            "SELECT count(*) FROM c")
    with engine.connect() as conn:
        results = run_hooks("post_load", [HookSpec(sql=slow, timeout=0.2, warn_only=True)], env_vars={},
                            cwd=tmp_path, sql_runner=sql_runner_for(conn))
    assert results[0].status == "timeout"


@pytest.mark.postgres
def test_sql_hook_timeout_on_postgres(pg_databases) -> None:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(pg_databases.create())
    with engine.connect() as conn:
        results = run_hooks("post_load", [HookSpec(sql="SELECT pg_sleep(5)", timeout=0.3, warn_only=True)],
                            env_vars={}, cwd=Path("."), sql_runner=sql_runner_for(conn))
    engine.dispose()
    assert results[0].status == "timeout" and results[0].seconds < 3


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                   "body": json.loads(self.rfile.read(length))})
        self.send_response(_Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Receiver.received = []
    _Receiver.status = 204
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/secret-token"
    finally:
        server.shutdown()


def test_webhook_receives_the_summary(webhook: str) -> None:
    payload = summary_payload({"run_id": "r1", "environment": "staging", "verdict": "fail", "exit_code": 3,
                               "checks": [{"name": "leak_check", "status": "FAIL"}, {"name": "x", "status": "PASS"}]})
    result = send(webhook, payload)
    assert result.ok and result.status == 204
    assert result.target.startswith("http://127.0.0.1:") and "secret-token" not in result.target
    body = _Receiver.received[0]["body"]
    assert body["event"] == "refresh.failed" and body["failed_checks"] == ["leak_check"]  # type: ignore[index]
    assert _Receiver.received[0]["headers"]["Content-Type"] == "application/json"  # type: ignore[index]


def test_unreachable_webhook_is_reported_not_raised() -> None:
    result = send("http://127.0.0.1:9/nothing", {"event": "x"}, timeout=2, retry=FAST_RETRY)
    assert not result.ok and result.status is None and result.error


def test_hook_output_that_is_not_utf8_is_kept_readable(tmp_path: Path) -> None:
    results = run_hooks("post_refresh", [HookSpec(run="printf 'bad \\377 byte'; exit 2", timeout=10, warn_only=True)],
                        env_vars={}, cwd=tmp_path)
    assert results[0].status == "failed" and results[0].exit_code == 2
    assert results[0].output.startswith("bad ") and results[0].output.endswith(" byte")


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "late.txt"
    spec = HookSpec(run=f"(sleep 1; touch {marker}) & sleep 10", timeout=0.3, warn_only=True)
    results = run_hooks("post_load", [spec], env_vars={}, cwd=tmp_path)
    assert results[0].status == "timeout"
    import time

    time.sleep(1.5)
    assert not marker.exists()  # the background child was killed with its group


def test_recorded_output_hides_the_environments_own_password(tmp_path: Path) -> None:
    spec = HookSpec(run="echo connecting with $DATASTAGE_TARGET_URL", timeout=10)
    results = run_hooks("post_refresh", [spec], env_vars={"DATASTAGE_TARGET_URL": "postgresql://qa:t0p-s3cret@db/x"},
                        cwd=tmp_path, redact=["t0p-s3cret"])
    assert "t0p-s3cret" not in results[0].output and "postgresql://qa:***@db/x" in results[0].output


def test_webhook_send_never_raises_on_malformed_addresses() -> None:
    for url in ("http://[::1:bad]/x", "http://host:99999/x", "nonsense"):
        result = send(url, {"event": "x"}, timeout=1, retry=FAST_RETRY)
        assert not result.ok and result.error
        assert "/x" not in (result.error or "")
    assert send("http://host:99999/x", {"event": "x"}).attempts == 1  # a port out of range is never retried
