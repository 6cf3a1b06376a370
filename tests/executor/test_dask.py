"""The Dask executor on real clusters: a ``distributed.LocalCluster`` with worker processes, and
``dask scheduler`` / ``dask worker`` processes over TCP on localhost running a real refresh.

Results and positions, the in-flight limit, secrets and context in worker memory (and only there:
not in any log line of the scheduler or a worker, nor in their directories), jobs only on the
workers that hold the secrets, a failing job, a killed worker, an unreachable scheduler.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY
from load_support import sqlite_fingerprint

from datastage.errors import EXIT_RUNTIME, DatastageError, StepError, TargetError
from datastage.executor.base import context, shared
from datastage.executor.dask import DaskExecutor
from datastage.secrets import key_forms, register_key

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = b"dask-test-masking-key-5f1e2d3c4b5a6978"
PASSWORD = "Pw-of-the-source-db-7731"
SECRETS = {"masking_key": KEY, "source_password": PASSWORD.encode()}


# Jobs (module-level functions: the workers import this module to run them) ------------------------

def square(job: int) -> dict[str, Any]:
    """The job's square, with what the worker holds for the run and where it ran."""
    return {"value": job * job, "key": shared("masking_key"), "context": context(), "pid": os.getpid()}


def interval(job: int) -> tuple[float, float]:
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    time.sleep(0.05)
    return start, time.monotonic()


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def pid_after_unless(job: tuple[float, str]) -> int:
    """``pid_after(seconds)``, ended early once the file ``job[1]`` exists (a cancelled job that runs
    on would hold its worker's thread, and the module's cluster, for the rest of its seconds)."""
    seconds, release = job
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(release):
        time.sleep(0.05)
    return os.getpid()


def fail_on_three(job: int) -> int:
    if job == 3:
        raise ValueError(f"row {job} is bad; key {shared('masking_key').hex()} password {PASSWORD}")
    time.sleep(0.05)
    return job


def target_error(job: int) -> int:
    raise TargetError("the shadow table is full", table="customer")


def pid(job: int) -> int:
    return os.getpid()


# Clusters --------------------------------------------------------------------------------------------

def _cluster(n_workers: int, directory: Path) -> Any:
    return distributed.LocalCluster(processes=True, n_workers=n_workers, threads_per_worker=1,
                                    dashboard_address=":0", local_directory=str(directory))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two worker processes, one thread each."""
    with _cluster(2, tmp_path_factory.mktemp("dask")) as local:
        yield local


@pytest.fixture
def executor(cluster: Any) -> Iterator[DaskExecutor]:
    with DaskExecutor(cluster.scheduler_address) as opened:
        opened.share("run-1", SECRETS, context={"plan": "three tables"})
        yield opened


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# LocalCluster ----------------------------------------------------------------------------------------

def test_results_come_with_their_positions_and_the_run_in_worker_memory(executor: DaskExecutor) -> None:
    assert executor.workers == 2  # the cluster's threads
    results = dict(executor.run(square, list(range(12))))
    assert sorted(results) == list(range(12))
    assert [results[i]["value"] for i in range(12)] == [i * i for i in range(12)]
    assert {r["key"] for r in results.values()} == {KEY}
    assert {json.dumps(r["context"]) for r in results.values()} == {'{"plan": "three tables"}'}
    assert os.getpid() not in {r["pid"] for r in results.values()}  # run in the worker processes


def test_a_run_raises_the_allocator_thresholds_a_nanny_fixed_and_puts_them_back(cluster: Any) -> None:
    """A nanny starts its workers with MALLOC_TRIM_THRESHOLD_ set (glibc's adaptive thresholds off): while
    a run holds them the thresholds are raised, and after it they are the environment's again."""
    from datastage.executor import allocator

    with distributed.Client(cluster.scheduler_address, timeout=60) as client:
        environment = client.run(lambda: "MALLOC_TRIM_THRESHOLD_" in os.environ)
        assert environment and all(environment.values())
        assert not any(client.run(allocator.tuned).values())
        with DaskExecutor(cluster.scheduler_address) as opened:
            opened.share("run-alloc", SECRETS, context={})
            assert all(client.run(allocator.tuned).values())
            assert sorted(dict(opened.run(square, [1, 2])).values(), key=lambda r: r["value"])[1]["value"] == 4
        assert not any(client.run(allocator.tuned).values())


def test_no_more_jobs_in_flight_than_workers(cluster: Any) -> None:
    with DaskExecutor(cluster.scheduler_address, workers=1) as one:
        one.share("run-1", SECRETS)
        spans = sorted(span for _, span in one.run(interval, list(range(6))))
    assert len(spans) == 6
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))


