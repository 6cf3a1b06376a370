"""The refresh lock holds until the swap, or the refresh stops: on real PostgreSQL, MariaDB and SQLite.

Each test refreshes a target once, then starts a second refresh in a subprocess whose
``post_load`` hook ends that refresh's own lock session (``pg_terminate_backend`` / ``KILL``,
as ``idle_session_timeout``, a pooler or a network drop would; for SQLite: the lock file is
removed) and then waits. While it waits, a third refresh of the same target takes the free
lock: it must not drop the paused run's shadow (exit code 4, "still runs"). Resumed, the paused
run must fail its check before the swap (exit code 1, the lock was lost) and leave the target
exactly as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ServerDatabases
from endings_support import finish, leftovers, set_hooks, spawn, tiny_project, wait_for
from load_support import execute, mysql_fingerprint, pg_fingerprint, rows, scalar, sqlite_fingerprint
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.targets import base as targets_base
from datastage.targets.registry import open_target

PAUSE = "touch {dir}/paused; while [ ! -f {dir}/resume ]; do sleep 0.1; done"


def _pause_after(config: Path, kill_lock: str) -> list[dict[str, Any]]:
    hooks = [{"run": kill_lock, "timeout": 60}, {"run": PAUSE.format(dir=config.parent), "timeout": 300}]
    set_hooks(config, "staging", {"post_load": hooks})
    return hooks


def _lost_lock_scenario(config: Path, fingerprint: Any, shadow_exists: Any) -> str:
    """Run the paused refresh, the competing one, then resume; returns the competing run's output."""
    before = fingerprint()
    process = spawn("refresh", "staging", "--config", str(config))
    try:
        wait_for(lambda: (config.parent / "paused").exists(), 180, "the post_load hook", process)
        assert shadow_exists()
        with pytest.MonkeyPatch.context() as patch:
            # The paused owner runs on whatever the grace for a killed owner's sessions: 1 s shows it as 5 s would.
            patch.setattr(targets_base, "OWNER_GRACE_SECONDS", 1.0)
            competing = CliRunner().invoke(main, ["refresh", "other", "--config", str(config)])
        assert competing.exit_code == 4, competing.output
        assert "another refresh of other still runs" in competing.output
        assert "it lost the refresh lock and stops before its swap" in competing.output
        assert shadow_exists()  # the paused run's shadow is still there
    finally:
        (config.parent / "resume").touch()
    code, _, err = finish(process)
    assert code == 1, err
    assert err.startswith("error: swap failed: the refresh lock of staging was lost before the swap completed ("), err
    assert err.strip().endswith("the target was left unchanged") and len(err.strip().splitlines()) == 1, err
    assert fingerprint() == before
    assert not shadow_exists()
    entry = datastage.history("staging", config=config)[-1]
    assert (entry["verdict"], entry["exit_code"]) == ("error", 1) and "was lost" in entry["error"]
    return str(competing.output)


# -- PostgreSQL ------------------------------------------------------------------------------------

KILL_PG_LOCK = ('psql -X -q -At "$DATASTAGE_TARGET_URL" -c "SELECT count(pg_terminate_backend(pid)) FROM '
                "pg_stat_activity WHERE application_name LIKE 'ds:$DATASTAGE_RUN_ID:%'\" | grep -qx 1")


