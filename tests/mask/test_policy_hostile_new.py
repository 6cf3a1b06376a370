"""Hostile input to the newest rules-file features (``scrub`` parameters, ``classify:``, REVIEW markers):
``rules check`` exits 2 with one ``FILE:LINE: key.path: message`` line per problem, no traceback, nothing
written, and a rule it rejects is not also reported as a column without a rule."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from maskkit import sqlite_project

import datastage
from datastage.cli import main

HEAD = """\
version: 1
tables:
  audit_log: keep
  customer:
    id: keep
    first_name: person.first_name
    email: email
    age: {strategy: keep, classify: non_personal, reason: "age band of the demo customers"}
    code: keep
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    connection = sqlite3.connect(tmp_path / "prod.db")
    connection.executescript(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, first_name TEXT, email TEXT, age INTEGER, notes TEXT,"
        " code TEXT UNIQUE);"
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, msg TEXT);")
    connection.executemany("INSERT INTO customer (first_name, email, age, notes, code) VALUES (?, ?, ?, ?, ?)",
                           [("Ann", f"ann{i}@example.org", 30 + i, f"Ann called from ann{i}@example.org", f"c{i}")
                            for i in range(20)])
    connection.commit()
    connection.close()
    return sqlite_project(tmp_path)


def _check(project: Path, rules_text: str) -> list[str]:
    """The error lines of ``rules check`` (exit 2, no exception, nothing but the rules file written)."""
    rules = project.parent / "rules.yaml"
    rules.write_text(rules_text)
    before = sorted(p.name for p in project.parent.iterdir())
    result = CliRunner().invoke(main, ["rules", "check", "--rules", str(rules), "--env", "staging",
                                       "--config", str(project)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert sorted(p.name for p in project.parent.iterdir()) == before
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    for line in lines:
        assert re.match(rf"error: {re.escape(str(rules))}:\d+: (tables\.[\w.]+: )?\S", line), line
    api = datastage.check_rules(rules, environment="staging", config=project)
    assert [str(e) for e in api.errors] == [line.removeprefix("error: ") for line in lines]
    return lines


def _only(project: Path, rules_text: str, line: int, key: str, message: str) -> None:
    lines = _check(project, rules_text)
    assert len(lines) == 1, lines
    assert re.match(rf"error: .*rules\.yaml:{line}: {re.escape(key)}: ", lines[0]), lines[0]
    assert re.search(message, lines[0]), lines[0]


NOTES = 10  # the line of the rule under test, right after HEAD


@pytest.mark.parametrize(("rule", "key", "message"), [
    ("{strategy: scrub, kinds: [bogus]}", "tables.customer.notes", r"kinds: unknown kind 'bogus' \(kinds: email"),
    ("{strategy: scrub, kinds: email}", "tables.customer.notes.kinds", r"expected a list, got str 'email'$"),
    ("{strategy: scrub, kinds: []}", "tables.customer.notes", r"kinds: give a list of kinds"),
    ("{strategy: scrub, kinds: {email: 1}}", "tables.customer.notes.kinds", r"expected a list, got a mapping$"),
    ("{strategy: scrub, names_from: nope}", "tables.customer.notes", r"names_from: table customer has no column"),
    ("{strategy: scrub, names_from: age}", "tables.customer.notes",
     r"names_from: customer.age is integer \(INTEGER\), not text"),
    ("{strategy: scrub, names_from: [1, 2]}", "tables.customer.notes", r"names_from: give a column name"),
    ("{strategy: scrub, names_from: notes}", "tables.customer.notes",
     r"names_from: 'notes' is the column being scrubbed"),
    ("{strategy: scrub, emails_from: [email, notes]}", "tables.customer.notes",
     r"emails_from: 'notes' is the column being scrubbed"),
    ("{strategy: scrub, emails_from: {a: b}}", "tables.customer.notes.emails_from",
     r"expected a string or a list, got a mapping$"),
    ("{strategy: scrub, with: {bogus: email}}", "tables.customer.notes", r"with: unknown kind 'bogus'"),
    ("{strategy: scrub, with: {email: nosuch}}", "tables.customer.notes", r"email: unknown strategy 'nosuch'"),
    ("{strategy: scrub, with: {email: scrub}}", "tables.customer.notes",
     r"email: strategy scrub reads other columns of the row"),
    ("{strategy: scrub, with: {id: null}}", "tables.customer.notes", r"id: expected a strategy name"),
    ("{strategy: scrub, with: [email]}", "tables.customer.notes.with", r"expected a mapping, got a list$"),
    ("{strategy: scrub, locale: xx_YY}", "tables.customer.notes", r"unknown Faker locale 'xx_YY'"),
    ("{strategy: keep, classify: [a, b], reason: x}", "tables.customer.notes.classify", r"got a list$"),
    ("{strategy: keep, classify: {a: b}, reason: x}", "tables.customer.notes.classify", r"got a mapping$"),
    ("{strategy: keep, classify: 5, reason: x}", "tables.customer.notes.classify", r"got int 5$"),
    ("{strategy: keep, classify: true, reason: x}", "tables.customer.notes.classify", r"got bool True$"),
    ("{strategy: keep, classify: non_personal, reason: '   '}", "tables.customer.notes", r"needs a reason"),
    ("{strategy: keep, classify: non_personal, reason: 5}", "tables.customer.notes.reason",
     r"reason must be text .*got int 5$"),
    ("{strategy: keep, classify: non_personal, reason: [a]}", "tables.customer.notes.reason",
     r"reason must be text .*got a list$"),
    ('{strategy: keep, classify: non_personal, reason: "plain\\x1b[31m red\\x07"}',
     "tables.customer.notes.reason", r"reason holds control characters"),
    ("{strategy: keep, classify: non_personal, reason: '" + "why " * 400 + "'}", "tables.customer.notes.reason",
     r"reason is 1599 characters long; say why in at most 1000$"),
    ("{strategy: keep, reason: 'REVIEW: is it?', classify: non_personal}", "tables.customer.notes",
     r"REVIEW: is it\? - a person has to decide"),
    ("{strategy: REVIEW, kinds: [email]}", "tables.customer.notes", r"REVIEW - a person has to decide"),
    ("{strategy: scrub, reason: 'REVIEW: check'}", "tables.customer.notes", r"REVIEW: check - a person"),
])
def test_a_bad_rule_is_one_error_line(project: Path, rule: str, key: str, message: str) -> None:
    _only(project, HEAD + f"    notes: {rule}\n", NOTES, key, message)


def test_scrub_on_an_integer_or_a_key_column_is_refused(project: Path) -> None:
    integer = HEAD.replace('age: {strategy: keep, classify: non_personal, reason: "age band of the demo customers"}',
                           "age: scrub") + "    notes: keep\n"
    _only(project, integer, 8, "tables.customer.age", r"strategy scrub does not apply to customer.age of type INTEGER")
    key = HEAD.replace("code: keep", "code: {strategy: scrub, unique: true}") + "    notes: keep\n"
    _only(project, key, 9, "tables.customer.code", r"customer.code is part of a unique key, but strategy scrub")


def test_rule_keys_at_table_level_say_where_they_belong(project: Path) -> None:
    rules = HEAD.replace("  audit_log: keep\n", "  audit_log: {classify: non_personal, reason: logs}\n") + \
        "    notes: keep\n"
    lines = _check(project, rules)
    assert len(lines) == 3, lines
    assert "tables.audit_log.classify: " in lines[0] and "'classify' is a key of a column rule, not of a table" \
        in lines[0]
    assert "tables.audit_log.reason: " in lines[1] and "'reason' is a key of a column rule" in lines[1]
    assert "have no rule (default: fail): audit_log.msg;" in lines[2]  # true: no rule names audit_log.msg


@pytest.mark.parametrize("action", ["REVIEW", "'REVIEW: truncate?'"])
def test_review_on_a_table_says_it_goes_on_a_column_rule(project: Path, action: str) -> None:
    rules = HEAD.replace("  audit_log: keep\n", f"  audit_log: {action}\n") + "    notes: keep\n"
    _only(project, rules, 3, "tables.audit_log", r"a REVIEW marker goes on a column rule; a table takes 'truncate'")


@pytest.mark.parametrize("reason", ["review", "PREVIEW of the REVIEWED notes", "classify: null is no classify"])
def test_no_marker_words_and_null_classify_are_accepted(project: Path, reason: str) -> None:
    rules = project.parent / "rules.yaml"
    rules.write_text(HEAD + f"    notes: {{strategy: keep, classify: null, reason: '{reason}'}}\n")
    result = CliRunner().invoke(main, ["rules", "check", "--rules", str(rules), "--env", "staging",
                                       "--config", str(project)])
    assert result.exit_code == 0, result.output
    checked = datastage.check_rules(rules, environment="staging", config=project)
    assert checked.errors == []


def test_a_reason_over_several_lines_becomes_one_line(project: Path) -> None:
    from datastage.mask.policy import policy_from_text

    policy = policy_from_text(HEAD + "    notes:\n      strategy: keep\n      reason: |\n        free text,\n"
                                     "          reviewed   by legal\n")
    assert policy.tables["customer"].columns["notes"].reason == "free text, reviewed by legal"