def test_a_failing_job_is_one_redacted_line_and_cancels_the_rest(executor: DaskExecutor) -> None:
    register_key(KEY)
    seen: list[int] = []
    with pytest.raises(StepError) as info:
        for position, value in executor.run(fail_on_three, list(range(40))):
            seen.append(position)
            assert value == position
    text = str(info.value)
    assert "ValueError: row 3 is bad" in text and "\n" not in text
    assert KEY.hex() not in text and info.value.exit_code == EXIT_RUNTIME
    assert len(seen) < 39  # the jobs after the failure were cancelled, not run to the end
    assert _tasks_left(executor, "datastage-fail_on_three-") == []
    assert sorted(executor.run(pid, [0, 1]))[1][0] == 1  # the executor still runs the next batch


def test_an_error_of_ours_keeps_its_class_and_exit_code(executor: DaskExecutor) -> None:
    with pytest.raises(TargetError, match="table customer: the shadow table is full"):
        list(executor.run(target_error, [0]))


def _tasks_left(executor: DaskExecutor, prefix: str) -> list[str]:
    """Keys of the scheduler's tasks that start with ``prefix``, once the cancellations settled."""
    deadline = time.monotonic() + 30
    while True:
        keys = [str(key) for key in executor.client.run_on_scheduler(_scheduler_keys) if str(key).startswith(prefix)]
        if not keys or time.monotonic() > deadline:
            return keys
        time.sleep(0.1)


def _scheduler_keys(dask_scheduler: Any) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks]


def test_a_generator_closed_early_cancels_its_jobs(executor: DaskExecutor, tmp_path: Path) -> None:
    release = str(tmp_path / "release")
    run = executor.run(pid_after_unless, [(0.0, release)] + [(30.0, release)] * 4)
    try:
        assert next(run)[0] == 0
        run.close()
        assert _tasks_left(executor, "datastage-pid_after_unless-") == []  # not waiting for the 30-second jobs
        assert dict(executor.run(square, [7]))[0]["value"] == 49
    finally:
        Path(release).touch()  # the cancelled job still running on a worker thread ends now


@pytest.mark.slow
def test_a_worker_killed_mid_run_fails_the_run_with_exit_1(tmp_path: Path) -> None:
    with _cluster(2, tmp_path) as local, DaskExecutor(local.scheduler_address) as executor:
        executor.share("run-1", SECRETS)
        victim: int | None = None
        with pytest.raises(StepError) as info:
            for _, worker_pid in executor.run(pid_after, [0.2] + [1.0] * 9):
                if victim is None:
                    victim = worker_pid
                    os.kill(worker_pid, signal.SIGKILL)
        assert victim is not None
        assert info.value.exit_code == EXIT_RUNTIME
        assert str(info.value).startswith("executor failed: a Dask worker died")


@pytest.mark.slow
def test_a_worker_that_joins_later_gets_no_job(tmp_path: Path) -> None:
    with _cluster(1, tmp_path) as local, DaskExecutor(local.scheduler_address) as executor:
        executor.share("run-1", SECRETS)
        holder = set(executor.client.run(os.getpid).values())
        local.scale(2)
        executor.client.wait_for_workers(2, timeout=60)
        pids = {worker_pid for _, worker_pid in executor.run(pid, list(range(20)))}
        assert pids == holder
        joined = set(executor.client.run(os.getpid).values()) - holder
        assert len(joined) == 1  # the late worker is there, it just got nothing


