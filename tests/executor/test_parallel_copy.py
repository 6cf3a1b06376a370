"""Parallel copies on real PostgreSQL: chunk boundaries, executor equivalence, one snapshot, worker failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import TEST_KEY, ServerDatabases
from load_support import execute, pg_fingerprint, rows, scalar, write_project
from sqlalchemy.engine import make_url

import datastage
from datastage import pipeline
from datastage.cli import main
from datastage.executor import parallel
from datastage.executor.base import InlineExecutor
from datastage.executor.chunks import table_chunks
from datastage.executor.work import FAULT_ENV, PAUSE_ENV
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import reflect
from datastage.subset.model import TablePlan

pytestmark = pytest.mark.postgres

PASSWORD = "Chunk-Passw0rd-never-shown"  # the server trusts local connections: any password works
SOURCE_SQL = (
    """CREATE TABLE customer (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
         email text NOT NULL UNIQUE, phone text)""",
    """INSERT INTO customer SELECT i, (ARRAY['Anna','Ben','Carla','Dmitri','Eve'])[1 + i % 5],
         (ARRAY['Smith','Jones','Okafor','Novak'])[1 + i % 4], 'user' || i || '@corp.example',
         '+44 20 7946 ' || lpad((i % 10000)::text, 4, '0') FROM generate_series(1, 3000) i""",
    """CREATE TABLE line (order_id int, line_no int, note text, PRIMARY KEY (order_id, line_no))""",
    """INSERT INTO line SELECT i / 4, i % 4, 'item-' || i FROM generate_series(1, 2500) i""",
    """CREATE TABLE tag (code text PRIMARY KEY, label text)""",
    """INSERT INTO tag SELECT 'tag-' || lpad(i::text, 5, '0'), 'Label Person ' || i FROM generate_series(1, 2000) i""",
    """CREATE TABLE event (at timestamptz, message text, contact text)""",
    """INSERT INTO event SELECT timestamptz '2024-01-01' + i * interval '1 minute', 'event ' || mod(i, 7),
         'contact' || (i % 900) || '@corp.example' FROM generate_series(1, 2500) i""",
    """CREATE TABLE code_map (id int PRIMARY KEY, secret text NOT NULL)""",
    """INSERT INTO code_map SELECT i, 'secret-' || i FROM generate_series(1, 240) i""",
)
RULES = {
    "version": 1,
    "default": "keep",
    "tables": {
        "customer": {"first_name": "fake.first_name", "last_name": "fake.last_name",
                     "email": {"strategy": "email", "unique": True},
                     "phone": {"strategy": "partial", "keep_last": 2}},
        "tag": {"label": "fake.last_name"},
        "event": {"contact": {"strategy": "email", "unique": True}},
        # 4,096 possible outputs for 240 inputs: collisions between chunks are all but certain.
        "code_map": {"secret": {"strategy": "hash", "length": 3, "unique": True}},
    },
}
TABLES = ("customer", "line", "tag", "event", "code_map")


def with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def build_source(url: str) -> None:
    execute(url, *SOURCE_SQL)


@pytest.fixture(scope="module")
def source(pg_server: str) -> Iterator[str]:
    databases = ServerDatabases(pg_server)
    try:
        url = databases.create("ds_chunks_src")
        build_source(url)
        yield url
    finally:
        databases.drop_all()


def content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every copied table, ordered by all its columns."""
    return {t: rows(url, f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}


def checks_of(result: Any) -> list[tuple[str, str, str | None, str]]:
    return sorted((c.name, c.status, c.table, c.summary) for c in result.checks)


def refresh(tmp_path: Path, source: str, target: str, name: str, **env: Any) -> Any:
    config = write_project(tmp_path / name, with_password(source), {"staging": {"url": with_password(target), **env}},
                           RULES)
    return datastage.refresh("staging", config=config)


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, bool]]:
    """Forces chunks of about 400 rows; records (table, chunks, copied in chunks) of each parallel copy."""
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
    seen: list[tuple[str, int, bool]] = []
    original = parallel.ParallelCopy.copy_table

    def spy(self: parallel.ParallelCopy, table: Any, chunks: Any, progress: Any) -> Any:
        outcome = original(self, table, chunks, progress)
        seen.append((table.key, len(chunks), outcome is not None))
        return outcome

    monkeypatch.setattr(parallel.ParallelCopy, "copy_table", spy)
    return seen


