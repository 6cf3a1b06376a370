"""Helpers for the lock and refresh-ending tests: a tiny project (a two-table SQLite source, any
target), refreshes in a subprocess, and checks for what a run must never leave behind."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from load_support import write_project

ROOT = Path(__file__).resolve().parents[1]
REPORT_SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
TINY_RULES: dict[str, Any] = {
    "version": 1,
    "default": "keep",
    "tables": {"customer": {"name": "fake.name", "email": {"strategy": "email", "unique": True}}},
}


def tiny_source(directory: Path) -> str:
    """``prod.db`` in ``directory``: 50 customers and 200 orders; returns its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prod.db"
    conn = sqlite3.connect(path)
    try:
        conn.executescript("""
            CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer(id),
                                 amount INTEGER NOT NULL);
        """)
        conn.executemany("INSERT INTO customer VALUES (?, ?, ?)",
                         [(i, f"Person Number{i}", f"person{i}@mail.test") for i in range(1, 51)])
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, 1 + i % 50, i * 3) for i in range(1, 201)])
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path}"


def tiny_project(directory: Path, environments: dict[str, dict[str, Any]], **settings: Any) -> Path:
    """datastage.yaml (plus rules and source) in ``directory``; ``settings`` are top-level keys
    (e.g. ``state_dir``). Returns the config path."""
    config = write_project(directory, tiny_source(directory), environments, rules=TINY_RULES)
    if settings:
        data = yaml.safe_load(config.read_text())
        data.update(settings)
        config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def set_hooks(config: Path, environment: str, hooks: dict[str, Any]) -> None:
    data = yaml.safe_load(config.read_text())
    data["environments"][environment]["hooks"] = hooks
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def spawn(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """``python -m datastage ARGS`` (or ``python -c CODE`` when args[0] == "-c") with stdout and stderr piped."""
    command = [sys.executable, *args] if args and args[0] == "-c" else [sys.executable, "-m", "datastage", *args]
    return subprocess.Popen(command, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(condition: Callable[[], bool], seconds: float, what: str, process: subprocess.Popen[str] | None = None
             ) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the refresh ended (exit {process.returncode}) before {what}: {err or out}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(process: subprocess.Popen[str], seconds: float = 180) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a spawned command."""
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the command did not end: {err}") from None
    return process.returncode, out, err


def leftovers(*directories: Path) -> list[str]:
    """Temporary files (``*.tmp``) and shadow files anywhere under ``directories``."""
    found = []
    for directory in directories:
        for path in directory.rglob("*"):
            if path.name.endswith((".tmp", "-tmp")) or ".shadow-" in path.name:
                found.append(str(path))
    return found


def history_lines(state_dir: Path) -> list[dict[str, Any]]:
    """Every line of the history file, parsed: each must be one whole JSON object."""
    text = (state_dir / "history.jsonl").read_text()
    assert text.endswith("\n"), "the history file ends in the middle of a line"
    return [json.loads(line) for line in text.splitlines()]


def valid_report(path: str | Path) -> dict[str, Any]:
    """The report at ``path``, checked against docs/report.schema.json."""
    report = json.loads(Path(path).read_text())
    errors = list(jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(report))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]]
    return report


def refresh_log(path: Path) -> list[str]:
    """Run ids in a SQLite target's refresh log."""
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT run_id FROM datastage_refresh_log ORDER BY started_at")]
    finally:
        conn.close()