@pytest.mark.slow
def test_the_key_and_passwords_reach_no_log_and_no_file_of_the_cluster(tmp_path: Path) -> None:
    register_key(KEY)
    forms = [*key_forms(KEY), PASSWORD]
    with _cluster(2, tmp_path) as local, DaskExecutor(local.scheduler_address) as executor:
        executor.share("run-1", SECRETS, context={"plan": "x"})
        assert len(dict(executor.run(square, list(range(8))))) == 8
        with pytest.raises(StepError):
            list(executor.run(fail_on_three, list(range(6))))
        client = executor.client
        logs = [json.dumps(client.get_scheduler_logs(n=10_000)),
                json.dumps(client.get_worker_logs(n=10_000)),
                json.dumps(client.get_worker_logs(n=10_000, nanny=True))]
    assert "Compute Failed" in logs[1]  # the failed job was logged, with its message
    files = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    for form in forms:
        assert not any(form in log for log in logs), form
        assert not any(form.encode() in data for data in files), form


# Errors -------------------------------------------------------------------------------------------

def test_an_unreachable_scheduler_is_a_one_line_runtime_error_naming_it() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(StepError) as info:
        DaskExecutor(address, timeout=1)
    assert str(info.value) == (f"executor failed: cannot reach the Dask scheduler at {address} within 1 s "
                               f"(Timed out trying to connect to {address} after 1 s)")
    assert info.value.exit_code == EXIT_RUNTIME


def test_open_executor_connects_to_the_scheduler_an_environment_names(cluster: Any) -> None:
    from datastage.executor import open_executor
    from datastage.settings import ExecutorSetting

    setting = ExecutorSetting(kind="dask", address=cluster.scheduler_address, workers=3)
    with open_executor(setting) as opened:
        assert isinstance(opened, DaskExecutor) and opened.label == "dask" and opened.workers == 3
        opened.share("run-2", SECRETS, context={"plan": "p"})
        assert [position for position, _ in sorted(opened.run(square, [1, 2, 3, 4]))] == [0, 1, 2, 3]


def test_a_missing_address_or_a_job_before_share_are_errors(cluster: Any) -> None:
    with pytest.raises(DatastageError, match="needs a scheduler address") as missing:
        DaskExecutor(None)
    assert missing.value.exit_code == 2
    with DaskExecutor(cluster.scheduler_address) as executor, pytest.raises(StepError, match="before share"):
        list(executor.run(square, [1]))


# dask scheduler + dask worker over TCP, and a real refresh --------------------------------------------

SHOP = """
CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
                     ship_email TEXT, placed_at TIMESTAMP NOT NULL);
"""
SHOP_RULES = """\
version: 1
default: fail
tables:
  customer:
    email: {strategy: email, unique: true}
    name: person.full_name
  orders:
    ship_email: email
    placed_at: {strategy: date_shift, by: customer_id, max_days: 20}
"""


def _shop(folder: Path, executor: str) -> Path:
    folder.mkdir()
    conn = sqlite3.connect(folder / "prod.db")
    conn.executescript(SHOP)
    emails = [f"Customer.{i}@mail{i % 7}.example" for i in range(1, 401)]
    conn.executemany("INSERT INTO customer VALUES (?, ?, ?)",
                     [(i, e, f"Real Name {i}") for i, e in enumerate(emails, 1)])
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                     [(i, 1 + i % 400, emails[i % 400] if i % 4 else None, f"2024-01-{1 + i % 28:02d} 10:00:00")
                      for i in range(1, 2001)])
    conn.commit()
    conn.close()
    (folder / "rules.yaml").write_text(SHOP_RULES)
    (folder / "datastage.yaml").write_text(
        "source: {url: sqlite:///prod.db}\nenvironments:\n  test:\n    url: sqlite:///test.db\n"
        f"    rules: rules.yaml\n    executor: {executor}\n")
    return folder / "datastage.yaml"


