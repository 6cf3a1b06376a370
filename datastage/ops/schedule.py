"""Scheduled refreshes: cron expressions from config, and a lock-aware scheduler loop.

An environment with ``schedule: "0 3 * * *"`` (or ``{cron: "0 3 * * *", timezone:
Europe/Berlin}``) is due when its latest scheduled time has passed and has not been run
yet. Missed runs (the scheduler was down over several scheduled times) run once, not once
per missed time. Only a time at or after the moment the scheduler first saw the schedule
counts: a schedule added at 17:40 next to a 03:00 cron first runs the next day at 03:00,
and a changed cron expression or time zone is a new schedule. A target locked by another
refresh is skipped and retried on the next poll; a failing refresh is recorded and the
scheduler carries on.

Example:
    >>> spec = Schedule("staging", "0 3 * * *", "UTC")
    >>> [t.isoformat() for t in spec.next_runs(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 2)]
    ['2026-01-01T03:00:00+00:00', '2026-01-02T03:00:00+00:00']
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from croniter import croniter

from datastage.errors import ConfigError, DatastageError, Interrupted, LockHeld, Terminated
from datastage.limits import MAX_STATE_BYTES, read_json_file
from datastage.ops.envops import RefreshOps
from datastage.pipeline import run_refresh
from datastage.report.history import write_state
from datastage.secrets import get_logger
from datastage.settings import Project, valid_cron

log = get_logger("datastage.schedule")
DEFAULT_POLL_SECONDS = 30.0


@dataclass(frozen=True)
class Schedule:
    """When one environment refreshes."""

    environment: str
    cron: str
    timezone: str = "UTC"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def next_runs(self, after: dt.datetime, count: int = 3) -> list[dt.datetime]:
        """The next ``count`` scheduled times strictly after ``after`` (in the schedule's zone)."""
        it = croniter(self.cron, after.astimezone(self.zone))
        return [it.get_next(dt.datetime) for _ in range(count)]

    @property
    def identity(self) -> str:
        """What makes this schedule the same one as before: its cron expression and time zone."""
        return f"{self.cron} {self.timezone}"

    def latest_slot(self, now: dt.datetime) -> dt.datetime:
        """The most recent scheduled time at or before ``now``."""
        local = now.astimezone(self.zone)
        it = croniter(self.cron, local + dt.timedelta(microseconds=1))
        return it.get_prev(dt.datetime)


def schedules(project: Project) -> list[Schedule]:
    """The schedule of every environment that has one; a bad cron or zone is a config error."""
    out = []
    for env in project.environments.values():
        if not env.schedule:
            continue
        key = f"environments.{env.name}.schedule"
        timezone = env.schedule.get("timezone") or "UTC"
        unknown = set(env.schedule) - {"cron", "timezone"}
        if unknown:
            raise ConfigError(f"unknown key '{sorted(unknown)[0]}' (expected cron, timezone)",
                              file=str(project.path), key=key)
        cron = valid_cron(env.schedule.get("cron"), partial(ConfigError, file=str(project.path), key=key))
        try:
            zoneinfo.ZoneInfo(str(timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone '{timezone}'", file=str(project.path), key=key) from None
        out.append(Schedule(env.name, cron, str(timezone)))
    return out


@dataclass
class EnvState:
    """What the scheduler remembers about one environment."""

    last_slot: str | None = None
    last_started: str | None = None
    last_finished: str | None = None
    last_run_id: str | None = None
    last_verdict: str | None = None
    last_exit_code: int | None = None
    last_error: str | None = None
    schedule: str | None = None  # the Schedule.identity first_seen refers to
    first_seen: str | None = None  # when the scheduler first saw that schedule


def state_path(project: Project) -> Path:
    return project.state_dir / "schedule.json"


def load_state(project: Project) -> dict[str, EnvState]:
    path = state_path(project)
    if not path.is_file():
        return {}
    raw = read_json_file(path, MAX_STATE_BYTES, ConfigError, "the scheduler state is not valid JSON")
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("the scheduler state is not a mapping of environments", file=str(path))
    known = set(EnvState.__dataclass_fields__)
    return {str(name): EnvState(**{k: v for k, v in values.items() if k in known}) for name, values in raw.items()}


def save_state(project: Project, state: dict[str, EnvState]) -> None:
    write_state(state_path(project), {k: asdict(v) for k, v in state.items()}, root=project.state_dir)


def _since(spec: Schedule, entry: EnvState | None, now: dt.datetime) -> dt.datetime:
    """Since when ``spec`` has existed for the scheduler: slots before that were never missed."""
    if entry is not None and entry.schedule == spec.identity and entry.first_seen:
        return dt.datetime.fromisoformat(entry.first_seen)
    if entry is not None and entry.schedule is None and entry.last_slot:
        return dt.datetime.fromisoformat(entry.last_slot)  # state written before schedules were remembered
    return now  # not seen before (or changed): new from now on


def remember_schedules(project: Project, now: dt.datetime) -> dict[str, EnvState]:
    """Record when the scheduler first saw each schedule (a changed one is new); returns the state."""
    state = load_state(project)
    changed = False
    for spec in schedules(project):
        entry = state.get(spec.environment)
        if entry is not None and entry.schedule == spec.identity and entry.first_seen:
            continue
        since = _since(spec, entry, now).isoformat()
        state[spec.environment] = replace(entry or EnvState(), schedule=spec.identity, first_seen=since)
        changed = True
    if changed:
        save_state(project, state)
    return state


def due(project: Project, now: dt.datetime, state: dict[str, EnvState]) -> list[tuple[Schedule, dt.datetime]]:
    """Environments whose latest scheduled time has not been run yet, with that time.

    A time before the scheduler first saw the schedule (see :func:`remember_schedules`) is not
    missed, so it is not due; one not seen yet counts from ``now``.
    """
    out = []
    for spec in schedules(project):
        slot = spec.latest_slot(now)
        entry = state.get(spec.environment)
        if slot < _since(spec, entry, now):
            continue
        last = entry.last_slot if entry else None
        if last is None or dt.datetime.fromisoformat(last) < slot:
            out.append((spec, slot))
    return out


class Clock(Protocol):
    """Time source of the scheduler (a fake one in tests)."""

    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


@dataclass
class ScheduledRun:
    """One scheduled refresh attempt."""

    environment: str
    slot: str
    outcome: str  # pass | warn | fail | error | skipped-locked
    exit_code: int
    run_id: str | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[str], Any]


class Scheduler:
    """Runs due refreshes one at a time, survives failures, stops cleanly when asked."""

    def __init__(self, project: Project, runner: Runner | None = None, clock: Clock | None = None,
                 poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        self.project = project
        self.runner = runner or self._default_runner
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self.stop_event = threading.Event()
        self.records: list[ScheduledRun] = []
        self.on_record: Callable[[ScheduledRun], None] | None = None
        self.running = False
        schedules(project)  # validate before the first loop

    def _default_runner(self, environment: str) -> Any:
        return run_refresh(self.project, environment, operations=RefreshOps, trigger="schedule")

    def request_stop(self) -> None:
        """Finish the refresh in progress (if any), then return from :meth:`run_forever`."""
        self.stop_event.set()

    def run_due(self) -> list[ScheduledRun]:
        """Run every environment that is due now, once each; returns what happened."""
        now = self.clock.now()
        done = []
        for spec, slot in due(self.project, now, remember_schedules(self.project, now)):
            if self.stop_event.is_set():
                break
            last = load_state(self.project).get(spec.environment, EnvState()).last_slot
            if last is not None and dt.datetime.fromisoformat(last) >= slot:
                continue  # another scheduler ran it meanwhile
            self.running = True
            try:
                record = self._run_one(spec, slot)
            finally:
                self.running = False
            done.append(record)
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)
        return done

    def _run_one(self, spec: Schedule, slot: dt.datetime) -> ScheduledRun:
        started = self.clock.now().isoformat()
        log.info("scheduled refresh starting", extra={"environment": spec.environment, "slot": slot.isoformat()})
        try:
            result = self.runner(spec.environment)
        except LockHeld as exc:
            log.warning("scheduled refresh skipped: target locked",
                        extra={"environment": spec.environment, "error": str(exc)})
            return ScheduledRun(spec.environment, slot.isoformat(), "skipped-locked", exc.exit_code, message=str(exc))
        except DatastageError as exc:
            record = ScheduledRun(spec.environment, slot.isoformat(), "error", exc.exit_code, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - the scheduler must survive any failing refresh
            record = ScheduledRun(spec.environment, slot.isoformat(), "error", 1,
                               message=f"{type(exc).__name__}: {exc}")
        else:
            record = ScheduledRun(spec.environment, slot.isoformat(), str(getattr(result, "verdict", "pass")),
                               int(getattr(result, "exit_code", 0)), run_id=getattr(result, "run_id", None))
        state = load_state(self.project)  # fresh: other environments' entries may have changed meanwhile
        state[spec.environment] = replace(
            state.get(spec.environment) or EnvState(),
            last_slot=slot.isoformat(), last_started=started, last_finished=self.clock.now().isoformat(),
            last_run_id=record.run_id, last_verdict=record.outcome, last_exit_code=record.exit_code,
            last_error=record.message)
        save_state(self.project, state)
        level = logging.INFO if record.exit_code == 0 else logging.ERROR
        log.log(level, "scheduled refresh finished", extra={"environment": spec.environment,
                                                             "outcome": record.outcome, "exit_code": record.exit_code,
                                                             "run_id": record.run_id, "error": record.message})
        return record

    @contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT: first finish the refresh in progress and stop; a second one abandons it (its
        shadow is discarded and the run recorded, as a refresh stopped by that signal is: exit code 143
        for SIGTERM, 130 for SIGINT)."""

        def handle(signum: int, frame: object) -> None:
            if self.stop_event.is_set() and self.running:
                log.warning("second stop signal: abandoning the refresh in progress")
                raise Terminated() if signum == signal.SIGTERM else Interrupted()  # exit code 143 / 130
            log.info("stop signal received", extra={"signal": signal.Signals(signum).name,
                                                     "refresh_in_progress": self.running})
            self.request_stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run_forever(self) -> None:
        """Poll, run what is due, sleep; until :meth:`request_stop`."""
        log.info("scheduler started", extra={"environments": [s.environment for s in schedules(self.project)]})
        while not self.stop_event.is_set():
            self.run_due()
            if self.stop_event.is_set():
                break
            self.clock.sleep(self._sleep_seconds(), self.stop_event)
        log.info("scheduler stopped")

    def _sleep_seconds(self) -> float:
        """Until the next scheduled time, at most one poll interval."""
        now = self.clock.now()
        upcoming = [spec.next_runs(now, 1)[0] for spec in schedules(self.project)]
        if not upcoming:
            return self.poll_seconds
        wait = (min(upcoming) - now).total_seconds()
        return max(0.0, min(self.poll_seconds, wait))
