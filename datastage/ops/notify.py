"""Webhook notifications: a JSON summary of every refresh, success or failure.

The payload carries what an on-call engineer needs (environment, verdict, exit code,
rows, duration, report paths, the error) and never a source value, password or key: the
body is redacted (:mod:`datastage.secrets`) right before it is sent. A webhook that cannot
be reached is logged (``--log-file``), never fails the refresh.

With a secret (``notify: {url: ..., secret: "${WEBHOOK_SECRET}"}``) every request carries the
Standard Webhooks headers (https://www.standardwebhooks.com): ``webhook-id`` (the same on every
attempt), ``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``
(``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the secret's bytes).
Connection errors, timeouts, 5xx and 429 answers are retried with exponential backoff
(:class:`Retry`: 4 attempts, 0.5 s, 1 s and 2 s apart, 30 s in all); other answers are final.

Example:
    >>> payload = summary_payload({"run_id": "r1", "environment": "staging", "verdict": "pass"})
    >>> payload["event"]
    'refresh.succeeded'
    >>> signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
    ...           b'{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from datastage._version import __version__
from datastage.secrets import KNOWN, redact, redacted_json
from datastage.settings import webhook_secret_bytes

TIMEOUT_SECONDS = 10.0
SUMMARY_KEYS = ("run_id", "environment", "trigger", "verdict", "exit_code", "tables", "rows", "masked_columns",
                "seconds", "started_at", "finished_at", "report_json", "report_html", "error")


@dataclass(frozen=True)
class Retry:
    """How often a webhook is tried: ``attempts`` in all, waiting ``first_delay`` seconds after the first
    and twice as long after each next one, and never past ``deadline`` seconds from the start."""

    attempts: int = 4
    first_delay: float = 0.5
    deadline: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait after attempt number ``attempt`` (1-based).

        >>> [Retry().delay(n) for n in (1, 2, 3)]
        [0.5, 1.0, 2.0]
        """
        return self.first_delay * 2 ** (attempt - 1)


RETRY = Retry()


@dataclass
class NotifyResult:
    """Whether the webhook accepted the summary."""

    target: str
    ok: bool
    status: int | None
    seconds: float
    error: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "status": self.status, "seconds": round(self.seconds, 3),
                "error": self.error, "attempts": self.attempts}


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of Standard Webhooks for one request."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def summary_payload(result: dict[str, Any], kind: str = "refresh") -> dict[str, Any]:
    """The JSON body sent to webhooks, from a run's result dictionary: a refresh's, or a provision's
    (``kind="provision"``: events ``provision.succeeded``/``provision.failed``, with its ``provision`` block).

    >>> summary_payload({"verdict": "fail", "provision": {"template": "staging"}}, "provision")["event"]
    'provision.failed'
    """
    verdict = result.get("verdict")
    event = f"{kind}.succeeded" if verdict in ("pass", "warn") else f"{kind}.failed"
    body = {key: result.get(key) for key in SUMMARY_KEYS}
    body["failed_checks"] = [c["name"] for c in result.get("checks") or [] if c.get("status") == "FAIL"]
    if kind == "provision":
        body["provision"] = result.get("provision")
    return {"event": event, "datastage_version": __version__, **body}


def display_target(url: str) -> str:
    """The webhook as it may be shown: scheme and host only (paths often carry tokens)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"
    except ValueError:
        return "(invalid URL)"


def send(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_SECONDS, *, secret: str | None = None,
         retry: Retry = RETRY) -> NotifyResult:
    """POST ``payload`` as JSON to ``url``, signed when there is a ``secret``, retried as ``retry`` says;
    never raises, and never shows more of the URL than its host (nor any of the secret)."""
    started = time.monotonic()
    target = display_target(url)
    if secret:
        KNOWN.add(secret)
    body = redacted_json(payload).encode("utf-8")
    message_id = "msg_" + secrets.token_urlsafe(18)
    attempt = 0
    while True:
        attempt += 1
        remaining = retry.deadline - (time.monotonic() - started)
        status, error, again = _post(url, target, body, _headers(secret, message_id, body),
                                     max(0.1, min(timeout, remaining)))
        ok = status is not None and 200 <= status < 300
        delay = retry.delay(attempt)
        if ok or not again or attempt >= retry.attempts or time.monotonic() - started + delay >= retry.deadline:
            return NotifyResult(target, ok, status, time.monotonic() - started, error, attempt)
        time.sleep(delay)


def _headers(secret: str | None, message_id: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": f"datastage/{__version__}"}
    if secret:
        timestamp = int(time.time())
        headers.update({"webhook-id": message_id, "webhook-timestamp": str(timestamp),
                        "webhook-signature": signature(secret, message_id, timestamp, body)})
    return headers


def _post(url: str, target: str, body: bytes, headers: dict[str, str],
          timeout: float) -> tuple[int | None, str | None, bool]:
    """One attempt: (status, error, whether to try again)."""
    try:
        urlsplit(url).port  # noqa: B018 - a port out of range is a malformed address (ValueError), never retried
        request = urllib.request.Request(  # noqa: S310 - the URL comes from the project's own config
            url, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
        return status, None, status >= 500 or status == 429
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429
    except Exception as exc:  # noqa: BLE001 - a webhook never decides a refresh's outcome
        reason = str(getattr(exc, "reason", exc)).replace(url, target)
        first = reason.splitlines()[0][:200] if reason.strip() else type(exc).__name__
        # Unreachable, refused, reset or too slow: worth another try; a malformed address is not.
        again = isinstance(exc, (urllib.error.URLError, OSError)) and not isinstance(exc, ValueError)
        return None, redact(first), again
