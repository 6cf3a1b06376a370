"""Subset planning: seeded sampling across databases, budgets and config errors, key sets, `plan`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import ServerDatabases
from subset_cases import CHAIN, CHAIN_ROWS, EXCLUDED, LIMIT_PER_PARENT
from subset_harness import Case, build, run_subset
from test_subset_conformance import MARKS, source_url

from datastage.cli import main
from datastage.errors import ConfigError
from datastage.settings import parse_subset
from datastage.source.schema import reflect
from datastage.subset.extract import stream_rows
from datastage.subset.keyset import KeySet
from datastage.yamlfile import load_yaml_text

SAMPLED = Case(
    name="sampled",
    tables={
        "item": ["id INTEGER NOT NULL", "grp INTEGER NOT NULL", "sku VARCHAR(20)", "PRIMARY KEY (id)"],
        "tally": ["n INTEGER", "label VARCHAR(20)"],  # no key: sampled by the digest of whole rows
        "code": ["code VARCHAR(12) NOT NULL", "PRIMARY KEY (code)"],
    },
    rows={
        "item": ("id grp sku", [(i, i % 3, f"sku-{i}") for i in range(1, 301)]),
        "tally": ("n label", [(i, f"t{i % 7}") for i in range(200)]),
        "code": ("code", [(f"C{i:04d}x",) for i in range(120)]),
    },
    subset="""
roots:
  - {table: item, where: "grp = 1", percent: 10}
  - {table: tally, percent: 5}
  - {table: code, limit: 7}
