"""The kept-column check's flagging in a worker: what the worker returns, and when it leaves a table to the check."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import ServerDatabases
from load_support import write_project

import datastage
from datastage.executor.base import forget, install
from datastage.source.schema import TableInfo, reflect
from datastage.verify.checks import kept_early
from datastage.verify.checks.kept import KeptColumn, flag_table, read_loaded

pytestmark = pytest.mark.postgres
ROWS = 500


@pytest.fixture
def loaded(pg_databases: ServerDatabases) -> Iterator[tuple[str, TableInfo]]:
    """A loaded table whose kept ``email`` column holds an e-mail address on every other row."""
    url = pg_databases.create("ds_kept_early")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE person (id integer PRIMARY KEY, email text, status text)")
        conn.exec_driver_sql(f"INSERT INTO person SELECT i, CASE WHEN mod(i, 2) = 0 THEN 'user' || i || '@example.org' "
                             f"ELSE 'none' END, 'active' FROM generate_series(1, {ROWS}) i")
    with engine.connect() as conn:
        table = reflect(conn).table("person")
    engine.dispose()
    install(kept_early.FLAG_RUN, {kept_early.URL_SECRET: url.encode(), kept_early.LABEL_SECRET: b"datastage:test"})
    try:
        yield url, table
    finally:
        forget(kept_early.FLAG_RUN)
        for cached in kept_early._ENGINES.values():
            cached.dispose()
        kept_early._ENGINES.clear()


COLUMNS = [KeptColumn("person", "email", "kept-by-default", None),
           KeptColumn("person", "status", "kept-by-default", None)]


def test_the_worker_flags_what_the_check_would(loaded: tuple[str, TableInfo]) -> None:
    url, table = loaded
    flagged = kept_early._flag((table, COLUMNS, ("id",), '"person"', 64, 1_000, 1 << 20))
    assert flagged is not None
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        here = flag_table(conn, table, COLUMNS, ("id",), '"person"', 64, 1_000, 1 << 20)
    engine.dispose()
    assert here is not None
    assert flagged.tallies["email"].rows == ROWS and flagged.tallies["email"].flagged["email"] == ROWS // 2
    assert {c: (t.rows, dict(t.flagged)) for c, t in flagged.tallies.items()} == \
        {c: (t.rows, dict(t.flagged)) for c, t in here.tallies.items()}
    assert sum(len(frame) for frame, _ in flagged.batches) == ROWS // 2
    assert [sorted(frame["id"]) for frame, _ in flagged.batches] == [sorted(frame["id"]) for frame, _ in here.batches]


def test_too_many_flagged_rows_or_a_failed_read_leave_the_table_to_the_check(
        loaded: tuple[str, TableInfo], caplog: pytest.LogCaptureFixture) -> None:
    url, table = loaded
    with caplog.at_level(logging.WARNING):
        # Stopped in the middle of its COPY: by rows, then by bytes (250 e-mail addresses of 17-19 characters).
        assert kept_early._flag((table, COLUMNS, ("id",), '"person"', 64, 10, 1 << 20)) is None
        assert kept_early._flag((table, COLUMNS, ("id",), '"person"', 64, 1_000, 1_000)) is None
        failed = kept_early._flag((table, COLUMNS, ("id",), '"no_such_table"', 64, 1_000, 1 << 20))
        again = kept_early._flag((table, COLUMNS, ("id",), '"person"', 64, 1_000, 1 << 20))
    assert isinstance(failed, str) and "no_such_table" in failed and "\n" not in failed
    assert url not in failed and "postgres@" not in failed
    assert again is not None and again.tallies["email"].rows == ROWS
    # A connection left in the middle of a COPY is closed, not reset (which would fail and log an error).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_large_copies_without_hooks_are_flagged_while_they_load_where_workers_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://host/db"
    many = kept_early.MIN_ROWS
    monkeypatch.setenv("DATASTAGE_CHECK_WORKERS", "2")
    assert kept_early.applies(rows=many, post_load_hooks=False, reader_url=url) == sys.platform.startswith("linux")
    assert not kept_early.applies(rows=many - 1, post_load_hooks=False, reader_url=url)
    assert not kept_early.applies(rows=many, post_load_hooks=True, reader_url=url)
    assert not kept_early.applies(rows=many, post_load_hooks=False, reader_url=None)
    monkeypatch.setenv("DATASTAGE_CHECK_WORKERS", "1")
    assert not kept_early.applies(rows=many, post_load_hooks=False, reader_url=url)


def test_kept_columns_are_read_from_the_first_block_whoever_else_scans_the_table(
        loaded: tuple[str, TableInfo]) -> None:
    """Phone numbers are judged by their batch: a read that joined another scan mid-table would batch
    the rows differently."""
    url, table = loaded
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [i for rows in read_loaded(conn, table, ["id", "email"], '"person"', 100)
               for i in rows.frame(np.arange(len(rows)))["id"]]
        assert conn.exec_driver_sql("SHOW synchronize_seqscans").scalar() == "off"
    engine.dispose()
    assert ids == list(range(1, ROWS + 1))


@pytest.fixture
def planned(loaded: tuple[str, TableInfo], pg_databases: ServerDatabases, tmp_path: Path) -> Any:
    """The plan of a refresh of the ``loaded`` database (its ``person`` table kept whole)."""
    url, _ = loaded
    rules = {"version": 1, "default": "keep",
             "tables": {"person": {"email": {"strategy": "keep", "reason": "test addresses, not people"}}}}
    config = write_project(tmp_path / "project", url, {"staging": {"url": pg_databases.create("ds_kept_target")}},
                           rules=rules)
    return datastage.plan("staging", config=config)


def test_kept_flags_hand_back_what_the_worker_flagged(loaded: tuple[str, TableInfo], planned: Any) -> None:
    url, _ = loaded
    table = planned.model.table("person")
    flags = kept_early.KeptFlags(planned, url, 64, "datastage:test")
    try:
        flags.offer(table, '"person"')
        flagged = flags("person")
    finally:
        flags.close()
    assert flagged is not None
    assert flagged.tallies["email"].rows == ROWS and flagged.tallies["email"].flagged["email"] == ROWS // 2
    assert flags("person") is None  # handed over once
    assert flags("no_such_table") is None  # never offered: the check flags it itself


@contextmanager
def locked(url: str) -> Iterator[None]:
    """The ``person`` table locked by another session, so that a worker reading it waits."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE person IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def _wait_for_worker(flags: kept_early.KeptFlags) -> None:
    """Until the worker, which the flags' thread starts, is running."""
    deadline = time.monotonic() + 60
    while not flags._executor._pool:
        assert time.monotonic() < deadline, "the kept flags' worker did not start"
        time.sleep(0.05)


