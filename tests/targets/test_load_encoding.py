"""PostgreSQL databases that are not UTF-8: COPY text passes through as bytes, so the fast paths
(the load's and the leak check's) only run between UTF-8 sessions; values arrive unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ServerDatabases
from load_support import execute, rows, write_project

import datastage

pytestmark = pytest.mark.postgres

RULES = {"version": 1, "default": "keep",
         "tables": {"person": {"email": {"strategy": "email", "unique": True},
                               "name": {"strategy": "keep", "reason": "test names"}}}}


def _latin1(pg_databases: ServerDatabases, prefix: str) -> str:
    name = f"{prefix}_{len(pg_databases.created)}_{id(pg_databases) % 10_000}"
    with pg_databases.engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'LATIN1\' '
                             "LC_COLLATE 'C' LC_CTYPE 'C'")
    pg_databases.created.append(name)
    return pg_databases.url(name)


def test_latin1_source_and_targets_keep_accented_text(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    source = _latin1(pg_databases, "ds_latin1_src")
    execute(source, "CREATE TABLE person (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE, note text)",
            "INSERT INTO person SELECT g, 'José Müller-Ñúñez ' || g, 'jose' || g || '@example.com', "
            "'café crème, naïve façade' FROM generate_series(1, 300) g")
    targets = {"latin": _latin1(pg_databases, "ds_latin1_dst"), "utf8": pg_databases.create("ds_utf8_dst")}
    config = write_project(tmp_path, source, {env: {"url": url} for env, url in targets.items()}, rules=RULES)
    expected = rows(source, "SELECT id, name, note FROM person ORDER BY id")
    for env, url in targets.items():
        result = datastage.refresh(env, config=config)
        assert result.verdict == "pass", (env, [(c.name, c.summary) for c in result.checks if c.status != "PASS"])
        assert rows(url, "SELECT id, name, note FROM person ORDER BY id") == expected, env
        emails = {r[0] for r in rows(url, "SELECT email FROM person")}
        assert len(emails) == 300 and not emails & {r[0] for r in rows(source, "SELECT email FROM person")}, env
