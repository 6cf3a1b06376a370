"""datastage preview: source rows beside their masked values, exactly as a refresh loads them, writing nothing;
and the subset table of the report saying why a table nothing brought rows into stays empty."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from conftest import ServerDatabases
from load_support import execute, pg_fingerprint, rows, sqlite_fingerprint, write_project

import datastage
from datastage.cli import main


def _state(folder: Path) -> list[str]:
    """Every file under the project folder, with its size: what a command wrote shows here."""
    return sorted(f"{p.relative_to(folder)}:{p.stat().st_size}" for p in folder.rglob("*") if p.is_file())


def _masked_by_key(result: datastage.pipeline.PreviewResult) -> dict[str, dict[str, str | None]]:
    return {str(next(iter(row["key"].values()))): {c["column"]: c["masked"] for c in row["columns"]}
            for row in result.rows}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def test_preview_on_sqlite_shows_what_the_refresh_loads_and_writes_nothing(demo_project: Path) -> None:
    folder = demo_project.parent
    before_files, before_source = _state(folder), sqlite_fingerprint(folder / "prod.db")
    result = datastage.preview("customer", environment="staging", rows=5, config=demo_project)
    assert len(result.rows) == 5 and result.table == "customer" and result.key_columns == ["customer_id"]
    assert _state(folder) == before_files and sqlite_fingerprint(folder / "prod.db") == before_source
    assert not (folder / "staging.db").exists()  # no target created
    email = next(c for c in result.rows[0]["columns"] if c["column"] == "email")
    assert email["treatment"].startswith("email") and email["source"] != email["masked"]
    assert email["masked"].endswith("@example.com")
    previewed = _masked_by_key(result)

    assert datastage.refresh("staging", config=demo_project).verdict == "pass"
    conn = sqlite3.connect(folder / "staging.db")
    conn.row_factory = sqlite3.Row
    marks = ",".join("?" * len(previewed))
    loaded = {str(r["customer_id"]): {k: _text(r[k]) for k in r.keys()}  # noqa: SIM118 - sqlite3.Row
              for r in conn.execute(f"SELECT * FROM customer WHERE customer_id IN ({marks})", list(previewed))}
    conn.close()
    assert loaded == previewed  # every previewed row was loaded, every value exactly as previewed


def test_preview_on_postgresql_matches_the_refresh_and_leaves_both_databases_as_they_were(
        pg_databases: ServerDatabases, tmp_path: Path) -> None:
    source = pg_databases.create("ds_prev_src")
    target = pg_databases.create("ds_prev_tgt")
    execute(source, "CREATE SCHEMA sales",
            "CREATE TABLE sales.customer (id integer PRIMARY KEY, email text UNIQUE, first_name text, "
            "last_name text, born date, note text)",
            "INSERT INTO sales.customer SELECT i, 'user' || i || '@corp.example', 'Name' || i, 'Last' || i, "
            "date '1970-01-01' + i * 97, CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END "
            "FROM generate_series(1, 40) i")
    rules = {"version": 1, "default": "keep", "tables": {"sales.customer": {
        "email": {"strategy": "email", "unique": True}, "first_name": "person.first_name",
        "last_name": "person.last_name", "born": {"strategy": "generalize", "to": "year"},
        "note": {"strategy": "hash"}}}}
    config = write_project(tmp_path / "project", source, {"staging": {"url": target}}, rules)
    settings = yaml.safe_load(config.read_text())
    settings["source"]["schemas"] = ["sales"]
    config.write_text(yaml.safe_dump(settings))
    before_source, before_target = pg_fingerprint(source), pg_fingerprint(target)
    before_files = _state(tmp_path / "project")

    result = datastage.preview("sales.customer", rows=7, config=config)  # schema-qualified; the only environment
    assert len(result.rows) == 7 and result.table.endswith("customer")
    assert pg_fingerprint(source) == before_source and pg_fingerprint(target) == before_target
    assert _state(tmp_path / "project") == before_files
    previewed = _masked_by_key(result)
    assert any(values["note"] is None for values in previewed.values())  # NULL stays NULL

    assert datastage.refresh("staging", config=config).verdict == "pass"
    keys = ",".join(previewed)
    loaded = {str(r[0]): {"id": _text(r[0]), "email": r[1], "first_name": r[2], "last_name": r[3],
                          "born": _text(r[4]), "note": r[5]}
              for r in rows(target, f"SELECT id, email, first_name, last_name, born, note FROM sales.customer "
                                    f"WHERE id IN ({keys})")}
    assert loaded == previewed


def _small_project(folder: Path) -> Path:
    """A SQLite project: customer (root, two rows), orders (children), audit (reached by nothing),
    promo (a root matching no row), empty (no rows at all)."""
    conn = sqlite3.connect(folder / "prod.db")
    conn.executescript(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, bio TEXT);"
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id));"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);"
        "CREATE TABLE promo (id INTEGER PRIMARY KEY, code TEXT);"
        "CREATE TABLE empty (id INTEGER PRIMARY KEY);"
        "INSERT INTO customer VALUES (1, '[bold red]Mallory[/]', '" + "x" * 150 + "'), (2, 'Bob', 'tab\there'),"
        " (3, 'Carol', NULL);"
        "INSERT INTO orders VALUES (10, 1), (11, 2), (12, 3);"
        "INSERT INTO audit VALUES (1, 'login');"
        "INSERT INTO promo VALUES (1, 'SPRING');")
    conn.commit()
    conn.close()
    (folder / "rules.yaml").write_text("version: 1\ndefault: keep\ntables: {customer: {name: {strategy: hash}},"
                                       " promo: {code: {strategy: keep, reason: 'campaign codes'}}}\n")
    config = folder / "datastage.yaml"
    config.write_text(yaml.safe_dump({
        "source": {"url": "sqlite:///prod.db"},
        "environments": {"staging": {"url": "sqlite:///staging.db", "rules": "rules.yaml", "subset": {
            "roots": [{"table": "customer", "where": "id <= 2"}, {"table": "promo", "where": "id > 100"}]}},
            "qa": {"url": "sqlite:///qa.db", "rules": "rules.yaml"}}}))
    return config


def test_preview_command_prints_full_values_as_text_and_refuses_unknown_tables(tmp_path: Path) -> None:
    config = _small_project(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(main, ["preview", "customer", "--env", "staging", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "[bold red]Mallory[/]" in shown.output  # data is text, never rich markup
    assert "x" * 150 in shown.output  # not cut to the width of a terminal
    assert "tab\\there" in shown.output  # one line per column, control characters escaped
    assert "row 1 (id=1)" in shown.output and "row 3" not in shown.output  # only the rows the subset selects
    line = next(ln for ln in shown.output.splitlines() if ln.strip().startswith("name "))
    column, source, masked = (part.strip() for part in line.split(" | "))
    assert (column, source) == ("name", "[bold red]Mallory[/]") and masked and masked != source
    data = json.loads(runner.invoke(main, ["preview", "customer", "--env", "staging", "--rows", "1", "--json",
                                           "--config", str(config)]).output)
    assert len(data["rows"]) == 1 and data["selected_rows"] == 2 and data["note"] is None
    assert {c["column"]: c["source"] for c in data["rows"][0]["columns"]}["name"] == "[bold red]Mallory[/]"
    audit = json.loads(runner.invoke(main, ["preview", "audit", "--env", "staging", "--json",
                                            "--config", str(config)]).output)
    assert audit["note"].startswith("not reached") and audit["rows"][0]["columns"][1]["source"] == "login"

    unknown = runner.invoke(main, ["preview", "custmer", "--env", "staging", "--config", str(config)])
    assert unknown.exit_code == 2 and unknown.output.strip().splitlines() == [
        "error: unknown table 'custmer' (did you mean 'customer'?)"]
    ambiguous = runner.invoke(main, ["preview", "customer", "--config", str(config)])
    assert ambiguous.exit_code == 2 and "--env (known: qa, staging)" in ambiguous.output
    too_many = runner.invoke(main, ["preview", "customer", "--env", "qa", "--rows", "5000", "--config", str(config)])
    assert too_many.exit_code == 2 and "between 1 and 1000" in too_many.output
    assert not (tmp_path / "staging.db").exists() and not (tmp_path / ".datastage").exists()


def test_report_says_why_a_table_nothing_brought_in_is_empty(tmp_path: Path) -> None:
    config = _small_project(tmp_path)
    planned = datastage.plan("staging", config=config)
    notes = {row["table"]: row["note"] for row in planned.table_rows()}
    assert notes["customer"] is None and notes["orders"] is None  # brought in by the root and its edge
    assert notes["audit"] == "not reached: no root, passthrough or followed edge selects its rows (copied empty)"
    assert notes["promo"] == "subset root: no row matched (copied empty)"
    assert notes["empty"] == "empty in the source"
    assert planned.report is not None
    html = planned.report.html.read_text()
    subset = html[html.index("<table id='subset'>"):]
    subset = subset[:subset.index("</table>")]
    cells = {row.split("</td>")[0].removeprefix("<td>"): row.split("<td>")[-1].split("</td>")[0]
             for row in subset.split("<tr>")[2:]}
    assert cells["audit"] == "not reached: no root, passthrough or followed edge selects its rows (copied empty)"
    assert cells["promo"] == "subset root: no row matched (copied empty)"
    assert cells["empty"] == "empty in the source"
    assert cells["customer"] == "root (2)" and cells["orders"].startswith("child via orders(customer_id)")
    report = json.loads(planned.report.json.read_text())
    assert {t["table"]: t["note"] for t in report["subset"]["tables"]} == notes
