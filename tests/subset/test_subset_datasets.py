"""Subsets of the public sample databases: Pagila on PostgreSQL, Sakila on MariaDB.

Expected rows are computed with plain SQL on the source, never by the planner.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import IN_CI, ROOT, ServerDatabases, datasets_dir, load_pagila, load_sakila
from load_support import SAKILA_RULES
from subset_harness import Extracted, run_subset

import datastage
from datastage.cli import main
from datastage.settings import parse_subset
from datastage.subset.sampling import seeded_hash
from datastage.yamlfile import load_yaml_text


def _spec(text: str) -> Any:
    return parse_subset(load_yaml_text(text, "subset.yaml"))


def _ids(result: Extracted, table: str, column: str) -> set[Any]:
    return set(result.column(table, column))


def _sql_ids(url: str, sql: str, **params: Any) -> set[Any]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(sa.text(sql), params)}
    finally:
        engine.dispose()


def _no_orphans(result: Extracted) -> None:
    """Every reflected foreign key holds inside the extracted rows."""
    checked = 0
    for fk in result.model.foreign_keys():
        present = {tuple(r[c] for c in fk.ref_columns) for r in result.rows[fk.ref_table]}
        for row in result.rows[fk.table]:
            values = tuple(row[c] for c in fk.columns)
            if None not in values:
                assert values in present, f"orphan {fk}: {values}"
                checked += 1
    assert checked > 0


def _dataset(path: Path) -> None:
    if not path.is_dir():
        if IN_CI:
            pytest.fail(f"sample dataset missing: {path} (set DATASTAGE_DATASETS)")
        pytest.skip(f"sample dataset missing: {path} (set DATASTAGE_DATASETS)")


@pytest.fixture(scope="module")
def pagila(pg_server: str) -> Iterator[str]:
    _dataset(datasets_dir() / "pagila")
    dbs = ServerDatabases(pg_server)
    try:
        url = dbs.create("ds_pagila")
        load_pagila(datasets_dir(), url)
        yield url
    finally:
        dbs.drop_all()


@pytest.fixture(scope="module")
def sakila(mysql_server: str) -> Iterator[str]:
    _dataset(datasets_dir() / "sakila-mysql")
    dbs = ServerDatabases(mysql_server)
    try:
        url = dbs.create("ds_sakila")
        load_sakila(datasets_dir(), url)
        yield url
    finally:
        dbs.drop_all()


PAGILA_10 = """
roots: [{table: customer, percent: 10}]
seed: 42
"""


def _bottom_k(url: str, table: str, column: str, percent: float, seed: int) -> set[Any]:
    """The documented sample: the ``percent`` of rows whose seeded key hash is smallest."""
    keys = sorted(_sql_ids(url, f"SELECT {column} FROM {table}"))
    frame = pd.DataFrame({column: pd.Series(keys, dtype=object)})
    order = np.argsort(seeded_hash(frame, seed), kind="stable")
    return {keys[i] for i in order[:math.ceil(len(keys) * percent / 100)]}


@pytest.mark.postgres
def _only_reads(statements: list[str], most: int) -> None:
    """Every statement sent to the source reads (no temporary tables, no writes); few of them (set-based)."""
    verbs = {s.split()[0].upper() for s in statements}
    assert verbs <= {"SELECT", "SET", "START", "BEGIN", "ROLLBACK", "SHOW"}, verbs
    assert not any(re.search(r"\b(CREATE|TEMPORARY|INSERT|UPDATE|DELETE)\b", s) for s in statements
                   if not s.startswith("SHOW CREATE TABLE"))  # MariaDB reflection reads DDL that way
    assert 0 < len(statements) <= most, len(statements)


def test_pagila_ten_percent_of_customers_brings_exactly_their_rentals_and_payments(pagila: str) -> None:
    statements: list[str] = []
    result = run_subset(pagila, _spec(PAGILA_10), statements=statements)
    _only_reads(statements, 150)
    roots = _bottom_k(pagila, "customer", "customer_id", 10, 42)
    assert len(roots) == 60
    assert {k for k, n in result.plan.tables["customer"].reasons.items() if k == "root"} == {"root"}
    assert result.plan.tables["customer"].reasons["root"] == 60

    # Their rentals and payments (children), computed in SQL. Pagila has five payments whose
    # rental belongs to another customer (rental 4591): such a rental and its customer come in
    # as parents only, and bring none of their own children.
    c = list(roots)
    down_rentals = _sql_ids(pagila, "SELECT rental_id FROM rental WHERE customer_id = ANY(:c)", c=c)
    payments = _sql_ids(pagila, "SELECT payment_id FROM payment WHERE customer_id = ANY(:c) "
                                "OR rental_id = ANY(:r)", c=c, r=list(down_rentals))
    rentals = down_rentals | _sql_ids(pagila, "SELECT rental_id FROM payment WHERE payment_id = ANY(:p)",
                                      p=list(payments))
    customers = roots | _sql_ids(pagila, "SELECT customer_id FROM rental WHERE rental_id = ANY(:r) UNION "
                                         "SELECT customer_id FROM payment WHERE payment_id = ANY(:p)",
                                 r=list(rentals), p=list(payments))
    assert _ids(result, "rental", "rental_id") == rentals
    assert _ids(result, "payment", "payment_id") == payments
    assert _ids(result, "customer", "customer_id") == customers
    assert len(rentals) > 1000 and len(payments) > 1000
    # The partition that declares no foreign keys is subset through the parent like the others.
    july = _sql_ids(pagila, "SELECT payment_id FROM payment_p2022_07 WHERE customer_id = ANY(:c)", c=c)
    assert july and july <= _ids(result, "payment", "payment_id")
    assert "payment" in result.model.tables and "payment_p2022_07" not in result.model.tables
    # Lookup rows came in as parents only: no other film's inventory, no other store's customers.
    inventory = _sql_ids(pagila, "SELECT inventory_id FROM rental WHERE rental_id = ANY(:r)", r=list(rentals))
    assert _ids(result, "inventory", "inventory_id") == inventory
    assert result.rows["film_actor"] == [] and result.rows["film_category"] == []
    _no_orphans(result)


@pytest.mark.postgres
def test_pagila_same_seed_same_rows_new_seed_new_sample(pagila: str) -> None:
    first = run_subset(pagila, _spec(PAGILA_10))
    second = run_subset(pagila, _spec(PAGILA_10))
    for table in first.rows:
        key = list(first.model.tables[table].identity) or list(first.model.tables[table].columns)
        assert sorted(tuple(r[c] for c in key) for r in first.rows[table]) == \
            sorted(tuple(r[c] for c in key) for r in second.rows[table]), table
    other = run_subset(pagila, _spec(PAGILA_10.replace("seed: 42", "seed: 43")))
    assert _ids(other, "customer", "customer_id") != _ids(first, "customer", "customer_id")
    assert len(_ids(other, "customer", "customer_id")) == 60


SAKILA_10 = """
roots: [{table: customer, percent: 10}]
seed: 7
"""


@pytest.mark.mysql
def test_sakila_on_mariadb_subsets_through_the_store_staff_cycle(sakila: str) -> None:
    statements: list[str] = []
    result = run_subset(sakila, _spec(SAKILA_10), statements=statements)
    _only_reads(statements, 150)
    assert ["staff", "store"] in result.plan.cycles
    customers = _ids(result, "customer", "customer_id")
    assert len(customers) == math.ceil(len(_sql_ids(sakila, "SELECT customer_id FROM customer")) * 0.10)
    marks = ", ".join(str(c) for c in sorted(customers))
    assert _ids(result, "rental", "rental_id") == _sql_ids(
        sakila, f"SELECT rental_id FROM rental WHERE customer_id IN ({marks})")
    assert _ids(result, "payment", "payment_id") == _sql_ids(
        sakila, f"SELECT payment_id FROM payment WHERE customer_id IN ({marks})")
    assert len(result.rows["rental"]) > 1000 and len(result.rows["payment"]) > 1000
    # Every store's manager and every staff member's store are there, with no manual cycle break.
    staff = _ids(result, "staff", "staff_id")
    assert staff and {r["manager_staff_id"] for r in result.rows["store"]} <= staff
    assert {r["store_id"] for r in result.rows["staff"]} <= _ids(result, "store", "store_id")
    _no_orphans(result)


@pytest.mark.postgres
def test_pagila_subset_refreshes_into_sqlite_and_passes_verification(pagila: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text((ROOT / "rules" / "pagila.yaml").read_text())  # the example policy
    (tmp_path / "datastage.yaml").write_text(f"""
