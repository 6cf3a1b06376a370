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

Example:
    >>> result = run_refresh(load_project("demo/datastage.yaml"), "staging")   # doctest: +SKIP
    >>> result.verdict, result.exit_code                                     # doctest: +SKIP
    ('pass', 0)
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage._version import __version__
from datastage.discover.scan import DEFAULT_SAMPLE_ROWS, scan_source
from datastage.errors import (
    EXIT_LIVE_INCOMPLETE,
    EXIT_OK,
    EXIT_VERIFY,
    ConfigError,
    DatastageError,
    EmptyMaskingKeyError,
    Interrupted,
    LiveIncomplete,
    LockHeld,
    MaskingKeyError,
    RulesError,
    SafetyError,
    StepError,
    StopSignal,
    Terminated,
    exit_code_for,
    stop_signal,
)
from datastage.mask.checkspec import parse_check_settings
from datastage.mask.engine import MaskingEngine, MaskStats
from datastage.mask.keys import KeyFileTooOpen, MaskingKey, load_key
from datastage.mask.policy import Policy, load_policy, resolve_policy
from datastage.ops.envops import RefreshOps
from datastage.ops.hooks import HookFailed
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.report.compose import compose_report, sign_report, subset_spec_dict, write_report
from datastage.report.history import append_history, last_schema, save_schema, schema_drift
from datastage.report.records import complete_locked, live_incomplete_message, live_records
from datastage.results import (
    CheckResult,
    ExtractResult,
    LoadResult,
    ReportPaths,
    VerifyResult,
    current_user,
    new_run_id,
    utc_now,
)
from datastage.rulescheck import new_columns_of
from datastage.secrets import get_logger
from datastage.settings import Environment, Project
from datastage.signals import held_signals
from datastage.source.db import db_error_message, dialect_of, make_engine, parse_url, redact_url, snapshot
from datastage.source.identity import check_not_source
from datastage.source.schema import TableInfo, reflect
from datastage.subset.extract import extract_table
from datastage.subset.planner import plan_subset
from datastage.targets.base import Shadow, Target
from datastage.targets.registry import open_target
from datastage.verify.checks import (
    apply_severity,
    check_foreign_keys,
    check_k_anonymity,
    check_row_counts,
    check_unique_keys,
)
from datastage.verify.leaks.index import LeakIndex, scan_loaded_copy

log = get_logger("datastage.refresh")
DEFAULT_BATCH_SIZE = 10_000


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
        return {
            "run_id": self.run_id,
            "environment": self.environment,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "report_json": str(self.report.json) if self.report else None,
            "report_html": str(self.report.html) if self.report else None,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": round(self.seconds, 3),
            "tables": self.tables,
            "rows": self.rows,
            "masked_columns": self.masked_columns,
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
        }


def check_target_safety(project: Project, env: Environment) -> None:
    """Refuse protected environments and targets that are the source, before anything is written.

    Sameness is what the servers say (:func:`datastage.source.identity.check_not_source`), not how the
    URLs are spelled; the check connects to both but creates nothing.
    """
    if env.protected:
        raise SafetyError(f"environment '{env.name}' is marked protected: true; datastage never writes to it",
                          file=str(project.path), key=f"environments.{env.name}.protected")
    check_not_source(project.source_url, project.source_schemas, env.url, what=f"the target of '{env.name}'",
                     file=str(project.path), key=f"environments.{env.name}.url")
    if env.access and dialect_of(parse_url(env.url)) == "sqlite":
        raise ConfigError("a SQLite database has no access control; remove access: or use a server target",
                          file=str(project.path), key=f"environments.{env.name}.access")


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
    model = reflect(conn, project.source_schemas, env.subset)
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


def _optional_key(project: Project) -> MaskingKey | None:
    """The masking key if one is configured (a plan signs its report with it, but does not need it).

    A key file others may read is an error here too: it is refused whoever asks for the key."""
    try:
        return load_key(project.key_file)
    except (EmptyMaskingKeyError, KeyFileTooOpen):
        raise
    except MaskingKeyError:
        return None


