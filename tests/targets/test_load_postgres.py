"""Loading Pagila into a real PostgreSQL target: a faithful copy, subsets, swap, rollback, keep, lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import (
    execute,
    pagila_source,
    pg_fingerprint,
    pg_schema_dump,
    report_of,
    rows,
    scalar,
    without_table,
    write_project,
)

import datastage
from datastage.cli import main
from datastage.targets.postgres.target import PostgresShadow
from datastage.targets.registry import open_target

pytestmark = pytest.mark.postgres

@pytest.fixture(scope="module")
def pagila(pg_server: str) -> Iterator[str]:
    yield from pagila_source(pg_server)


def test_full_copy_recreates_every_object_and_row(pagila: str, pg_databases: ServerDatabases,
                                                   tmp_path: Path) -> None:
    target = pg_databases.create("ds_stage")
    config = write_project(tmp_path, pagila, {"staging": {"url": target}})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    assert result.load is not None and result.load.lossy_mappings == []
    # The schema is the source's, object for object: enums, domains, sequences, partitions,
    # constraints, indexes, triggers, functions, aggregates, views and materialized views.
    assert without_table(pg_schema_dump(target), "datastage_refresh_log") == pg_schema_dump(pagila)
    for table in ("film", "rental", "payment", "inventory", "film_actor", "ds_extra"):
        assert scalar(target, f"SELECT count(*) FROM {table}") == scalar(pagila, f"SELECT count(*) FROM {table}")
    # Arrays, enums, domains, json (a JSON string stays a JSON string), ranges, generated columns.
    same = "SELECT md5(string_agg(film_id || ':' || coalesce(special_features::text, '-') || rating::text || " \
           "coalesce(release_year::text, '-') || fulltext::text, '|' ORDER BY film_id)) FROM film"
    assert scalar(target, same) == scalar(pagila, same)
    extra = "SELECT id, price, qty, total, tags, doc::text, meta::text, span::text FROM ds_extra ORDER BY id"
    assert rows(target, extra) == rows(pagila, extra)
    assert rows(target, "SELECT jsonb_typeof(doc) FROM ds_extra WHERE id = 1") == [("string",)]
    # Every table was analyzed after its rows were in.
    assert rows(target, "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' AND "
                        "last_analyze IS NULL AND relname <> 'datastage_refresh_log'") == []
    # The BEFORE INSERT trigger exists but did not fire during the load.
    assert scalar(target, "SELECT count(*) FROM actor WHERE last_name = 'TRIGGERED'") == 0
    # Partitions: payment stays partitioned, rows land in the right partitions.
    assert scalar(target, "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                          "WHERE c.relname = 'payment'") == 1
    per_partition = "SELECT tableoid::regclass::text, count(*) FROM payment GROUP BY 1 ORDER BY 1"
    assert rows(target, per_partition) == rows(pagila, per_partition)
    # Views and the materialized view work on the new copy.
    assert scalar(target, "SELECT count(*) FROM actor_info") == 200
    assert scalar(target, "SELECT count(*) FROM rental_by_category") == 16
    # Masked columns differ, kept ones are equal.
    assert scalar(target, "SELECT count(*) FROM customer WHERE email LIKE '%@example.com'") == 599
    assert rows(target, "SELECT address_id, postal_code FROM address ORDER BY 1") == rows(
        pagila, "SELECT address_id, postal_code FROM address ORDER BY 1")
    # Sequences and identities continue after the loaded rows; new rows fire the copied trigger.
    execute(target, "INSERT INTO actor (first_name, last_name) VALUES ('New', 'Actor')",
            "INSERT INTO ds_extra (price, qty) VALUES (2, 2)")
    assert rows(target, "SELECT actor_id, last_name FROM actor WHERE first_name = 'New'") == [(201, "TRIGGERED")]
    assert scalar(target, "SELECT max(id) FROM ds_extra") == 4
    assert scalar(target, "SELECT nextval('payment_payment_id_seq')") == scalar(
        pagila, "SELECT max(payment_id) + 1 FROM payment")
    log = rows(target, "SELECT run_id, verdict, rules_sha256 FROM datastage_refresh_log")
    assert log == [(result.run_id, "pass", report_of(result)["provenance"]["rules_sha256"])]


def test_subset_keeps_constraints_partitions_and_sequences(pagila: str, pg_databases: ServerDatabases,
                                                          tmp_path: Path) -> None:
    target = pg_databases.create("ds_stage")
    subset = {"roots": [{"table": "customer", "where": "active = 1", "percent": 10}],
              "passthrough": ["country", "city", "language", "category"]}
    config = write_project(tmp_path, pagila, {"staging": {"url": target, "subset": subset}})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    customers = scalar(target, "SELECT count(*) FROM customer")
    assert 0 < customers < 599
    assert scalar(target, "SELECT count(*) FROM customer WHERE active <> 1") == 0
    # Every foreign key of the source exists, validated, on the subset.
    fks = "SELECT conrelid::regclass::text, conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2"
    assert rows(target, fks) == rows(pagila, fks)
    assert scalar(target, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
                          "WHERE c.relname = 'payment'") == 7
    assert scalar(target, "SELECT count(*) FROM payment") < scalar(pagila, "SELECT count(*) FROM payment")
    # Sequences are set past the subset's own maximum.
    assert scalar(target, "SELECT last_value FROM customer_customer_id_seq") == scalar(
        target, "SELECT max(customer_id) FROM customer")
    arrays = "SELECT film_id, special_features FROM film ORDER BY film_id"
    target_films = dict(rows(target, arrays))
    assert target_films and all(dict(rows(pagila, arrays))[k] == v for k, v in target_films.items())


def test_refreshes_keep_one_previous_copy_and_rollback_restores_it(pagila: str, pg_databases: ServerDatabases,
                                                                   tmp_path: Path) -> None:
    target = pg_databases.create("ds_stage")
    config = write_project(tmp_path, pagila, {"staging": {"url": target, "keep": ["app_settings"]}})
    first = datastage.refresh("staging", config=config)
    assert first.load is not None and first.load.kept_rows == {"app_settings": 0}
    assert any("app_settings: not in the current copy" in n for n in first.load.notes)
    execute(target, "INSERT INTO app_settings VALUES ('payment_gateway', 'https://sandbox.example.com')",
            "CREATE ROLE ds_test_reader" if not scalar(target, "SELECT count(*) FROM pg_roles WHERE "
                                                               "rolname = 'ds_test_reader'") else "SELECT 1",
            "GRANT SELECT ON customer TO ds_test_reader")
    second = datastage.refresh("staging", config=config)
    assert second.load is not None and second.load.kept_rows == {"app_settings": 1}
    assert rows(target, "SELECT key, value FROM app_settings") == [
        ("payment_gateway", "https://sandbox.example.com")]
    # Grants on the current copy carry over to the new one.
    assert scalar(target, "SELECT has_table_privilege('ds_test_reader', 'public.customer', 'SELECT')") is True
    execute(target, "ALTER TABLE app_settings ADD COLUMN note text")
    third = datastage.refresh("staging", config=config)
    assert third.load is not None
    assert any("app_settings: its shape changed" in n and "dropped: note" in n for n in third.load.notes)
    assert "load_notes" in report_of(third) and report_of(third)["load_notes"] == third.load.notes
    schemas = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public%' ORDER BY 1"
    assert rows(target, schemas) == [("public",), ("public__ds_prev",)]
    log = {r[0] for r in rows(target, "SELECT run_id FROM datastage_refresh_log")}
    assert log == {first.run_id, second.run_id, third.run_id}

    restored = datastage.rollback("staging", config=config)
    assert "public" in restored.restored
    log = {r[0] for r in rows(target, "SELECT run_id FROM datastage_refresh_log")}
    assert log == {first.run_id, second.run_id}
    runner = CliRunner()
    outcome = runner.invoke(main, ["rollback", "staging", "--config", str(config)])
    assert outcome.exit_code == 0, outcome.output
    log = {r[0] for r in rows(target, "SELECT run_id FROM datastage_refresh_log")}
    assert log == {first.run_id, second.run_id, third.run_id}
    execute(target, "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ds_test_reader",
            "REVOKE ALL ON ALL TABLES IN SCHEMA public__ds_prev FROM ds_test_reader", "DROP ROLE ds_test_reader")


def test_a_second_refresh_fails_fast_naming_the_lock_holder(pagila: str, pg_databases: ServerDatabases,
                                                           tmp_path: Path) -> None:
    target_url = pg_databases.create("ds_stage")
    config = write_project(tmp_path, pagila, {"staging": {"url": target_url}})
    holder = open_target(target_url, "staging")
    with holder.lock("20261127-101500-abc123"):
        outcome = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)])
    assert outcome.exit_code == 4, outcome.output
    message = outcome.output.strip()
    assert "another refresh of staging is running" in message
    assert "run 20261127-101500-abc123" in message and " since 20" in message
    assert scalar(target_url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%__ds_%'") == 0


def test_protected_environments_and_the_source_itself_are_refused(pagila: str, pg_databases: ServerDatabases,
                                                                  tmp_path: Path) -> None:
    target = pg_databases.create("ds_stage")
    config = write_project(tmp_path, pagila, {"staging": {"url": target, "protected": True},
                                              "prod": {"url": pagila}})
    before = pg_fingerprint(pagila)
    for env in ("staging", "prod"):
        outcome = CliRunner().invoke(main, ["refresh", env, "--config", str(config)])
        assert outcome.exit_code == 2, outcome.output
    assert "protected" in CliRunner().invoke(main, ["refresh", "staging", "--config", str(config)]).output
    assert pg_fingerprint(pagila) == before
    assert scalar(target, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = 'public'") == 0


def test_streamed_copy_and_batches_load_identical_data(pagila: str, pg_databases: ServerDatabases,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    streamed, batches = pg_databases.create("ds_stream"), pg_databases.create("ds_batch")
    config = write_project(tmp_path, pagila, {"streamed": {"url": streamed}, "batches": {"url": batches}})
    assert datastage.refresh("streamed", config=config).verdict == "pass"
    with monkeypatch.context() as patch:
        patch.setattr(PostgresShadow, "stream_table", lambda *args: None)
        assert datastage.refresh("batches", config=config).verdict == "pass"
    digests = [{k: v for k, v in pg_fingerprint(url)["tables"].items() if "datastage_refresh_log" not in k}
               for url in (streamed, batches)]
    assert digests[0] == digests[1]
    assert digests[0]["public.customer"] != pg_fingerprint(pagila)["tables"]["public.customer"]


