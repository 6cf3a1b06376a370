"""The scheduler: due refreshes with a fake clock, missed runs, locks, failures, SIGTERM."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.errors import ConfigError
from datastage.ops.schedule import (
    EnvState,
    Schedule,
    Scheduler,
    due,
    load_state,
    remember_schedules,
    save_state,
    schedules,
)
from datastage.settings import load_project


class FakeClock:
    """A clock that only moves when the scheduler sleeps (or the test says so)."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return self.current

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.current += dt.timedelta(seconds=max(seconds, 1.0))


def _add_schedule(config: Path, schedule: str) -> None:
    text = config.read_text().replace("    keep: [app_settings]", f"    keep: [app_settings]\n    schedule: {schedule}")
    config.write_text(text)


def _existing_since(config: Path, when: dt.datetime) -> None:
    """Let the scheduler have seen the configured schedules since ``when``."""
    remember_schedules(load_project(config), when)


def _log_runs(config: Path) -> list[str]:
    import sqlite3

    db = config.parent / "staging.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT run_id FROM datastage_refresh_log ORDER BY started_at")]
    finally:
        conn.close()


def test_next_runs_follow_cron_and_time_zone() -> None:
    spec = Schedule("staging", "30 2 * * *", "Europe/Berlin")
    runs = spec.next_runs(dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC), 3)
    # 2026-03-29 has no 02:30 in Berlin (clocks jump to 03:00).
    assert [r.isoformat() for r in runs] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                                             "2026-03-31T02:30:00+02:00"]
    assert spec.latest_slot(dt.datetime(2026, 3, 31, 1, 0, tzinfo=dt.UTC)).isoformat() == "2026-03-31T02:30:00+02:00"


def test_invalid_schedule_is_a_config_error(demo_project: Path) -> None:
    _add_schedule(demo_project, '"61 3 * * *"')
    with pytest.raises(ConfigError) as info:
        schedules(load_project(demo_project))
    assert "environments.staging.schedule" in str(info.value) and "not a valid cron expression" in str(info.value)


def test_unknown_time_zone_is_a_config_error(demo_project: Path) -> None:
    _add_schedule(demo_project, "{cron: '0 3 * * *', timezone: Mars/Olympus}")
    result = CliRunner().invoke(main, ["schedule", "list", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {demo_project}: environments.staging.schedule: "
                                     "unknown time zone 'Mars/Olympus'")


def test_scheduler_starts_due_refresh_once_per_slot(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    project = load_project(demo_project)
    clock = FakeClock(dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC))
    scheduler = Scheduler(project, clock=clock)
    assert scheduler.run_due() == []  # first seen before today's slot
    clock.current = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)
    first = scheduler.run_due()
    assert [(r.environment, r.outcome, r.exit_code) for r in first] == [("staging", "pass", 0)]
    assert scheduler.run_due() == []  # same slot: nothing due
    assert len(_log_runs(demo_project)) == 1
    report = json.loads(Path(json.loads((project.state_dir / "history.jsonl").read_text().splitlines()[-1])
                             ["report_json"]).read_text())
    assert report["provenance"]["trigger"] == "schedule"
    clock.current = dt.datetime(2026, 11, 28, 3, 0, 1, tzinfo=dt.UTC)
    second = scheduler.run_due()
    assert [r.slot for r in second] == ["2026-11-28T03:00:00+00:00"]
    assert len(_log_runs(demo_project)) == 2


def test_missed_runs_catch_up_once(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 * * * *"')
    project = load_project(demo_project)
    save_state(project, {"staging": EnvState(last_slot="2026-11-24T10:00:00+00:00")})
    now = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)  # 71 hourly runs were missed
    assert [(s.environment, slot.isoformat()) for s, slot in due(project, now, load_state(project))] == [
        ("staging", "2026-11-27T09:00:00+00:00")]
    records = Scheduler(project, clock=FakeClock(now)).run_due()
    assert len(records) == 1 and records[0].outcome == "pass"
    assert len(_log_runs(demo_project)) == 1
    assert load_state(project)["staging"].last_slot == "2026-11-27T09:00:00+00:00"


