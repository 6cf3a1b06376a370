"""One refresh, end to end: plan, extract, mask, load (shadow), verify, swap, report.

Every step runs inside :func:`step`, which turns any failure into a one-line
:class:`~datastage.errors.DatastageError` naming the step. The shadow is discarded on any
failure (or interrupt) before the swap, so the target is left exactly as it was.

Right before the swap the report is written as ``pending`` (with every check), so a live copy
always has a report; the swap itself runs with stop signals held back, so the run knows
whether its copy went live. A run stopped by SIGINT or SIGTERM is recorded (history line,
report) and raises :class:`~datastage.errors.Interrupted` / :class:`~datastage.errors.Terminated`
with a line saying what state it left; records that cannot be written after the swap end the
run with exit code 5 (:mod:`datastage.report.records` completes them later).

The steps are named functions: :func:`prepare` (the plan), :func:`copy` (extract, mask, load into
the shadow), :func:`verify`, :func:`swap` and :func:`finish` (report, history line, webhook).
What is recorded about the run is a :class:`~datastage.results.RunRecord`; the hooks, grants and
webhook come from the :class:`RefreshOperations` the caller passes (:mod:`datastage.api` passes
:class:`datastage.ops.envops.RefreshOps`).

Example (a one-table project in a temporary folder, refreshed with the CLI's operations):
    >>> import sqlite3, tempfile
    >>> from datastage.mask.keys import write_key_file
    >>> from datastage.ops.envops import RefreshOps
    >>> from datastage.settings import load_project
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = sqlite3.connect(folder / "prod.db").executescript("CREATE TABLE t (id INTEGER PRIMARY KEY);"
    ...                                                        "INSERT INTO t VALUES (1), (2);")
    >>> _ = write_key_file(folder / "masking.key")
    >>> _ = (folder / "rules.yaml").write_text("version: 1\\n")
    >>> config = folder / "datastage.yaml"
    >>> _ = config.write_text("source: {url: sqlite:///prod.db}\\nmasking: {key_file: masking.key}\\n"
    ...                       "environments: {staging: {url: sqlite:///staging.db, rules: rules.yaml}}\\n")
    >>> result = run_refresh(load_project(config), "staging", operations=RefreshOps)
    >>> result.verdict, result.exit_code, [check.name for check in result.checks][:4]
    ('pass', 0, ['subset_counts', 'row_counts', 'foreign_keys', 'unique_keys'])
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage._version import __version__
from datastage.discover.scan import DEFAULT_SAMPLE_ROWS, scan_source
from datastage.errors import (
    EXIT_LIVE_INCOMPLETE,
    EXIT_OK,
    EXIT_VERIFY,
    DatastageError,
    HookFailed,
    Interrupted,
    LiveIncomplete,
    LockHeld,
    RulesError,
    StepError,
    StopSignal,
    Terminated,
    UsageError,
    exit_code_for,
    stop_signal,
)
from datastage.executor import default_workers, open_executor
from datastage.executor.base import Executor
from datastage.executor.chunks import Chunk, table_chunks
from datastage.executor.parallel import ParallelCopy
from datastage.executor.work import KEY_SECRET, SOURCE_SECRET, TARGET_SECRET, CopyContext
from datastage.mask.checkspec import parse_check_settings
from datastage.mask.engine import MaskingEngine, MaskStats
from datastage.mask.keys import MaskingKey, checked_strength, load_key, optional_key
from datastage.mask.policy import Policy, load_policy
from datastage.mask.resolve import resolve_policy
from datastage.mask.source_identifiers import SourceIdentifiers
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.report.compose import compose_report, subset_spec_dict, write_report
from datastage.report.history import append_history, has_refreshed, last_schema, save_schema, schema_drift
from datastage.report.records import complete_locked, live_incomplete_message, live_records
from datastage.report.signing import SigningKey, optional_signing_key, project_signing_key
from datastage.results import (
    CheckResult,
    ExtractResult,
    LoadResult,
    ReportPaths,
    RunRecord,
    VerifyResult,
    current_user,
    new_run_id,
    utc_now,
)
from datastage.rulescheck import new_columns_of
from datastage.secrets import get_logger
from datastage.settings import DEFAULT_BATCH_SIZE, Environment, ExecutorSetting, Project
from datastage.signals import held_signals
from datastage.source.db import db_error_message, make_engine, on_this_machine, redact_url, snapshot
from datastage.source.identity import check_target_safety
from datastage.source.schema import TableInfo, reflect
from datastage.subset.extract import extract_table, stream_rows
from datastage.subset.planner import plan_subset
from datastage.targets.base import Shadow, Target
from datastage.targets.registry import open_target
from datastage.verify.checks.kept_early import KeptFlags, kept_flags
from datastage.verify.context import CheckContext
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.pool import warm_up as warm_up_search
from datastage.verify.registry import apply_severity, run_checks

log = get_logger("datastage.refresh")
T = TypeVar("T")


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run a pipeline step; failures become one-line errors naming the step."""
    try:
        yield
    except DatastageError as exc:
        if exc.step is None and exit_code_for(exc) == 1:
            exc.step = name
        raise
    except SQLAlchemyError as exc:
        raise StepError(db_error_message(exc), step=name) from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise StepError(f"{exc.strerror or exc}{where}", step=name) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
        raise StepError(f"{type(exc).__name__}: {exc}", step=name) from None