def plan(project: Project, environment: str, *, rules: str | os.PathLike[str] | None = None,
         trigger: str = "library") -> PlanResult:
    """Plan a refresh without writing to any database; writes a plan report and a history line."""
    env = project.environment(environment)
    started = time.monotonic()
    context = _context(project, env, "plan", trigger)
    key = _optional_key(project)
    context["key_id"] = key.key_id if key else None
    try:
        path = rules_path(env, rules, project)
        policy = load_policy(path)
        context.update(rules_path=str(path), rules_sha256=policy.sha256)
        source = make_engine(project.source_url, read_only=True, role="source database")
        try:
            with step("plan"), snapshot(source) as conn:
                planned = build_plan(conn, project, env, policy, env.options.get("batch_size", DEFAULT_BATCH_SIZE))
        finally:
            source.dispose()
    except DatastageError as exc:
        _record_failure(project, context, exc, started)
        raise
    context["plan"] = planned
    finished_at = utc_now()
    report = build_report(context | {"finished_at": finished_at, "verdict": "planned", "exit_code": EXIT_OK,
                                     "seconds": time.monotonic() - started}, key)
    with step("report"):
        paths = write_report(report, project.state_dir)
        append_history(project.state_dir, _history_entry(context, "planned", EXIT_OK, finished_at, started, paths,
                                                         planned.subset.selected_rows))
    planned.run_id, planned.report = context["run_id"], paths
    return planned


def _context(project: Project, env: Environment, kind: str, trigger: str) -> dict[str, Any]:
    """What every report of a run records before anything happens."""
    return {"run_id": new_run_id(), "kind": kind, "environment": env.name, "trigger": trigger,
            "started_at": utc_now(), "source": redact_url(project.source_url), "target": redact_url(env.url),
            "config": str(project.path), "subset_spec": subset_spec_dict(env)}


def load_into_shadow(conn: Connection, result: PlanResult, shadow: Shadow, target: Target, key: MaskingKey,
          env: Environment, progress: Progress, batch_size: int,
          leaks: LeakIndex | None = None) -> tuple[LoadResult, ExtractResult, dict[str, MaskStats]]:
    load = LoadResult(shadow=shadow.name)
    extracted = ExtractResult()
    stats: dict[str, MaskStats] = {}
    engine = MaskingEngine(result.policy, key)
    kept = {result.model.table(name).key for name in env.keep}
    started = time.monotonic()
    with step("load"):
        load.lossy_mappings = shadow.create_tables(result.tables)
    for table in result.tables:
        plan = result.subset.tables[table.key]
        progress.table(table.key, plan.selected_rows)
        written = 0
        table_stats = MaskStats()
        if table.key in kept:
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
    load.notes.extend(target.notes)
    progress.stage("indexes and constraints")
    with step("load"):
        shadow.finish()
    load.seconds = time.monotonic() - started
    return load, extracted, stats


def _stream(conn: Connection, shadow: Shadow, table: TableInfo, plan: Any, engine: MaskingEngine,
            batch_size: int, progress: Progress, leaks: LeakIndex | None) -> tuple[int, MaskStats] | None:
    """The target's direct copy of ``table`` (extract, mask and load in one stream), if it has one."""
    with step("load"):
        return shadow.stream_table(conn, table, plan, engine, batch_size, progress, leaks)


def verify_shadow(result: PlanResult, shadow: Shadow, load: LoadResult, extracted: ExtractResult,
            leaks: LeakIndex | None = None, key: MaskingKey | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE, after_counts: Callable[[], None] | None = None,
            progress: Progress | None = None) -> VerifyResult:
    """Every check on the loaded shadow. ``after_counts`` (post_load hooks, grants) runs once the
    row counts are taken, so the other checks see the copy exactly as it will go live."""
    started = time.monotonic()
    with step("verify"), shadow.connect() as conn:
        counts = check_row_counts(conn, result.tables, load.rows, lambda t: shadow.sql_name(t, conn))
    if after_counts is not None:
        after_counts()
    with step("verify"), shadow.connect() as conn:
        def name_of(table: TableInfo) -> str:
            return shadow.sql_name(table, conn)

        checks = [counts, check_foreign_keys(conn, result.model, result.tables, name_of),
                  check_unique_keys(conn, result.tables, name_of)]
        if leaks is not None and key is not None:
            checks += scan_loaded_copy(conn, result, leaks, key, result.checks, name_of, batch_size,
                                       reader_url=shadow.reader_url(), rows=load.rows, progress=progress)
        loaded = {t.key: t for t in result.tables}
        for quasi in result.checks.quasi_identifiers:
            checks.append(check_k_anonymity(conn, loaded, quasi, name_of, result.checks.severity("k_anonymity")))
    mismatched = {}
    for table in result.tables:
        plan = result.subset.tables[table.key]
        if plan.mode in ("all", "keys") and extracted.rows.get(table.key, 0) != plan.selected_rows:
            mismatched[table.key] = {"planned": plan.selected_rows, "extracted": extracted.rows.get(table.key, 0)}
    if mismatched:
        checks.insert(0, CheckResult("subset_counts", "FAIL", f"{len(mismatched)} table(s) extracted a different "
                                     "number of rows than planned", {"mismatches": mismatched}))
    else:
        checks.insert(0, CheckResult("subset_counts", "PASS", "every table extracted exactly the planned rows",
                                     {"extracted": dict(extracted.rows)}))
    return VerifyResult(apply_severity(checks, result.checks), time.monotonic() - started)


