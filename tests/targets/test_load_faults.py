"""Fault injection against real servers: whatever fails, the target stays exactly as it was.

Each test first refreshes the target once (the current copy), fingerprints every row of it,
then breaks a second refresh in one way and checks the fingerprint again; the refresh after
that must succeed and leave only the current and one previous copy.

What is real and what is simulated:
- source gone: the source backend is terminated (``pg_terminate_backend``) mid-extract;
- target gone: the shadow's own backend is terminated mid-``COPY`` (PostgreSQL) and the
  loading connection is killed (``KILL``) mid-insert (MariaDB);
- disk full: PostgreSQL writes the shadow into a tablespace on a 1 MiB tmpfs and really runs
  out of space (needs root to mount; skipped otherwise); MariaDB's is simulated with the
  error ``ER_RECORD_FILE_FULL`` raised from the writer;
- verification failed: an orphan row is injected into the loaded shadow;
- process killed: the CLI runs in a subprocess and gets SIGKILL mid-load; a crash after the
  shadow was committed is simulated in-process (the shadow is left behind, as SIGKILL would).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import (
    execute,
    mysql_fingerprint,
    pagila_source,
    pg_fingerprint,
    rows,
    scalar,
    write_project,
)
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.errors import DatastageError
from datastage.targets import mysql as mysql_target
from datastage.targets.mysql import MysqlShadow
from datastage.targets.postgres.target import PostgresShadow

SMALL_BATCHES = 2000


@pytest.fixture(scope="module")
def pagila(pg_server: str) -> Iterator[str]:
    yield from pagila_source(pg_server)


@pytest.fixture
def patch() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch of its own (undoing it leaves the masking key fixture alone)."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _refresh(config: Path, env: str = "staging") -> tuple[int, str]:
    outcome = CliRunner().invoke(main, ["refresh", env, "--config", str(config)])
    return outcome.exit_code, outcome.output.strip()


def _pg_ready(pagila: str, pg_databases: ServerDatabases, tmp_path: Path,
              **env: Any) -> tuple[str, Path, dict[str, Any]]:
    target = pg_databases.create("ds_stage")
    config = write_project(tmp_path, pagila, {"staging": {"url": target, "batch_size": SMALL_BATCHES, **env}})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    return target, config, pg_fingerprint(target)


def _calls_then(original: Callable[..., Any], at: int, action: Callable[[Any], None]) -> Callable[..., Any]:
    """``original`` that runs ``action(self)`` once, before its ``at``-th call."""
    calls = {"n": 0}

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == at:
            action(self)
        return original(self, *args, **kwargs)

    return patched


def _live(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint without shadow schemas (which a killed refresh may leave for the next to remove)."""
    return {"schemas": [s for s in fingerprint["schemas"] if "__ds_shadow_" not in s],
            "tables": {k: v for k, v in fingerprint["tables"].items() if "__ds_shadow_" not in k}}