@dataclass
class RefreshResult:
    """The outcome of one refresh, as the CLI renders it and the library returns it."""

    run_id: str
    environment: str
    verdict: str
    exit_code: int
    report: ReportPaths | None
    started_at: str
    finished_at: str
    seconds: float
    tables: int = 0
    rows: int = 0
    masked_columns: int = 0
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    plan: PlanResult | None = None
    load: LoadResult | None = None
    verify: VerifyResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "environment": self.environment, "verdict": self.verdict,
                "exit_code": self.exit_code, "report_json": str(self.report.json) if self.report else None,
                "report_html": str(self.report.html) if self.report else None, "started_at": self.started_at,
                "finished_at": self.finished_at, "seconds": round(self.seconds, 3), "tables": self.tables,
                "rows": self.rows, "masked_columns": self.masked_columns,
                "checks": [c.to_dict() for c in self.checks], "error": self.error}


class RefreshOperations(Protocol):
    """What a refresh does at its fixed points besides copying: hooks, ``access:`` grants, the webhook
    (:class:`datastage.ops.envops.RefreshOps`, which :mod:`datastage.api` hands to :func:`run_refresh`).
    A hook that fails raises :class:`~datastage.errors.HookFailed`; ``to_report`` is what the report shows."""

    rolled_back: bool  # set by the refresh when it rolled back after failing post_refresh hooks

    @property
    def post_load_changes_rows(self) -> bool:
        """Whether :meth:`post_load` may change the copy's rows (an object without this property is taken
        to: the kept columns are then flagged after it, never while the copy runs)."""
        ...

    def pre_refresh(self) -> None: ...
    def post_load(self, shadow: Shadow) -> None: ...
    def grant(self, shadow: Shadow) -> None: ...
    def post_refresh(self) -> None: ...
    def on_failure(self, verdict: str, error: str) -> None: ...
    def notify(self, summary: dict[str, Any]) -> None: ...
    def to_report(self) -> dict[str, Any]: ...


OperationsFactory = Callable[[Project, Environment, str], RefreshOperations]  # (project, environment, run id)


@dataclass
class Run:
    """One refresh or plan in progress: its record and what its steps produced so far (its report)."""

    project: Project
    env: Environment
    record: RunRecord
    ops: RefreshOperations | None = None  # a plan has none
    clock: float = field(default_factory=time.monotonic)  # when it started (time.monotonic)
    progress: Progress = field(default_factory=NoProgress)
    key: MaskingKey | None = None
    signer: SigningKey | None = None  # the report-signing key (None: reports are unsigned)
    batch_size: int = DEFAULT_BATCH_SIZE
    plan: PlanResult | None = None
    load: LoadResult | None = None
    stats: dict[str, MaskStats] = field(default_factory=dict)
    verify: VerifyResult | None = None

    def seconds(self) -> float:
        return time.monotonic() - self.clock


def rules_path(env: Environment, rules: str | os.PathLike[str] | None, project: Project) -> Path:
    if rules is not None:
        return Path(rules)
    if env.rules is None:
        raise RulesError(f"environment '{env.name}' names no rules file; add 'rules:' or pass --rules",
                         file=str(project.path), key=f"environments.{env.name}")
    return env.rules


def build_plan(conn: Connection, project: Project, env: Environment, policy: Policy,
               batch_size: int = DEFAULT_BATCH_SIZE) -> PlanResult:
    """Reflect the source, resolve the policy (coverage gate) and plan the subset."""
    model = reflect(conn, project.source_schemas, env.subset, project.schemas_origin)
    kept = {model.table(name, env.origin).key for name in env.keep}
    out_of_scope = {model.table(name).key for name in env.subset.exclude}
    columns = {t.key: list(t.columns) for t in model.tables.values()}
    drift = schema_drift(last_schema(project.state_dir, env.name), columns)
    scanned = scan_source(conn, model, sample_rows=DEFAULT_SAMPLE_ROWS)
    resolved = resolve_policy(policy, model, out_of_scope=out_of_scope, kept_from_target=kept,
                              new_columns=new_columns_of(drift, columns), personal=scanned.personal())
    settings = parse_check_settings(policy, model)
    empty = dict(resolved.truncated)
    subset = plan_subset(conn, model, env.subset, empty_tables=empty, kept_tables=tuple(kept),
                         batch_size=batch_size)
    tables = [model.tables[k] for k in model.load_order() if subset.tables[k].exclude != "omit"]
    return PlanResult(env.name, model, subset, resolved, drift, tables, columns, scanned, settings)


