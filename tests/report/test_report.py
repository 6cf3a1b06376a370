"""Reports: the JSON schema, signatures (datastage report verify), history, report show, and the HTML page
as headless Chromium renders it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_schema import validate_report

import datastage
from datastage.cli import main
from datastage.report.compose import load_report, verify_report_file
from datastage.report.html import render_html
from datastage.report.signing import read_trusted_keys

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_refresh_plan_fail_and_error_reports_match_the_schema(demo_project: Path) -> None:
    passed = datastage.refresh("staging", config=demo_project)
    planned = datastage.plan("staging", config=demo_project)
    rules = demo_project.parent / "rules" / "pii.yaml"
    text = rules.read_text()
    rules.write_text(text.replace("    phone: phone ", "    phone: {strategy: partial, keep_first: 40} "))
    failed = datastage.refresh("staging", config=demo_project)
    rules.write_text(text.replace("  product: keep", "  produkt: keep"))
    with pytest.raises(datastage.RulesError):
        datastage.refresh("staging", config=demo_project)
    entries = datastage.history("staging", config=demo_project)
    assert [e["verdict"] for e in entries] == ["pass", "planned", "fail", "error"]
    assert [e["kind"] for e in entries] == ["refresh", "plan", "refresh", "refresh"]
    reports = [json.loads(Path(e["report_json"]).read_text()) for e in entries]
    for report in reports:
        validate_report(report)
    ok, plan, fail, error = reports
    assert ok["verdict"] == "pass" and ok["summary"]["rows_loaded"] == passed.rows
    assert plan["kind"] == "plan" and plan["checks"] == [] and plan["summary"]["rows_loaded"] is None
    assert planned.report is not None and planned.report.json == Path(entries[1]["report_json"])
    assert fail["verdict"] == "fail" and fail["exit_code"] == 3 and failed.exit_code == 3
    assert error["verdict"] == "error" and "unknown table 'produkt'" in error["error"]
    assert error["provenance"]["rules_sha256"] and error["columns"] == []
    prov = ok["provenance"]
    assert prov["trigger"] == "library" and prov["actor"] and prov["host"] and prov["datastage_version"]
    assert re.fullmatch(r"hkdf:[0-9a-f]{16}", prov["key_id"]) and len(prov["rules_sha256"]) == 64
    assert prov["key_strength"] == {"bytes": 33, "strong": True, "warning": None}  # the tests' key: 33 characters
    assert ok["subset"]["spec"]["roots"] == [{"table": "customer", "where": "active = 1", "percent": 25.0,
                                              "limit": None}]
    assert ok["subset"]["spec"]["keep_from_target"] == ["app_settings"]
    orders = next(t for t in ok["subset"]["tables"] if t["table"] == "orders")
    assert orders["loaded_rows"] == orders["selected_rows"] > 0 and orders["reasons"]
    email = next(c for c in ok["columns"] if (c["table"], c["column"]) == ("customer", "email"))
    assert email["classification"] == "direct_identifier" and email["strategy"] == "email"
    assert email["params"] == {"keep_domain": False, "mail_domain": "example.com"} and email["unique"] is True
    assert email["rows_changed"] == next(t["loaded_rows"] for t in ok["subset"]["tables"] if t["table"] == "customer")


def test_passwords_in_urls_are_hidden_and_the_schema_rejects_them(demo_project: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    assert result.report is not None
    report = json.loads(result.report.json.read_text())
    report["provenance"]["target"] = "postgresql+psycopg://app:s3cret@db/staging"
    with pytest.raises(AssertionError):
        validate_report(report)
    report["provenance"]["target"] = "postgresql+psycopg://app:***@db/staging"
    validate_report(report)


def test_signature_verification_exit_codes(demo_project: Path, tmp_path: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    assert result.report is not None
    config = str(demo_project)
    for path in (result.report.json, result.report.html):
        code, output = _cli("report", "verify", str(path), "--config", config)
        assert code == 0, output
        assert output.startswith("valid:")
    tampered = tmp_path / "tampered.json"
    data = json.loads(result.report.json.read_text())
    data["checks"][0]["status"] = "PASS"
    data["summary"]["rows_loaded"] += 1
    tampered.write_text(json.dumps(data, indent=2) + "\n")
    shutil.copy(f"{result.report.json}.sig", f"{tampered}.sig")  # the original signature beside the change
    code, output = _cli("report", "verify", str(tampered), "--config", config)
    assert code == 3 and "was changed after it was signed" in output
    page = tmp_path / "page.html"
    page.write_text(result.report.html.read_text().replace(">PASS</div>", ">PASS (all good)</div>"))
    shutil.copy(f"{result.report.html}.sig", f"{page}.sig")
    code, output = _cli("report", "verify", str(page), "--config", config, "--json")
    assert code == 3
    assert json.loads(output[: output.rindex("}") + 1])["message"] == \
        "signature does not match: the file was changed after it was signed"
    code, output = _cli("report", "verify", str(tmp_path / "missing.json"), "--config", config)
    assert code == 2 and "report file not found" in output
    (tmp_path / "junk.json").write_text("{not json")
    code, output = _cli("report", "verify", str(tmp_path / "junk.json"), "--config", config)
    assert code == 2 and "not a datastage report" in output
    other = datastage.new_key(tmp_path / "other.key", signing=True)
    outcome = verify_report_file(result.report.json, read_trusted_keys(other.public_path))
    assert not outcome.valid and outcome.message == (f"signed by key {result.report.signed_by}, but the key "
                                                     f"given is {other.fingerprint}")


def test_history_and_report_show(demo_project: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    datastage.plan("staging", config=demo_project)
    code, output = _cli("history", "staging", "--kind", "all", "--config", str(demo_project), "--json")
    assert code == 0
    entries = json.loads(output)
    assert [e["kind"] for e in entries] == ["refresh", "plan"]
    assert entries[0]["rows"] == result.rows and entries[0]["seconds"] > 0
    assert Path(entries[0]["report_json"]).is_file()
    code, output = _cli("history", "--config", str(demo_project))
    assert code == 0
    line = next(line for line in output.splitlines() if line.startswith(result.run_id))
    assert "staging" in line and " refresh " in line and " pass " in line and f"{result.rows:,}" in line
    assert str(result.report.json if result.report else "") in line
    others = [e["run_id"] for e in entries if e["run_id"] != result.run_id]  # the plan may share the second
    prefix = next(result.run_id[:n] for n in range(17, len(result.run_id) + 1)
                  if not any(other.startswith(result.run_id[:n]) for other in others))
    code, output = _cli("report", "show", prefix, "--config", str(demo_project))
    assert code == 0, output
    assert f"refresh of staging  run {result.run_id}" in output
    assert "verdict: PASS" in output
    assert "PASS leak_identifiers: none of" in output
    assert "customer.email: direct_identifier -> email(" in output
    assert "legal status: pseudonymised" in output
    code, output = _cli("report", "show", "19990101", "--config", str(demo_project))
    assert code == 2 and "no refresh with run id" in output


def test_html_is_self_contained_and_embeds_the_signed_report(demo_project: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    assert result.report is not None
    page = result.report.html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert load_report(result.report.html) == json.loads(result.report.json.read_text())
    assert render_html(load_report(result.report.html)) == page


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        reason = "chromium is not installed (apt-get install -y chromium); the HTML report is not rendered"
        if IN_CI:
            pytest.fail(reason + " (CI=true: .ci/run installs it)")
        pytest.skip(reason)
    return binary


def _render(binary: str, page: Path, tmp_path: Path, *extra: str) -> str:
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", *extra, page.as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _rows(dom: str, table_id: str) -> list[str]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.DOTALL)
    assert table, f"no table {table_id} in the rendered page"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.DOTALL)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_html_report_in_headless_chromium(demo_project: Path, tmp_path: Path) -> None:
    binary = _chromium()
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(rules.read_text().replace("    phone: phone ", "    phone: {strategy: partial, keep_first: 40} "))
    result = datastage.refresh("staging", config=demo_project)
    assert result.report is not None and result.verdict == "fail"
    dom = _render(binary, result.report.html, tmp_path, "--dump-dom")
    assert re.search(r'id="verdict">FAIL</div>', dom)
    banner = dom.index('id="verdict"')
    assert banner < dom.index('id="provenance"') < dom.index('id="checks"') < dom.index('id="columns"') \
        < dom.index('id="subset"') < dom.index('id="legal"')
    assert "shadow copy discarded; the target was left untouched" in dom
    checks = _rows(dom, "checks")
    leak = [r for r in checks if r.startswith("leak_identifiers")]
    assert leak and " FAIL " in f" {leak[0]} " and "customer.phone" in leak[0]
    assert any(r.startswith("foreign_keys") and "PASS" in r for r in checks)
    columns = _rows(dom, "columns")
    body = [r for r in columns if r.startswith("support_ticket body")]
    assert body and "direct identifier" in body[0] and "regex" in body[0] and "protected" in body[0]
    screenshot = tmp_path / "report.png"
    _render(binary, result.report.html, tmp_path, "--window-size=1280,1600", f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 20_000


def test_plan_cli_writes_a_report_and_shows_classifications(demo_project: Path) -> None:
    code, output = _cli("plan", "staging", "--config", str(demo_project), "--json")
    assert code == 0, output
    data = json.loads(output)
    assert Path(data["report_json"]).is_file() and Path(data["report_html"]).is_file()
    email = next(c for c in data["columns"] if (c["table"], c["column"]) == ("customer", "email"))
    assert email["classification"] == "direct_identifier"
    report = load_report(Path(data["report_html"]))
    assert report["kind"] == "plan" and report["verdict"] == "planned" and report["provenance"]["trigger"] == "cli"
    assert datastage.verify_report(data["report_json"], config=demo_project).valid
    code, output = _cli("plan", "staging", "--config", str(demo_project))
    assert code == 0 and "plan report:" in output
