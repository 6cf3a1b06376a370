"""Report signatures: Ed25519 SSHSIG files that the real ``ssh-keygen -Y verify`` accepts, strict checks
of the signed bytes, a signing key of its own (never the masking key), unsigned and older reports,
and ``datastage key new``."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

import datastage
from datastage.cli import main
from datastage.pipeline import RefreshResult
from datastage.report.compose import verify_report_file
from datastage.report.signing import load_signing_key, read_trusted_keys

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The documented check, with OpenSSH alone (no datastage installed).
SSH_VERIFY = "ssh-keygen -Y verify -f allowed_signers -I datastage -n datastage-report -s {name}.sig < {name}"


def _ssh_keygen() -> str:
    binary = shutil.which("ssh-keygen")
    if binary is None:
        reason = "ssh-keygen is not installed (apt-get install -y openssh-client)"
        if IN_CI:
            pytest.fail(reason + " (CI=true: .ci/run installs it)")
        pytest.skip(reason)
    return binary


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _refresh(demo_project: Path) -> RefreshResult:
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass" and result.report is not None
    return result


def _auditor_folder(tmp_path: Path, public_key: Path, *files: Path) -> Path:
    """What an auditor is given: the files, their signatures and an allowed_signers line made from the
    public key alone."""
    folder = tmp_path / "audit"
    folder.mkdir()
    line = public_key.read_text().split()
    (folder / "allowed_signers").write_text(f'datastage namespaces="datastage-report" {line[0]} {line[1]}\n')
    for path in files:
        shutil.copy(path, folder / path.name)
        shutil.copy(f"{path}.sig", folder / f"{path.name}.sig")
    return folder


def _ssh_verify(folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    return subprocess.run(SSH_VERIFY.format(name=name), shell=True, cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_ssh_keygen_verifies_both_files_and_rejects_one_changed_byte(demo_project: Path, tmp_path: Path) -> None:
    ssh_keygen = _ssh_keygen()
    result = _refresh(demo_project)
    public = demo_project.parent / "signing.key.pub"
    report = json.loads(result.report.json.read_text())
    listed = subprocess.run([ssh_keygen, "-lf", str(public)], capture_output=True, text=True, check=True).stdout
    fingerprint = listed.split()[1]
    assert report["signature"]["fingerprint"] == fingerprint == result.report.signed_by
    assert report["signature"]["public_key"] == " ".join(public.read_text().split()[:2])
    page = result.report.html.read_text()
    assert fingerprint in page
    assert SSH_VERIFY.format(name=result.report.html.name).replace("<", "&lt;") in page
    folder = _auditor_folder(tmp_path, public, result.report.json, result.report.html)
    for path in (result.report.json, result.report.html):
        done = _ssh_verify(folder, path.name)
        assert done.returncode == 0, done.stderr
        assert f'Good "datastage-report" signature for datastage with ED25519 key {fingerprint}' in done.stdout
        data = bytearray((folder / path.name).read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit of one byte
        (folder / path.name).write_bytes(bytes(data))
        done = _ssh_verify(folder, path.name)
        assert done.returncode != 0 and "Good" not in done.stdout, done.stdout
    # The state folder's allowed_signers line is the one an auditor makes from the public key.
    state = demo_project.parent / ".datastage"
    assert (state / "allowed_signers").read_text() == (folder / "allowed_signers").read_text()
    # ssh-keygen -Y sign with the same key writes the same signature (Ed25519 is deterministic).
    copy = tmp_path / result.report.json.name
    shutil.copy(result.report.json, copy)
    subprocess.run([ssh_keygen, "-Y", "sign", "-f", str(demo_project.parent / "signing.key"), "-n",
                    "datastage-report", str(copy)], capture_output=True, check=True, timeout=60)
    assert Path(f"{copy}.sig").read_bytes() == Path(f"{result.report.json}.sig").read_bytes()


def _resign(path: Path, data: bytes, key_file: Path) -> None:
    path.write_bytes(data)
    Path(f"{path}.sig").write_text(load_signing_key(key_file).sign(data))


def test_verify_is_strict_even_about_bytes_the_trusted_key_signed(demo_project: Path, tmp_path: Path) -> None:
    result = _refresh(demo_project)
    key_file = demo_project.parent / "signing.key"
    pub = str(demo_project.parent / "signing.key.pub")
    original = result.report.json.read_bytes()
    duplicate = tmp_path / "duplicate.json"
    duplicate.write_bytes(b'{"verdict": "pass", ' + original[1:])
    shutil.copy(f"{result.report.json}.sig", f"{duplicate}.sig")
    code, output = _cli("report", "verify", str(duplicate), "--public-key", pub)
    assert code == 3
    assert output.strip() == f"invalid: {duplicate}: not a report datastage wrote: duplicate key 'verdict'"
    cases = {
        "duplicate key 'verdict'": b'{"verdict": "pass", ' + original[1:],
        "NaN is not a JSON number": original.replace(b'"exit_code": 0', b'"exit_code": NaN', 1),
        "Infinity is not a JSON number": original.replace(b'"exit_code": 0', b'"exit_code": Infinity', 1),
        "data after the JSON value": original + b'{"verdict": "fail"}\n',
        "the file is not UTF-8 text": original.replace(b'"staging"', b'"st\xffaging"', 1),
    }
    for message, data in cases.items():
        assert data != original, message
        path = tmp_path / "signed-by-the-key.json"
        _resign(path, data, key_file)  # a valid signature: still not a pass
        code, output = _cli("report", "verify", str(path), "--public-key", pub)
        assert code == 3 and message in output, (message, output)
    # An edited HTML page saved under another name and extension fails; the untouched one passes anywhere.
    for name, edit in (("page.txt", True), ("page.json", True), ("copy.htm.bak", False)):
        page = tmp_path / name
        text = result.report.html.read_text()
        page.write_text(text.replace(">PASS</div>", ">PASS (all good)</div>") if edit else text)
        shutil.copy(f"{result.report.html}.sig", f"{page}.sig")
        code, output = _cli("report", "verify", str(page), "--public-key", pub)
        assert (code, output.startswith("valid:")) == ((3, False) if edit else (0, True)), (name, output)
    # A report and signature swapped for another valid pair of the same key: the JSON must name that key.
    other = datastage.new_key(tmp_path / "other.key", signing=True)
    forged = json.loads(original)
    forged["signature"]["fingerprint"] = other.fingerprint
    path = tmp_path / "forged.json"
    _resign(path, json.dumps(forged).encode(), key_file)
    outcome = verify_report_file(path, read_trusted_keys(Path(pub)))
    assert not outcome.valid and outcome.message == (f"the report names signing key {other.fingerprint}, but it "
                                                     f"is signed by {result.report.signed_by}")


def test_another_key_fails_naming_both_fingerprints(demo_project: Path, tmp_path: Path) -> None:
    result = _refresh(demo_project)
    other = datastage.new_key(tmp_path / "other.key", signing=True)
    assert other.public_path is not None
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'# auditors\nauditor namespaces="git" {other.public_path.read_text().strip()}\n'
                       f'datastage namespaces="datastage-report" {other.public_path.read_text().strip()}\n')
    for option, value in (("--public-key", other.public_path), ("--allowed-signers", allowed)):
        code, output = _cli("report", "verify", str(result.report.html), option, str(value))
        assert code == 3
        assert output.strip() == (f"invalid: {result.report.html}: signed by key {result.report.signed_by}, but "
                                  f"the key given is {other.fingerprint}")
    only_git = tmp_path / "git_signers"
    only_git.write_text(f'auditor namespaces="git" {other.public_path.read_text().strip()}\n')
    code, output = _cli("report", "verify", str(result.report.json), "--allowed-signers", str(only_git))
    assert code == 2 and "no public key for namespace datastage-report" in output


def test_verify_needs_no_masking_key_and_names_a_missing_public_key(demo_project: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    result = _refresh(demo_project)
    monkeypatch.delenv("DATASTAGE_MASKING_KEY")
    (demo_project.parent / "masking.key").unlink()
    (demo_project.parent / "signing.key").unlink()  # the private key is not needed either
    code, output = _cli("report", "verify", str(result.report.json), "--config", str(demo_project))
    assert code == 0 and output.startswith("valid:"), output
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(result.report.json, copy)
    shutil.copy(f"{result.report.json}.sig", copy)
    monkeypatch.chdir(copy)  # no datastage.yaml here, so no project public key
    code, output = _cli("report", "verify", result.report.json.name)
    assert code == 2 and "no public key to verify with: give --public-key" in output
    code, output = _cli("report", "verify", result.report.json.name, "--public-key",
                        str(demo_project.parent / "signing.key.pub"))
    assert code == 0, output


def test_without_a_signing_key_reports_are_unsigned_and_say_so(demo_project: Path, tmp_path: Path) -> None:
    config = demo_project.read_text()
    demo_project.write_text(re.sub(r"signing:\n  key_file: signing.key[^\n]*\n", "", config))
    assert "signing" not in demo_project.read_text()
    code, output = _cli("refresh", "staging", "--config", str(demo_project))
    assert code == 0, output
    assert "unsigned: no signing key configured (signing.key_file in datastage.yaml)" in output
    entry = datastage.history("staging", config=demo_project)[-1]
    json_path, html_path = Path(entry["report_json"]), Path(entry["report_html"])
    assert json.loads(json_path.read_text())["signature"] is None
    assert not Path(f"{json_path}.sig").exists() and not Path(f"{html_path}.sig").exists()
    assert "Not signed: no signing key was configured" in html_path.read_text()
    pub = str(demo_project.parent / "signing.key.pub")
    code, output = _cli("report", "verify", str(json_path), "--public-key", pub)
    assert code == 3 and output.strip() == (f"invalid: {json_path}: the report is not signed (no signing key was "
                                            "configured when it was written)")
    # A report an older datastage signed with HMAC under the masking key: named as such, never a pass.
    old = json.loads(json_path.read_text())
    old["signature"] = {"algorithm": "HMAC-SHA256", "key_id": "sha256:0123456789abcdef", "value": "0" * 64}
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(old, indent=2))
    code, output = _cli("report", "verify", str(legacy), "--public-key", pub)
    assert code == 3 and "signed with HMAC-SHA256 under the masking key by an older datastage" in output


def test_the_signing_key_file_must_be_private_and_never_shows(demo_project: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = demo_project.parent / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for mode in (0o644, 0o640):
        os.chmod(key_file, mode)
        for command in (["refresh", "staging"], ["plan", "staging"]):
            code, output = _cli(*command, "--config", str(demo_project))
            assert code == 2, output
            assert output.strip() == (f"error: {key_file}: signing key file permissions {mode:04o} are too open: "
                                      f"it must be readable by its owner only; run chmod 600 {key_file}")
    os.chmod(key_file, 0o600)
    # $DATASTAGE_SIGNING_KEY_FILE names another key: it signs, and the state folder's public key follows it.
    other = datastage.new_key(tmp_path / "ci-signing.key", signing=True)
    monkeypatch.setenv("DATASTAGE_SIGNING_KEY_FILE", str(other.path))
    log = tmp_path / "refresh.jsonl"
    code, output = _cli("refresh", "staging", "--config", str(demo_project), "--log-file", str(log))
    assert code == 0 and f"signed by {other.fingerprint}" in output, output
    state = demo_project.parent / ".datastage"
    assert (state / "signing.pub").read_text().split()[:2] == other.public_path.read_text().split()[:2]
    pem = other.path.read_text()
    private = load_ssh_private_key(pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    seed = private.private_bytes_raw()
    forms = [seed.hex(), base64.b64encode(seed).decode(), *[line for line in pem.splitlines()[2:-2]]]
    for path in [*state.rglob("*"), log]:
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(form in text for form in forms), path
    assert not any(form in output for form in forms)
    assert "SigningKey(fingerprint=" in repr(load_signing_key(other.path))


def test_key_new_writes_private_keys_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_keygen = _ssh_keygen()
    monkeypatch.chdir(tmp_path)
    code, output = _cli("key", "new")
    assert code == 0 and output.startswith("masking key written to masking.key (mode 600): hkdf:"), output
    masking = tmp_path / "masking.key"
    assert stat.S_IMODE(masking.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", masking.read_text())
    before = masking.read_bytes()
    code, output = _cli("key", "new")
    assert code == 2 and output.strip() == "error: masking.key: file exists; datastage never overwrites a key " \
                                           "(move it away first)"
    assert masking.read_bytes() == before
    code, output = _cli("key", "new", "--format", "base64", "--output", "b64.key", "--json")
    assert code == 0, output
    assert len(base64.b64decode((tmp_path / "b64.key").read_text())) == 32
    assert json.loads(output)["kind"] == "masking"
    code, output = _cli("key", "new", "--signing")
    assert code == 0, output
    private, public = tmp_path / "signing.key", tmp_path / "signing.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    derived = subprocess.run([ssh_keygen, "-y", "-f", str(private)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.read_text().split()[:2]
    listed = subprocess.run([ssh_keygen, "-lf", str(public)], capture_output=True, text=True, check=True).stdout
    assert f"(mode 600): {listed.split()[1]}" in output
    code, output = _cli("key", "new", "--signing")
    assert code == 2 and "file exists" in output
    # A key made by ssh-keygen itself signs reports as well.
    made = tmp_path / "made_by_ssh"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(made)], check=True, timeout=60)
    assert load_signing_key(made).fingerprint == subprocess.run(
        [ssh_keygen, "-lf", f"{made}.pub"], capture_output=True, text=True, check=True).stdout.split()[1]
    rsa = tmp_path / "rsa"
    subprocess.run([ssh_keygen, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True, timeout=60)
    with pytest.raises(datastage.ConfigError, match="must be an Ed25519 key"):
        load_signing_key(rsa)