def test_chunks_cover_every_row_once_whatever_the_key(source: str) -> None:
    engine = make_engine(source, read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
            for name in TABLES:
                table = model.table(name)
                chunks = table_chunks(conn, table, TablePlan(table.key, 0, "all"), model.default_schema, chunk_rows=400)
                total = scalar(source, f"SELECT count(*) FROM {name}")
                assert len(chunks) > 2 if total > 400 else len(chunks) == 1
                assert [c.position for c in chunks] == list(range(len(chunks)))
                # Every row (by its ctid, keys or none) falls in exactly one chunk.
                seen: list[str] = []
                for chunk in chunks:
                    seen += [r[0] for r in conn.exec_driver_sql(f"SELECT ctid::text FROM {name}{chunk.where}")]
                assert len(seen) == len(set(seen)) == total
                # The cut depends on the data only: asked again, the same chunks.
                assert table_chunks(conn, table, TablePlan(table.key, 0, "all"), model.default_schema,
                                    chunk_rows=400) == chunks
                assert repr(chunks[0]) == f"Chunk({table.key} 1/{len(chunks)})"
    finally:
        engine.dispose()


def test_every_executor_gives_the_same_copy_as_one_process(source: str, pg_databases: ServerDatabases,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           chunked: list[tuple[str, int, bool]]) -> None:
    monkeypatch.delenv("DATASTAGE_CHUNK_ROWS")
    sequential_target = pg_databases.create("ds_chunks_seq")
    sequential = refresh(tmp_path, source, sequential_target, "sequential")
    assert sequential.verdict == "pass", [(c.name, c.summary) for c in sequential.checks if c.status != "PASS"]
    assert chunked == []  # small tables: one chunk each, today's path
    expected = content(sequential_target)
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
    reports = []
    for label, env in (("one", {"workers": 1}), ("two", {"workers": 2, "executor": "local"}),
                       ("inline", {"workers": 2})):
        if label == "inline":
            monkeypatch.setattr("datastage.pipeline.open_executor", lambda setting: InlineExecutor())
        chunked.clear()
        target = pg_databases.create(f"ds_chunks_{label}")
        result = refresh(tmp_path, source, target, label, **env)
        assert result.verdict == "pass", result.checks
        copied = {table: (chunks, whole) for table, chunks, whole in chunked}
        assert {t for t, (n, _) in copied.items() if n > 1} >= {"customer", "line", "tag", "event"}
        assert all(whole for t, (_, whole) in copied.items() if t != "code_map")
        assert content(target) == expected, label
        # The same verdicts as in one process; the same figures whatever the executor (how many source
        # tokens were hashed depends on the batches, so on the chunks, which depend on the data only).
        assert [c[:3] for c in checks_of(result)] == [c[:3] for c in checks_of(sequential)], label
        reports.append(checks_of(result))
        assert result.load is not None and result.load.rows == sequential.load.rows
    assert reports[0] == reports[1] == reports[2]


@pytest.mark.parametrize(("cores", "workers"), [(2, None), (4, 2)])
def test_by_default_a_machine_shared_with_the_servers_gives_the_workers_half_its_cores(
        source: str, pg_databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        chunked: list[tuple[str, int, bool]], cores: int, workers: int | None) -> None:
    """Source and target on 127.0.0.1: half the cores work; one worker copies in the refresh's own process."""
    opened: list[Any] = []
    original = pipeline.open_executor

    def spy(setting: Any) -> Any:
        opened.append(setting)
        return original(setting)

    monkeypatch.setattr("datastage.executor.os.cpu_count", lambda: cores)
    monkeypatch.setattr("datastage.pipeline.open_executor", spy)
    target = pg_databases.create("ds_chunks_default")
    result = refresh(tmp_path, source, target, "default")
    assert result.verdict == "pass", result.checks
    assert [s.workers for s in opened] == ([] if workers is None else [workers])
    assert bool(chunked) is (workers is not None)
    if workers is not None:
        assert {t for t, n, _ in chunked if n > 1} >= {"customer", "line", "tag", "event"}


def test_a_collision_between_chunks_copies_the_table_again_in_one_process(
        source: str, pg_databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        chunked: list[tuple[str, int, bool]]) -> None:
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "40")  # code_map in several chunks too
    target = pg_databases.create("ds_chunks_redo")
    result = refresh(tmp_path, source, target, "redo", workers=2)
    assert result.verdict == "pass", result.checks
    assert ("code_map", 2, False) in [(t, min(n, 2), whole) for t, n, whole in chunked]
    monkeypatch.delenv("DATASTAGE_CHUNK_ROWS")
    reference = pg_databases.create("ds_chunks_ref")
    assert refresh(tmp_path, source, reference, "reference").verdict == "pass"
    assert content(target) == content(reference)
    secrets = [r[0] for r in rows(target, "SELECT secret FROM code_map")]
    assert len(set(secrets)) == len(secrets) == 240