def test_schedule_added_after_todays_slot_waits_for_the_next_one(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    project = load_project(demo_project)
    clock = FakeClock(dt.datetime(2026, 11, 27, 17, 40, tzinfo=dt.UTC))  # added long after 03:00
    scheduler = Scheduler(project, clock=clock)
    assert scheduler.run_due() == [] and _log_runs(demo_project) == []
    entry = load_state(project)["staging"]
    assert entry.first_seen == "2026-11-27T17:40:00+00:00" and entry.schedule == "0 3 * * * UTC"
    assert entry.last_slot is None
    clock.current = dt.datetime(2026, 11, 28, 2, 59, tzinfo=dt.UTC)
    assert scheduler.run_due() == []
    clock.current = dt.datetime(2026, 11, 28, 3, 0, 5, tzinfo=dt.UTC)
    assert [(r.slot, r.outcome) for r in scheduler.run_due()] == [("2026-11-28T03:00:00+00:00", "pass")]
    assert len(_log_runs(demo_project)) == 1
    assert load_state(project)["staging"].first_seen == "2026-11-27T17:40:00+00:00"  # kept by the run


def test_schedule_run_once_right_after_adding_a_schedule_refreshes_nothing(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 0 1 1 *"')  # its latest slot passed before the schedule existed
    result = CliRunner().invoke(main, ["schedule", "run", "--once", "--config", str(demo_project)])
    assert result.exit_code == 0 and result.output == ""
    assert _log_runs(demo_project) == []
    assert load_state(load_project(demo_project))["staging"].first_seen is not None


def test_slot_missed_while_the_scheduler_was_down_catches_up_once(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    project = load_project(demo_project)
    clock = FakeClock(dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC))
    assert Scheduler(project, clock=clock).run_due() == []  # seen; then the scheduler stops
    clock.current = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)  # down over three 03:00 slots
    records = Scheduler(project, clock=clock).run_due()
    assert [(r.slot, r.outcome) for r in records] == [("2026-11-29T03:00:00+00:00", "pass")]
    assert Scheduler(project, clock=clock).run_due() == []
    assert len(_log_runs(demo_project)) == 1


def test_changed_cron_is_a_new_schedule(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    project = load_project(demo_project)
    clock = FakeClock(dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC))
    assert Scheduler(project, clock=clock).run_due() == []
    # Changed to 06:00 at 07:00 the next day: its 06:00 slot was before the new schedule appeared.
    demo_project.write_text(demo_project.read_text().replace('schedule: "0 3 * * *"', 'schedule: "0 6 * * *"'))
    project = load_project(demo_project)
    clock.current = dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.UTC)
    assert [spec.cron for spec, _ in due(project, clock.current, load_state(project))] == []
    assert Scheduler(project, clock=clock).run_due() == []
    entry = load_state(project)["staging"]
    assert entry.schedule == "0 6 * * * UTC" and entry.first_seen == "2026-11-27T07:00:00+00:00"
    assert _log_runs(demo_project) == []
    clock.current = dt.datetime(2026, 11, 28, 6, 0, 1, tzinfo=dt.UTC)
    assert [r.slot for r in Scheduler(project, clock=clock).run_due()] == ["2026-11-28T06:00:00+00:00"]