def _assert_clean_after(config: Path, target: str, before: dict[str, Any]) -> None:
    """The failed refresh left the target as it was; the next one succeeds and leaves two copies."""
    assert _live(pg_fingerprint(target)) == _live(before)
    assert datastage.refresh("staging", config=config).verdict == "pass"
    schemas = rows(target, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public%' ORDER BY 1")
    assert schemas == [("public",), ("public__ds_prev",)]


class FaultAt:
    """A progress receiver that runs ``action`` once, when the ``at``-th batch has been loaded.

    Both load paths (streamed COPY and batches of values) report every batch here."""

    def __init__(self, at: int, action: Callable[[], None]) -> None:
        self.at, self.action, self.batches = at, action, 0

    def stage(self, name: str) -> None:
        pass

    def table(self, name: str, rows: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        self.batches += 1
        if self.batches == self.at:
            self.action()


LOAD_PATHS = ["streamed", "batches"]


def _use_path(path: str, patch: pytest.MonkeyPatch) -> None:
    if path == "batches":
        patch.setattr(PostgresShadow, "stream_table", lambda *args: None)


def _failed_refresh(config: Path, progress: FaultAt) -> DatastageError:
    with pytest.raises(DatastageError) as raised:
        datastage.refresh("staging", config=config, progress=progress)
    assert raised.value.exit_code == 1
    assert datastage.history("staging", config=config)[-1]["verdict"] == "error"
    return raised.value


@pytest.mark.postgres
@pytest.mark.parametrize("path", LOAD_PATHS)
def test_source_gone_mid_extract(
        pagila: str, pg_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch, path: str) -> None:
    target, config, before = _pg_ready(pagila, pg_databases, tmp_path)
    _use_path(path, patch)
    source_db = make_url(pagila).database
    error = _failed_refresh(config, FaultAt(5, lambda: execute(
        target, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source_db}' "
                "AND pid <> pg_backend_pid()")))
    assert str(error).startswith("extract failed:"), error
    patch.undo()
    _assert_clean_after(config, target, before)


@pytest.mark.postgres
@pytest.mark.parametrize("path", LOAD_PATHS)
def test_target_gone_mid_copy(
        pagila: str, pg_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch, path: str) -> None:
    target, config, before = _pg_ready(pagila, pg_databases, tmp_path)
    _use_path(path, patch)
    database = make_url(target).database
    # The shadow's loading session; the lock session (application_name ds:...) stays.
    error = _failed_refresh(config, FaultAt(5, lambda: execute(
        target, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
                "AND pid <> pg_backend_pid() AND application_name NOT LIKE 'ds:%'")))
    # libpq reports the server's FATAL message, or only the closed socket when the message was not read yet.
    assert str(error).startswith("load failed:"), error
    assert "terminat" in str(error) or "server closed the connection" in str(error), error
    patch.undo()
    _assert_clean_after(config, target, before)


@pytest.fixture
def tiny_tablespace(pg_server: str) -> Iterator[str]:
    """A PostgreSQL tablespace on a 1 MiB tmpfs: writing more than that fails with ENOSPC."""
    directory = Path(tempfile.mkdtemp(prefix="ds_tiny_"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a tmpfs for the disk-full test: {mounted.stderr.strip()}")
    name = f"ds_tiny_{secrets.token_hex(4)}"
    try:
        subprocess.run(["chown", "postgres:postgres", str(directory)], check=False)
        try:
            execute(pg_server, f"CREATE TABLESPACE {name} LOCATION '{directory}'")
        except sa.exc.DBAPIError as exc:  # e.g. a server in a container does not see this directory
            pytest.skip(f"the PostgreSQL server cannot use {directory}: {str(exc.orig).splitlines()[0]}")
        try:
            yield name
        finally:
            execute(pg_server, f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", str(directory)], check=False)
        directory.rmdir()


@pytest.mark.postgres
def test_disk_full_while_loading(pagila: str, pg_databases: ServerDatabases, tmp_path: Path,
                                 tiny_tablespace: str) -> None:
    target = pg_databases.create("ds_stage")
    full = make_url(target).update_query_dict({"options": f"-c default_tablespace={tiny_tablespace}"})
    config = write_project(tmp_path, pagila, {"staging": {"url": target},
                                              "full": {"url": full.render_as_string(hide_password=False)}})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    before = pg_fingerprint(target)
    code, output = _refresh(config, "full")
    assert code == 1, output
    assert output.startswith("error: load failed:") and "No space left on device" in output
    _assert_clean_after(config, target, before)


@pytest.mark.postgres
def test_verification_failure_discards_the_shadow(
        pagila: str, pg_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
    target, config, before = _pg_ready(pagila, pg_databases, tmp_path)
    original = PostgresShadow.finish

    def finish_then_orphan(shadow: PostgresShadow) -> None:
        original(shadow)
        language = f'"{shadow.shadow_schema(None)}".language'
        execute(target, f"SET session_replication_role = replica; DELETE FROM {language} WHERE language_id = 1")

    patch.setattr(PostgresShadow, "finish", finish_then_orphan)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "fail" and result.exit_code == 3
    failed = {c.name for c in result.checks if c.status == "FAIL"}
    assert "foreign_keys" in failed
    assert result.report is not None and result.report.json.is_file()
    patch.undo()
    _assert_clean_after(config, target, before)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _cli(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "datastage", "refresh", "staging", "--config", str(config),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))


@pytest.mark.postgres
def test_process_killed_mid_load(pagila: str, pg_databases: ServerDatabases, tmp_path: Path) -> None:
    target, config, before = _pg_ready(pagila, pg_databases, tmp_path)
    database = make_url(target).database
    copying = (f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND query LIKE 'COPY %' "
               "AND state = 'active'")
    process = _cli(config)
    try:
        _wait_for(lambda: bool(scalar(target, copying)), 60, "the load to start")
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for(lambda: not scalar(target, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' "
                                         "AND application_name LIKE 'ds:%'"), 30, "the killed sessions to end")
    assert _live(pg_fingerprint(target)) == _live(before)
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert rows(target, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public%' ORDER BY 1") == [
        ("public",), ("public__ds_prev",)]


@pytest.mark.postgres
def test_crash_after_the_shadow_was_committed_is_cleaned_up_next_time(
        pagila: str, pg_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
    target, config, before = _pg_ready(pagila, pg_databases, tmp_path)

    def crash(*_args: Any) -> None:
        raise KeyboardInterrupt  # the process dies between verification and the swap

    patch.setattr(PostgresShadow, "record_refresh", crash)
    patch.setattr(PostgresShadow, "discard", lambda self: None)  # as after SIGKILL: no clean-up ran
    with pytest.raises(KeyboardInterrupt):
        datastage.refresh("staging", config=config)
    patch.undo()
    stale = rows(target, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public__ds_shadow_%'")
    assert len(stale) == 1  # the committed shadow outlived its process
    assert scalar(target, f"SELECT count(*) FROM \"{stale[0][0]}\".film") == 1000
    _assert_clean_after(config, target, before)


# -- MariaDB ---------------------------------------------------------------------------------------

def _mysql_ready(pagila: str, mysql_databases: ServerDatabases, tmp_path: Path) -> tuple[str, Path, dict[str, Any]]:
    target = mysql_databases.create("ds_maria")
    database = str(make_url(target).database)
    mysql_databases.created.append(database + "__ds_prev")
    config = write_project(tmp_path, pagila, {"staging": {"url": target, "batch_size": SMALL_BATCHES}})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    return target, config, _copies(target)


def _copies(target: str) -> dict[str, Any]:
    """The fingerprint of the current and previous copies (not of shadows, nor of the lock holder's
    record in ``DB__ds_lock``, which a killed holder leaves until the next refresh takes the lock)."""
    fingerprint = mysql_fingerprint(target)
    return {k: v for k, v in fingerprint["tables"].items() if "__ds_shadow_" not in k and "__ds_lock." not in k}


def _mysql_clean_after(config: Path, target: str, before: dict[str, Any]) -> None:
    assert _copies(target) == before
    assert datastage.refresh("staging", config=config).verdict == "pass"
    database = str(make_url(target).database)
    assert mysql_fingerprint(target)["databases"] == [database, database + "__ds_prev"]


@pytest.mark.postgres
@pytest.mark.mysql
def test_mariadb_target_gone_mid_insert(
        pagila: str, mysql_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
    target, config, before = _mysql_ready(pagila, mysql_databases, tmp_path)

    def kill_connection(shadow: MysqlShadow) -> None:
        assert shadow.conn is not None
        execute(target, f"KILL {shadow.conn.thread_id()}")

    patch.setattr(MysqlShadow, "write", _calls_then(MysqlShadow.write, 5, kill_connection))
    code, output = _refresh(config)
    assert code == 1, output
    assert output.startswith("error: load failed:")
    patch.undo()
    _mysql_clean_after(config, target, before)


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.parametrize("fault", ["connection killed", "client disk full"])
def test_mariadb_load_data_interrupted(pagila: str, mysql_databases: ServerDatabases, tmp_path: Path,
                                       patch: pytest.MonkeyPatch, fault: str) -> None:
    target, config, before = _mysql_ready(pagila, mysql_databases, tmp_path)
    files = tmp_path / "tmp"
    files.mkdir()
    patch.setattr(tempfile, "tempdir", str(files))  # where the batches' files go
    if fault == "connection killed":
        def kill(shadow: MysqlShadow) -> None:
            assert shadow.conn is not None
            execute(target, f"KILL {shadow.conn.thread_id()}")

        patch.setattr(MysqlShadow, "_load", _calls_then(MysqlShadow._load, 2, kill))
    else:
        original = mysql_target.load_file
        calls = {"n": 0}

        @contextlib.contextmanager
        def full(data: bytes) -> Iterator[str]:
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "No space left on device")
            with original(data) as path:
                yield path

        patch.setattr(mysql_target, "load_file", full)
    code, output = _refresh(config)
    assert code == 1, output
    assert output.startswith("error: load failed:")
    assert fault != "client disk full" or "No space left on device" in output
    assert list(files.iterdir()) == []  # no batch file left behind
    patch.undo()
    _mysql_clean_after(config, target, before)


@pytest.mark.postgres
@pytest.mark.mysql
def test_mariadb_disk_full_and_failed_verification(
        pagila: str, mysql_databases: ServerDatabases, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
    target, config, before = _mysql_ready(pagila, mysql_databases, tmp_path)

    def table_full(_shadow: MysqlShadow) -> None:
        raise pymysql.err.OperationalError(1114, "The table 'rental' is full")  # simulated ENOSPC

    patch.setattr(MysqlShadow, "write", _calls_then(MysqlShadow.write, 5, table_full))
    code, output = _refresh(config)
    assert code == 1 and "is full" in output, output
    patch.undo()
    assert _copies(target) == before

    original = MysqlShadow.finish

    def finish_then_orphan(shadow: MysqlShadow) -> None:
        original(shadow)
        execute(target, "SET foreign_key_checks = 0", f"DELETE FROM `{shadow.database}`.language WHERE language_id = 1")

    patch.setattr(MysqlShadow, "finish", finish_then_orphan)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "fail" and result.exit_code == 3
    patch.undo()
    _mysql_clean_after(config, target, before)


@pytest.mark.postgres
@pytest.mark.mysql
def test_mariadb_process_killed_mid_load(pagila: str, mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    target, config, before = _mysql_ready(pagila, mysql_databases, tmp_path)
    database = str(make_url(target).database)
    loading = (f"SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'INSERT INTO `{database}"
               f"__ds_shadow_%' OR info LIKE 'LOAD DATA LOCAL INFILE % INTO TABLE `{database}__ds_shadow_%'")
    shadow = f"SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE '{database}__ds_shadow_%'"
    process = _cli(config)
    try:
        _wait_for(lambda: bool(scalar(target, shadow)), 60, "the shadow database")
        # Short loads (LOAD DATA or INSERT) are easy to miss between two polls: wait for one, but at most 2 s.
        with contextlib.suppress(AssertionError):
            _wait_for(lambda: bool(scalar(target, loading)), 2, "a load into the shadow")
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    shadows = [d for d in mysql_fingerprint(target)["databases"] if "__ds_shadow_" in d]
    assert len(shadows) == 1  # MariaDB DDL commits: the killed run leaves its shadow behind
    assert _copies(target) == before
    _mysql_clean_after(config, target, before)
