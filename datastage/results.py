"""What each step of a refresh produced: plain data objects every layer may use.

Steps return these; the report and the CLI render them. They hold no connections and import
nothing above the error base, so any package can return or read them.

Example:
    >>> LoadResult(rows={"customer": 3, "orders": 5}).total_rows
    8
    >>> VerifyResult([CheckResult("row_counts", "PASS", "ok")]).verdict
    'pass'
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


def current_user() -> str:
    """The operating-system user running datastage (recorded as the actor)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261127-090102-3fa9c1``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


Status = Literal["PASS", "WARN", "FAIL"]


Verdict = Literal["pass", "warn", "fail"]


@dataclass
class CheckResult:
    """One verification check and what it found."""

    name: str
    status: Status
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    table: str | None = None
    # The leak checks' findings: found in, origin, kind, count, target row keys (never values).
    findings: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status, "summary": self.summary,
                                "table": self.table,
                                "figures": self.figures}
        if self.findings is not None:
            data["findings"] = self.findings
        return data


@dataclass
class VerifyResult:
    """All checks of one refresh."""

    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        statuses = {c.status for c in self.checks}
        if "FAIL" in statuses:
            return "fail"
        if "WARN" in statuses:
            return "warn"
        return "pass"

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "FAIL"]


@dataclass
class LoadResult:
    """What the load step wrote into the shadow."""

    rows: dict[str, int] = field(default_factory=dict)
    kept_rows: dict[str, int] = field(default_factory=dict)
    lossy_mappings: list[str] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    shadow: str = ""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class RollbackResult:
    """The outcome of swapping the previous copy back."""

    environment: str
    restored: str
    now_previous: str
    live_run_id: str | None = None  # the run whose copy is live now (from the restored copy's refresh log)


@dataclass
class ExtractResult:
    """Rows read per table (what the pipeline streamed through masking into the shadow)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class ReportPaths:
    json: Path
    html: Path
    signed_by: str | None = None  # the fingerprint of the key that signed both files (None: unsigned)


@dataclass
class NewKey:
    """A key ``datastage key new`` wrote: its file, its kind, its public fingerprint (and public key file)."""

    path: Path
    kind: Literal["masking", "signing"]
    fingerprint: str
    public_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "fingerprint": self.fingerprint,
                "public_path": str(self.public_path) if self.public_path else None}


@dataclass
class RunRecord:
    """What is recorded about one run (refresh or plan): who, what, where, with which rules and key,
    and how it ended. The report's provenance and the history line are made from it and the step
    results; it holds no step result itself (those belong to layers above this one).

    >>> record = RunRecord("r1", "staging", "cli", "2026-11-27T09:01:02Z")
    >>> record.history_entry("pass", 0, "2026-11-27T09:02:00Z", 58.0, None, 12)["verdict"]
    'pass'
    """

    run_id: str
    environment: str
    trigger: str
    started_at: str
    kind: str = "refresh"
    source: str | None = None  # the URLs, redacted
    target: str | None = None
    config: str | None = None
    subset_spec: dict[str, Any] = field(default_factory=dict)
    rules_path: str | None = None
    rules_sha256: str | None = None
    key_id: str | None = None
    key_strength: dict[str, Any] | None = None  # MaskingKey.strength(): bytes, strong, warning
    finished_at: str | None = None
    verdict: str = "error"
    exit_code: int | None = None
    seconds: float = 0.0
    error: str | None = None
    actor: str | None = None
    host: str | None = None
    datastage_version: str | None = None
    locked: bool = False  # holds the target's lock: a failure from here on runs on_failure hooks and notifies
    swapped: bool = False  # the new copy went live
    unrecorded: str | None = None  # what could not be saved after the swap (the run ends with exit code 5)

    def history_entry(self, verdict: str, exit_code: int | None, finished_at: str | None, seconds: float,
                      paths: ReportPaths | None, rows: int, error: str | None = None) -> dict[str, Any]:
        """The run's line in the history."""
        return {
            "run_id": self.run_id, "environment": self.environment, "kind": self.kind, "trigger": self.trigger,
            "verdict": verdict, "exit_code": exit_code, "rows": rows, "started_at": self.started_at,
            "finished_at": finished_at, "seconds": round(seconds, 3),
            "report_json": str(paths.json) if paths else None, "report_html": str(paths.html) if paths else None,
            "error": error,
        }

    def summary(self, verdict: str, exit_code: int, error: str | None, paths: ReportPaths | None) -> dict[str, Any]:
        """The notification summary of a run that ended without a result object."""
        return {"run_id": self.run_id, "environment": self.environment, "trigger": self.trigger,
                "verdict": verdict, "exit_code": exit_code, "started_at": self.started_at,
                "finished_at": utc_now(), "error": error, "report_json": str(paths.json) if paths else None,
                "report_html": str(paths.html) if paths else None}