def plan(project: Project, environment: str, *, rules: str | os.PathLike[str] | None = None,
         trigger: str = "library") -> PlanResult:
    """Plan a refresh without writing to any database; writes a plan report and a history line."""
    env = project.environment(environment)
    run = Run(project, env, new_record(project, env, "plan", trigger))
    key = optional_key(project.key_file)
    run.record.key_id = key.key_id if key else None
    run.signer = _signer(project)
    try:
        if key is not None:  # a weak key is refused before a first refresh, and so before the plan for it
            run.record.key_strength = checked_strength(key, new_project=not has_refreshed(project.state_dir))
        policy = _load_rules(run, rules)
        source = make_engine(project.source_url, read_only=True, role="source database")
        try:
            with step("plan"), snapshot(source) as conn:  # the step also names a snapshot that cannot open
                planned = prepare(run, conn, policy, env.batch_size)
        finally:
            source.dispose()
    except DatastageError as exc:
        _record_failure(run, exc)
        raise
    finished_at = utc_now()
    report = build_report(run, finished_at=finished_at, verdict="planned", exit_code=EXIT_OK)
    with step("report"):
        paths = write_report(report, project.state_dir, run.signer)
        append_history(project.state_dir, run.record.history_entry("planned", EXIT_OK, finished_at, run.seconds(),
                                                                   paths, planned.subset.selected_rows))
    planned.run_id, planned.report = run.record.run_id, paths
    return planned


def new_record(project: Project, env: Environment, kind: str, trigger: str) -> RunRecord:
    """What every report of a run records before anything happens."""
    return RunRecord(new_run_id(), env.name, trigger, utc_now(), kind=kind, source=redact_url(project.source_url),
                     target=redact_url(env.url), config=str(project.path), subset_spec=subset_spec_dict(env))


def _load_rules(run: Run, rules: str | os.PathLike[str] | None) -> Policy:
    """The run's rules file, loaded (its path and digest recorded); refused while a rule is marked REVIEW,
    before anything else is opened."""
    path = rules_path(run.env, rules, run.project)
    policy = load_policy(path)
    run.record.rules_path, run.record.rules_sha256 = str(path), policy.sha256
    policy.refuse_reviews()
    return policy


def prepare(run: Run, conn: Connection, policy: Policy, batch_size: int) -> PlanResult:
    """The plan step: what the run copies and how it treats each column (:func:`build_plan`)."""
    with step("plan"):
        run.plan = build_plan(conn, run.project, run.env, policy, batch_size)
    return run.plan


