"""The leak check searched by worker processes, in parts of the shadow (PostgreSQL TID ranges, SQLite
rowid ranges, MariaDB tables): the same findings as one process, planted leaks caught, a failing worker
a clean step failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerDatabases
from load_support import scalar
from sqlalchemy.engine import make_url

import datastage
from datastage.errors import StepError
from datastage.settings import CHECK_WORKERS_ENV
from datastage.source.schema import TableInfo
from datastage.verify.leaks import pool as checkpool

LEAK_CHECKS = ("leak_masked_columns", "leak_identifiers", "card_sweep")


def _server_target(config: Path, url: str) -> None:
    config.write_text(config.read_text().replace("url: sqlite:///staging.db", f'url: "{url}"'))


def _plant_leaks(config: Path) -> None:
    """Customers' e-mails in a kept column, and a card number outside the test ranges in another."""
    conn = sqlite3.connect(config.parent / "prod.db")
    conn.execute("UPDATE support_ticket SET subject = subject || ' (reply to ' || "
                 "(SELECT email FROM customer c WHERE c.customer_id = support_ticket.customer_id) || ')' "
                 "WHERE ticket_id % 7 = 0")
    conn.execute("UPDATE support_ticket SET status = 'card 4539 1488 0343 6467' WHERE ticket_id % 11 = 0")
    conn.commit()
    conn.close()


