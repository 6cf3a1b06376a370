"""Loads across dialects on real servers: Pagila into MariaDB and SQLite, Sakila into PostgreSQL.

Every lossy mapping is listed here: a change in what the loader reports is a change to review.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerDatabases
from load_support import SAKILA_RULES, execute, pagila_source, rows, sakila_source, scalar, write_project

import datastage

TZ_TABLES = ("actor", "address", "category", "city", "country", "customer", "film", "film_actor", "film_category",
             "inventory", "language", "rental", "staff", "store")
TRIGGERS = {"actor": "last_updated, shout", "film": "film_fulltext_trigger, last_updated"}
COMMON_LOSSY = [
    *(f"{t}: triggers not copied across dialects ({TRIGGERS.get(t, 'last_updated')})" for t in TZ_TABLES),
    "ds_extra.span: INT4RANGE stored as text",
    "ds_extra.tags: array stored as JSON text",
    "film.fulltext: TSVECTOR stored as text",
    "film.rating: enum mpaa_rating stored as text with a CHECK",
    "film.release_year: domain year stored as its base type with its CHECK",
    "film.special_features: array stored as JSON text",
    "film: gist index film_fulltext_idx not copied",
    "payment.payment_id: default nextval('payment_payment_id_seq'::regclass) not copied",
    "payment: partitioned table loaded as one table",
]
PAGILA_TO_MARIADB = sorted([
    *COMMON_LOSSY,
    *(f"{t}.last_update: timestamp with time zone stored as UTC DATETIME(6)" for t in TZ_TABLES),
    "payment.payment_date: timestamp with time zone stored as UTC DATETIME(6)",
    "rental.rental_date: timestamp with time zone stored as UTC DATETIME(6)",
    "rental.return_date: timestamp with time zone stored as UTC DATETIME(6)",
    "actor.last_name: text used in a key stored as VARCHAR(768)",
    "app_settings.key: text used in a key stored as VARCHAR(768)",
    "customer.last_name: text used in a key stored as VARCHAR(768)",
    "film.title: text used in a key stored as VARCHAR(768)",
    "customer.create_date: default CURRENT_DATE not copied",
    "ds_extra.total: generated column recomputed by the target from (price * (qty))",
    "ds_extra.total: unbounded numeric stored as DECIMAL(65,30)",
])
PAGILA_TO_SQLITE = sorted([
    *COMMON_LOSSY,
    "ds_extra.doc: json stored as JSON text",
    "ds_extra.meta: json stored as JSON text",
    "ds_extra.total: generated column recomputed by the target from (price * (qty))",
])
SAKILA_TO_POSTGRES = sorted([
    *(f"{t}.last_update: ON UPDATE current_timestamp() not copied" for t in (
        "actor", "address", "category", "city", "country", "customer", "film", "film_actor", "film_category",
        "inventory", "language", "payment", "rental", "staff", "store")),
    "film.rating: enum stored as text with a CHECK",
    "film.special_features: SET stored as comma-separated text",
    "film_text: FULLTEXT index idx_title_description not copied",
])


@pytest.fixture(scope="module")
def pagila(pg_server: str) -> Iterator[str]:
    yield from pagila_source(pg_server)


@pytest.fixture(scope="module")
def sakila(mysql_server: str) -> Iterator[str]:
    yield from sakila_source(mysql_server)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.postgres
@pytest.mark.mysql
def test_pagila_into_mariadb(pagila: str, mysql_databases: ServerDatabases, tmp_path: Path) -> None:
    target = mysql_databases.create("ds_maria")
    mysql_databases.created.append(target.rsplit("/", 1)[1] + "__ds_prev")
    config = write_project(tmp_path, pagila, {"staging": {"url": target}})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    assert result.load is not None and sorted(result.load.lossy_mappings) == PAGILA_TO_MARIADB
    for table in ("actor", "film", "payment", "rental", "inventory", "film_actor", "ds_extra"):
        assert scalar(target, f"SELECT count(*) FROM {table}") == scalar(pagila, f"SELECT count(*) FROM {table}")
    # Pagila's 18 table foreign keys, plus payment's 3, which the source declares on each partition.
    assert scalar(target, "SELECT count(*) FROM information_schema.referential_constraints WHERE "
                          "constraint_schema = DATABASE()") == 21
    features = dict(rows(pagila, "SELECT film_id, special_features FROM film"))
    for film_id, text in rows(target, "SELECT film_id, special_features FROM film"):
        assert json.loads(text) == features[film_id]
    source_dates = dict(rows(pagila, "SELECT rental_id, rental_date FROM rental"))
    for rental_id, date in rows(target, "SELECT rental_id, rental_date FROM rental WHERE rental_id < 50"):
        assert date == _utc(source_dates[rental_id])
    assert rows(target, "SELECT doc, tags, span, total FROM ds_extra ORDER BY id")[0] == (
        '"just a string"', '["a", "b c"]', "[1, 5)", 3)
    execute(target, "INSERT INTO actor (first_name, last_name) VALUES ('New', 'Actor')")
    assert scalar(target, "SELECT actor_id FROM actor WHERE first_name = 'New'") == 201


@pytest.mark.postgres
def test_pagila_into_sqlite(pagila: str, tmp_path: Path) -> None:
    staging = tmp_path / "staging.db"
    config = write_project(tmp_path, pagila, {"staging": {"url": f"sqlite:///{staging}"}})
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    assert result.load is not None and sorted(result.load.lossy_mappings) == PAGILA_TO_SQLITE
    conn = sqlite3.connect(staging)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM payment").fetchone()[0] == scalar(
            pagila, "SELECT count(*) FROM payment")
        features = dict(rows(pagila, "SELECT film_id, special_features FROM film"))
        for film_id, text in conn.execute("SELECT film_id, special_features FROM film"):
            assert json.loads(text) == features[film_id]
        assert conn.execute("SELECT doc, meta, total FROM ds_extra WHERE id = 1").fetchone() == (
            '"just a string"', "[1, 2]", 3)
        assert conn.execute("SELECT count(*) FROM film WHERE rating NOT IN ('G', 'PG', 'PG-13', 'R', 'NC-17')"
                            ).fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.postgres
@pytest.mark.mysql
def test_sakila_into_postgresql(sakila: str, pg_databases: ServerDatabases, tmp_path: Path) -> None:
    target = pg_databases.create("ds_stage")
    config = write_project(tmp_path, sakila, {"staging": {"url": target}}, rules=SAKILA_RULES)
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", result.checks
    assert result.load is not None and sorted(result.load.lossy_mappings) == SAKILA_TO_POSTGRES
    for table in ("film", "payment", "rental", "film_text", "staff", "store"):
        assert scalar(target, f"SELECT count(*) FROM {table}") == scalar(sakila, f"SELECT count(*) FROM {table}")
    # The store <-> staff cycle is declared in both directions.
    fks = {r[0] for r in rows(target, "SELECT conname FROM pg_constraint WHERE contype = 'f'")}
    assert {"fk_store_staff", "fk_staff_store"} <= fks
    assert scalar(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == scalar(
        sakila, "SELECT count(*) FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()")
    assert rows(target, "SELECT special_features FROM film WHERE film_id = 1") == rows(
        sakila, "SELECT special_features FROM film WHERE film_id = 1")
    # AUTO_INCREMENT keys became identities that continue after the loaded rows.
    execute(target, "INSERT INTO actor (first_name, last_name) VALUES ('New', 'Actor')")
    assert scalar(target, "SELECT actor_id FROM actor WHERE first_name = 'New'") == 201
    with pytest.raises(Exception, match="check"):
        execute(target, "UPDATE film SET rating = 'X' WHERE film_id = 1")
