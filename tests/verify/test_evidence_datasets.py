"""The public sample databases: Pagila (PostgreSQL) scanned, proposed rules and a clean refresh passing every
check; Sakila (MariaDB) scanned and its proposal accepted by the rules checker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import ServerDatabases, load_pagila, load_sakila
from report_schema import validate_report

import datastage
from datastage.cli import main
from datastage.discover.proposals import propose_rules
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy

CONFIG = """\
source: {url: "%s"}
signing: {key_file: signing.key}
environments:
  staging:
    url: sqlite:///staging.db
    rules: rules/proposed.yaml
"""  # a full copy: every row of every table goes through the leak check


@pytest.mark.postgres
def test_pagila_scan_proposal_and_clean_refresh(pg_databases: ServerDatabases, datasets: Path,
                                                tmp_path: Path) -> None:
    url = pg_databases.create("ds_ev_pagila")
    load_pagila(datasets, url)
    config = tmp_path / "datastage.yaml"
    config.write_text(CONFIG % url)
    datastage.new_key(tmp_path / "signing.key", signing=True)  # the report is signed, so it verifies
    (tmp_path / "rules").mkdir()
    proposed = tmp_path / "rules" / "proposed.yaml"

    outcome = datastage.scan(config=config)
    expected = {
        ("customer", "email"): "direct_identifier", ("customer", "first_name"): "direct_identifier",
        ("customer", "last_name"): "direct_identifier", ("actor", "last_name"): "direct_identifier",
        ("staff", "email"): "direct_identifier", ("staff", "username"): "direct_identifier",
        ("staff", "password"): "sensitive", ("address", "address"): "direct_identifier",
        ("address", "phone"): "direct_identifier", ("address", "postal_code"): "quasi_identifier",
        ("film", "description"): "non_personal", ("film", "title"): "non_personal",
        ("category", "name"): "non_personal", ("city", "city"): "non_personal",
        ("country", "country"): "non_personal", ("payment", "amount"): "non_personal",
    }
    found = {slot: outcome.result.finding(*slot).classification for slot in expected}
    assert found == expected
    # Tables larger than the bound are sampled with TABLESAMPLE ... REPEATABLE: seeded, same result twice.
    small = datastage.scan(config=config, sample_rows=20, seed=7)
    assert 0 < small.result.sampled_tables["customer"] <= 20
    assert small.result.finding("customer", "email").classification == "direct_identifier"
    again = datastage.scan(config=config, sample_rows=20, seed=7)
    assert again.result.to_dict()["columns"] == small.result.to_dict()["columns"]

    result = CliRunner().invoke(main, ["scan", "--config", str(config), "--write", str(proposed), "--json"])
    assert result.exit_code == 0, result.output
    text = proposed.read_text()
    assert "    email: email   # direct_identifier: e-mail address in 100%" in text
    assert "    password: {strategy: hash, length: 32}" in text

    refreshed = datastage.refresh("staging", config=config)
    failing = [(c.name, c.summary) for c in refreshed.checks if c.status != "PASS"]
    assert refreshed.verdict == "pass", failing
    names = {c.name for c in refreshed.checks}
    assert {"leak_masked_columns", "leak_identifiers", "card_sweep", "foreign_keys", "unique_keys"} <= names
    assert refreshed.report is not None
    report = json.loads(refreshed.report.json.read_text())
    validate_report(report)
    leak = next(c for c in report["checks"] if c["name"] == "leak_identifiers")["figures"]
    assert leak["source_tokens_hashed"]["email"] > 100
    assert leak["source_tokens_hashed"].get("name", 0) > 50  # distinctive actor and customer names
    assert report["provenance"]["source"].startswith("postgresql+psycopg://")

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            values = {str(v) for (v,) in conn.exec_driver_sql(
                "SELECT email FROM customer UNION SELECT first_name || ' ' || last_name FROM customer "
                "UNION SELECT address FROM address UNION SELECT phone FROM address WHERE phone <> ''")}
    finally:
        engine.dispose()
    assert len(values) > 1000
    for path in (refreshed.report.json, refreshed.report.html):
        page = path.read_text()
        assert not [v for v in values if len(v) >= 6 and v in page]
    code = CliRunner().invoke(main, ["report", "verify", str(refreshed.report.html), "--config", str(config)]).exit_code
    assert code == 0


@pytest.mark.mysql
def test_sakila_scan_on_mariadb(mysql_databases: ServerDatabases, datasets: Path, tmp_path: Path) -> None:
    url = mysql_databases.create("ds_ev_sakila")
    load_sakila(datasets, url)
    config = tmp_path / "datastage.yaml"
    config.write_text(f"source: {{url: \"{url}\"}}\nenvironments:\n  staging: {{url: sqlite:///staging.db}}\n")
    outcome = datastage.scan(config=config)
    expected = {
        ("customer", "email"): "direct_identifier", ("customer", "first_name"): "direct_identifier",
        ("staff", "password"): "sensitive", ("address", "phone"): "direct_identifier",
        ("address", "postal_code"): "quasi_identifier", ("film", "description"): "non_personal",
    }
    assert {slot: outcome.result.finding(*slot).classification for slot in expected} == expected
    text = propose_rules(outcome.result, outcome.model)
    resolve_policy(policy_from_text(text), outcome.model, personal=outcome.result.personal())
