"""Random schemas (cycles, self-references, several FKs per table, NULLs) against the naive oracle.

Each seed builds a different schema and data set (on SQLite; a fifth as many on PostgreSQL
and MariaDB), picks roots, a default children policy, per-edge overrides and passthrough
tables, and plans with tiny batches so the closure's per-table rounds are cut into many
pieces. The subset must equal the oracle's rows exactly and keep every foreign key.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from subset_harness import Case, as_counter, build, check_foreign_keys, oracle, read_source, run_subset, spec_of
from test_subset_conformance import MARKS, source_url

SEEDS = int(os.environ.get("DATASTAGE_RANDOM_SUBSETS", "40"))  # more by hand: DATASTAGE_RANDOM_SUBSETS=1000


def random_case(seed: int) -> Case:
    rng = random.Random(seed)
    names = [f"t{i}" for i in range(rng.randint(2, 6))]
    tables: dict[str, list[object]] = {}
    rows: dict[str, tuple[str, list[tuple[object, ...]]]] = {}
    sizes = {name: rng.randint(3, 25) for name in names}
    edges = []
    for name in names:
        defs: list[object] = ["id INTEGER NOT NULL", "PRIMARY KEY (id)"]
        columns = ["id"]
        for k in range(rng.choice([0, 1, 1, 2, 2, 3])):
            parent = rng.choice(names)  # any table: cycles and self-references happen
            column = f"fk{k}_{parent}"
            defs += [f"{column} INTEGER", f"FOREIGN KEY ({column}) REFERENCES {parent} (id)"]
            columns.append(column)
            edges.append((name, column, parent))
        tables[name] = defs
        data = []
        for i in range(1, sizes[name] + 1):
            row: list[object] = [i]
            for column in columns[1:]:
                parent = column.split("_", 1)[1]
                row.append(None if rng.random() < 0.25 else rng.randint(1, sizes[parent]))
            data.append(tuple(row))
        rows[name] = (" ".join(columns), data)
    roots = rng.sample(names, rng.randint(1, min(2, len(names))))
    matches = []
    lines = ["roots:"]
    for root in roots:
        mod, rest = rng.randint(2, 5), rng.randint(0, 1)
        lines.append(f"  - {{table: {root}, where: 'id % {mod} = {rest}'}}")
        matches.append(lambda r, m=mod, x=rest: r["id"] % m == x)
    lines.append(f"children: {rng.choice(['roots', 'roots', 'all', 'none'])}")
    overrides = [e for e in edges if rng.random() < 0.3]
    if overrides:
        lines.append("edges:")
        lines += [f"  - {{fk: '{t}({c})', children: {rng.choice(['none', 'roots', 'all'])}}}" for t, c, _ in overrides]
    others = [n for n in names if n not in roots]
    if others and rng.random() < 0.3:
        lines.append(f"passthrough: [{rng.choice(others)}]")
    return Case(name=f"random_{seed}", tables=tables, rows=rows, subset="\n".join(lines) + "\n",
                root_match=matches)


PARAMS = [pytest.param(seed, "sqlite", id=f"{seed}-sqlite") for seed in range(SEEDS)] + [
    pytest.param(seed, dialect, marks=MARKS[dialect], id=f"{seed}-{dialect}")
    for dialect in ("postgresql", "mysql") for seed in range(SEEDS // 5)
]


@pytest.mark.parametrize(("seed", "dialect"), PARAMS)
def test_random_schema_matches_the_oracle(seed: int, dialect: str, request: pytest.FixtureRequest,
                                          tmp_path: Path) -> None:
    case = random_case(seed)
    url = source_url(request, dialect, tmp_path)
    build(case, dialect, url)
    spec = spec_of(case, dialect)
    result = run_subset(url, spec, batch_size=2)
    source = read_source(url, case)
    check_foreign_keys(case, dialect, result, set(), source)
    for table, expected in oracle(case, dialect, source, spec).items():
        assert as_counter(result.rows[table]) == expected, (table, case.subset)
