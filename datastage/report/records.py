"""Every way a refresh ends is on record: pending reports completed later, and rollbacks.

A refresh whose copy is about to go live first writes its report with verdict ``pending``
(every check in it) and a ``pending`` history line; only then does it swap. If the run ends
before its final report (the state directory is full or read-only, the process is killed),
the next command of the environment — ``refresh``, ``rollback``, ``history``, ``report show``
— completes the record from the target's refresh log, which the swap writes with the copy:

- the run's row is in the current copy's log: the copy went live. The report gets the verdict
  the log recorded and exit code 5 (``EXIT_LIVE_INCOMPLETE``), and says that the run ended
  before its records were complete;
- it is not: the copy did not go live (or was replaced since): verdict ``error``, exit code 1.

Only a command that holds the environment's refresh lock completes records (a run still in
progress holds it); a target it cannot reach leaves them pending for the next command.

Example (a pending run of an environment whose copy never went live):
    >>> import tempfile
    >>> from datastage.settings import load_project
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "datastage.yaml").write_text('source: {url: "sqlite:///prod.db"}\\n'
    ...     'masking: {key_file: masking.key}\\nenvironments: {qa: {url: "sqlite:///qa.db"}}\\n')
    >>> project = load_project(folder / "datastage.yaml")
    >>> append_history(project.state_dir, {"run_id": "20261127-090102-3fa9c1", "environment": "qa", "verdict": PENDING})
    >>> [(entry["verdict"], entry["exit_code"]) for entry in complete_pending(project, "qa")]
    [('error', 1)]
    >>> pending_entries(project)
    []
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datastage.errors import (
    EXIT_LIVE_INCOMPLETE,
    EXIT_OK,
    EXIT_RUNTIME,
    DatastageError,
    LiveIncomplete,
    LockHeld,
)
from datastage.report.compose import legal_status, load_report, write_report
from datastage.report.history import append_history, read_history
from datastage.report.signing import optional_signing_key
from datastage.results import RollbackResult, RunRecord, new_run_id, utc_now
from datastage.settings import Environment, Project
from datastage.signals import held_signals
from datastage.targets.base import Target
from datastage.targets.registry import open_target

log = logging.getLogger("datastage.refresh")
PENDING = "pending"
LIVE_UNRECORDED = ("the run ended after its copy went live, before its report and history were complete (what "
                   "happened after the swap is not known); completed at {now} from the target's refresh log")
NOT_LIVE = ("the run ended before its report and history were complete, and its copy is not in the current copy's "
            "refresh log: it was not swapped in, or was replaced since; completed at {now}")


@contextmanager
def live_records(record: RunRecord) -> Iterator[None]:
    """Around the records written after the swap: a failure to write them says that the copy is live
    (:class:`~datastage.errors.LiveIncomplete`, exit code 5); before the swap it passes unchanged."""
    try:
        yield
    except (DatastageError, OSError) as exc:
        if not record.swapped:
            raise
        reason = exc.message if isinstance(exc, DatastageError) else (exc.strerror or str(exc))
        raise LiveIncomplete(live_incomplete_message(record, reason)) from None


def live_incomplete_message(record: RunRecord, reason: str) -> str:
    """What a run whose copy is live says when its records could not be completed (``reason``)."""
    environment = record.environment
    return (f"the new copy of {environment} is live (run {record.run_id}), but its records could not be "
            f"completed: {reason}; its pending report stays, and the next datastage command of {environment} "
            "(refresh, history, report show, rollback) completes it")


def pending_entries(project: Project, environment: str | None = None) -> list[dict[str, Any]]:
    """History entries still ``pending`` (of one environment, or of all)."""
    return [e for e in read_history(project.state_dir, environment) if e.get("verdict") == PENDING]


def complete_pending(project: Project, environment: str | None = None) -> list[dict[str, Any]]:
    """Complete the pending records of ``environment`` (default: every environment that has one).

    Never raises: what cannot be completed now (the target is locked by a run in progress or
    cannot be reached) stays pending. Returns the completed history entries.
    """
    completed: list[dict[str, Any]] = []
    for name in dict.fromkeys(str(e.get("environment")) for e in pending_entries(project, environment)):
        env = project.environments.get(name)
        if env is None:
            continue
        try:
            target = open_target(env.url, env.name, env.shadow_mode)
            with target.lock(new_run_id()):
                completed += complete_locked(project, target, env.name)
        except LockHeld:
            continue  # a run of this environment is in progress: it may still be writing its records
        except DatastageError as exc:
            log.warning("pending records not completed", extra={"environment": name, "error": str(exc)})
    return completed


def complete_locked(project: Project, target: Target, environment: str) -> list[dict[str, Any]]:
    """Complete the pending records of ``environment`` (the caller holds its refresh lock); never raises."""
    entries = pending_entries(project, environment)
    if not entries:
        return []
    try:
        logged = {str(row.get("run_id")): row for row in target.refresh_log()}
    except DatastageError as exc:
        log.warning("pending records not completed", extra={"environment": environment, "error": str(exc)})
        return []
    completed = []
    for entry in entries:
        try:
            completed.append(_complete(project, entry, logged.get(str(entry.get("run_id")))))
        except DatastageError as exc:
            log.warning("pending record not completed", extra={"environment": environment,
                                                                "run_id": entry.get("run_id"), "error": str(exc)})
    return completed


def _complete(project: Project, entry: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The final report and history line of one pending run, from its refresh-log row (None: not live)."""
    now = utc_now()
    if row is not None:
        verdict, exit_code, error = str(row.get("verdict") or "pass"), EXIT_LIVE_INCOMPLETE, LIVE_UNRECORDED
    else:
        verdict, exit_code, error = "error", EXIT_RUNTIME, NOT_LIVE
    error = error.format(now=now)
    finished = str(row.get("finished_at")) if row is not None and row.get("finished_at") else now
    completed = {**entry, "verdict": verdict, "exit_code": exit_code, "error": error, "finished_at": finished,
                 "completed_at": now}
    path = entry.get("report_json")
    if path and Path(path).is_file():
        report = load_report(Path(path))
        report.update(verdict=verdict, exit_code=exit_code, error=error)
        report["provenance"]["finished_at"] = finished
        report["legal_status"] = legal_status(report)
        paths = write_report(report, project.state_dir, optional_signing_key(project))
        completed.update(report_json=str(paths.json), report_html=str(paths.html))
    append_history(project.state_dir, completed)
    log.warning("pending record completed", extra={"environment": entry.get("environment"),
                                                    "run_id": entry.get("run_id"), "verdict": verdict})
    return completed


