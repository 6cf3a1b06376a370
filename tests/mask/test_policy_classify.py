"""``classify:``: the rules state a column's classification (with a reason) in place of the scan's. The
coverage gate, the legal status and the report's column table (JSON and HTML) honour it; a bad value, a
missing reason or an unknown column is one error line naming file, line and key."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from maskkit import sqlite_project
from report_schema import validate_report

import datastage
from datastage.cli import main
from datastage.errors import RulesError
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.report.compose import legal_status
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import reflect

FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "William", "Barbara"]
REASON = "horses' names, not people's"
RULES = f"""\
version: 1
tables:
  horse:
    id: keep
    first_name: {{strategy: keep, classify: non_personal, reason: "{REASON}"}}
    owner_email: {{strategy: email, classify: direct_identifier, reason: the owner's address}}
    stable: {{strategy: keep, classify: direct_identifier, reason: "named after its owner, kept for the demo"}}
"""


def _source(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.executescript("CREATE TABLE horse (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL,"
                             " owner_email TEXT, stable TEXT);")
    connection.executemany("INSERT INTO horse (first_name, owner_email, stable) VALUES (?, ?, ?)",
                           [(name, f"owner{i}@example.org", ("North", "South")[i % 2])
                            for i, name in enumerate(FIRST_NAMES * 3)])
    connection.commit()
    connection.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _source(tmp_path / "prod.db")
    return sqlite_project(tmp_path, RULES)


def _scanned(project: Path):  # type: ignore[no-untyped-def]
    from datastage.discover.scan import scan_source

    engine = make_engine(f"sqlite:///{project.parent / 'prod.db'}", read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
            return model, scan_source(conn, model)
    finally:
        engine.dispose()


def test_the_gate_honours_a_column_classified_non_personal(project: Path) -> None:
    model, scanned = _scanned(project)
    assert scanned.finding("horse", "first_name").classification == "direct_identifier"  # what the scan says
    personal = scanned.personal()
    plain = RULES.replace(f'{{strategy: keep, classify: non_personal, reason: "{REASON}"}}', "keep")
    with pytest.raises(RulesError, match=r"horse.first_name \(direct_identifier.*kept without a reason.*classify: "
                                         r"non_personal"):
        resolve_policy(policy_from_text(plain), model, personal=personal)
    resolved = resolve_policy(policy_from_text(RULES), model, personal=personal)
    first = resolved.decision("horse", "first_name")
    assert (first.status, first.classification, first.classified_reason, first.reason) == (
        "kept-with-reason", "non_personal", REASON, REASON)
    email = resolved.decision("horse", "owner_email")
    assert (email.status, email.classification, email.classified_reason) == (
        "protected", "direct_identifier", "the owner's address")
    assert resolved.decision("horse", "id").classification is None


def test_refresh_report_and_legal_status_use_the_rules_classification(project: Path) -> None:
    refreshed = datastage.refresh("staging", config=project)
    assert refreshed.verdict == "pass", [(c.name, c.summary) for c in refreshed.checks if c.status != "PASS"]
    assert refreshed.report is not None
    report = json.loads(refreshed.report.json.read_text())
    validate_report(report)
    columns = {c["column"]: c for c in report["columns"]}
    first = columns["first_name"]
    assert (first["classification"], first["classification_source"], first["classified_reason"],
            first["scan_classification"]) == ("non_personal", "rules", REASON, "direct_identifier")
    assert columns["id"]["classification_source"] == "scan" and columns["id"]["classified_reason"] is None
    stable = columns["stable"]
    assert (stable["classification"], stable["scan_classification"]) == ("direct_identifier", "non_personal")
    legal = report["legal_status"]
    kept = [u for u in legal["unmet"] if u.startswith("direct identifiers kept")]
    assert kept == ["direct identifiers kept: horse.stable"]  # first_name is no longer one; stable now is
    assert legal["overrides"] == [
        f"horse.first_name: non_personal (scan: direct_identifier; {REASON})",
        "horse.owner_email: direct_identifier (scan: direct_identifier; the owner's address)",
        "horse.stable: direct_identifier (scan: non_personal; named after its owner, kept for the demo)",
    ]
    assert report["summary"]["personal_columns"] == 2  # owner_email and stable, by the rules
    page = refreshed.report.html.read_text()
    assert "by the rules (scan: direct identifier; horses&#x27; names, not people&#x27;s)" in page
    assert "Classifications stated by the rules in place of the scan" in page
    shown = CliRunner().invoke(main, ["report", "show", report["run_id"], "--config", str(project)])
    assert shown.exit_code == 0, shown.output
    assert "horse.first_name: non_personal (by the rules) -> keep" in shown.output


def test_the_legal_status_reads_the_classification_of_each_column() -> None:
    column = {"table": "t", "column": "c", "status": "kept-with-reason", "classification": "direct_identifier",
              "classification_source": "scan", "classified_reason": None, "scan_classification": "direct_identifier"}
    report = {"kind": "refresh", "verdict": "pass", "columns": [column], "checks": [], "check_settings": {}}
    assert "direct identifiers kept: t.c" in legal_status(report)["unmet"]
    column.update(classification="non_personal", classification_source="rules", classified_reason="a lookup")
    status = legal_status(report)
    assert not [u for u in status["unmet"] if u.startswith("direct identifiers kept")]
    assert status["overrides"] == ["t.c: non_personal (scan: direct_identifier; a lookup)"]


HOSTILE = [
    ("bogus", "{strategy: keep, classify: bogus, reason: x}", "tables.horse.stable.classify",
     "classify must be one of direct_identifier, quasi_identifier, sensitive, non_personal, got 'bogus'"),
    ("misspelt", "{strategy: keep, classify: non_persnal, reason: x}", "tables.horse.stable.classify",
     "classify must be one of direct_identifier, quasi_identifier, sensitive, non_personal, got 'non_persnal' "
     "(did you mean 'non_personal'?)"),
    ("unknown", "{strategy: keep, classify: unknown, reason: x}", "tables.horse.stable.classify",
     "classify: 'unknown' is what the scan says when it cannot tell; state one of direct_identifier, "
     "quasi_identifier, sensitive, non_personal"),
    ("list", "{strategy: keep, classify: [non_personal], reason: x}", "tables.horse.stable.classify",
     "classify must be one of direct_identifier, quasi_identifier, sensitive, non_personal, got a list"),
    ("no-reason", "{strategy: keep, classify: non_personal}", "tables.horse.stable",
     "classify: non_personal needs a reason: say why horse.stable is non_personal, e.g. {strategy: keep, "
     "classify: non_personal, reason: \"...\"}"),
    ("blank-reason", "{strategy: hash, classify: sensitive, reason: '  '}", "tables.horse.stable",
     "classify: sensitive needs a reason: say why horse.stable is sensitive, e.g. {strategy: keep, "
     "classify: sensitive, reason: \"...\"}"),
]


@pytest.mark.parametrize(("name", "rule", "key", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_bad_classification_is_one_error_line(project: Path, name: str, rule: str, key: str,
                                                message: str) -> None:
    rules = project.parent / "rules.yaml"
    rules.write_text("version: 1\ndefault: keep\ntables:\n  horse:\n    first_name: person.first_name\n"
                     f"    stable: {rule}\n    owner_email: email\n")
    result = CliRunner().invoke(main, ["rules", "check", "--config", str(project), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {rules}:6: {key}: {message}"], result.output
    refused = CliRunner().invoke(main, ["refresh", "staging", "--config", str(project)])
    assert refused.exit_code == 2
    assert refused.output.strip() == f"error: {rules}:6: {key}: {message}"


def test_classify_on_an_unknown_column_names_it(project: Path) -> None:
    rules = project.parent / "rules.yaml"
    rules.write_text(RULES + "    stabel: {strategy: keep, classify: non_personal, reason: typo}\n")
    result = CliRunner().invoke(main, ["rules", "check", "--config", str(project), "--rules", str(rules)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {rules}:8: tables.horse.stabel: table horse has no column 'stabel' "
                      "(did you mean 'stable'?)"]


def test_rules_check_shows_the_classification(project: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "check", "--config", str(project), "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    columns = {c["column"]: c for c in json.loads(result.output)["columns"]}
    assert (columns["first_name"]["classification"], columns["first_name"]["classified_reason"]) == (
        "non_personal", REASON)
    assert columns["id"]["classification"] is None
