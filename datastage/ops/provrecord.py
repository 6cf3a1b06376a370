"""What a ``provision`` leaves behind: its history line, its signed report and its webhook.

A provision report is a refresh report of ``kind: provision`` (written and signed by
:func:`datastage.report.compose.write_report`, so ``datastage report verify`` checks it): the
copy's checks, rows per table, grants and hooks (redacted), plus a ``provision`` block naming
the template, owner, the environment and refresh run it was copied from with that run's
verdict, the copy's verdict, its expiry, state, last test and one line saying what became
of it. The webhook gets events ``provision.succeeded`` / ``provision.failed`` with that block.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from datastage._version import __version__
from datastage.ops.envops import RefreshOps
from datastage.plan import PlanResult
from datastage.report.compose import compose_report, legal_status, write_report
from datastage.report.history import append_history
from datastage.report.signing import SigningKey
from datastage.results import LoadResult, ReportPaths, RunRecord, VerifyResult, current_user, utc_now
from datastage.secrets import redact_data
from datastage.settings import Project


@dataclass
class Copied:
    """What copying an environment produced (for the report)."""

    rows: int
    verdict: str  # the copy's own verdict, never better than its source's
    plan: PlanResult | None = None
    load: LoadResult | None = None
    verify: VerifyResult | None = None


@dataclass
class ProvisionOutcome:
    """How one provision ended, as history, report and webhook show it."""

    run_id: str
    name: str
    started_at: str
    seconds: float
    source_environment: str
    source_url: str  # both redacted
    target_url: str
    template: str | None
    owner: str
    source_run_id: str | None
    source_verdict: str | None
    expires_at: str | None
    verdict: str  # pass | warn (ready) | fail (a post_provision test failed) | error (the copy failed)
    exit_code: int
    state: str  # ready | failed | torn-down
    last_test: str | None
    outcome: str
    copied: Copied | None = None
    error: str | None = None

    def block(self) -> dict[str, Any]:
        """The report's and the webhook's ``provision`` block."""
        return {"template": self.template, "owner": self.owner, "source_environment": self.source_environment,
                "source_run_id": self.source_run_id, "source_verdict": self.source_verdict,
                "copy_verdict": self.copied.verdict if self.copied else None, "expires_at": self.expires_at,
                "state": self.state, "last_test": self.last_test, "outcome": self.outcome}


def write_provision_report(project: Project, outcome: ProvisionOutcome, ops: RefreshOps,
                           signer: SigningKey | None) -> ReportPaths:
    """The provision report (JSON and HTML), signed when the project has a signing key."""
    copied = outcome.copied or Copied(0, "fail")
    record = RunRecord(outcome.run_id, outcome.name, "cli", outcome.started_at, kind="provision",
                       source=outcome.source_url, target=outcome.target_url, config=str(project.path),
                       finished_at=utc_now(), verdict=outcome.verdict, exit_code=outcome.exit_code,
                       seconds=outcome.seconds, error=outcome.error, actor=current_user(),
                       host=socket.gethostname(), datastage_version=__version__)
    report = compose_report(record, plan=copied.plan, load=copied.load, verify=copied.verify,
                            operations=ops.to_report())
    report["provision"] = redact_data(outcome.block())
    report["legal_status"] = legal_status(report)  # which names the refresh it was copied from
    return write_report(report, project.state_dir, signer)


def record_provision(project: Project, outcome: ProvisionOutcome, ops: RefreshOps,
                     paths: ReportPaths | None) -> None:
    """The history line and the template's webhook of one provision (a webhook never fails it)."""
    result = {
        "run_id": outcome.run_id, "environment": outcome.name, "kind": "provision", "trigger": "cli",
        "verdict": outcome.verdict, "exit_code": outcome.exit_code,
        "rows": outcome.copied.rows if outcome.copied else 0, "started_at": outcome.started_at,
        "finished_at": utc_now(), "seconds": round(outcome.seconds, 3),
        "source_environment": outcome.source_environment, "source_verdict": outcome.source_verdict,
        "source_run_id": outcome.source_run_id, "target": outcome.target_url, "expires_at": outcome.expires_at,
        "template": outcome.template, "owner": outcome.owner, "state": outcome.state,
        "last_test": outcome.last_test, "report_json": str(paths.json) if paths else None,
        "report_html": str(paths.html) if paths else None, "error": outcome.error,
    }
    append_history(project.state_dir, result)
    ops.notify({**result, "checks": [c.to_dict() for c in outcome.copied.verify.checks]
                if outcome.copied and outcome.copied.verify else [], "provision": outcome.block()}, "provision")