def load_into_shadow(conn: Connection, result: PlanResult, shadow: Shadow, target: Target, key: MaskingKey,
          env: Environment, progress: Progress, batch_size: int,
          leaks: LeakIndex | None = None, *, source_url: str | None = None,
          run_id: str | None = None,
          flags: KeptFlags | None = None) -> tuple[LoadResult, ExtractResult, dict[str, MaskStats]]:
    """Extract, mask and load every planned table into the shadow, table after table.

    A table that :func:`~datastage.executor.chunks.table_chunks` cuts into several chunks (large
    PostgreSQL tables copied whole into a PostgreSQL target, given ``source_url``) is copied by the
    environment's executor, its chunks in parallel on the one snapshot ``conn`` reads
    (:class:`~datastage.executor.parallel.ParallelCopy`); every other table as it always was. ``flags``
    flags the kept columns of each table as soon as the shadow has committed it."""
    load = LoadResult(shadow=shadow.name)

    def all_written(table: TableInfo) -> None:
        if flags is not None:
            shadow.when_committed(table, partial(flags.offer, table, shadow.sql_name(table, conn)))

    extracted = ExtractResult()
    stats: dict[str, MaskStats] = {}
    started = time.monotonic()
    kept = {result.model.table(name).key for name in env.keep}
    with ExitStack() as stack:
        setting = _executor_setting(env, source_url, target)
        chunked = _chunked(conn, result, shadow, kept, source_url, run_id) if setting is not None else {}
        executor = stack.enter_context(open_executor(setting)) if chunked and setting is not None else None
        if executor is not None:
            executor.warm_up()
        elif leaks is not None and shadow.reader_url():  # the leak search's workers, started from the same process
            warm_up_search(sum(result.subset.tables[t.key].selected_rows for t in result.tables))
        with step("extract"):
            # Before any value is masked: the source's identifiers, which no masked value may be.
            identifiers = SourceIdentifiers.collect(conn, result.tables, result.policy, key, batch_size)
        engine = MaskingEngine(result.policy, key, identifiers)
        parallel = _parallel(executor, chunked, conn, result, target, key, batch_size, leaks, identifiers,
                             source_url, run_id, shadow, engine)
        with step("load"):
            load.lossy_mappings = shadow.create_tables(result.tables)
        for table in result.tables:
            plan = result.subset.tables[table.key]
            progress.table(table.key, plan.selected_rows)
            written = 0
            table_stats = MaskStats()
            copied = None
            if parallel is not None and table.key in parallel[1]:
                with step("load"):
                    copied = parallel[0].copy_table(table, parallel[1][table.key], progress)
                if copied is None:
                    progress.table(table.key, plan.selected_rows)  # copied again, in this process
            if copied is not None:
                written, table_stats = copied
                extracted.rows[table.key] = written
            elif table.key in kept:
                with step("load"):
                    for rows in target.current_rows(table, batch_size):
                        written += shadow.write(table, rows)
                        progress.advance(len(rows))
                load.kept_rows[table.key] = written
            elif (streamed := _stream(conn, shadow, table, plan, engine, batch_size, progress, leaks)) is not None:
                written, table_stats = streamed
                extracted.rows[table.key] = written
            else:
                with step("extract"):
                    batches = extract_table(conn, table, plan, result.subset.seed, batch_size)
                    while True:
                        with step("extract"):
                            batch: pd.DataFrame | None = next(batches, None)
                        if batch is None:
                            break
                        extracted.rows[table.key] = extracted.rows.get(table.key, 0) + len(batch)
                        with step("mask"):
                            masked, batch_stats = engine.mask_batch(table.key, batch)
                        if leaks is not None:
                            with step("verify"):
                                leaks.observe(table.key, batch, masked)
                        table_stats.add(batch_stats)
                        with step("load"):
                            written += shadow.write(table, masked)
                        progress.advance(len(batch))
            load.rows[table.key] = written
            stats[table.key] = table_stats
            all_written(table)
    load.notes.extend(target.notes)
    progress.stage("indexes and constraints")
    with step("load"):
        shadow.finish()
    load.seconds = time.monotonic() - started
    log.info("copy finished", extra={"seconds": round(load.seconds, 3), "rows": load.total_rows,
                                     "chunked_tables": len(parallel[1]) if parallel else 0})
    return load, extracted, stats


def _executor_setting(env: Environment, source_url: str | None, target: Target) -> ExecutorSetting | None:
    """The environment's executor, its local worker count resolved; None when one worker would run (by
    default, on a machine whose cores the run's database servers share: the copy runs in this process)."""
    setting = env.executor
    if setting.kind != "local" or setting.workers is not None:
        return setting
    here = any(url is not None and on_this_machine(url) for url in (source_url, target.url))
    workers = default_workers(here)
    return replace(setting, workers=workers) if workers > 1 else None


def _chunked(conn: Connection, result: PlanResult, shadow: Shadow, kept: set[str], source_url: str | None,
             run_id: str | None) -> dict[str, list[Chunk]]:
    """The tables cut into several chunks (none without a source URL for the workers, or when the shadow
    cannot take chunks)."""
    if source_url is None or run_id is None or not shadow.accepts_chunks:
        return {}
    chunked = {}
    with step("extract"):
        for table in result.tables:
            if table.key not in kept:
                chunks = table_chunks(conn, table, result.subset.tables[table.key], result.model.default_schema)
                if len(chunks) > 1:
                    chunked[table.key] = chunks
    return chunked


def _parallel(executor: Executor | None, chunked: dict[str, list[Chunk]], conn: Connection, result: PlanResult,
              target: Target, key: MaskingKey, batch_size: int, leaks: LeakIndex | None,
              identifiers: SourceIdentifiers, source_url: str | None, run_id: str | None, shadow: Shadow,
              engine: MaskingEngine) -> tuple[ParallelCopy, dict[str, list[Chunk]]] | None:
    """The parallel copy of the ``chunked`` tables, its workers started (before the index builder's
    thread starts), or None when every table is one chunk."""
    if executor is None or not chunked or source_url is None or run_id is None:
        return None
    with step("extract"):
        snapshot_id = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
    context = CopyContext(result.policy, identifiers.kinds, result.model, {t.key: t for t in result.tables},
                          dict(result.subset.tables), snapshot_id, batch_size, target.session_label,
                          key.source, leaks)
    secrets = {KEY_SECRET: key.secret_material(), SOURCE_SECRET: source_url.encode(),
               TARGET_SECRET: target.url.encode()}
    with step("load"):
        executor.share(run_id, secrets, context)
    return ParallelCopy(executor, run_id, shadow, engine, leaks), chunked


def _stream(conn: Connection, shadow: Shadow, table: TableInfo, plan: Any, engine: MaskingEngine,
            batch_size: int, progress: Progress, leaks: LeakIndex | None) -> tuple[int, MaskStats] | None:
    """The target's direct copy of ``table`` (extract, mask and load in one stream), if it has one."""
    with step("load"):
        return shadow.stream_table(conn, table, plan, engine, batch_size, progress, leaks)


