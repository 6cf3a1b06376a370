"""The demo refresh end to end: through the CLI, and its guarantees on the loaded data."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.targets.sqlite import SqliteShadow


def _refresh(config: Path, *extra: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["refresh", "staging", "--config", str(config), *extra])
    return result.exit_code, result.output


def test_demo_refresh_through_the_cli(demo_project: Path) -> None:
    code, output = _refresh(demo_project, "--rules", str(demo_project.parent / "rules" / "pii.yaml"), "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["environment"] == "staging"
    assert data["verdict"] == "pass"
    assert data["exit_code"] == 0
    assert data["run_id"]
    assert Path(data["report_json"]).is_file() and Path(data["report_html"]).is_file()
    assert data["tables"] == 13
    assert data["masked_columns"] >= 15
    report = json.loads(Path(data["report_json"]).read_text())
    assert report["verdict"] == "pass"
    assert {c["name"] for c in report["checks"]} >= {"row_counts", "foreign_keys", "unique_keys"}


def test_text_summary_names_verdict_and_report_paths(demo_project: Path) -> None:
    code, output = _refresh(demo_project)
    assert code == 0, output
    assert "verdict: PASS" in output
    assert "tables: 13" in output
    assert ".json" in output and ".html" in output


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_masked_columns_differ_and_kept_columns_are_equal(demo_project: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    assert result.verdict == "pass"
    staging = demo_project.parent / "staging.db"
    conn = sqlite3.connect(staging)
    conn.execute(f"ATTACH DATABASE '{demo_project.parent / 'prod.db'}' AS prod")
    joined = conn.execute(
        "SELECT s.first_name, p.first_name, s.email, p.email, s.phone, p.phone, s.country_code, p.country_code, "
        "s.created_at, p.created_at, s.active, p.active FROM customer s JOIN prod.customer p USING (customer_id)"
    ).fetchall()
    assert len(joined) > 100
    for row in joined:
        assert row[2] != row[3], "e-mail must be masked"
        assert row[2].endswith("@example.com")
        assert row[6:8] == (row[7], row[7]) and row[8] == row[9] and row[10] == row[11], "kept columns equal"
        if row[5] is not None:  # phone: same format and country code, other digits tokenized
            assert row[4] != row[5] and row[4][:3] == row[5][:3] == "+1-" and len(row[4]) == len(row[5])
    assert sum(r[0] != r[1] for r in joined) > 0.9 * len(joined)
    cards = conn.execute("SELECT s.card_number, p.card_number FROM payment s JOIN prod.payment p USING (payment_id)"
                         ).fetchall()
    assert cards and all(s != p for s, p in cards)
    # Same real e-mail, same fake e-mail, in customer.email and orders.ship_email.
    mismatched = conn.execute(
        "SELECT count(*) FROM orders o JOIN prod.orders po USING (order_id) JOIN prod.customer pc "
        "ON pc.email = po.ship_email JOIN customer c ON c.customer_id = pc.customer_id "
        "WHERE o.ship_email <> c.email").fetchone()[0]
    consistent = conn.execute(
        "SELECT count(*) FROM orders o JOIN prod.orders po USING (order_id) JOIN prod.customer pc "
        "ON pc.email = po.ship_email JOIN customer c ON c.customer_id = pc.customer_id "
        "WHERE o.ship_email = c.email").fetchone()[0]
    assert consistent > 100 and mismatched == 0
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    conn.close()


def test_every_foreign_key_holds_in_staging(demo_project: Path) -> None:
    datastage.refresh("staging", config=demo_project)
    staging = demo_project.parent / "staging.db"
    assert _rows(staging, "PRAGMA foreign_key_check") == []
    assert _rows(staging, "SELECT count(*) FROM employee")[0][0] > 0
    # The subset is a subset, and root rows honour the where clause.
    assert _rows(staging, "SELECT count(*) FROM customer WHERE active <> 1")[0][0] == 0


def test_staging_keeps_its_app_settings_across_refreshes(demo_project: Path) -> None:
    datastage.refresh("staging", config=demo_project)
    staging = demo_project.parent / "staging.db"
    conn = sqlite3.connect(staging)
    conn.execute("INSERT INTO app_settings VALUES ('payment_gateway_url', 'https://sandbox.example.com')")
    conn.commit()
    conn.close()
    datastage.refresh("staging", config=demo_project)
    assert _rows(staging, "SELECT key, value FROM app_settings") == [
        ("payment_gateway_url", "https://sandbox.example.com")]
    log = _rows(staging, "SELECT run_id, verdict FROM datastage_refresh_log")
    assert len(log) == 2 and {v for _, v in log} == {"pass"}
    # A column staging added to its own table is reported and dropped; the rows still carry over.
    conn = sqlite3.connect(staging)
    conn.execute("ALTER TABLE app_settings ADD COLUMN note TEXT")
    conn.commit()
    conn.close()
    third = datastage.refresh("staging", config=demo_project)
    assert third.load is not None
    assert any("app_settings: its shape changed" in n and "dropped: note" in n for n in third.load.notes)
    assert _rows(staging, "SELECT key, value FROM app_settings") == [
        ("payment_gateway_url", "https://sandbox.example.com")]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_failure_mid_load_leaves_previous_staging_untouched(demo_project: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    datastage.refresh("staging", config=demo_project)
    staging = demo_project.parent / "staging.db"
    before = _digest(staging)
    calls = {"n": 0}
    original = SqliteShadow.write

    def failing_write(self: SqliteShadow, table, frame):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return original(self, table, frame)

    monkeypatch.setattr(SqliteShadow, "write", failing_write)
    code, output = _refresh(demo_project)
    assert code == 1
    assert output.strip().splitlines()[-1].startswith("error: load failed: No space left on device")
    assert len(output.strip().splitlines()) == 1
    assert _digest(staging) == before
    leftovers = [p.name for p in staging.parent.iterdir() if ".shadow-" in p.name]
    assert leftovers == []
    history = datastage.history("staging", config=demo_project)
    assert history[-1]["verdict"] == "error" and history[-1]["exit_code"] == 1


def test_rollback_swaps_the_previous_copy_back(demo_project: Path) -> None:
    staging = demo_project.parent / "staging.db"
    datastage.refresh("staging", config=demo_project)
    first = _rows(staging, "SELECT run_id FROM datastage_refresh_log")
    datastage.refresh("staging", config=demo_project)
    assert len(_rows(staging, "SELECT run_id FROM datastage_refresh_log")) == 2
    datastage.rollback("staging", config=demo_project)
    assert _rows(staging, "SELECT run_id FROM datastage_refresh_log") == first
    runner = CliRunner()
    result = runner.invoke(main, ["rollback", "staging", "--config", str(demo_project)])
    assert result.exit_code == 0, result.output
    assert len(_rows(staging, "SELECT run_id FROM datastage_refresh_log")) == 2


def test_source_is_never_written(demo_project: Path) -> None:
    prod = demo_project.parent / "prod.db"
    before = _digest(prod)
    datastage.refresh("staging", config=demo_project)
    assert _digest(prod) == before
