"""Webhooks against a real local HTTP server: Standard Webhooks signatures, checked the way the reference
library checks them, and retries with exponential backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.ops.notify import Retry, send, summary_payload

SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes!!!!").decode()
TOLERANCE_SECONDS = 5 * 60  # the reference library refuses timestamps further off than this


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The reference algorithm (standardwebhooks ``Webhook.verify``): the secret's base64 after ``whsec_``
    is the HMAC-SHA256 key of ``{id}.{timestamp}.{body}``; the timestamp is within the tolerance; one of
    the space-separated ``v1,`` signatures matches."""
    msg_id, stamp, signatures = (headers.get(name) for name in ("webhook-id", "webhook-timestamp",
                                                                  "webhook-signature"))
    if not (msg_id and stamp and signatures) or abs(time.time() - int(stamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    for versioned in signatures.split(" "):
        version, _, value = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return True
    return False


class _Receiver(BaseHTTPRequestHandler):
    """Answers ``fail_with`` to the first ``failures`` requests, then 204; refuses a bad signature with 401."""

    requests: ClassVar[list[dict[str, Any]]] = []
    failures = 0
    fail_with = 503
    secret: str | None = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        valid = verify_standard_webhook(_Receiver.secret, headers, body) if _Receiver.secret else None
        _Receiver.requests.append({"headers": headers, "body": json.loads(body), "valid": valid,
                                   "at": time.monotonic()})
        if valid is False:
            status = 401
        elif len(_Receiver.requests) <= _Receiver.failures:
            status = _Receiver.fail_with
        else:
            status = 204
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Receiver.requests, _Receiver.failures, _Receiver.fail_with, _Receiver.secret = [], 0, 503, SECRET
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/t0ken"
    finally:
        server.shutdown()
        server.server_close()


def test_a_signed_webhook_is_retried_with_backoff_until_it_is_accepted(webhook: str) -> None:
    _Receiver.failures = 2
    result = send(webhook, summary_payload({"run_id": "r1", "environment": "staging", "verdict": "pass"}),
                  secret=SECRET)
    assert result.ok and result.status == 204 and result.attempts == 3 and result.error is None
    seen = _Receiver.requests
    assert len(seen) == 3 and all(r["valid"] for r in seen)
    assert len({r["headers"]["webhook-id"] for r in seen}) == 1  # one message, tried three times
    assert seen[0]["headers"]["webhook-id"].startswith("msg_")
    assert all(r["headers"]["webhook-signature"].startswith("v1,") for r in seen)
    assert all(r["body"]["event"] == "refresh.succeeded" for r in seen)
    waits = [b["at"] - a["at"] for a, b in itertools.pairwise(seen)]
    assert 0.45 <= waits[0] < 0.9 and 0.95 <= waits[1] < 1.6, waits  # 0.5 s, then 1 s
    assert SECRET not in json.dumps(result.to_dict())


def test_a_tampered_body_fails_the_reference_check(webhook: str) -> None:
    send(webhook, {"event": "x"}, secret=SECRET)
    sent = _Receiver.requests[0]
    body = json.dumps(sent["body"]).encode()
    assert verify_standard_webhook(SECRET, sent["headers"], body)
    assert not verify_standard_webhook(SECRET, sent["headers"], body.replace(b"x", b"y"))
    other = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
    assert not verify_standard_webhook(other, sent["headers"], body)


@pytest.mark.parametrize(("status", "attempts"), [(429, 3), (500, 3), (400, 1), (404, 1), (401, 1)])
def test_only_5xx_and_429_are_retried(webhook: str, status: int, attempts: int) -> None:
    _Receiver.failures, _Receiver.fail_with = 10, status
    result = send(webhook, {"event": "x"}, secret=SECRET, retry=Retry(attempts=3, first_delay=0.01))
    assert not result.ok and result.status == status and result.error == f"HTTP {status}"
    assert result.attempts == attempts == len(_Receiver.requests)


def test_an_unsigned_webhook_carries_no_signature_headers(webhook: str) -> None:
    _Receiver.secret = None
    result = send(webhook, {"event": "x"})
    assert result.ok and result.attempts == 1
    assert not any(name.startswith("webhook-") for name in _Receiver.requests[0]["headers"])


def test_connection_errors_are_retried_within_a_bounded_time() -> None:
    started = time.monotonic()
    result = send("http://127.0.0.1:9/nothing", {"event": "x"}, retry=Retry(attempts=4, first_delay=0.05))
    assert not result.ok and result.status is None and result.error and result.attempts == 4
    bounded = send("http://127.0.0.1:9/nothing", {"event": "x"},
                   retry=Retry(attempts=50, first_delay=0.2, deadline=1.0))
    assert not bounded.ok and 2 <= bounded.attempts < 50
    assert time.monotonic() - started < 3
    assert send("nonsense", {"event": "x"}).attempts == 1  # a malformed address is not worth a retry


def test_a_refresh_signs_its_webhook_and_shows_the_secret_nowhere(demo_project: Path, webhook: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    data = yaml.safe_load(demo_project.read_text())
    data["environments"]["staging"]["notify"] = {"url": webhook, "secret": "${WEBHOOK_SECRET}"}
    demo_project.write_text(yaml.safe_dump(data, sort_keys=False))
    _Receiver.failures = 2
    log_file = demo_project.parent / "refresh.jsonl"
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project), "--log-file",
                                       str(log_file)])
    assert result.exit_code == 0, result.output
    assert len(_Receiver.requests) == 3 and all(r["valid"] for r in _Receiver.requests)
    assert _Receiver.requests[-1]["body"]["event"] == "refresh.succeeded"
    sent = [json.loads(line) for line in log_file.read_text().splitlines()
            if json.loads(line)["event"] == "notification sent"]
    assert sent and sent[-1]["ok"] is True and sent[-1]["attempts"] == 3
    body = SECRET.removeprefix("whsec_")
    outputs = [result.output, log_file.read_text(), (demo_project.parent / ".datastage" / "history.jsonl").read_text()]
    outputs += [p.read_text() for p in (demo_project.parent / ".datastage" / "reports").rglob("*.*")]
    assert not any(SECRET in text or body in text for text in outputs)
    assert datastage.history("staging", config=demo_project)[-1]["verdict"] == "pass"