seed: 11
""",
)
ALL = ("sqlite", "postgresql", "mysql")


def _selection(url: str, text: str, batch_size: int = 10_000) -> dict[str, list[tuple[object, ...]]]:
    result = run_subset(url, parse_subset(load_yaml_text(text, "subset.yaml")), batch_size=batch_size)
    return {t: sorted(tuple(r.values()) for r in rows) for t, rows in result.rows.items()}


def test_sample_is_exact_reproducible_and_seeded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    build(SAMPLED, "sqlite", url)
    first = _selection(url, SAMPLED.subset)
    assert len(first["item"]) == math.ceil(100 * 0.10) and {r[1] for r in first["item"]} == {1}
    assert len(first["tally"]) == 10 and len(first["code"]) == 7
    assert _selection(url, SAMPLED.subset, batch_size=3) == first  # batch boundaries do not matter
    other = _selection(url, SAMPLED.subset.replace("seed: 11", "seed: 12"))
    assert all(other[t] != first[t] for t in ("item", "tally", "code"))
    assert len(other["item"]) == 10


@pytest.mark.postgres
@pytest.mark.mysql
def test_same_seed_selects_the_same_rows_on_every_database(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    chosen = {}
    limited = {}
    for dialect in ALL:
        (tmp_path / dialect).mkdir()
        url = source_url(request, dialect, tmp_path)
        build(SAMPLED, dialect, url)
        chosen[dialect] = _selection(url, SAMPLED.subset)
        url = source_url(request, dialect, tmp_path / dialect)
        build(LIMIT_PER_PARENT, dialect, url)
        limited[dialect] = _selection(url, LIMIT_PER_PARENT.subset)
    assert chosen["sqlite"] == chosen["postgresql"] == chosen["mysql"]
    assert limited["sqlite"] == limited["postgresql"] == limited["mysql"]
    assert len(chosen["sqlite"]["item"]) == 10


CHAIN_CASE = Case("chain", CHAIN, CHAIN_ROWS, "")


def _chain(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'chain.db'}"
    build(CHAIN_CASE, "sqlite", url)
    return url


def _plan_error(url: str, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        run_subset(url, parse_subset(load_yaml_text(text, "subset.yaml")))
    return str(info.value)


def test_budget_stops_planning_naming_the_edge_that_grew(tmp_path: Path) -> None:
    url = _chain(tmp_path)
    message = _plan_error(url, "roots: [{table: customer, where: 'id = 1'}]\nbudgets: {order_item: 2}\n")
    assert message.startswith("subset.yaml:2: budgets: order_item grew to")
    assert "over its budget of 2, through child via order_item(order_id) -> orders(id)" in message
    message = _plan_error(url, "roots: [{table: customer, where: 'id = 1'}]\nmax_rows: 4\n")
    assert "over max_rows 4" in message and " via " in message
    assert run_subset(url, parse_subset(load_yaml_text(
        "roots: [{table: customer, where: 'id = 1'}]\nbudgets: {order_item: 5}\nmax_rows: 100\n", "s"))).rows


def test_excluding_a_table_behind_a_not_null_fk_is_rejected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    build(EXCLUDED, "sqlite", url)
    message = _plan_error(url, "roots: [account]\nexclude: [audit]\n")
    assert message == ("subset.yaml:2: exclude[0]: cannot leave audit empty: audit_note(audit_id) -> audit(id) "
                       "is NOT NULL; exclude audit_note too, or copy audit")


@pytest.mark.parametrize(("text", "expected"), [
    ("roots: [{table: orders, where: 'nosuch = 1'}]", "subset.yaml:1: roots[0]: where clause failed on orders"),
    ("roots: [ordres]", "unknown table 'ordres' (did you mean 'orders'?)"),
    ("roots: [note]\nexclude: [note]", "table note is both a root and excluded"),
    ("roots: [orders]\npassthrough: [note]\nexclude: [note]", "subset.yaml:2: passthrough: table note is both "
     "passthrough and excluded"),
    ("roots: [orders]\nbudgets: {order_items: 3}", "subset.yaml:2: budgets: unknown table 'order_items' "
     "(did you mean 'order_item'?)"),
    ("roots: [customer]\nedges: [{fk: 'order_item(order)', children: all}]",
     "'order_item(order)' matches 0 foreign keys (did you mean 'order_item(order_id)'?)"),
    ("roots: [customer]\nvirtual_foreign_keys: [{table: note, columns: [customer_id, id], references: customer}]",
     "needs ref_columns: the key of customer is (id)"),
])
def test_subset_config_errors_name_the_setting(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _plan_error(_chain(tmp_path), text)


def test_plan_is_the_same_with_tiny_batches(tmp_path: Path) -> None:
    url = _chain(tmp_path)
    text = "roots: [{table: customer, where: 'id IN (1, 3)'}]\nedges: [{fk: order_item.product_id, children: all}]"
    assert _selection(url, text, batch_size=1) == _selection(url, text)


def test_keyset_integer_levels_and_generic_keys() -> None:
    keys = KeySet(("id",), integer=True)
    for start in range(0, 1000, 7):
        keys.add(pd.DataFrame({"id": pd.Series(range(start, start + 10), dtype=object)}))
    assert len(keys) == 1004
    probe = pd.DataFrame({"id": pd.Series([0, 1003, 1004, None, -1], dtype=object)})
    assert keys.contains(probe).tolist() == [True, True, False, False, False]
    assert keys.frame()["id"].tolist() == list(range(1004))
    mixed = KeySet(("id",), integer=True)
    mixed.add(pd.DataFrame({"id": pd.Series([1, 2], dtype=object)}))
    new = mixed.add(pd.DataFrame({"id": pd.Series(["x", 2, "x"], dtype=object)}))  # text: generic from now on
    assert new["id"].tolist() == ["x"] and len(mixed) == 3
    pair = KeySet(("a", "b"))
    assert len(pair.add(pd.DataFrame({"a": ["p", "p", "q"], "b": [1, 1, None]}, dtype=object))) == 2
    assert pair.contains(pd.DataFrame({"a": ["p", "q"], "b": [1, None]}, dtype=object)).tolist() == [True, False]
    assert np.array_equal(pair.contains(pd.DataFrame({"a": [], "b": []}, dtype=object)), np.zeros(0, dtype=bool))


def test_plan_command_shows_rows_edges_cycles_and_columns(demo_project: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["plan", "staging", "--config", str(demo_project), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    tables = {t["table"]: t for t in data["tables"]}
    assert tables["customer"]["reasons"] == {"root": tables["customer"]["selected_rows"]}
    assert tables["orders"]["reasons"] == {"child via orders(customer_id) -> customer(customer_id)":
                                           tables["orders"]["selected_rows"]}
    assert tables["country"]["mode"] == "all" and tables["country"]["reasons"] == {"passthrough": 8}
    assert tables["app_settings"]["reasons"] == {"kept from target": 0}
    assert ["department", "employee"] in data["cycles"]
    assert data["subset"]["selected_rows"] == sum(t["selected_rows"] for t in data["tables"])
    assert data["subset"]["queries"] > 0 and data["subset"]["seed"] == 0
    assert {(c["table"], c["column"]) for c in data["columns"]} >= {("customer", "email")}
    text = runner.invoke(main, ["plan", "staging", "--config", str(demo_project)])
    assert text.exit_code == 0, text.output
    assert "cycle (followed row by row, no manual break needed): department <-> employee" in text.output
    assert "planned with" in text.output and "Column treatment" in text.output


@pytest.mark.mysql
def test_a_statement_while_a_mariadb_stream_is_open_fails_instead_of_losing_rows(mysql_databases: ServerDatabases,
                                                                             ) -> None:
    import sqlalchemy as sa

    from datastage.source.db import make_engine, snapshot
    from datastage.source.schema import reflect
    from datastage.subset.extract import stream_rows

    url = mysql_databases.create("ds_stream")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1), (2), (3), (4), (5)")
    engine.dispose()
    source = make_engine(url, read_only=True)
    with snapshot(source) as conn:
        table = reflect(conn).table("t")
        assert sum(len(b) for b in stream_rows(conn, table, ["id"], batch_size=2)) == 5
        stream = stream_rows(conn, table, ["id"], batch_size=2)
        next(stream)
        with pytest.raises(UserWarning, match="unbuffered result"):
            conn.exec_driver_sql("SELECT 1").all()
        stream.close()
    source.dispose()


@pytest.mark.postgres
def test_foreign_keys_to_schemas_outside_the_source_are_ignored(pg_databases: ServerDatabases) -> None:
    import sqlalchemy as sa

    url = pg_databases.create("ds_scope")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in ("CREATE SCHEMA app", "CREATE SCHEMA ext", "CREATE TABLE ext.actor (id int PRIMARY KEY)",
                          "CREATE TABLE app.doc (id int PRIMARY KEY, actor_id int REFERENCES ext.actor)",
                          "CREATE TABLE app.page (id int PRIMARY KEY, doc_id int NOT NULL REFERENCES app.doc)",
                          "INSERT INTO ext.actor VALUES (1)", "INSERT INTO app.doc VALUES (1, 1), (2, NULL)",
                          "INSERT INTO app.page VALUES (1, 1), (2, 2), (3, 1)"):
            conn.exec_driver_sql(statement)
    engine.dispose()
    result = run_subset(url, parse_subset(load_yaml_text("roots: [{table: app.doc, where: 'id = 1'}]", "s")),
                        schemas=("app",))
    assert [str(fk) for fk in result.model.foreign_keys()] == ["app.page(doc_id) -> app.doc(id)"]
    assert sorted(r["id"] for r in result.rows["app.page"]) == [1, 3]


@pytest.mark.parametrize("dialect", [pytest.param(d, marks=MARKS[d]) for d in ALL])
def test_thousands_of_composite_keys_in_one_query(dialect: str, request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    """A row-value IN list this long overflows PostgreSQL's stack; the lookup must not."""
    import datetime as dt

    from datastage.source.db import make_engine, snapshot
    from datastage.source.schema import reflect
    from datastage.subset.extract import fetch_matching

    day = dt.date(2024, 1, 1)
    case = Case("many_keys", {"ev": ["d DATE NOT NULL", "n INTEGER NOT NULL", "v VARCHAR(10)", "PRIMARY KEY (d, n)"]},
                {"ev": ("d n v", [(day + dt.timedelta(days=i % 50), i, f"v{i}") for i in range(12_000)])}, "")
    url = source_url(request, dialect, tmp_path)
    build(case, dialect, url)
    engine = make_engine(url, read_only=True)
    with snapshot(engine) as conn:
        table = reflect(conn).table("ev")
        keys = pd.DataFrame({"d": pd.Series([day + dt.timedelta(days=i % 50) for i in range(1, 12_000)],
                                            dtype=object),
                             "n": pd.Series(list(range(1, 12_000)), dtype=object)})
        rows = pd.concat(list(fetch_matching(conn, table, ["n", "v"], ["d", "n"], keys, batch_size=12_000)))
    engine.dispose()
    assert sorted(rows["n"]) == list(range(1, 12_000))