def _figures(config: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> tuple[dict[str, Any], int]:
    monkeypatch.setenv(CHECK_WORKERS_ENV, str(workers))
    tasks: list[int] = []
    run = checkpool._run

    def counted(scanner: Any, parts: list[tuple[str, str, str]], *args: Any) -> Any:
        tasks.append(len(parts))
        return run(scanner, parts, *args)

    monkeypatch.setattr(checkpool, "_run", counted)
    result = datastage.refresh("staging", config=config)
    found = {c.name: (c.status, c.figures, c.findings) for c in result.checks if c.name in LEAK_CHECKS}
    return found, sum(tasks)


@pytest.mark.parametrize("kind", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                  pytest.param("mysql", marks=pytest.mark.mysql), "sqlite"])
def test_workers_find_exactly_what_one_process_finds(demo_project: Path, kind: str, request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if kind != "sqlite":
        databases: ServerDatabases = request.getfixturevalue("pg_databases" if kind == "postgresql"
                                                             else "mysql_databases")
        url = databases.create("ds_checkpool")
        if kind == "mysql":  # the first refresh creates the database at its swap: workers read the shadow
            with databases.engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE `{url.rsplit('/', 1)[1]}`")
        _server_target(demo_project, url)
    _plant_leaks(demo_project)
    # Many small parts: TID ranges on PostgreSQL, rowid ranges on SQLite, tables on MariaDB.
    for name, value in (("MIN_PAGES", 0), ("PART_PAGES", 2), ("MIN_ROWS", 0), ("PART_ROWS", 50)):
        monkeypatch.setattr(checkpool, name, value)

    together, tasks = _figures(demo_project, monkeypatch, workers=2)  # first: a MariaDB target does not exist yet
    alone, no_tasks = _figures(demo_project, monkeypatch, workers=1)

    assert no_tasks == 0 and tasks > (10 if kind == "mysql" else 20)
    assert together == alone
    assert alone["leak_identifiers"][0] == "FAIL"
    assert alone["leak_identifiers"][1]["matches"]["support_ticket.subject"]["email"] > 3
    assert alone["card_sweep"][0] == "FAIL" and alone["card_sweep"][1]["matches"]["support_ticket.status"] > 3
    assert alone["leak_masked_columns"][0] == "PASS"
    assert alone["leak_masked_columns"][1]["values_checked"] > 1000
    # The findings cross the process boundary: the same origins, counts and row keys as one process.
    subject = [f for f in alone["leak_identifiers"][2] if f["column"] == "support_ticket.subject"]
    # Each address was planted from customer.email (some also appear in other masked columns of the source).
    assert {(f["kind"], tuple(f["key_columns"])) for f in subject} == {("email", ("ticket_id",))}
    assert all("customer.email" in f["origin"] for f in subject)
    planted = alone["leak_identifiers"][1]["matches"]["support_ticket.subject"]["email"]
    assert sum(f["count"] for f in subject) == planted
    assert len(subject[0]["rows"]) == 20 and all(row[0] % 7 == 0 for f in subject for row in f["rows"])
    status = next(f for f in alone["card_sweep"][2] if f["column"] == "support_ticket.status")
    assert status["kind"] == "card" and all(row[0] % 11 == 0 for row in status["rows"])


@pytest.mark.postgres
def test_a_failing_worker_fails_the_verify_step_and_keeps_the_target(
        demo_project: Path, pg_databases: ServerDatabases, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_databases.create("ds_checkpool_fail")
    _server_target(demo_project, url)
    datastage.refresh("staging", config=demo_project)
    before = scalar(url, "SELECT run_id FROM public.datastage_refresh_log ORDER BY started_at DESC LIMIT 1")

    monkeypatch.setattr(checkpool, "MIN_PAGES", 0)
    monkeypatch.setenv(CHECK_WORKERS_ENV, "2")

    original = checkpool._run
    gone = make_url(url).database + "_gone"

    def elsewhere(scanner: Any, tasks: Any, reader: str, *args: Any) -> Any:
        # The workers (started from a clean process, so no patch reaches them) are sent to a database
        # that does not exist: each part fails there, in the worker.
        return original(scanner, tasks, make_url(reader).set(database=gone).render_as_string(False), *args)

    monkeypatch.setattr(checkpool, "_run", elsewhere)
    failure = rf'^verify failed: reading \S+ for the leak check: .*database "{gone}" does not exist'
    with pytest.raises(StepError, match=failure):
        datastage.refresh("staging", config=demo_project)
    after = scalar(url, "SELECT run_id FROM public.datastage_refresh_log ORDER BY started_at DESC LIMIT 1")
    assert after == before
    assert scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%%__ds_shadow_%%'") == 0


def test_parts_cover_every_block_once() -> None:
    parts = checkpool._parts(5 * checkpool.PART_PAGES + 3, tid_ranges=True)
    assert len(parts) == 6 and parts[-1].endswith(f"'({5 * checkpool.PART_PAGES},0)'::tid")
    assert checkpool._parts(10 * checkpool.PART_PAGES, tid_ranges=False) == [""]
    assert checkpool._parts(checkpool.PART_PAGES, tid_ranges=True) == [""]


def test_rowid_parts_cover_every_row_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    monkeypatch.setattr(checkpool, "PART_ROWS", 10_000)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'parts.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("CREATE TABLE w (id TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT -7 UNION ALL SELECT i + 3 FROM n WHERE i < 500000) "
                             "INSERT INTO t SELECT i, 'x' FROM n")
        # A user column called rowid (NULL here) hides the real rowid: another alias is used.
        conn.exec_driver_sql("CREATE TABLE u (rowid INTEGER, v TEXT)")
        conn.exec_driver_sql("INSERT INTO u (v) SELECT v FROM t")
        # Sparse keys (snowflake ids): as many parts as the rows call for, not the key span.
        conn.exec_driver_sql("CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO s SELECT id * 9000000000000, v FROM t WHERE id > 0")
        model = {n: TableInfo.__new__(TableInfo) for n in "tuws"}
        for name, columns in (("t", ["id", "v"]), ("u", ["rowid", "v"]), ("w", ["id"]), ("s", ["id", "v"])):
            object.__setattr__(model[name], "columns", dict.fromkeys(columns))
        for name in "tus":
            parts = checkpool._rowid_parts(conn, model[name], f'"{name}"')
            counted = [conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"{where}').scalar() for where in parts]
            total = conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()
            assert 5 < len(parts) <= total // checkpool.PART_ROWS + 1 and sum(counted) == total, name
        assert checkpool._rowid_parts(conn, model["w"], '"w"') == [""]
    engine.dispose()


def test_the_search_runs_beside_the_other_checks_and_stops_when_one_fails(
        demo_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers search while the kept-column check runs in the refresh's process; when that check fails,
    the search is stopped (its thread ends, its workers with it) and the refresh fails with that check's error."""
    from dataclasses import replace

    from datastage.verify import registry

    for name, value in (("MIN_ROWS", 0), ("PART_ROWS", 50)):
        monkeypatch.setattr(checkpool, name, value)
    monkeypatch.setenv(CHECK_WORKERS_ENV, "2")
    started: list[Any] = []
    original = checkpool._Background

    def recorded(*args: Any) -> Any:
        started.append(original(*args))
        return started[-1]

    def failing(ctx: Any) -> Any:
        assert len(started) == 1  # the workers' search began before this check
        raise StepError("the kept-column check failed on purpose", step="verify")

    monkeypatch.setattr(checkpool, "_Background", recorded)
    monkeypatch.setattr(registry, "CHECKS", tuple(replace(f, check=failing) if f.name == "kept" else f
                                                  for f in registry.CHECKS))
    with pytest.raises(StepError, match="the kept-column check failed on purpose"):
        datastage.refresh("staging", config=demo_project)
    assert len(started) == 1 and started[0]._cancelled.is_set() and not started[0]._thread.is_alive()
    assert not (demo_project.parent / "staging.db").exists()  # nothing went live


def test_the_workers_process_starts_early_only_for_a_copy_they_will_search(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[bool] = []
    monkeypatch.setattr(checkpool, "start_forkserver", lambda: started.append(True))
    monkeypatch.setenv(CHECK_WORKERS_ENV, "2")
    checkpool.warm_up(checkpool.MIN_ROWS - 1)
    assert started == []
    checkpool.warm_up(checkpool.MIN_ROWS)
    assert started == [True]
    monkeypatch.setenv(CHECK_WORKERS_ENV, "1")  # one worker: the search runs in the refresh's process
    checkpool.warm_up(10 * checkpool.MIN_ROWS)
    assert started == [True]