def _tables(path: Path) -> dict[str, Any]:
    """Every row of the shop's tables (not the refresh log: its run ids and times differ by run)."""
    return {table: rows for table, rows in sqlite_fingerprint(path).items() if table in ("customer", "orders")}


def _refresh(config: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "datastage", "refresh", "test", "--config", str(config), "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def tcp_cluster(tmp_path: Path) -> Iterator[tuple[str, list[Path], subprocess.Popen[bytes]]]:
    """``dask scheduler`` and two ``dask worker`` processes on localhost; yields the scheduler's
    address, the files their output (their logs) goes to and the scheduler's process."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    paths = [ROOT, ROOT / "tests", ROOT / "tests" / "executor"]  # datastage, and this module for its jobs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    logs = [tmp_path / name for name in ("scheduler.log", "worker-1.log", "worker-2.log")]
    commands = [[str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [[str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                  "--host", "127.0.0.1", "--local-directory", str(tmp_path / f"space-{n}")] for n in (1, 2)]
    processes: list[subprocess.Popen[bytes]] = []
    handles = [log.open("wb") for log in logs]
    try:
        for command, handle in zip(commands, handles):
            processes.append(subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True))
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, logs, processes[0]
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for handle in handles:
            handle.close()


@pytest.mark.slow
def test_a_refresh_on_a_dask_cluster_over_tcp_gives_the_local_copy(tmp_path: Path,
                                                                   tcp_cluster: tuple[str, list[Path], Any]) -> None:
    address, logs, scheduler = tcp_cluster
    on_dask = _refresh(_shop(tmp_path / "dask", json.dumps({"dask": address})))
    local = _refresh(_shop(tmp_path / "local", "local"))
    assert on_dask["verdict"] == local["verdict"] == "pass"
    copy = _tables(tmp_path / "dask" / "test.db")
    assert copy == _tables(tmp_path / "local" / "test.db")
    assert len(copy["customer"]) == 400 and len(copy["orders"]) == 2000
    source = _tables(tmp_path / "dask" / "prod.db")
    assert not set(copy["customer"]) & set(source["customer"])  # masked
    # The executor itself over TCP: the run's secrets in the workers' memory, never in their logs.
    register_key(TEST_KEY.encode())
    with DaskExecutor(address) as executor:
        executor.share("run-tcp", {"masking_key": TEST_KEY.encode(), "source_password": PASSWORD.encode()})
        assert {r["key"] for _, r in executor.run(square, list(range(4)))} == {TEST_KEY.encode()}
        assert len({worker_pid for _, worker_pid in executor.run(pid_after, [0.3] * 4)}) == 2
        with pytest.raises(StepError, match="ValueError: row 3 is bad"):
            list(executor.run(fail_on_three, list(range(6))))
    time.sleep(0.5)  # the workers' last lines (they write each line as it is logged)
    written = [log.read_bytes() for log in logs]
    assert address.rsplit(":", 1)[1].encode() in written[0]  # the scheduler logged where it listens
    assert any(b"Compute Failed" in text for text in written[1:])  # and a worker the failed job
    spaces = [path.read_bytes() for path in tmp_path.glob("space-*/**/*") if path.is_file()]
    for form in [*key_forms(TEST_KEY.encode()), PASSWORD]:
        assert not any(form.encode() in text for text in written + spaces), form
    # The scheduler killed mid-run: a one-line runtime error once the reconnection times out.
    with DaskExecutor(address, timeout=2) as executor:
        executor.share("run-gone", SECRETS)
        with pytest.raises(StepError) as info:
            for _ in executor.run(pid_after, [0.2] + [2.0] * 5):
                scheduler.kill()
        assert info.value.exit_code == EXIT_RUNTIME
        assert str(info.value).startswith(f"executor failed: lost the Dask scheduler at {address}")