@pytest.mark.postgres
def test_postgres_text_columns_read_with_copy_equal_the_driver_rows(pg_databases: ServerDatabases) -> None:
    """Whole-table reads of text columns go through COPY into Arrow; they give what the driver gives,
    for odd names (percent signs, quotes, a schema) and odd values (NULL and '', escapes, line breaks)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from datastage.subset import extract

    url = pg_databases.create("ds_copyread")
    tricky = ["plain", "", None, " padded ", "tab\there", "line\nbreak", "cr\rhere", 'quote "x"', "comma, too",
              "back\\slash", "\\N", "\\.", "ünïcödé ✓", "  ", "%s %(x)s"]
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as raw:
        raw.execute('CREATE SCHEMA "we%ird ""s"""')
        raw.execute('CREATE TYPE "we%ird ""s""".mood AS ENUM (\'ok\', \'a,b\')')
        raw.execute('CREATE TABLE "we%ird ""s"""."T%a""b" (id int PRIMARY KEY, "v%s" text, '
                    '"W ""x""" varchar(30), c char(4), m "we%ird ""s""".mood)')
        with raw.cursor() as cursor:
            cursor.executemany('INSERT INTO "we%%ird ""s"""."T%%a""b" VALUES (%s, %s, %s, %s, %s)',
                               [(i, v, v, None if v is None else v[:4], None if v is None else ("ok", "a,b")[i % 2])
                                for i, v in enumerate(tricky)])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            table = reflect(conn, schemas=['we%ird "s"']).table('we%ird "s".T%a"b')
            columns = ["v%s", 'W "x"', "c", "m"]
            assert extract._copy_connection(conn, table, columns) is not None
            copied = pd.concat(list(stream_rows(conn, table, columns, batch_size=4)), ignore_index=True)
            by_driver = pd.concat(list(extract._run(conn, extract._select(table, columns), table, 4)),
                                  ignore_index=True)
            assert extract._copy_connection(conn, table, ["id"]) is None  # not text: the driver's way
            # Rows by integer key: COPY with the keys as an array literal, the same rows as the driver's.
            wanted = pd.DataFrame({"id": np.array([0, 2, 5, 11, 99], dtype=np.int64)})
            by_copy = pd.concat(list(extract.fetch_matching(conn, table, ["id", "v%s"], ["id"], wanted, 2)))
            by_bind = pd.concat(list(extract._run(conn, extract._select(table, ["id", "v%s"]).where(
                extract.match_clause(conn, table, ["id"], wanted)), table, 10)))
            assert extract._integer_literals(pd.Series(["1; DROP TABLE x", 2], dtype=object)) is None
            assert extract._integer_literals(pd.Series([2**70], dtype=object)) is None
    finally:
        engine.dispose()
    assert copied.to_dict("records") == by_driver.to_dict("records")
    assert sorted(by_copy.to_dict("records"), key=lambda r: r["id"]) == \
        sorted(by_bind.to_dict("records"), key=lambda r: r["id"])
    assert sorted(by_copy["id"].tolist()) == [0, 2, 5, 11] and all(type(i) is int for i in by_copy["id"])
    assert sorted(copied["v%s"].tolist(), key=str) == sorted(tricky, key=str)
    assert all(t is str or t is type(None) for t in copied.map(type).stack().unique())