def verify_shadow(result: PlanResult, shadow: Shadow, load: LoadResult, extracted: ExtractResult,
            leaks: LeakIndex | None = None, key: MaskingKey | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE, after_counts: Callable[[], None] | None = None,
            progress: Progress | None = None, source: Connection | None = None,
            flags: KeptFlags | None = None) -> VerifyResult:
    """Every check on the loaded shadow. ``after_counts`` (post_load hooks, grants) runs once the
    row counts are taken, so the other checks see the copy exactly as it will go live; ``source``
    (the run's read-only snapshot) lets the kept-column check compare with the source rows, whose
    kept columns ``flags`` may have flagged while the copy ran."""
    started = time.monotonic()

    def context(conn: Connection) -> CheckContext:
        return CheckContext(conn, result, lambda t: shadow.sql_name(t, conn), load.rows, extracted.rows, leaks, key,
                            batch_size, shadow.reader_url(), progress or NoProgress(), source, flags)

    with step("verify"), shadow.connect() as conn:
        checks = run_checks(context(conn), before_hooks=True)
    if after_counts is not None:
        after_counts()
    with step("verify"), shadow.connect() as conn:
        ctx = context(conn)
        ctx.start_leak_search()  # worker processes search a large copy while the other checks run here
        try:
            checks += run_checks(ctx, before_hooks=False)
        finally:
            ctx.stop_leak_search()
    return VerifyResult(apply_severity(checks, result.checks), time.monotonic() - started)


def run_refresh(project: Project, environment: str, *, operations: OperationsFactory,
                rules: str | os.PathLike[str] | None = None, trigger: str = "library",
                progress: Progress | None = None) -> RefreshResult:
    """Refresh one environment: :func:`prepare`, :func:`copy`, :func:`verify`, :func:`swap`, :func:`finish`.

    ``operations`` makes the run's hooks, grants and webhook (:class:`RefreshOperations`).
    Verification failures return exit code 3; other failures raise."""
    clock = time.monotonic()
    env = project.environment(environment)
    record = new_record(project, env, "refresh", trigger)
    ops = operations(project, env, record.run_id)
    run = Run(project, env, record, ops, clock, progress or NoProgress())
    log.info("refresh started", extra={"environment": env.name, "run_id": record.run_id, "trigger": trigger})
    try:
        check_target_safety(project, env)
        policy = _load_rules(run, rules)
        key = run.key = load_key(project.key_file)
        record.key_id = key.key_id
        record.key_strength = checked_strength(key, new_project=not has_refreshed(project.state_dir))
        run.signer = _signer(project)
        run.batch_size = env.batch_size
        target = open_target(env.url, env.name, env.shadow_mode)
        with step("load"):  # a first refresh: the target database, once the safety checks passed
            created = target.create_database()
        source = make_engine(project.source_url, read_only=True, role="source database")
        try:
            with target.lock(record.run_id):
                _take_over(run, ops, target)
                with snapshot(source) as conn:
                    planned = prepare(run, conn, policy, run.batch_size)
                    with entered("load", target.shadow(planned.model, record.run_id)) as shadow, \
                            kept_flags(planned, shadow, post_load_hooks=getattr(ops, "post_load_changes_rows", True),
                                       batch_size=run.batch_size, session_label=target.session_label) as flags:
                        load, extracted, leaks = copy(run, conn, shadow, target, key, flags)
                        verified = verify(run, ops, shadow, load, extracted, leaks, conn, flags)
                        if verified.verdict != "fail":
                            swap(run, shadow, target)
                if verified.verdict != "fail":
                    _post_refresh(ops, env, target)
        finally:
            source.dispose()
            if created and not record.swapped:
                target.drop_created()  # a first refresh that made no copy leaves no empty database
    except LockHeld:
        raise  # another refresh is running: nothing of ours happened, so nothing to record or announce
    except DatastageError as exc:
        _failed(run, ops, exc)
        raise
    except (KeyboardInterrupt, Terminated) as exc:
        raise _stopped(run, ops, exc) from None
    return finish(run, ops, planned, load, verified)


@contextmanager
def entered(name: str, manager: AbstractContextManager[T]) -> Iterator[T]:
    """``manager`` with its entry (only) run as step ``name``: ``with entered("load", target.shadow(...))``."""
    with ExitStack() as stack:
        with step(name):
            value = stack.enter_context(manager)
        yield value


def _take_over(run: Run, ops: RefreshOperations, target: Target) -> None:
    """Once the run holds the lock: complete what an earlier run could not record, drop the shadows
    crashed runs left, run the ``pre_refresh`` hooks."""
    run.record.locked = True  # from here on, a failure runs on_failure hooks and notifies
    complete_locked(run.project, target, run.env.name)
    with step("load"):
        target.cleanup_stale()
    ops.pre_refresh()
    run.progress.stage("plan")


