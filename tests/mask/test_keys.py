"""The masking key's fingerprint (HKDF-SHA256) and its strength: short keys are refused by a new project
and warned about in every report of an existing one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.errors import MaskingKeyError, WeakMaskingKeyError
from datastage.mask.keys import (
    KEY_ID_INFO,
    KEY_ID_SALT,
    STRONG_KEY_BYTES,
    MaskingKey,
    checked_strength,
    load_key,
    secret_bytes,
)
from datastage.report.compose import render_text
from datastage.report.history import append_history

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
WEAK_KEY = "only-twenty-bytes!!!"  # 20 characters of text


def _reference_key_id(secret: bytes) -> str:
    """RFC 5869 written out with hmac: extract with the salt, expand one block with the info."""
    prk = hmac.new(KEY_ID_SALT, secret, hashlib.sha256).digest()
    okm = hmac.new(prk, KEY_ID_INFO + b"\x01", hashlib.sha256).digest()
    return "hkdf:" + okm[:8].hex()


def test_the_key_id_is_hkdf_sha256_with_the_documented_salt_and_info() -> None:
    secret = b"test-masking-key-0123456789abcdef"
    key = MaskingKey(secret, source="test")
    assert re.fullmatch(r"hkdf:[0-9a-f]{16}", key.key_id)
    assert key.key_id == _reference_key_id(secret)
    assert KEY_ID_SALT == b"datastage key id salt" and KEY_ID_INFO == b"datastage key id v2"
    old = "sha256:" + hashlib.sha256(b"datastage key id\x00" + secret).hexdigest()[:16]
    assert key.key_id != old and old not in repr(key)
    assert MaskingKey(b"another key of thirty-two bytes!", source="t").key_id != key.key_id


@pytest.mark.parametrize(("text", "expected"), [
    ("ab" * 32, 32),  # what `datastage key new` writes: 64 hex digits
    ("AB" * 31, 31),
    (base64.b64encode(bytes(range(32))).decode(), 32),
    (base64.urlsafe_b64encode(bytes(range(200, 248))).decode().rstrip("="), 48),
    ("test-masking-key-0123456789abcdef", 33),  # not hex, not base64 (33 characters): its bytes
    ("correct horse battery staple", 28),
    ("clé secrète, assez longue ?", len("clé secrète, assez longue ?".encode())),
])
def test_secret_bytes_counts_hex_and_base64_decoded(text: str, expected: int) -> None:
    assert secret_bytes(text) == expected
    assert MaskingKey(text.encode("utf-8"), source="t").strong is (expected >= STRONG_KEY_BYTES)


def test_checked_strength_refuses_a_weak_key_only_in_a_new_project() -> None:
    weak = MaskingKey(WEAK_KEY.encode(), source="$DATASTAGE_MASKING_KEY")
    with pytest.raises(WeakMaskingKeyError) as info:
        checked_strength(weak, new_project=True)
    assert str(info.value) == ("$DATASTAGE_MASKING_KEY: masking key holds 20 bytes of secret; a new project needs "
                               "at least 32 (64 hex digits): make one with `datastage key new --output FILE` "
                               "and name FILE under masking.key_file")
    strength = checked_strength(weak, new_project=False)
    assert strength["bytes"] == 20 and strength["strong"] is False
    assert "datastage key new" in str(strength["warning"]) and WEAK_KEY not in str(strength)


def test_a_new_project_refuses_a_short_key_with_a_one_line_error(demo_project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTAGE_MASKING_KEY", WEAK_KEY)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: $DATASTAGE_MASKING_KEY: masking key holds 20 bytes of secret; a new "
                                     "project needs at least 32 (64 hex digits): make one with "
                                     "`datastage key new --output FILE` and name FILE under masking.key_file")
    assert not (demo_project.parent / "staging.db").exists()
    plan = CliRunner().invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert plan.exit_code == 2 and "datastage key new" in plan.output
    # Neither the refused refresh nor the refused plan makes the project an existing one.
    again = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert again.exit_code == 2 and WEAK_KEY not in again.output

    monkeypatch.delenv("DATASTAGE_MASKING_KEY")
    key_file = demo_project.parent / "masking.key"
    key_file.write_text("ab" * 20 + "\n")  # 40 hex digits: 20 bytes
    os.chmod(key_file, 0o600)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {key_file}: masking key holds 20 bytes of secret; a new project needs "
                                     "at least 32 (64 hex digits): make one with `datastage key new --output FILE` "
                                     "and name FILE under masking.key_file")


def test_an_existing_project_keeps_its_short_key_and_every_report_warns(demo_project: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    state = demo_project.parent / ".datastage"
    append_history(state, {"run_id": "20250101-000000-aaaaaa", "environment": "staging", "verdict": "pass",
                           "exit_code": 0})  # a refresh an older version recorded (no "kind" yet)
    monkeypatch.setenv("DATASTAGE_MASKING_KEY", WEAK_KEY)
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass" and result.report is not None
    report = json.loads(Path(result.report.json).read_text())
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(report))
    assert not errors, [e.message[:200] for e in errors[:3]]
    strength = report["provenance"]["key_strength"]
    assert strength["bytes"] == 20 and strength["strong"] is False
    assert "fewer than 32" in strength["warning"] and "datastage key new" in strength["warning"]
    assert f"warning: {strength['warning']}" in render_text(report).splitlines()
    assert "Key strength" in Path(result.report.html).read_text()
    assert WEAK_KEY not in Path(result.report.json).read_text()
    planned = datastage.plan("staging", config=demo_project)
    assert planned.report is not None
    assert json.loads(Path(planned.report.json).read_text())["provenance"]["key_strength"]["strong"] is False


def test_a_too_short_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(MaskingKeyError) as info:
        MaskingKey(b"k3y-tiny-x", source="$DATASTAGE_MASKING_KEY")
    assert str(info.value) == ("masking key from $DATASTAGE_MASKING_KEY is too short (at least 16 characters): make "
                               "one with `datastage key new --output FILE` and name FILE under masking.key_file")
    missing = tmp_path / "keys" / "masking.key"
    with pytest.raises(MaskingKeyError) as info:
        load_key(missing, environ={})
    assert f"`datastage key new --output {missing}` creates one" in str(info.value)
    # ... and the command it names makes that file, folders included, with a key load_key takes.
    made = CliRunner().invoke(main, ["key", "new", "--output", str(missing)])
    assert made.exit_code == 0, made.output
    assert load_key(missing, environ={}).strong and missing.stat().st_mode & 0o777 == 0o600


def test_the_demo_writes_a_strong_key(demo_project: Path) -> None:
    key = load_key(demo_project.parent / "masking.key", environ={})
    assert key.strong and key.secret_bytes == 32
    assert re.fullmatch(r"[0-9a-f]{64}", (demo_project.parent / "masking.key").read_text().strip())