def run_refresh(
    project: Project,
    environment: str,
    *,
    rules: str | os.PathLike[str] | None = None,
    trigger: str = "library",
    progress: Progress | None = None,
) -> RefreshResult:
    """Refresh one environment. Verification failures return exit code 3; other failures raise."""
    progress = progress or NoProgress()
    started = time.monotonic()
    env = project.environment(environment)
    context = _context(project, env, "refresh", trigger)
    run_id, started_at = context["run_id"], context["started_at"]
    ops = RefreshOps(project, env, run_id)
    context["operations"] = ops
    log.info("refresh started", extra={"environment": env.name, "run_id": run_id, "trigger": trigger})
    try:
        check_target_safety(project, env)
        path = rules_path(env, rules, project)
        policy = load_policy(path)
        context.update(rules_path=str(path), rules_sha256=policy.sha256)
        key = load_key(project.key_file)
        context["key_id"] = key.key_id
        batch_size = int(env.options.get("batch_size", DEFAULT_BATCH_SIZE))
        target = open_target(env.url, env.name, env.options)
        source = make_engine(project.source_url, read_only=True, role="source database")
        try:
            with target.lock(run_id):
                context["locked"] = True  # from here on, a failure runs on_failure hooks and notifies
                complete_locked(project, target, env.name)  # records an earlier run could not complete
                with step("load"):
                    target.cleanup_stale()
                ops.run("pre_refresh", ops.target_connection())
                progress.stage("plan")
                with snapshot(source) as conn:
                    with step("plan"):
                        planned = build_plan(conn, project, env, policy, batch_size)
                    context["plan"] = planned
                    with step("load"):
                        shadow = target.create_shadow(planned.model, run_id)
                    try:
                        progress.stage("copy")
                        leaks = LeakIndex.for_plan(key, planned)
                        load, extracted, stats = load_into_shadow(conn, planned, shadow, target, key, env, progress,
                                                       batch_size, leaks)
                        context.update(load=load, stats=stats)
                        progress.stage("verify")

                        def post_load() -> None:
                            ops.run("post_load", shadow.hook_connection,
                                    DATASTAGE_SHADOW_URL=shadow.hook_url() or "")
                            with step("access"):
                                ops.grant(shadow)

                        verified = verify_shadow(planned, shadow, load, extracted, leaks, key, batch_size, post_load,
                                                 progress)
                        context["verify"] = verified
                        if verified.verdict != "fail":
                            with step("report"):  # a live copy always has a report: no swap without it
                                _record_pending(project, context, key, started)
                            with step("swap"), held_signals():  # a stop signal waits: the swap ends known
                                log_row = {**context, "finished_at": utc_now(), "verdict": verified.verdict,
                                           "datastage_version": __version__, "rows_loaded": load.total_rows}
                                shadow.record_refresh(log_row, target.refresh_log())
                                shadow.swap()
                                context["swapped"] = True
                            try:
                                with step("report"):
                                    save_schema(project.state_dir, env.name, planned.columns)
                            except DatastageError as exc:  # the copy is live: carry on, end with exit code 5
                                context["unrecorded"] = f"the columns for the next drift check: {exc.message}"
                        else:
                            shadow.discard()
                    except BaseException:
                        shadow.discard()
                        raise
                if verified.verdict != "fail":
                    _post_refresh(ops, env, target)
        finally:
            source.dispose()
    except LockHeld:
        raise  # another refresh is running: nothing of ours happened, so nothing to record or announce
    except DatastageError as exc:
        _failed(project, env, context, ops, exc, started)
        raise
    except (KeyboardInterrupt, Terminated) as exc:
        raise _stopped(project, env, context, ops, exc, started) from None
    verdict = verified.verdict
    if verdict == "fail":
        ops.run_recorded("on_failure", ops.target_connection(), DATASTAGE_VERDICT="fail",
                         DATASTAGE_ERROR="; ".join(c.summary for c in verified.failed))
    exit_code = EXIT_VERIFY if verdict == "fail" else EXIT_OK
    unrecorded = context.get("unrecorded")
    if unrecorded:
        exit_code = EXIT_LIVE_INCOMPLETE
    finished_at = utc_now()
    report = build_report(context | {"finished_at": finished_at, "verdict": verdict, "exit_code": exit_code,
                                     "seconds": time.monotonic() - started,
                                     "error": f"not saved: {unrecorded}" if unrecorded else None}, key)
    try:
        with step("report"), live_records(context, env.name):  # after the swap, a failure here: exit code 5
            paths = write_report(report, project.state_dir)
            entry = _history_entry(context, verdict, exit_code, finished_at, started, paths, load.total_rows)
            append_history(project.state_dir, entry)
    except LiveIncomplete as exc:
        ops.notify(context_summary(context, verdict, exc.exit_code, str(exc), None))
        raise
    if unrecorded:
        ops.notify(context_summary(context, verdict, exit_code, unrecorded, paths))
        raise LiveIncomplete(f"the new copy of {env.name} is live (run {run_id}) and recorded, but could not save "
                             f"{unrecorded}")
    result = RefreshResult(
        run_id=run_id, environment=env.name, verdict=verdict, exit_code=exit_code, report=paths,
        started_at=started_at, finished_at=finished_at, seconds=time.monotonic() - started,
        tables=len(planned.tables), rows=load.total_rows,
        masked_columns=sum(len(planned.policy.masked_columns(t.key)) for t in planned.tables),
        checks=verified.checks, plan=planned, load=load, verify=verified,
    )
    log.info("refresh finished", extra={"environment": env.name, "run_id": run_id, "verdict": verdict,
                                        "exit_code": exit_code, "rows": load.total_rows,
                                        "seconds": round(result.seconds, 3)})
    ops.notify(result.to_dict() | {"trigger": trigger})
    return result