def copy(run: Run, conn: Connection, shadow: Shadow, target: Target, key: MaskingKey,
         flags: KeptFlags | None = None) -> tuple[LoadResult, ExtractResult, LeakIndex]:
    """The copy step: extract, mask and load every planned table into the shadow (:func:`load_into_shadow`),
    watching the masked values for the leak check."""
    assert run.plan is not None  # the plan step ran
    run.progress.stage("copy")
    leaks = LeakIndex.for_plan(key, run.plan)
    run.load, extracted, run.stats = load_into_shadow(conn, run.plan, shadow, target, key, run.env, run.progress,
                                                      run.batch_size, leaks, source_url=run.project.source_url,
                                                      run_id=run.record.run_id, flags=flags)
    return run.load, extracted, leaks


def verify(run: Run, ops: RefreshOperations, shadow: Shadow, load: LoadResult, extracted: ExtractResult,
           leaks: LeakIndex, source: Connection | None = None, flags: KeptFlags | None = None) -> VerifyResult:
    """The verify step: every check on the loaded shadow (:func:`verify_shadow`), with the ``post_load``
    hooks and the ``access:`` grants once the row counts are taken."""
    assert run.plan is not None  # the plan step ran
    run.progress.stage("verify")

    def post_load() -> None:
        ops.post_load(shadow)
        with step("access"):
            ops.grant(shadow)

    run.verify = verify_shadow(run.plan, shadow, load, extracted, leaks, run.key, run.batch_size, post_load,
                               run.progress, source, flags)
    return run.verify


def swap(run: Run, shadow: Shadow, target: Target) -> None:
    """The swap step: the report as ``pending`` (a live copy always has a report: no swap without it),
    then the swap with stop signals held back (so the run knows whether its copy went live), then the
    columns for the next drift check (a failure there ends the run with exit code 5)."""
    assert run.plan is not None and run.load is not None and run.verify is not None  # the steps before ran
    with step("report"):
        _record_pending(run)
    with step("swap"), held_signals():
        log_row = {**asdict(run.record), "finished_at": utc_now(), "verdict": run.verify.verdict,
                   "datastage_version": __version__, "rows_loaded": run.load.total_rows}
        shadow.go_live(log_row, target.refresh_log())
        run.record.swapped = True
    try:
        with step("report"):
            save_schema(run.project.state_dir, run.env.name, run.plan.columns)
    except DatastageError as exc:  # the copy is live: carry on, end with exit code 5
        run.record.unrecorded = f"the columns for the next drift check: {exc.message}"


def finish(run: Run, ops: RefreshOperations, planned: PlanResult, load: LoadResult,
           verified: VerifyResult) -> RefreshResult:
    """The finish step: ``on_failure`` hooks of a failed check, the report, the history line, the webhook."""
    record, verdict = run.record, verified.verdict
    if verdict == "fail":
        ops.on_failure("fail", "; ".join(c.summary for c in verified.failed))
    exit_code = EXIT_VERIFY if verdict == "fail" else EXIT_OK
    if record.unrecorded:
        exit_code = EXIT_LIVE_INCOMPLETE
    finished_at = utc_now()
    report = build_report(run, finished_at=finished_at, verdict=verdict, exit_code=exit_code,
                          error=f"not saved: {record.unrecorded}" if record.unrecorded else None)
    try:
        with step("report"), live_records(record):  # after the swap, a failure here: exit code 5
            paths = write_report(report, run.project.state_dir, run.signer)
            entry = record.history_entry(verdict, exit_code, finished_at, run.seconds(), paths, load.total_rows)
            append_history(run.project.state_dir, entry)
    except LiveIncomplete as exc:
        ops.notify(record.summary(verdict, exc.exit_code, str(exc), None))
        raise
    if record.unrecorded:
        ops.notify(record.summary(verdict, exit_code, record.unrecorded, paths))
        raise LiveIncomplete(f"the new copy of {record.environment} is live (run {record.run_id}) and recorded, "
                             f"but could not save {record.unrecorded}")
    result = RefreshResult(
        run_id=record.run_id, environment=record.environment, verdict=verdict, exit_code=exit_code, report=paths,
        started_at=record.started_at, finished_at=finished_at, seconds=run.seconds(),
        tables=len(planned.tables), rows=load.total_rows,
        masked_columns=sum(len(planned.policy.masked_columns(t.key)) for t in planned.tables),
        checks=verified.checks, plan=planned, load=load, verify=verified,
    )
    log.info("refresh finished", extra={"environment": record.environment, "run_id": record.run_id,
                                        "verdict": verdict, "exit_code": exit_code, "rows": load.total_rows,
                                        "seconds": round(result.seconds, 3)})
    ops.notify(result.to_dict() | {"trigger": record.trigger})
    return result