source: {{url: "{pagila}"}}
environments:
  staging:
    url: sqlite:///staging.db
    rules: rules.yaml
    subset:
      roots: [{{table: customer, percent: 10}}]
      seed: 42
""")
    result = datastage.refresh("staging", config=tmp_path / "datastage.yaml")
    assert result.verdict == "pass", [c.to_dict() for c in result.checks if c.status != "PASS"]
    checks = {c.name: c.status for c in result.checks}
    assert checks["subset_counts"] == "PASS" and checks["foreign_keys"] == "PASS"
    assert result.load is not None and result.load.rows["customer"] == 61


@pytest.mark.postgres
def test_pagila_sampled_partitioned_root_and_children_all_keep_every_fk(pagila: str) -> None:
    sampled = run_subset(pagila, _spec("roots: [{table: payment, percent: 5}]\nseed: 3\n"))
    total = len(_sql_ids(pagila, "SELECT payment_id FROM payment"))
    assert len(sampled.rows["payment"]) == math.ceil(total * 0.05)
    assert _parents_only(sampled, "customer")
    _no_orphans(sampled)
    everything = run_subset(pagila, _spec("roots: [{table: store, limit: 1}]\nchildren: all\nseed: 3\n"))
    _no_orphans(everything)
    assert len(everything.rows["rental"]) > 0


def _parents_only(result: Extracted, table: str) -> bool:
    """Rows of ``table`` came in only as parents (no root, no child edge)."""
    return all(reason.startswith("parent via") for reason in result.plan.tables[table].reasons)


def _project(tmp_path: Path, source: str, subset: str) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(SAKILA_RULES, sort_keys=False))
    body = "\n".join("      " + line for line in subset.strip().splitlines())
    (tmp_path / "datastage.yaml").write_text(
        f'source: {{url: "{source}"}}\nenvironments:\n  staging:\n    url: sqlite:///staging.db\n'
        f"    rules: rules.yaml\n    subset:\n{body}\n")
    return tmp_path / "datastage.yaml"


@pytest.mark.mysql
def test_plan_command_on_sakila_names_the_cycle_and_the_edges(sakila: str, tmp_path: Path) -> None:
    config = _project(tmp_path, sakila, SAKILA_10)
    runner = CliRunner()
    result = runner.invoke(main, ["plan", "staging", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert ["staff", "store"] in data["cycles"]
    tables = {t["table"]: t for t in data["tables"]}
    assert tables["customer"]["reasons"]["root"] == 60
    assert "child via rental(customer_id) -> customer(customer_id)" in tables["rental"]["reasons"]
    assert set(tables["store"]["reasons"]) <= {"parent via customer(store_id) -> store(store_id)",
                                               "parent via staff(store_id) -> store(store_id)",
                                               "parent via inventory(store_id) -> store(store_id)"}
    assert tables["film_text"]["selected_rows"] == 0 and tables["film_text"]["reasons"] == {}
    assert data["subset"]["selected_rows"] == sum(t["selected_rows"] for t in data["tables"])
    assert {c["table"] for c in data["columns"]} >= {"customer", "staff"}
    text = runner.invoke(main, ["plan", "staging", "--config", str(config)])
    assert "cycle (followed row by row, no manual break needed): staff <-> store" in text.output
    assert "not reached" in text.output
