"""Every way a refresh ends is recorded truthfully: SIGINT and SIGTERM (before and after the swap),
a state directory that fills up or turns read-only right after the swap, the process killed
(kill -9) between the swap and its report, and rollbacks. SQLite targets: the mechanisms are the
same for every target (the server targets' swap and lock are tested in test_lock_safety.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TEST_KEY
from endings_support import (
    finish,
    history_lines,
    leftovers,
    refresh_log,
    set_hooks,
    spawn,
    tiny_project,
    valid_report,
    wait_for,
)
from load_support import sqlite_fingerprint

import datastage
from datastage.cli import main
from datastage.errors import EXIT_LIVE_INCOMPLETE, LiveIncomplete
from datastage.report.compose import verify_report_file
from datastage.report.history import append_history, read_history
from datastage.report.signing import read_trusted_keys

PAUSE = "touch {flag}; echo $$ > {flag}.pid; exec sleep 120"


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project whose staging (SQLite) holds one refreshed copy; tests copy it."""
    directory = tmp_path_factory.mktemp("endings")
    config = tiny_project(directory, {"staging": {"url": "sqlite:///staging.db"}}, signing={"key_file": "signing.key"})
    datastage.new_key(directory / "signing.key", signing=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATASTAGE_MASKING_KEY", TEST_KEY)
        assert datastage.refresh("staging", config=config).verdict == "pass"
    return directory


@pytest.fixture
def project(refreshed: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the refreshed project (its target, not its history); returns datastage.yaml."""
    directory = tmp_path / "project"
    directory.mkdir()
    for name in ("prod.db", "staging.db", "datastage.yaml", "signing.key", "signing.key.pub"):  # with their modes
        shutil.copy(refreshed / name, directory / name)
    shutil.copytree(refreshed / "rules", directory / "rules")
    yield directory / "datastage.yaml"


def _state(config: Path) -> Path:
    return config.parent / ".datastage"


@pytest.mark.parametrize(("how", "sig", "code"), [("cli", signal.SIGTERM, 143), ("cli", signal.SIGINT, 130),
                                                  ("library", signal.SIGTERM, 143)],
                         ids=["cli-SIGTERM", "cli-SIGINT", "library-SIGTERM"])
def test_stop_signal_during_the_load_drops_the_shadow_and_is_recorded(project: Path, how: str, sig: int,
                                                                      code: int) -> None:
    staging = project.parent / "staging.db"
    before = sqlite_fingerprint(staging)
    flag = project.parent / "loaded"
    set_hooks(project, "staging", {"post_load": [{"run": PAUSE.format(flag=flag), "timeout": 300}]})
    if how == "cli":
        process = spawn("refresh", "staging", "--config", str(project))
    else:
        process = spawn("-c", "import sys, datastage; datastage.refresh('staging', config=sys.argv[1])", str(project))
    wait_for(lambda: Path(f"{flag}.pid").is_file() and bool(Path(f"{flag}.pid").read_text().strip()), 120,
             "the post_load hook", process)
    hook_pid = int(Path(f"{flag}.pid").read_text())
    process.send_signal(sig)
    exit_code, _, err = finish(process)
    assert exit_code == code, err
    name = signal.Signals(sig).name
    if how == "cli":
        assert err.strip() == (f"error: refresh of staging {'stopped' if name == 'SIGTERM' else 'interrupted'} by "
                               f"{name}: the shadow copy was discarded and the target was left as it was"), err
    else:
        assert "Traceback" not in err, err  # the library prints nothing; SystemExit(143) ends the program
    with pytest.raises(ProcessLookupError):
        os.kill(hook_pid, 0)  # the hook's process group was stopped with the refresh
    assert sqlite_fingerprint(staging) == before
    assert leftovers(project.parent) == []
    entry = datastage.history("staging", config=project)[-1]
    assert entry["verdict"] == "error" and entry["exit_code"] == code and name in entry["error"]
    report = valid_report(entry["report_json"])
    assert report["verdict"] == "error" and report["exit_code"] == code


def test_sigterm_after_the_swap_keeps_the_new_copy_and_says_so(project: Path) -> None:
    staging = project.parent / "staging.db"
    flag = project.parent / "swapped"
    set_hooks(project, "staging", {"post_refresh": [{"run": PAUSE.format(flag=flag), "timeout": 300}]})
    process = spawn("refresh", "staging", "--config", str(project))
    wait_for(lambda: Path(f"{flag}.pid").is_file(), 120, "the post_refresh hook", process)
    run_id = refresh_log(staging)[-1]
    process.send_signal(signal.SIGTERM)
    exit_code, _, err = finish(process)
    assert exit_code == 143, err
    assert err.strip() == (f"error: refresh of staging stopped by SIGTERM after the swap: the new copy is live "
                           f"(run {run_id}, verdict pass)")
    assert refresh_log(staging)[-1] == run_id  # not rolled back: a stop is not a failed smoke test
    entry = datastage.history("staging", config=project)[-1]
    assert (entry["run_id"], entry["verdict"], entry["exit_code"]) == (run_id, "pass", 143)
    report = valid_report(entry["report_json"])
    assert report["verdict"] == "pass" and report["exit_code"] == 143 and "after the swap" in report["error"]
    assert {c["name"] for c in report["checks"]} >= {"row_counts", "foreign_keys", "leak_masked_columns"}
    assert leftovers(project.parent) == []


def _completed_later(config: Path, run_id: str) -> dict:
    """Runs ``datastage history`` and returns the run's entry, which that command completed."""
    outcome = CliRunner().invoke(main, ["history", "staging", "--config", str(config), "--json"])
    assert outcome.exit_code == 0, outcome.output
    entry = next(e for e in json.loads(outcome.output) if e["run_id"] == run_id)
    assert (entry["verdict"], entry["exit_code"]) == ("pass", EXIT_LIVE_INCOMPLETE), entry
    assert "completed at" in entry["error"] and "refresh log" in entry["error"]
    report = valid_report(entry["report_json"])
    assert (report["verdict"], report["exit_code"]) == ("pass", EXIT_LIVE_INCOMPLETE)
    assert len(report["checks"]) >= 7 and all(c["status"] == "PASS" for c in report["checks"])
    public = read_trusted_keys(config.parent / "signing.key.pub")
    for path in (entry["report_json"], entry["report_html"]):  # the completed report is signed again
        assert verify_report_file(Path(path), public).valid
    return entry


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory on its own 4 MiB tmpfs (so it can fill up, or turn read-only)."""
    directory = tmp_path / "state"
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the state directory: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.mark.parametrize("breakage", ["full", "read-only"])
def test_state_directory_broken_right_after_the_swap(project: Path, small_state_dir: Path, breakage: str) -> None:
    data = yaml.safe_load(project.read_text())
    data["state_dir"] = str(small_state_dir)
    project.write_text(yaml.safe_dump(data, sort_keys=False))
    command = (f"dd if=/dev/zero of={small_state_dir}/filler bs=64k 2>/dev/null; true" if breakage == "full"
               else f"mount -o remount,ro {small_state_dir}")
    set_hooks(project, "staging", {"post_refresh": [{"run": command}]})
    exit_code, _, err = finish(spawn("refresh", "staging", "--config", str(project)))
    assert exit_code == EXIT_LIVE_INCOMPLETE, err
    run_id = refresh_log(project.parent / "staging.db")[-1]
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: the new copy of staging is live (run {run_id}), but its records could not be "
                          "completed: cannot write the report: "), err
    assert ("No space left on device" if breakage == "full" else "Read-only file system") in err
    assert leftovers(small_state_dir, project.parent) == []
    lines = history_lines(small_state_dir)  # whole lines only, the last one the pending record
    assert (lines[-1]["run_id"], lines[-1]["verdict"]) == (run_id, "pending")
    pending = valid_report(lines[-1]["report_json"])
    assert pending["verdict"] == "pending" and pending["exit_code"] is None and len(pending["checks"]) >= 7
    if breakage == "full":
        (small_state_dir / "filler").unlink()
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(small_state_dir)], check=True)
    _completed_later(project, run_id)
    assert leftovers(small_state_dir, project.parent) == []


def test_report_writer_failing_after_the_swap_in_process(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library call: the report writer fails once the copy is live (no mount needed)."""
    import datastage.pipeline as pipeline

    original = pipeline.write_report

    def failing(report: dict, state_dir: Path, signer=None):  # type: ignore[no-untyped-def]
        if report["verdict"] != "pending":
            raise datastage.DatastageError("cannot write the report: No space left on device", step="report")
        return original(report, state_dir, signer)

    with monkeypatch.context() as patch, pytest.raises(LiveIncomplete) as info:
        patch.setattr(pipeline, "write_report", failing)
        datastage.refresh("staging", config=project)
    run_id = refresh_log(project.parent / "staging.db")[-1]
    assert info.value.exit_code == 5 and f"is live (run {run_id})" in str(info.value)
    _completed_later(project, run_id)


def test_drift_snapshot_unwritable_after_the_swap(project: Path) -> None:
    """The report and history are written, but the columns for the next drift check are not: exit 5."""
    state = _state(project)
    state.mkdir()
    (state / "schemas").write_text("a file where a folder belongs")
    with pytest.raises(LiveIncomplete) as info:
        datastage.refresh("staging", config=project)
    run_id = refresh_log(project.parent / "staging.db")[-1]
    assert str(info.value).startswith(f"the new copy of staging is live (run {run_id}) and recorded, but could not "
                                      "save the columns for the next drift check: ")
    entry = datastage.history("staging", config=project)[-1]
    assert (entry["run_id"], entry["verdict"], entry["exit_code"]) == (run_id, "pass", EXIT_LIVE_INCOMPLETE)
    report = valid_report(entry["report_json"])
    assert report["exit_code"] == EXIT_LIVE_INCOMPLETE and report["error"].startswith("not saved: the columns")
    assert leftovers(project.parent) == []


def test_killed_between_the_swap_and_its_report(project: Path) -> None:
    set_hooks(project, "staging", {"post_refresh": [{"run": "kill -9 $PPID"}]})
    exit_code, _, _ = finish(spawn("refresh", "staging", "--config", str(project)))
    assert exit_code == -signal.SIGKILL
    run_id = refresh_log(project.parent / "staging.db")[-1]
    assert history_lines(_state(project))[-1]["verdict"] == "pending"
    assert leftovers(project.parent) == []
    outcome = CliRunner().invoke(main, ["report", "show", run_id, "--config", str(project)])
    assert outcome.exit_code == 0, outcome.output
    assert "verdict: PASS" in outcome.output
    entry = _completed_later(project, run_id)
    assert "ended after its copy went live" in entry["error"]
    outcome = CliRunner().invoke(main, ["history", "staging", "--config", str(project)])
    assert "note: the run ended after its copy went live" in outcome.output


KILL_AT_SWAP = """
import os, signal, sys
import datastage
from datastage.targets.sqlite import SqliteShadow
SqliteShadow.swap = lambda self: os.kill(os.getpid(), signal.SIGKILL)
datastage.refresh("staging", config=sys.argv[1])
"""


def test_killed_after_the_pending_report_before_the_swap(project: Path) -> None:
    staging = project.parent / "staging.db"
    before = sqlite_fingerprint(staging)
    exit_code, _, err = finish(spawn("-c", KILL_AT_SWAP, str(project)))
    assert exit_code == -signal.SIGKILL, err
    pending = history_lines(_state(project))[-1]
    assert pending["verdict"] == "pending"
    assert sqlite_fingerprint(staging) == before
    entry = next(e for e in datastage.history("staging", config=project) if e["run_id"] == pending["run_id"])
    assert (entry["verdict"], entry["exit_code"]) == ("error", 1)
    assert "not in the current copy's refresh log" in entry["error"]
    assert valid_report(entry["report_json"])["verdict"] == "error"
    # The shadow the killed run left is dropped by the next refresh, which records normally.
    assert datastage.refresh("staging", config=project).verdict == "pass"
    assert leftovers(project.parent) == []
    assert [e["verdict"] for e in datastage.history("staging", config=project)] == ["error", "pass"]


def test_rollback_is_recorded_and_names_the_live_run(project: Path) -> None:
    staging = project.parent / "staging.db"
    first = refresh_log(staging)[-1]
    outcome = CliRunner().invoke(main, ["rollback", "staging", "--config", str(project)])
    assert outcome.exit_code == 1 and "no previous copy of staging" in outcome.output  # recorded as well
    second = datastage.refresh("staging", config=project).run_id
    outcome = CliRunner().invoke(main, ["rollback", "staging", "--config", str(project), "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.output)["live_run_id"] == first
    result = datastage.rollback("staging", config=project)  # undoes the first rollback
    assert result.live_run_id == second == refresh_log(staging)[-1]
    entries = datastage.history("staging", config=project)
    assert [(e["kind"], e["verdict"], e.get("live_run_id")) for e in entries] == [
        ("rollback", "error", None), ("refresh", "pass", None), ("rollback", "pass", first),
        ("rollback", "pass", second)]
    assert [e["trigger"] for e in entries if e["kind"] == "rollback"] == ["cli", "cli", "library"]
    assert "no previous copy" in entries[0]["error"]
    outcome = CliRunner().invoke(main, ["history", "staging", "--config", str(project)])
    assert f"now live: run {first}" in outcome.output and f"now live: run {second}" in outcome.output
    assert leftovers(project.parent) == []


def test_history_survives_a_writer_that_died_mid_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    append_history(state, {"run_id": "a", "environment": "staging", "verdict": "pass"})
    with open(state / "history.jsonl", "a") as handle:
        handle.write('{"run_id": "b", "environment": "staging", "ver')  # the writer died here
    append_history(state, {"run_id": "c", "environment": "staging", "verdict": "pending"})
    append_history(state, {"run_id": "c", "environment": "staging", "verdict": "pass"})
    assert [(e["run_id"], e["verdict"]) for e in read_history(state)] == [("a", "pass"), ("c", "pass")]
    assert (state / "history.jsonl").read_text().endswith("\n")


SIGNAL_PROBE = """
import signal, sys
import datastage
import datastage.pipeline as pipeline
from datastage.settings import load_project
from datastage.ops.schedule import Scheduler

seen = []

def probe(*args, **kwargs):
    seen.append(signal.getsignal(signal.SIGTERM).__qualname__)
    raise RuntimeError("probe: stop here")

pipeline.build_plan = probe
project = load_project(sys.argv[1])
for scheduled in (False, True):
    try:
        if scheduled:
            with Scheduler(project).signals():
                datastage.refresh("staging", config=project)
        else:
            datastage.refresh("staging", config=project)
    except datastage.DatastageError:
        pass
    seen.append(repr(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL))
print(" ".join(seen))
"""


def test_scheduler_and_refresh_signal_handlers_coexist(project: Path) -> None:
    """A refresh of its own turns SIGTERM into a stop for as long as it runs; inside the scheduler it
    leaves the scheduler's handler alone (its first signal lets the refresh finish)."""
    process = subprocess.run([sys.executable, "-c", SIGNAL_PROBE, str(project)], capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["sigterm_stops.<locals>.stop", "True",
                                      "Scheduler.signals.<locals>.handle", "True"]