def _post_refresh(ops: RefreshOperations, env: Environment, target: Target) -> None:
    """``post_refresh`` hooks on the new copy; a failing one rolls back when the environment says so."""
    try:
        ops.post_refresh()
    except HookFailed as exc:
        if not env.rollback_on_failure:
            raise HookFailed(f"{exc.message}; the new copy is live (rollback_on_failure is off)",
                             step=exc.step) from None
        with step("rollback"), held_signals():
            target.rollback()
            ops.rolled_back = True
        raise HookFailed(f"{exc.message}; rolled back to the previous copy", step=exc.step) from None


def _record_failure(run: Run, exc: DatastageError | StopSignal, verdict: str = "error") -> ReportPaths | None:
    """Write an error report and a history line for a run that failed; never raises.

    The report is unsigned when the signing key cannot be used (a key file others may read signs nothing)."""
    finished_at = utc_now()
    try:
        signer = run.signer or optional_signing_key(run.project)
        report = build_report(run, finished_at=finished_at, verdict=verdict, exit_code=exc.exit_code,
                              error=str(exc))
        paths = write_report(report, run.project.state_dir, signer)
        rows = run.load.total_rows if verdict != "error" and run.load else 0
        append_history(run.project.state_dir, run.record.history_entry(verdict, exc.exit_code, finished_at,
                                                                       run.seconds(), paths, rows, str(exc)))
        return paths
    except Exception:  # noqa: BLE001 - the original error matters more than its record
        return None


def _record_pending(run: Run) -> None:
    """Before the swap: the report as the swap will make it true, with verdict ``pending`` (every check
    in it), and a ``pending`` history line. Raises when they cannot be written (then nothing is
    swapped); the run's outcome replaces both, or the next command completes them."""
    assert run.load is not None  # the copy step ran
    paths = write_report(build_report(run, finished_at=None, verdict="pending", exit_code=None),
                         run.project.state_dir, run.signer)
    append_history(run.project.state_dir, run.record.history_entry("pending", None, None, run.seconds(), paths,
                                                                   run.load.total_rows))


def _live(run: Run, ops: RefreshOperations) -> bool:
    """Whether this run's copy is the current one (swapped in, not rolled back)."""
    return run.record.swapped and not ops.rolled_back


def _failed(run: Run, ops: RefreshOperations, exc: DatastageError) -> None:
    """A refresh that failed: its on_failure hooks, its report and history line, the webhook. Raises
    :class:`~datastage.errors.LiveIncomplete` when the new copy is live but that record failed."""
    try:
        if run.record.locked:
            ops.on_failure("error", str(exc))
    except (KeyboardInterrupt, Terminated) as signal_exc:  # stopped in an on_failure hook: the failure counts
        stop = stop_signal(signal_exc)
        _record_failure(run, exc)
        raise stop.describe(f"{exc}; {stop.message} in its on_failure hooks") from None
    paths = _record_failure(run, exc)
    if paths is None and _live(run, ops):
        raise LiveIncomplete(f"{exc}; " + live_incomplete_message(run.record, "the report cannot be written")) \
            from None
    if run.record.locked:
        ops.notify(run.record.summary("error", exc.exit_code, str(exc), paths))


def _stopped(run: Run, ops: RefreshOperations, exc: BaseException) -> Interrupted | Terminated:
    """A refresh stopped by SIGINT or SIGTERM: before the swap its shadow was discarded, after it the copy
    is live. Records it (history line, report) and returns the stop, with its one line, to raise."""
    stop = stop_signal(exc)
    env_name, run_id = run.env.name, run.record.run_id
    log.warning("refresh stopped", extra={"environment": env_name, "run_id": run_id,
                                          "signal": stop.signal_name, "live": _live(run, ops)})
    if _live(run, ops) and run.verify is not None:
        stop.describe(f"refresh of {env_name} {stop.message} after the swap: the new copy is live "
                      f"(run {run_id}, verdict {run.verify.verdict})")
        if _record_failure(run, stop, verdict=run.verify.verdict) is None:
            stop.describe(f"{stop.message}; " + live_incomplete_message(run.record, "the report cannot be written"))
        return stop
    stop.describe(f"refresh of {env_name} {stop.message}: " + (
        "the shadow copy was discarded and the target was left as it was" if run.record.locked
        else "nothing was written to the target"))
    _record_failure(run, stop)
    return stop


def _signer(project: Project) -> SigningKey | None:
    """The project's report-signing key; without one the run's reports are written unsigned (and logged so)."""
    signer = project_signing_key(project)
    if signer is None:
        log.warning("reports are unsigned: no signing key configured (signing.key_file in datastage.yaml)")
    return signer