def _post_refresh(ops: RefreshOps, env: Environment, target: Target) -> None:
    """``post_refresh`` hooks on the new copy; a failing one rolls back when the environment says so."""
    try:
        ops.run("post_refresh", ops.target_connection())
    except HookFailed as exc:
        if not env.rollback_on_failure:
            raise HookFailed(f"{exc.message}; the new copy is live (rollback_on_failure is off)",
                             step=exc.step) from None
        with step("rollback"), held_signals():
            target.rollback()
            ops.rolled_back = True
        raise HookFailed(f"{exc.message}; rolled back to the previous copy", step=exc.step) from None


def context_summary(context: dict[str, Any], verdict: str, exit_code: int, error: str | None,
                    paths: ReportPaths | None) -> dict[str, Any]:
    """The notification summary of a refresh that ended without a result object."""
    return {"run_id": context["run_id"], "environment": context["environment"], "trigger": context["trigger"],
            "verdict": verdict, "exit_code": exit_code, "started_at": context["started_at"],
            "finished_at": utc_now(), "error": error, "report_json": str(paths.json) if paths else None,
            "report_html": str(paths.html) if paths else None}


def _history_entry(context: dict[str, Any], verdict: str, exit_code: int | None, finished_at: str | None,
                   started: float,
                   paths: ReportPaths | None, rows: int, error: str | None = None) -> dict[str, Any]:
    return {
        "run_id": context["run_id"], "environment": context["environment"], "kind": context.get("kind", "refresh"),
        "trigger": context["trigger"], "verdict": verdict, "exit_code": exit_code, "rows": rows,
        "started_at": context["started_at"], "finished_at": finished_at,
        "seconds": round(time.monotonic() - started, 3),
        "report_json": str(paths.json) if paths else None, "report_html": str(paths.html) if paths else None,
        "error": error,
    }