def run_rollback(project: Project, env: Environment, trigger: str = "library") -> RollbackResult:
    """Swap the previous copy of ``env`` back in, and record it in the history (kind ``rollback``) with
    the run whose copy is now live (from the restored copy's refresh log). A rollback locked out by
    a refresh changes nothing and records nothing."""
    run_id, started_at, started = new_run_id(), utc_now(), time.monotonic()
    entry: dict[str, Any] = {"run_id": run_id, "environment": env.name, "kind": "rollback", "trigger": trigger,
                             "started_at": started_at, "rows": 0, "report_json": None, "report_html": None}
    target = open_target(env.url, env.name, env.shadow_mode)
    try:
        with target.lock(run_id):
            complete_locked(project, target, env.name)
            with held_signals():
                result = target.rollback()
            try:
                log_rows = target.refresh_log()
            except DatastageError:
                log_rows = []  # rolled back all the same; only the name of the live run is unknown
    except LockHeld:
        raise
    except DatastageError as exc:
        append_history(project.state_dir, {**entry, "verdict": "error", "exit_code": exc.exit_code,
                                           "finished_at": utc_now(), "seconds": round(time.monotonic() - started, 3),
                                           "error": str(exc), "live_run_id": None})
        raise
    result.live_run_id = str(log_rows[-1].get("run_id")) if log_rows else None
    try:
        append_history(project.state_dir, {**entry, "verdict": "pass", "exit_code": EXIT_OK,
                                           "finished_at": utc_now(), "seconds": round(time.monotonic() - started, 3),
                                           "error": None, "live_run_id": result.live_run_id,
                                           "restored": result.restored})
    except DatastageError as exc:
        live = f"run {result.live_run_id}" if result.live_run_id else "the previous copy"
        raise LiveIncomplete(f"rolled back {env.name}: {live} is live again, but the rollback could not be "
                             f"recorded: {exc.message}") from None
    return result
