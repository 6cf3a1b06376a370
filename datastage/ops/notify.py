"""Webhook notifications: a JSON summary of every refresh, success or failure.

The payload carries what an on-call engineer needs (environment, verdict, exit code,
rows, duration, report paths, the error) and never a source value, password or key: the
body is redacted (:mod:`datastage.secrets`) right before it is sent. A webhook that cannot
be reached is logged (``--log-file``), never fails the refresh.

Example:
    >>> payload = summary_payload({"run_id": "r1", "environment": "staging", "verdict": "pass"})
    >>> payload["event"]
    'refresh.succeeded'
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from datastage._version import __version__
from datastage.secrets import redact, redacted_json

TIMEOUT_SECONDS = 10.0
SUMMARY_KEYS = ("run_id", "environment", "trigger", "verdict", "exit_code", "tables", "rows", "masked_columns",
                "seconds", "started_at", "finished_at", "report_json", "report_html", "error")


@dataclass
class NotifyResult:
    """Whether the webhook accepted the summary."""

    target: str
    ok: bool
    status: int | None
    seconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "status": self.status, "seconds": round(self.seconds, 3),
                "error": self.error}


def summary_payload(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON body sent to webhooks, from a refresh result dictionary."""
    verdict = result.get("verdict")
    event = "refresh.succeeded" if verdict in ("pass", "warn") else "refresh.failed"
    body = {key: result.get(key) for key in SUMMARY_KEYS}
    body["failed_checks"] = [c["name"] for c in result.get("checks") or [] if c.get("status") == "FAIL"]
    return {"event": event, "datastage_version": __version__, **body}


def display_target(url: str) -> str:
    """The webhook as it may be shown: scheme and host only (paths often carry tokens)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"
    except ValueError:
        return "(invalid URL)"


def send(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> NotifyResult:
    """POST ``payload`` as JSON to ``url``; never raises, and never shows more of the URL than its host."""
    started = time.monotonic()
    target = display_target(url)
    try:
        request = urllib.request.Request(  # noqa: S310 - the URL comes from the project's own config
            url, data=redacted_json(payload).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"datastage/{__version__}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
        return NotifyResult(target, 200 <= status < 300, status, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return NotifyResult(target, False, exc.code, time.monotonic() - started, f"HTTP {exc.code}")
    except Exception as exc:  # noqa: BLE001 - a webhook never decides a refresh's outcome
        reason = str(getattr(exc, "reason", exc)).replace(url, target)
        first = reason.splitlines()[0][:200] if reason.strip() else type(exc).__name__
        return NotifyResult(target, False, None, time.monotonic() - started, redact(first))