def _record_failure(project: Project, context: dict[str, Any], exc: DatastageError | StopSignal,
                    started: float, verdict: str = "error") -> ReportPaths | None:
    """Write an error report and a history line for a refresh that failed; never raises.

    The report is unsigned when the key cannot be used (a key file others may read signs nothing)."""
    finished_at = utc_now()
    try:
        try:
            key = _optional_key(project)
        except MaskingKeyError:
            key = None
        report = build_report(context | {"finished_at": finished_at, "verdict": verdict,
                                         "exit_code": exc.exit_code, "error": str(exc),
                                         "seconds": time.monotonic() - started}, key)
        paths = write_report(report, project.state_dir)
        rows = context["load"].total_rows if verdict != "error" and context.get("load") else 0
        append_history(project.state_dir, _history_entry(context, verdict, exc.exit_code, finished_at, started,
                                                         paths, rows, str(exc)))
        return paths
    except Exception:  # noqa: BLE001 - the original error matters more than its record
        return None


def _record_pending(project: Project, context: dict[str, Any], key: MaskingKey, started: float) -> None:
    """Before the swap: the report as the swap will make it true, with verdict ``pending`` (every check
    in it), and a ``pending`` history line. Raises when they cannot be written (then nothing is
    swapped); the run's outcome replaces both, or the next command completes them."""
    report = build_report(context | {"finished_at": None, "verdict": "pending", "exit_code": None,
                                     "seconds": time.monotonic() - started}, key)
    paths = write_report(report, project.state_dir)
    append_history(project.state_dir, _history_entry(context, "pending", None, None, started, paths,
                                                     context["load"].total_rows))


def _live(context: dict[str, Any], ops: RefreshOps) -> bool:
    """Whether this run's copy is the current one (swapped in, not rolled back)."""
    return bool(context.get("swapped")) and not ops.rolled_back


def _failed(project: Project, env: Environment, context: dict[str, Any], ops: RefreshOps, exc: DatastageError,
            started: float) -> None:
    """A refresh that failed: its on_failure hooks, its report and history line, the webhook. Raises
    :class:`~datastage.errors.LiveIncomplete` when the new copy is live but that record failed."""
    try:
        if context.get("locked"):
            ops.run_recorded("on_failure", ops.target_connection(), DATASTAGE_ERROR=str(exc),
                             DATASTAGE_VERDICT="error")
    except (KeyboardInterrupt, Terminated) as signal_exc:  # stopped in an on_failure hook: the failure counts
        stop = stop_signal(signal_exc)
        _record_failure(project, context, exc, started)
        raise stop.describe(f"{exc}; {stop.message} in its on_failure hooks") from None
    paths = _record_failure(project, context, exc, started)
    if paths is None and _live(context, ops):
        raise LiveIncomplete(f"{exc}; " + live_incomplete_message(context, env.name, "the report cannot be "
                                                                   "written")) from None
    if context.get("locked"):
        ops.notify(context_summary(context, "error", exc.exit_code, str(exc), paths))


def _stopped(project: Project, env: Environment, context: dict[str, Any], ops: RefreshOps, exc: BaseException,
             started: float) -> Interrupted | Terminated:
    """A refresh stopped by SIGINT or SIGTERM: before the swap its shadow was discarded, after it the copy
    is live. Records it (history line, report) and returns the stop, with its one line, to raise."""
    stop = stop_signal(exc)
    log.warning("refresh stopped", extra={"environment": env.name, "run_id": context["run_id"],
                                          "signal": stop.signal_name, "live": _live(context, ops)})
    if _live(context, ops):
        verified: VerifyResult = context["verify"]
        stop.describe(f"refresh of {env.name} {stop.message} after the swap: the new copy is live "
                      f"(run {context['run_id']}, verdict {verified.verdict})")
        if _record_failure(project, context, stop, started, verdict=verified.verdict) is None:
            stop.describe(f"{stop.message}; " + live_incomplete_message(context, env.name, "the report cannot "
                                                                         "be written"))
        return stop
    stop.describe(f"refresh of {env.name} {stop.message}: " + (
        "the shadow copy was discarded and the target was left as it was" if context.get("locked")
        else "nothing was written to the target"))
    _record_failure(project, context, stop, started)
    return stop


def build_report(context: dict[str, Any], key: MaskingKey | None) -> dict[str, Any]:
    """The report dictionary from what the run produced so far (see :mod:`datastage.report.compose`), signed."""
    context = context | {"actor": current_user(), "host": socket.gethostname(), "datastage_version": __version__}
    return sign_report(compose_report(context), key)