def test_locked_target_is_skipped_and_retried(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    project = load_project(demo_project)
    _existing_since(demo_project, dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC))
    clock = FakeClock(dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC))
    scheduler = Scheduler(project, clock=clock)
    lock_path = demo_project.parent / "staging.db.lock"
    with open(lock_path, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write(json.dumps({"run_id": "manual-1", "user": "alice", "host": "ws1", "pid": 1,
                                 "started_at": "2026-11-27T03:59:00Z"}))
        holder.flush()
        skipped = scheduler.run_due()
        assert [(r.outcome, r.exit_code) for r in skipped] == [("skipped-locked", 4)]
        assert "manual-1" in (skipped[0].message or "") and "alice@ws1" in (skipped[0].message or "")
        assert _log_runs(demo_project) == []
        assert load_state(project).get("staging", EnvState()).last_slot is None
    retried = scheduler.run_due()
    assert [r.outcome for r in retried] == ["pass"]


def test_scheduler_survives_a_failing_refresh(demo_project: Path) -> None:
    _add_schedule(demo_project, '"*/10 * * * *"')
    project = load_project(demo_project)
    rules = demo_project.parent / "rules" / "pii.yaml"
    good = rules.read_text()
    broken = re.sub(r"(?m)^    phone: phone .*\n", "", good)  # customer.phone has no rule now
    assert broken != good
    rules.write_text(broken)
    _existing_since(demo_project, dt.datetime(2026, 11, 27, 3, 55, tzinfo=dt.UTC))
    clock = FakeClock(dt.datetime(2026, 11, 27, 4, 1, tzinfo=dt.UTC))
    scheduler = Scheduler(project, clock=clock, poll_seconds=600)
    iterations = {"n": 0}
    original_sleep = clock.sleep

    def sleep(seconds: float, stop: threading.Event) -> None:
        iterations["n"] += 1
        if iterations["n"] == 1:
            rules.write_text(good)  # fixed before the next slot
        if iterations["n"] >= 2:
            scheduler.request_stop()
        original_sleep(seconds, stop)

    clock.sleep = sleep  # type: ignore[method-assign]
    scheduler.run_forever()
    outcomes = [(r.outcome, r.exit_code) for r in scheduler.records]
    assert outcomes[0] == ("error", 2)
    assert "customer.phone" in (scheduler.records[0].message or "")
    assert ("pass", 0) in outcomes[1:]
    assert load_state(project)["staging"].last_verdict == "pass"


def test_schedule_list_shows_next_runs(demo_project: Path) -> None:
    _add_schedule(demo_project, "{cron: '0 3 * * 1-5', timezone: Europe/London}")
    result = CliRunner().invoke(main, ["schedule", "list", "--config", str(demo_project), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["environment"] == "staging" and rows[0]["timezone"] == "Europe/London"
    assert len(rows[0]["next_runs"]) == 3
    for run in rows[0]["next_runs"]:
        when = dt.datetime.fromisoformat(run)
        assert when.weekday() < 5 and when.hour == 3 and when.minute == 0


def test_schedule_run_once_exits_with_the_refresh_code(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 0 1 1 *"')  # once a year: due now, and not again a moment later
    _existing_since(demo_project, dt.datetime.now(dt.UTC) - dt.timedelta(days=400))
    log_file = demo_project.parent / "logs" / "datastage.log"
    result = CliRunner().invoke(main, ["schedule", "run", "--once", "--config", str(demo_project),
                                       "--log-file", str(log_file)])
    assert result.exit_code == 0, result.output
    assert "staging: pass (exit 0)" in result.output
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    events = [line["event"] for line in lines]
    assert "scheduled refresh starting" in events and "scheduled refresh finished" in events
    finished = next(line for line in lines if line["event"] == "scheduled refresh finished")
    assert finished["environment"] == "staging" and finished["exit_code"] == 0
    again = CliRunner().invoke(main, ["schedule", "run", "--once", "--config", str(demo_project)])
    assert again.exit_code == 0 and again.output == ""


def _spawn_scheduler(config: Path, log_file: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "datastage", "schedule", "run", "--poll", "0.2", "--config",
                             str(config), "--log-file", str(log_file)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_sigterm_when_idle_stops_promptly(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 1 1 *"')
    project = load_project(demo_project)
    save_state(project, {"staging": EnvState(last_slot=dt.datetime.now(dt.UTC).isoformat())})
    log_file = demo_project.parent / "scheduler.log"
    proc = _spawn_scheduler(demo_project, log_file)
    _wait_for(lambda: log_file.exists() and "scheduler started" in log_file.read_text())
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 5
    assert "scheduler stopped" in log_file.read_text()


def test_sigterm_during_refresh_finishes_it_then_stops(demo_project: Path) -> None:
    _add_schedule(demo_project, '"* * * * *"')
    _existing_since(demo_project, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    log_file = demo_project.parent / "scheduler.log"
    proc = _spawn_scheduler(demo_project, log_file)
    _wait_for(lambda: log_file.exists() and "scheduled refresh starting" in log_file.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    text = log_file.read_text()
    assert "stop signal received" in text and "scheduled refresh finished" in text
    assert len(_log_runs(demo_project)) == 1  # the refresh in progress was completed, not cut
    assert not [p for p in demo_project.parent.iterdir() if ".shadow-" in p.name]


def test_second_sigterm_abandons_the_refresh_safely(demo_project: Path) -> None:
    _add_schedule(demo_project, '"* * * * *"')
    _existing_since(demo_project, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    log_file = demo_project.parent / "scheduler.log"
    proc = _spawn_scheduler(demo_project, log_file)
    _wait_for(lambda: log_file.exists() and "scheduled refresh starting" in log_file.read_text())
    proc.send_signal(signal.SIGTERM)
    _wait_for(lambda: "stop signal received" in log_file.read_text())
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    if "scheduled refresh finished" in log_file.read_text():
        assert code == 0  # the refresh finished before the second signal arrived
        assert len(_log_runs(demo_project)) == 1
    else:
        assert code == 143  # stopped by SIGTERM, as a refresh stopped by SIGTERM is
        assert _log_runs(demo_project) == []  # abandoned: staging was never swapped in
        entry = datastage.history("staging", config=demo_project)[-1]
        assert entry["exit_code"] == 143 and "SIGTERM" in entry["error"]  # and recorded
    assert not [p for p in demo_project.parent.iterdir() if ".shadow-" in p.name]
