"""Discovery against the labelled corpus: every direct identifier masked, no non-personal column masked.

Each test builds (or loads) one corpus database, scans it, proposes rules and compares
them with the ground truth (see ``corpus_measure``). On failure the message lists every
direct identifier the proposal keeps and every non-personal column it masks, by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ServerDatabases
from corpus_dbs import GENERATED, CorpusDB, build_generated, load_public
from corpus_measure import Measurement, measure


def _assert_targets(result: Measurement) -> None:
    failures = []
    if result.unmasked_direct:
        failures.append(f"{len(result.unmasked_direct)} of {len(result.direct)} direct identifiers not masked")
    if result.false_positives:
        failures.append(f"{len(result.false_positives)} non-personal column(s) masked")
    assert not failures, "; ".join(failures) + "\n" + result.report()


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_database_on_sqlite(name: str, tmp_path: Path) -> None:
    _assert_targets(measure(build_generated(name, f"sqlite:///{tmp_path / name}.db")))


@pytest.mark.postgres
def test_hr_in_two_schemas_on_postgres(pg_databases: ServerDatabases) -> None:
    db = build_generated("hr", pg_databases.create("ds_corpus_hr"))
    assert db.schemas == ("hr", "sales") and ("sales.customers", "ship_street") in db.truth
    _assert_targets(measure(db))


@pytest.mark.postgres
def test_health_records_on_postgres(pg_databases: ServerDatabases) -> None:
    _assert_targets(measure(build_generated("health", pg_databases.create("ds_corpus_health"))))


@pytest.mark.mysql
def test_crime_puzzle_on_mariadb(mysql_databases: ServerDatabases) -> None:
    _assert_targets(measure(build_generated("crime", mysql_databases.create("ds_corpus_crime"))))


@pytest.mark.postgres
def test_pagila_on_postgres(pg_databases: ServerDatabases, datasets: Path) -> None:
    db: CorpusDB = load_public("pagila", pg_databases.create("ds_corpus_pagila"), datasets)
    _assert_targets(measure(db))


@pytest.mark.mysql
def test_sakila_on_mariadb(mysql_databases: ServerDatabases, datasets: Path) -> None:
    _assert_targets(measure(load_public("sakila", mysql_databases.create("ds_corpus_sakila"), datasets)))
