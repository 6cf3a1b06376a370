"""Subset conformance: one small schema per tricky case, on SQLite, PostgreSQL and MariaDB.

For every case and dialect: build the schema on the real server, plan and extract the
subset on a read-only snapshot (in batches of 3 rows, so every batch and chunk boundary is
crossed), then check that (a) every foreign key holds inside the extracted rows, (b) every
table holds exactly the rows the naive oracle computes from the source rows and the rows
written by hand in the case, and (c) nothing else is there (excluded tables empty, FKs into
them NULL, per-case property checks such as limit_per_parent).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from subset_cases import PG_ONLY, PORTABLE
from subset_harness import Case, as_counter, build, check_foreign_keys, oracle, read_source, run_subset, spec_of

MARKS = {"postgresql": [pytest.mark.postgres], "mysql": [pytest.mark.mysql], "sqlite": []}


def _params(cases: list[Case]) -> list[object]:
    return [pytest.param(case, dialect, marks=MARKS[dialect], id=f"{case.name}-{dialect}")
            for case in cases for dialect in case.dialects]


def source_url(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> str:
    """A fresh, empty source database on ``dialect``."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'source.db'}"
    fixture = "pg_databases" if dialect == "postgresql" else "mysql_databases"
    return request.getfixturevalue(fixture).create("ds_subset")


def _key(row: dict[str, object], columns: list[str]) -> object:
    return row[columns[0]] if len(columns) == 1 else tuple(row[c] for c in columns)


@pytest.mark.parametrize(("case", "dialect"), _params(PORTABLE + PG_ONLY))
def test_subset_conformance(case: Case, dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = source_url(request, dialect, tmp_path)
    build(case, dialect, url)
    spec = spec_of(case, dialect)
    result = run_subset(url, spec, case.schemas, batch_size=3)
    source = read_source(url, case)
    excluded = {result.model.table(name).key for name in spec.exclude}

    # (a) referential integrity inside the subset
    check_foreign_keys(case, dialect, result, excluded, source)

    # (b) exactly the promised rows: hand-checked values ...
    for table, expected in case.expected.items():
        info = result.model.table(table)
        columns = list(info.primary_key) if len(info.primary_key) == 1 else [next(iter(info.columns))]
        assert {_key(r, columns) for r in result.rows[info.key]} == expected, table
    # ... and, for every table, the oracle's multiset of whole rows
    if case.oracle:
        for table, expected_rows in oracle(case, dialect, source, spec).items():
            info = result.model.table(table)
            nulled = {c for fk in result.plan.tables[info.key].null_foreign_keys for c in fk.columns}
            expected = [{k: (None if k in nulled else v) for k, v in row} for row in expected_rows.elements()]
            columns = info.insertable_columns
            assert as_counter(result.rows[info.key], columns) == as_counter(expected, columns), table

    # (c) nothing forbidden: excluded tables stay empty, FKs into them are NULL (checked in (a))
    for table in excluded:
        assert result.rows[table] == []
        assert result.plan.tables[table].mode == "none"
    if case.check is not None:
        case.check(result, source)
