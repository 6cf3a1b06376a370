"""REVIEW markers: a rule still marked REVIEW is a decision nobody has made yet. `rules check` (with or
without --strict) exits 2 listing each one with file:line:key; `plan` and `refresh` refuse the file before
anything is opened; a REVIEW in a YAML comment is only a comment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from maskkit import sqlite_project

import datastage
from datastage.cli import main
from datastage.errors import RulesError
from datastage.mask.policy import load_policy, policy_from_text
from datastage.mask.resolve import resolve_policy

RULES = """\
version: 1
# REVIEW: this comment is only a comment
tables:
  horse:
    id: keep
    name: {strategy: keep, reason: "not people's names"}   # REVIEW in a comment counts for nothing
    owner_email: email
    stable: {strategy: keep, reason: "REVIEW: a stable's name or its owner's? mask it or say why it is kept"}
    breed: {strategy: keep, reason: "REVIEWED by the data owner, a lookup of 12 breeds"}
    notes: REVIEW
"""
LINES = {"stable": 8, "notes": 10}


def _source(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE horse (id INTEGER PRIMARY KEY, name TEXT, owner_email TEXT, stable TEXT, breed TEXT,"
        " notes TEXT);")
    connection.executemany("INSERT INTO horse (name, owner_email, stable, breed, notes) VALUES (?, ?, ?, ?, ?)",
                           [(f"Star {i}", f"owner{i}@example.org", "North", "Arabian", "fed at six")
                            for i in range(20)])
    connection.commit()
    connection.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _source(tmp_path / "prod.db")
    return sqlite_project(tmp_path, RULES)


def test_the_marker_is_in_the_rule_not_in_comments() -> None:
    policy = policy_from_text(RULES)
    assert [(r.column, r.origin.line if r.origin else None) for r in policy.reviews] == [
        ("stable", LINES["stable"]), ("notes", LINES["notes"])]
    columns = policy.tables["horse"].columns
    assert columns["stable"].review and columns["stable"].review.startswith("REVIEW: a stable's name")
    assert columns["notes"].review == "REVIEW" and columns["notes"].is_keep
    assert columns["name"].review is None and columns["breed"].review is None  # a comment; REVIEWED
    masked = policy_from_text("version: 1\ntables:\n  horse: {notes: {strategy: hash, reason: needs REVIEW}}\n")
    assert masked.tables["horse"].columns["notes"].review == "needs REVIEW"
    unmarked = policy_from_text("version: 1\ntables:\n  horse: {notes: {strategy: keep, reason: review later}}\n")
    assert not unmarked.reviews  # the marker is the word in capitals


@pytest.mark.parametrize("strict", [False, True])
def test_rules_check_exits_2_listing_every_review(project: Path, strict: bool) -> None:
    rules = project.parent / "rules.yaml"
    args = ["rules", "check", "--config", str(project), "--rules", str(rules)] + (["--strict"] if strict else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {rules}:{LINES['stable']}: tables.horse.stable: REVIEW: a stable's name or its owner's? mask it "
        "or say why it is kept - a person has to decide this rule: edit it and remove the REVIEW marker",
        f"error: {rules}:{LINES['notes']}: tables.horse.notes: REVIEW - a person has to decide this rule: edit it "
        "and remove the REVIEW marker",
    ]
    as_json = CliRunner().invoke(main, [*args, "--json"])
    data = json.loads(as_json.output)
    assert data["exit_code"] == 2 and not data["ok"]
    assert [(r["column"], r["line"], r["key"]) for r in data["reviews"]] == [
        ("stable", LINES["stable"], "tables.horse.stable"), ("notes", LINES["notes"], "tables.horse.notes")]
    assert [(e["line"], e["key"]) for e in data["errors"]] == [
        (LINES["stable"], "tables.horse.stable"), (LINES["notes"], "tables.horse.notes")]


def test_an_edited_rule_passes(project: Path) -> None:
    rules = project.parent / "rules.yaml"
    rules.write_text(RULES.replace('"REVIEW: a stable', '"decided: a stable').replace("notes: REVIEW", "notes: hash"))
    result = CliRunner().invoke(main, ["rules", "check", "--config", str(project), "--rules", str(rules),
                                       "--strict"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["refresh", "plan"])
def test_refresh_and_plan_refuse_a_file_with_a_review(project: Path, command: str) -> None:
    rules = project.parent / "rules.yaml"
    result = CliRunner().invoke(main, [command, "staging", "--config", str(project)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0] == (
        f"error: {rules}:{LINES['stable']}: tables.horse.stable: REVIEW: a stable's name or its owner's? mask it "
        "or say why it is kept - a person has to decide this rule: edit it and remove the REVIEW marker (and 1 more "
        "REVIEW marker(s); 'datastage rules check' lists them)")
    assert not (project.parent / "staging.db").exists()
    with pytest.raises(RulesError, match=r"tables\.horse\.stable: REVIEW"):
        datastage.refresh("staging", config=project)


def test_resolving_a_policy_with_a_review_refuses_it(project: Path) -> None:
    """Every caller of the resolution sees the marker, not only the commands."""
    from datastage.source.db import make_engine, snapshot
    from datastage.source.schema import reflect

    engine = make_engine(f"sqlite:///{project.parent / 'prod.db'}", read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
    finally:
        engine.dispose()
    policy = load_policy(project.parent / "rules.yaml")
    with pytest.raises(RulesError, match=r"rules.yaml:8: tables.horse.stable: REVIEW.*and 1 more REVIEW"):
        resolve_policy(policy, model)
    errors: list[RulesError] = []
    resolve_policy(policy, model, errors=errors)
    assert [e.line for e in errors] == [LINES["stable"], LINES["notes"]]


@pytest.mark.postgres
def test_a_postgresql_refresh_refuses_a_review_and_leaves_the_target_untouched(pg_databases, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                               ) -> None:
    source, target = pg_databases.create("ds_review_src"), pg_databases.create("ds_review_dst")
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE horse (id SERIAL PRIMARY KEY, name TEXT, owner_email TEXT,"
                                 " stable TEXT, breed TEXT, notes TEXT)")
            conn.exec_driver_sql("INSERT INTO horse (name, owner_email, stable, breed, notes) SELECT 'Star ' || i,"
                                 " 'owner' || i || '@example.org', 'North', 'Arabian', 'fed'"
                                 " FROM generate_series(1, 20) i")
    finally:
        engine.dispose()
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "datastage.yaml"
    config.write_text(f"source: {{url: {json.dumps(source)}}}\n"
                      f"environments: {{staging: {{url: {json.dumps(target)}, rules: rules.yaml}}}}\n")
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {tmp_path / 'rules.yaml'}:{LINES['stable']}: tables.horse.stable: "
                                    "REVIEW: ")
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.connect() as conn:  # no shadow schema or copy beside it either
            schemas = {r[0] for r in conn.exec_driver_sql("SELECT schema_name FROM information_schema.schemata")}
    finally:
        engine.dispose()
    assert not [s for s in schemas if s.startswith("ds") or "datastage" in s]
