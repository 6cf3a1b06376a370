"""MariaDB targets on a real server: Sakila copied faithfully, one previous copy, rollback, keep, lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import SAKILA_RULES, execute, mysql_fingerprint, rows, sakila_source, scalar, write_project
from sqlalchemy.engine import make_url

import datastage
from datastage.cli import main
from datastage.targets.registry import open_target

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module")
def sakila(mysql_server: str) -> Iterator[str]:
    yield from sakila_source(mysql_server)


def _target(mysql_databases: ServerDatabases) -> str:
    url = mysql_databases.create("ds_maria")
    mysql_databases.created.append(str(make_url(url).database) + "__ds_prev")
    return url


def _create_table(url: str, table: str) -> list[str]:
    """The column, key and constraint lines of SHOW CREATE TABLE (in any order)."""
    body = str(rows(url, f"SHOW CREATE TABLE `{table}`")[0][1]).split("\n", 1)[1].rsplit(")", 1)[0]
    return sorted(line.strip().rstrip(",") for line in body.splitlines())


def test_sakila_copy_keeps_types_keys_and_auto_increment(sakila: str, mysql_databases: ServerDatabases,
                                                          tmp_path: Path) -> None:
    target = _target(mysql_databases)
    config = write_project(tmp_path, sakila, {"staging": {"url": target}}, rules=SAKILA_RULES)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    assert result.load is not None and result.load.lossy_mappings == []
    for table in ("film", "film_text", "staff", "store", "payment", "rental", "customer"):
        assert _create_table(target, table) == _create_table(sakila, table), table
        assert scalar(target, f"SELECT count(*) FROM {table}") == scalar(sakila, f"SELECT count(*) FROM {table}")
    same = "SELECT film_id, rating, special_features, release_year, last_update FROM film ORDER BY film_id"
    assert rows(target, same) == rows(sakila, same)
    assert scalar(target, "SELECT count(*) FROM customer WHERE email LIKE '%@example.com'") == 599
    execute(target, "INSERT INTO actor (first_name, last_name) VALUES ('NEW', 'ACTOR')")
    assert scalar(target, "SELECT actor_id FROM actor WHERE first_name = 'NEW'") == 201


def test_one_previous_copy_rollback_and_keep_tables(sakila: str, mysql_databases: ServerDatabases,
                                                    tmp_path: Path) -> None:
    target = _target(mysql_databases)
    database = str(make_url(target).database)
    config = write_project(tmp_path, sakila, {"staging": {"url": target, "keep": ["film_text"]}},
                           rules=SAKILA_RULES)
    first = datastage.refresh("staging", config=config)
    assert first.verdict == "pass" and first.load is not None and first.load.kept_rows == {"film_text": 0}
    execute(target, "INSERT INTO film_text VALUES (1, 'Staging title', 'kept across refreshes')",
            "CREATE VIEW staging_titles AS SELECT title FROM film_text")
    second = datastage.refresh("staging", config=config)
    assert second.load is not None and second.load.kept_rows == {"film_text": 1}
    assert rows(target, "SELECT film_id, title FROM film_text") == [(1, "Staging title")]
    # A view of the target follows the swap: it reads the new copy's tables.
    assert rows(target, "SELECT title FROM staging_titles") == [("Staging title",)]
    execute(target, "ALTER TABLE film_text ADD COLUMN note TEXT")
    third = datastage.refresh("staging", config=config)
    assert third.load is not None
    assert any("film_text: its shape changed" in n and "dropped: note" in n for n in third.load.notes)
    databases = rows(target, f"SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE "
                             f"'{database}%' ORDER BY 1")
    assert databases == [(database,), (database + "__ds_prev",)]
    log = {r[0] for r in rows(target, "SELECT run_id FROM datastage_refresh_log")}
    assert log == {first.run_id, second.run_id, third.run_id}
    datastage.rollback("staging", config=config)
    log = {r[0] for r in rows(target, "SELECT run_id FROM datastage_refresh_log")}
    assert log == {first.run_id, second.run_id}
    outcome = CliRunner().invoke(main, ["rollback", "staging", "--config", str(config)])
    assert outcome.exit_code == 0, outcome.output
    assert scalar(target, "SELECT count(*) FROM datastage_refresh_log") == 3


def test_a_second_refresh_fails_fast_naming_the_lock_holder(sakila: str, mysql_databases: ServerDatabases,
                                                           tmp_path: Path) -> None:
    target = _target(mysql_databases)
    config = write_project(tmp_path, sakila, {"staging": {"url": target}}, rules=SAKILA_RULES)
    datastage.refresh("staging", config=config)
    before = mysql_fingerprint(target)
    with open_target(target, "staging").lock("20261127-101500-abc123"):
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 4, outcome.output
    assert "another refresh of staging is running" in outcome.output
    assert "root@" in outcome.output and " since 20" in outcome.output
    assert mysql_fingerprint(target) == before


def test_rollback_without_a_previous_copy_is_a_clear_error(sakila: str, mysql_databases: ServerDatabases,
                                                          tmp_path: Path) -> None:
    target = _target(mysql_databases)
    config = write_project(tmp_path, sakila, {"staging": {"url": target}}, rules=SAKILA_RULES)
    outcome = CliRunner().invoke(main, ["rollback", "staging", "--config", str(config)])
    assert outcome.exit_code == 1
    assert "no previous copy of staging" in outcome.output