def test_writes_on_the_source_during_a_parallel_copy_change_nothing_in_it(
        pg_server: str, pg_databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        chunked: list[tuple[str, int, bool]]) -> None:
    src = pg_databases.create("ds_chunks_live")
    build_source(src)
    before_target = pg_databases.create("ds_chunks_before")
    monkeypatch.delenv("DATASTAGE_CHUNK_ROWS")
    assert refresh(tmp_path, src, before_target, "before").verdict == "pass"
    expected = content(before_target)
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
    pause = tmp_path / "pause"
    pause.mkdir()
    monkeypatch.setenv(PAUSE_ENV, str(pause))
    wrote: list[str] = []

    def writer() -> None:  # once a chunk is inside the snapshot, the source changes under it
        deadline = time.monotonic() + 60
        while not list(pause.glob("ready-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        engine = sa.create_engine(src, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO customer SELECT i, 'New', 'Person', 'new' || i || '@corp.example', "
                                     "NULL FROM generate_series(5001, 5400) i")
                conn.exec_driver_sql("UPDATE customer SET first_name = 'Changed', email = 'changed' || id || "
                                     "'@corp.example' WHERE mod(id, 3) = 0")
                conn.exec_driver_sql("DELETE FROM line WHERE order_id < 200")
                conn.exec_driver_sql("UPDATE tag SET label = 'Relabelled' WHERE code < 'tag-01000'")
                conn.exec_driver_sql("INSERT INTO event SELECT now(), 'late', 'late@corp.example' "
                                     "FROM generate_series(1, 300)")
            wrote.append("committed")
        finally:
            engine.dispose()
            (pause / "go").touch()

    thread = threading.Thread(target=writer)
    thread.start()
    target = pg_databases.create("ds_chunks_during")
    try:
        result = refresh(tmp_path, src, target, "during", workers=2)
    finally:
        (pause / "go").touch()
        thread.join(70)
    assert wrote == ["committed"]
    assert result.verdict == "pass", result.checks
    assert any(n > 1 for _, n, _ in chunked)
    assert scalar(src, "SELECT count(*) FROM customer") == 3400  # the source did change meanwhile
    assert content(target) == expected


@pytest.mark.parametrize("fault", ["kill", "raise"])
def test_a_failing_worker_fails_the_refresh_and_leaves_the_target_as_it_was(
        fault: str, source: str, pg_databases: ServerDatabases, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    target = pg_databases.create("ds_chunks_fail")
    config = write_project(tmp_path, with_password(source),
                           {"staging": {"url": with_password(target), "workers": 2}}, RULES)
    first = datastage.refresh("staging", config=config)
    assert first.verdict == "pass"
    before = pg_fingerprint(target)
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
    monkeypatch.setenv(FAULT_ENV, fault)
    outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 1, outcome.output
    assert ("was killed by SIGKILL" if fault == "kill" else "injected failure") in outcome.output
    assert PASSWORD not in outcome.output and TEST_KEY not in outcome.output
    if fault == "raise":
        assert "***" in outcome.output  # the source URL in the message, its password hidden
    # The previous copy is still the live one, and no shadow is left behind.
    assert pg_fingerprint(target) == before
    assert rows(target, "SELECT nspname FROM pg_namespace WHERE nspname LIKE '%__ds_shadow%'") == []
    assert rows(target, "SELECT run_id FROM datastage_refresh_log") == [(first.run_id,)]


@pytest.mark.slow
def test_chunks_on_a_dask_cluster_give_the_same_copy_as_one_process(
        source: str, pg_databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        chunked: list[tuple[str, int, bool]]) -> None:
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv("DATASTAGE_CHUNK_ROWS")
    sequential_target = pg_databases.create("ds_chunks_dask_seq")
    assert refresh(tmp_path, source, sequential_target, "dask-sequential").verdict == "pass"
    monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  local_directory=str(tmp_path / "dask")) as cluster:
        target = pg_databases.create("ds_chunks_dask")
        result = refresh(tmp_path, source, target, "dask", executor={"dask": cluster.scheduler_address})
        worker_pids = set(distributed.Client(cluster).run(lambda: __import__("os").getpid()).values())
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert {t for t, n, whole in chunked if n > 1 and whole} >= {"customer", "line", "tag", "event"}
    assert content(target) == content(sequential_target)
    assert len(worker_pids) == 2


@pytest.mark.slow
def test_a_dask_worker_killed_mid_refresh_fails_it_and_leaves_the_target_as_it_was(
        source: str, pg_databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    target = pg_databases.create("ds_chunks_dask_kill")
    project = {"url": with_password(target), "executor": {"dask": "${DASK_SCHEDULER}"}}
    config = write_project(tmp_path, with_password(source), {"staging": project}, RULES)
    monkeypatch.setenv(FAULT_ENV, "kill")  # the workers start with it: each kills itself in a table's second chunk
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  local_directory=str(tmp_path / "dask")) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER", cluster.scheduler_address)
        first = datastage.refresh("staging", config=config)  # one chunk per table: no worker is asked
        assert first.verdict == "pass"
        before = pg_fingerprint(target)
        monkeypatch.setenv("DATASTAGE_CHUNK_ROWS", "400")
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 1, outcome.output
    assert "Dask worker died" in outcome.output
    assert PASSWORD not in outcome.output and TEST_KEY not in outcome.output
    assert pg_fingerprint(target) == before
    assert rows(target, "SELECT nspname FROM pg_namespace WHERE nspname LIKE '%__ds_shadow%'") == []
    assert rows(target, "SELECT run_id FROM datastage_refresh_log") == [(first.run_id,)]