@pytest.mark.postgres
@pytest.mark.parametrize("shadow", ["schema", "database"])
def test_postgres_lock_session_ended_mid_refresh(pg_databases: ServerDatabases, pg_server: str, tmp_path: Path,
                                                 shadow: str) -> None:
    target = pg_databases.create("ds_lock")
    name = str(make_url(target).database)
    options = {"url": target, "shadow": shadow}
    config = tiny_project(tmp_path, {"staging": options, "other": options})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    _pause_after(config, KILL_PG_LOCK)

    def fingerprint() -> Any:
        databases = rows(pg_server, f"SELECT datname FROM pg_database WHERE datname LIKE '{name}%' ORDER BY 1")
        return pg_fingerprint(target), databases

    def shadow_exists() -> bool:
        if shadow == "database":
            return bool(scalar(pg_server, f"SELECT count(*) FROM pg_database WHERE datname LIKE '{name}__ds_shadow_%'"))
        return bool(scalar(target, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'public__ds_shadow_%'"))

    output = _lost_lock_scenario(config, fingerprint, shadow_exists)
    assert f"owns shadow {shadow} {name if shadow == 'database' else 'public'}__ds_shadow_" in output
    # The lock is free and usable again; the target keeps one current and one previous copy.
    set_hooks(config, "staging", {})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert not shadow_exists()


@pytest.mark.postgres
def test_postgres_lock_session_ended_inside_the_swap_commits_nothing(pg_databases: ServerDatabases,
                                                                      tmp_path: Path) -> None:
    """The lock session is terminated after its check, while the swap's renames run in its transaction:
    nothing of the swap is committed."""
    target = pg_databases.create("ds_lock")
    config = tiny_project(tmp_path, {"staging": {"url": target}})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    before = pg_fingerprint(target)
    # Every ALTER SCHEMA in this database now takes a few seconds: time to end the session mid-swap.
    execute(target, "CREATE FUNCTION public.ds_slow_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN PERFORM pg_sleep(2); END $$",
            "CREATE EVENT TRIGGER ds_slow_ddl ON ddl_command_end WHEN TAG IN ('ALTER SCHEMA') "
            "EXECUTE FUNCTION public.ds_slow_ddl()")
    try:
        before = pg_fingerprint(target)
        process = spawn("refresh", "staging", "--config", str(config))
        renaming = ("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'ds:%' AND state = 'active' "
                    f"AND datname = '{make_url(target).database}' AND query LIKE 'ALTER SCHEMA%'")
        wait_for(lambda: scalar(target, renaming) is not None, 180, "the swap", process)
        execute(target, f"SELECT pg_terminate_backend(({renaming} LIMIT 1))")
        code, _, err = finish(process)
    finally:
        execute(target, "DROP EVENT TRIGGER IF EXISTS ds_slow_ddl", "DROP FUNCTION IF EXISTS public.ds_slow_ddl()")
    assert code == 1, err
    assert "the refresh lock of staging was lost before the swap completed (its session ended: " in err, err
    assert err.strip().endswith("the target was left unchanged")
    assert pg_fingerprint(target) == before


@pytest.mark.postgres
def test_postgres_idle_session_timeout_does_not_end_the_lock(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    target = pg_databases.create("ds_lock")
    execute(target, f'ALTER DATABASE "{make_url(target).database}" SET idle_session_timeout = \'1s\'')
    config = tiny_project(tmp_path, {"staging": {"url": target}})
    set_hooks(config, "staging", {"post_load": [{"run": "sleep 3"}]})  # the lock session idles past the timeout
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks


# -- MariaDB ---------------------------------------------------------------------------------------

def _mysql_cli(server: str) -> str:
    url = make_url(server)
    password = f" -p{url.password}" if url.password else ""
    return f"mysql -N -h {url.host or '127.0.0.1'} -P {url.port or 3306} -u {url.username or 'root'}{password}"


@pytest.mark.mysql
def test_mariadb_lock_connection_killed_mid_refresh(mysql_databases: ServerDatabases, mysql_server: str,
                                                    tmp_path: Path) -> None:
    target = mysql_databases.create("ds_lock")
    name = str(make_url(target).database)
    config = tiny_project(tmp_path, {"staging": {"url": target}, "other": {"url": target}})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    client = _mysql_cli(mysql_server)
    _pause_after(config, f"id=$({client} -e \"SELECT IS_USED_LOCK('datastage:{name}')\") && "
                         f"[ \"$id\" != NULL ] && {client} -e \"KILL $id\"")

    def fingerprint() -> Any:
        found = mysql_fingerprint(target)
        return {k: v for k, v in found["tables"].items() if "__ds_shadow_" not in k}, [
            d for d in found["databases"] if "__ds_shadow_" not in d and not d.endswith("__ds_lock")]

    def shadow_exists() -> bool:
        return any("__ds_shadow_" in d for d in mysql_fingerprint(target)["databases"])

    output = _lost_lock_scenario(config, fingerprint, shadow_exists)
    assert f"owns shadow database {name}__ds_shadow_" in output and "is still connected" in output
    set_hooks(config, "staging", {})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert mysql_fingerprint(target)["databases"] == [name, f"{name}__ds_prev"]


@pytest.mark.mysql
def test_mariadb_lock_holder_message_names_the_holding_run(mysql_databases: ServerDatabases, mysql_server: str,
                                                           tmp_path: Path) -> None:
    target = mysql_databases.create("ds_lock")
    name = str(make_url(target).database)
    config = tiny_project(tmp_path, {"staging": {"url": target}})
    # A shadow another run left behind must not be taken for the holder's.
    execute(mysql_server, f"CREATE DATABASE `{name}__ds_shadow_dead00`")
    holder = open_target(target, "staging")
    with holder.lock("20261127-101500-abc123"):
        assert holder._lock_conn is not None  # type: ignore[attr-defined]
        connection = holder._lock_conn.thread_id()  # type: ignore[attr-defined]
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 4, outcome.output
    message = outcome.output.strip()
    assert message.startswith("error: another refresh of staging is running: run 20261127-101500-abc123 by ")
    assert f"(pid {os.getpid()}, connection {connection}) since 20" in message
    assert "dead00" not in message
    assert mysql_fingerprint(target)["databases"] == [name, f"{name}__ds_shadow_dead00"]  # holder record gone

    # A session holding the lock without a record (or with one a killed holder left) is named by its
    # connection only: never by a guess.
    execute(mysql_server, f"CREATE DATABASE `{name}__ds_lock`",
            f"CREATE TABLE `{name}__ds_lock`.holder (connection_id BIGINT) COMMENT = "
            "'{\"run_id\": \"20200101-000000-0ld000\", \"connection\": 1, \"pid\": 1}'")
    import pymysql

    url = make_url(mysql_server)
    raw = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "")
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", (f"datastage:{name}",))
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    finally:
        raw.close()
    assert outcome.exit_code == 4, outcome.output
    assert f"connection {raw.thread_id()} of " in outcome.output and "(it recorded no run)" in outcome.output
    assert "0ld000" not in outcome.output and "dead00" not in outcome.output


# -- SQLite ----------------------------------------------------------------------------------------

def test_sqlite_lock_file_removed_mid_refresh(tmp_path: Path) -> None:
    config = tiny_project(tmp_path, {"staging": {"url": "sqlite:///staging.db"},
                                     "other": {"url": "sqlite:///staging.db"}})
    staging = tmp_path / "staging.db"
    assert datastage.refresh("staging", config=config).verdict == "pass"
    _pause_after(config, f"rm {staging}.lock")

    def shadow_exists() -> bool:
        return any(p.name.startswith("staging.db.shadow-") and not p.name.endswith(".owner")
                   for p in tmp_path.iterdir())

    output = _lost_lock_scenario(config, lambda: sqlite_fingerprint(staging), shadow_exists)
    assert "still holds its shadow" in output
    assert leftovers(tmp_path) == []
    # A shadow whose run is gone (its owner file unlocked) is dropped by the next refresh.
    (tmp_path / "staging.db.shadow-20200101-000000-dead00").write_bytes(b"left by a killed run")
    (tmp_path / "staging.db.shadow-20200101-000000-dead00.owner").write_text("")
    set_hooks(config, "staging", {})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("staging")) == [
        "staging.db", "staging.db.lock", "staging.db.previous"]


def test_sqlite_swap_without_the_lock_file_changes_nothing(tmp_path: Path) -> None:
    """Alone (no competing refresh), a run whose lock file vanished still stops before its swap."""
    config = tiny_project(tmp_path, {"staging": {"url": "sqlite:///staging.db"}})
    staging = tmp_path / "staging.db"
    assert datastage.refresh("staging", config=config).verdict == "pass"
    before = sqlite_fingerprint(staging)
    set_hooks(config, "staging", {"post_load": [{"run": f"rm {staging}.lock"}]})
    code, _, err = finish(spawn("refresh", "staging", "--config", str(config)))
    assert code == 1 and f"({staging}.lock was removed); the target was left unchanged" in err, err
    assert sqlite_fingerprint(staging) == before
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "staging.db.previous").exists()  # nothing was swapped


def test_a_swap_whose_lock_session_ended_during_the_commit_is_settled_by_the_refresh_log(tmp_path: Path) -> None:
    from datastage.errors import LockLost, TargetError

    target = open_target(f"sqlite:///{tmp_path / 'staging.db'}", "staging")
    why = "its session ended: server closed the connection"
    target.settle(why, lambda: True)  # the commit went through while the lock was held: the swap is done
    with pytest.raises(LockLost) as info:
        target.settle(why, lambda: False)
    assert str(info.value) == ("the refresh lock of staging was lost before the swap completed (its session ended: "
                               "server closed the connection); the target was left unchanged")

    def unreachable() -> bool:
        raise TargetError("cannot connect to the target")

    with pytest.raises(LockLost) as info:
        target.settle(why, unreachable)
    assert "whether the new copy is live could not be checked" in str(info.value)
    assert "cannot connect to the target" in str(info.value) and "unchanged" not in str(info.value)