def build_report(run: Run, *, finished_at: str | None, verdict: str, exit_code: int | None,
                 error: str | None = None) -> dict[str, Any]:
    """The report dictionary from what the run produced so far (see :mod:`datastage.report.compose`); its
    signature is added when it is written."""
    record = replace(run.record, finished_at=finished_at, verdict=verdict, exit_code=exit_code, error=error,
                     seconds=run.seconds(), actor=current_user(), host=socket.gethostname(),
                     datastage_version=__version__)
    return compose_report(record, plan=run.plan, load=run.load, verify=run.verify, stats=run.stats,
                          operations=run.ops.to_report() if run.ops else None)


DEFAULT_PREVIEW_ROWS = 10
MAX_PREVIEW_ROWS = 1000


@dataclass
class PreviewResult:
    """Source rows of one table beside what the rules make of them (``datastage preview``).

    ``rows`` holds, per row, its key and per column the treatment, the source value and the
    masked value, each as text (None for NULL). ``note`` says why the rows shown are not rows a
    refresh masks (kept from the target, left out, not selected by the subset), or is None."""

    environment: str
    table: str
    key_columns: list[str]
    rows: list[dict[str, Any]]
    selected_rows: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "table": self.table, "key_columns": self.key_columns,
                "selected_rows": self.selected_rows, "note": self.note, "rows": self.rows}


def preview(project: Project, environment: str, table: str, *, rows: int = DEFAULT_PREVIEW_ROWS,
            rules: str | os.PathLike[str] | None = None) -> PreviewResult:
    """The first ``rows`` rows a refresh of ``environment`` would copy of ``table``, masked by the
    refresh's own engine (same key, same source identifiers, so the same pseudonyms).

    Reads the source on a read-only snapshot; opens no target, writes no report, history line or
    log line with a value. Rules are checked as a refresh checks them (a REVIEW mark, a coverage gap
    stops it with the refresh's own error)."""
    if not 1 <= rows <= MAX_PREVIEW_ROWS:
        raise UsageError(f"--rows must be between 1 and {MAX_PREVIEW_ROWS}, not {rows}")
    env = project.environment(environment)
    policy = load_policy(rules_path(env, rules, project))
    key = load_key(project.key_file)
    source = make_engine(project.source_url, read_only=True, role="source database")
    try:
        with step("preview"), snapshot(source) as conn:
            planned = build_plan(conn, project, env, policy, env.batch_size)
            info = planned.model.table(table)
            return _preview_rows(conn, planned, env, info, key, rows)
    finally:
        source.dispose()


def _preview_rows(conn: Connection, planned: PlanResult, env: Environment, table: TableInfo, key: MaskingKey,
                  rows: int) -> PreviewResult:
    """Extract and mask the first ``rows`` planned rows of ``table`` (see :func:`preview`)."""
    plan = planned.subset.tables[table.key]
    kept = {planned.model.table(name).key for name in env.keep}
    note = None
    if table.key in kept:
        note = "kept from the target: a refresh copies the target's rows, these source rows stay out"
    elif plan.mode == "none" or table.key not in {t.key for t in planned.tables}:
        note = f"{next(iter(plan.reasons), 'left out')}: a refresh copies none of these rows"
    elif plan.selected_rows == 0:
        note = f"{plan.note or 'not selected'}: a refresh copies none of these rows"
    if note is None:
        batches = extract_table(conn, table, plan, planned.subset.seed, rows)
    else:
        batches = stream_rows(conn, table, table.insertable_columns, batch_size=rows)
    try:
        batch = next(batches, None)
    finally:
        getattr(batches, "close", lambda: None)()  # a streamed result ends before the next statement (MariaDB)
    frame = batch.head(rows).reset_index(drop=True) if batch is not None else pd.DataFrame(
        columns=table.insertable_columns)
    masked = frame
    if note is None and not frame.empty:
        identifiers = SourceIdentifiers.collect(conn, planned.tables, planned.policy, key, env.batch_size)
        masked, _ = MaskingEngine(planned.policy, key, identifiers).mask_batch(table.key, frame)
    treatment = {d.column: d.treatment for d in planned.policy.table_decisions(table.key)}
    shown: list[dict[str, Any]] = []
    for index in range(len(frame)):
        shown.append({
            "key": {c: _shown(frame.at[index, c]) for c in table.identity if c in frame.columns},
            "columns": [{"column": c, "treatment": treatment.get(c, "keep"), "source": _shown(frame.at[index, c]),
                         "masked": _shown(masked.at[index, c]) if c in masked.columns else None}
                        for c in frame.columns],
        })
    return PreviewResult(planned.environment, table.key, list(table.identity), shown, plan.selected_rows, note)


def _shown(value: Any) -> str | None:
    """A value as preview text: None for NULL, bytes as hex, everything else as ``str`` gives it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))):
        return None
    return str(value)