def test_the_worker_starts_without_holding_up_the_copy(loaded: tuple[str, TableInfo], planned: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = loaded
    started: list[str] = []
    release = threading.Event()

    def slow_share(self: Any, run_id: str, secrets: dict[str, bytes], context: Any = None) -> None:
        assert release.wait(30)  # the worker's start takes until the test lets it finish
        started.append(run_id)

    monkeypatch.setattr(kept_early.LocalExecutor, "share", slow_share)
    flags = kept_early.KeptFlags(planned, url, 64, "datastage:test")
    made_before_start = started == []  # the constructor came back while the start was still going on
    release.set()
    flags.close()
    assert made_before_start and started == [kept_early.FLAG_RUN]


def test_a_worker_that_cannot_start_leaves_every_table_to_the_check(
        loaded: tuple[str, TableInfo], planned: Any, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = loaded

    failures = iter([OSError(11, "Resource temporarily unavailable"), ValueError(f"bad state near {url}")])

    def no_processes(self: Any, run_id: str, secrets: dict[str, bytes], context: Any = None) -> None:
        raise next(failures)

    monkeypatch.setattr(kept_early.LocalExecutor, "share", no_processes)
    with caplog.at_level(logging.WARNING, logger="datastage.verify"):
        for _ in range(2):  # an OSError, then an error nobody expects: no table waits for the worker
            flags = kept_early.KeptFlags(planned, url, 64, "datastage:test")
            try:
                flags.offer(planned.model.table("person"), '"person"')
                assert flags("person") is None
            finally:
                flags.close()
    assert sum("its worker did not start" in r.getMessage() for r in caplog.records) == 2
    assert all(url not in r.getMessage() for r in caplog.records)


def test_a_worker_that_dies_leaves_every_table_to_the_check(
        loaded: tuple[str, TableInfo], planned: Any, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = loaded
    table = planned.model.table("person")
    flags = kept_early.KeptFlags(planned, url, 64, "datastage:test")
    try:
        with locked(url), caplog.at_level(logging.WARNING, logger="datastage.verify"):
            flags.offer(table, '"person"')
            _wait_for_worker(flags)
            time.sleep(1.0)  # the worker waits for the lock
            for worker in flags._executor._pool:
                os.kill(worker.process.pid, signal.SIGKILL)
            assert flags("person") is None
    finally:
        flags.close()
    assert any("its worker stopped" in r.getMessage() for r in caplog.records)


def test_closing_while_the_worker_still_flags_stops_it_at_once(loaded: tuple[str, TableInfo], planned: Any) -> None:
    url, _ = loaded
    table = planned.model.table("person")
    flags = kept_early.KeptFlags(planned, url, 64, "datastage:test")
    with locked(url):
        flags.offer(table, '"person"')
        _wait_for_worker(flags)
        time.sleep(0.5)
        started = time.monotonic()
        flags.close()  # as after a failed copy: nobody will ask for the result
        assert time.monotonic() - started < 5
    assert not flags._thread.is_alive() and flags._executor._pool == []
