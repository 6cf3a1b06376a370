"""Masking inside real refreshes (SQLite): joinable masked values across tables, masked keys with
their foreign keys, free text that agrees with the masked columns, the key, and scale."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from maskkit import KEY, build_model, resolve, rules_for

import datastage
from datastage.cli import main
from datastage.demo import RULES
from datastage.mask.engine import MaskingEngine
from datastage.mask.fpe import tokenize_int, tokenize_text
from datastage.mask.keys import MaskingKey

SHOP = """
CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE invoice (invoice_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
                      billing_email TEXT NOT NULL, total NUMERIC(10, 2) NOT NULL);
CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
                     ship_email TEXT, placed_at TIMESTAMP NOT NULL);
"""
SHOP_RULES = """\
version: 1
default: fail
tables:
  customer:
    email: {strategy: email, unique: true}
    name: person.full_name
  invoice:
    billing_email: email
    total: keep
  orders:
    ship_email: email
    placed_at: {strategy: date_shift, by: customer_id, max_days: 20}
"""


def _shop(tmp_path: Path) -> Path:
    prod = tmp_path / "prod.db"
    conn = sqlite3.connect(prod)
    conn.executescript(SHOP)
    emails = [f"Customer.{i}@mail{i % 7}.example" for i in range(1, 301)]
    conn.executemany("INSERT INTO customer VALUES (?, ?, ?)", [(i, e, f"Real Name {i}") for i, e in
                                                                enumerate(emails, 1)])
    conn.executemany("INSERT INTO invoice VALUES (?, ?, ?, ?)",
                     [(i, 1 + i % 300, emails[i % 300] if i % 5 else f"accounts{i}@firm.example", "10.00")
                      for i in range(1, 901)])
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                     [(i, 1 + i % 300, emails[i % 300] if i % 4 else None, f"2024-01-{1 + i % 28:02d} 10:00:00")
                      for i in range(1, 1201)])
    conn.commit()
    conn.close()
    (tmp_path / "rules.yaml").write_text(SHOP_RULES)
    (tmp_path / "datastage.yaml").write_text(
        "source: {url: sqlite:///prod.db}\nenvironments:\n  test:\n    url: sqlite:///test.db\n"
        "    rules: rules.yaml\n")
    return tmp_path / "datastage.yaml"


def test_customer_emails_mask_consistently_across_three_tables(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    result = datastage.refresh("test", config=config)
    assert result.verdict == "pass"
    conn = sqlite3.connect(tmp_path / "test.db")
    conn.execute(f"ATTACH DATABASE '{tmp_path / 'prod.db'}' AS prod")
    masked = dict(conn.execute("SELECT customer_id, email FROM customer").fetchall())
    real = dict(conn.execute("SELECT customer_id, email FROM prod.customer").fetchall())
    by_real = {real[c]: masked[c] for c in real}
    assert len(set(masked.values())) == 300 and not set(masked.values()) & set(real.values())
    for table, column, key in [("invoice", "billing_email", "invoice_id"), ("orders", "ship_email", "order_id")]:
        rows = conn.execute(f"SELECT p.{column}, s.{column} FROM prod.{table} p JOIN {table} s USING ({key})"
                            ).fetchall()
        same_customer = [(p, s) for p, s in rows if p in by_real]
        assert len(same_customer) > 200
        assert all(s == by_real[p] for p, s in same_customer), f"{table}.{column} disagrees with customer.email"
        others = [(p, s) for p, s in rows if p is not None and p not in by_real]
        assert all(s != p and s.endswith("@example.com") for p, s in others)
        assert others or table == "orders"  # invoices also bill addresses that are no customer's
        assert all((p is None) == (s is None) for p, s in rows)
    # Names agree with the masked e-mail: the same fake person.
    for name, email in conn.execute("SELECT name, email FROM customer").fetchall():
        first, last = name.split(" ", 1)
        assert email.startswith(re.sub("[^a-z0-9]", "", first.lower()) + "." + re.sub("[^a-z0-9]", "", last.lower()))
    # Dates of one customer's orders shift together: intervals survive.
    pairs = conn.execute("SELECT p.customer_id, julianday(s.placed_at) - julianday(p.placed_at) FROM prod.orders p "
                         "JOIN orders s USING (order_id)").fetchall()
    shifts: dict[int, set[float]] = {}
    for customer, shift in pairs:
        shifts.setdefault(customer, set()).add(round(shift, 6))
    assert all(len(s) == 1 for s in shifts.values()) and len({next(iter(s)) for s in shifts.values()}) > 10
    conn.close()


def test_tokenized_keys_keep_every_foreign_key_and_join(demo_project: Path) -> None:
    rules = RULES.replace("  country: keep\n", "  country:\n    code: tokenize\n    name: keep\n")
    rules = rules.replace("    country_code: keep\n", "")
    rules = rules.replace("  customer:\n", "  customer:\n    customer_id: tokenize\n")
    rules_path = demo_project.parent / "rules" / "keys.yaml"
    rules_path.write_text(rules)
    plan = datastage.plan("staging", rules=rules_path, config=demo_project)
    inherited = {(d.table, d.column): d.rule.inherited_from for d in plan.policy.decisions.values()
                 if d.rule is not None and d.rule.inherited_from}
    assert inherited[("orders", "customer_id")] == "customer.customer_id"
    assert inherited[("address", "country_code")] == "country.code"
    result = datastage.refresh("staging", rules=rules_path, config=demo_project)
    assert result.verdict == "pass", [c.to_dict() for c in result.checks]
    staging = demo_project.parent / "staging.db"
    conn = sqlite3.connect(staging)
    conn.execute(f"ATTACH DATABASE '{demo_project.parent / 'prod.db'}' AS prod")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    prod_ids = [r[0] for r in conn.execute("SELECT customer_id FROM prod.customer ORDER BY customer_id")]
    mapping = dict(zip(prod_ids, tokenize_int(KEY_OF_TESTS, "tokenize", np.array(prod_ids, dtype=object),
                                              max_value=2**31 - 1), strict=True))
    rows = conn.execute("SELECT p.customer_id, s.customer_id FROM prod.orders p JOIN orders s USING (order_id)"
                        ).fetchall()
    assert len(rows) > 500 and all(mapping[p] == s and p != s for p, s in rows)
    codes = [r[0] for r in conn.execute("SELECT code FROM prod.country ORDER BY code")]
    code_map = dict(zip(codes, tokenize_text(KEY_OF_TESTS, "tokenize", np.array(codes, dtype=object)), strict=True))
    staged = conn.execute("SELECT p.country_code, s.country_code FROM prod.address p JOIN address s "
                          "USING (address_id)").fetchall()
    assert staged and all(code_map[p] == s for p, s in staged)
    assert set(code_map.values()) == {r[0] for r in conn.execute("SELECT code FROM country")}
    conn.close()


KEY_OF_TESTS_TEXT = "test-masking-key-0123456789abcdef"
KEY_OF_TESTS = MaskingKey(KEY_OF_TESTS_TEXT.encode(), source="test")


def test_support_ticket_text_agrees_with_the_masked_customer(demo_project: Path) -> None:
    assert datastage.refresh("staging", config=demo_project).verdict == "pass"
    conn = sqlite3.connect(demo_project.parent / "staging.db")
    conn.execute(f"ATTACH DATABASE '{demo_project.parent / 'prod.db'}' AS prod")
    rows = conn.execute(
        "SELECT t.body, p.body, c.email, c.phone, pc.email, pc.phone, pc.first_name FROM support_ticket t "
        "JOIN prod.support_ticket p USING (ticket_id) JOIN customer c ON c.customer_id = t.customer_id "
        "JOIN prod.customer pc ON pc.customer_id = t.customer_id").fetchall()
    assert len(rows) > 50
    for body, real_body, email, phone, real_email, real_phone, _ in rows:
        assert real_email in real_body and real_email not in body
        assert email in body
        if real_phone is not None and real_phone in real_body:
            assert phone in body and real_phone not in body
    # The greeting's name is replaced too (a fake name may match the real one by chance).
    kept_names = sum(f"this is {real_first}." in body for body, *_, real_first in rows)
    assert kept_names < len(rows) * 0.1
    real_emails = {r[0] for r in conn.execute("SELECT email FROM prod.customer")}
    leaked = [b for (b,) in conn.execute("SELECT body FROM support_ticket") if any(e in b for e in real_emails)]
    assert leaked == []
    conn.close()


def test_a_missing_key_stops_the_refresh_with_a_clear_error(demo_project: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATASTAGE_MASKING_KEY")
    (demo_project.parent / "masking.key").unlink()
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    key_file = demo_project.parent / "masking.key"
    assert result.output.strip() == (f"error: {key_file}: masking key file not found "
                                     f"(`datastage key new --output {key_file}` creates one)")
    assert not (demo_project.parent / "staging.db").exists()


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_an_empty_key_variable_is_an_error_not_a_fall_back_to_the_key_file(
        demo_project: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert (demo_project.parent / "masking.key").is_file()  # the fall-back that must not happen
    monkeypatch.setenv("DATASTAGE_MASKING_KEY", value)
    expected = ("error: DATASTAGE_MASKING_KEY is set but empty; give it the key or unset it to use "
                "masking.key_file")
    runner = CliRunner()
    refreshed = runner.invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert refreshed.exit_code == 2 and refreshed.output.strip() == expected, refreshed.output
    assert not (demo_project.parent / "staging.db").exists()
    planned = runner.invoke(main, ["plan", "staging", "--config", str(demo_project)])  # signs only if it can
    assert planned.exit_code == 2 and planned.output.strip() == expected, planned.output
    # Verifying a report never reads the masking key (only the signing public key), so the empty variable
    # does not matter to it: the missing file is the error.
    verified = runner.invoke(main, ["report", "verify", str(demo_project.parent / "x.json"), "--config",
                                    str(demo_project)])
    assert verified.exit_code == 2 and verified.output.strip().endswith("x.json: report file not found"), \
        verified.output
    monkeypatch.delenv("DATASTAGE_MASKING_KEY")  # unset: the key file is used
    assert runner.invoke(main, ["plan", "staging", "--config", str(demo_project)]).exit_code == 0


def test_provision_refuses_an_empty_key_variable_before_copying(demo_project: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert datastage.refresh("staging", config=demo_project).verdict == "pass"
    before = sorted(p.name for p in demo_project.parent.iterdir())
    monkeypatch.setenv("DATASTAGE_MASKING_KEY", "")
    result = CliRunner().invoke(main, ["provision", "pr_1", "--from", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == ("error: DATASTAGE_MASKING_KEY is set but empty; give it the "
                                                      "key or unset it to use masking.key_file")
    after = sorted(p.name for p in demo_project.parent.iterdir() if p.name != ".datastage")
    assert after == [name for name in before if name != ".datastage"]  # no copy, no shadow, no lock file


def test_load_key_refuses_an_empty_variable_and_falls_back_only_when_unset(tmp_path: Path) -> None:
    from datastage.errors import EmptyMaskingKeyError
    from datastage.mask.keys import load_key, write_key_file

    key_file = tmp_path / "masking.key"
    write_key_file(key_file)
    for value in ("", " \t\n"):
        with pytest.raises(EmptyMaskingKeyError, match=r"^DATASTAGE_MASKING_KEY is set but empty"):
            load_key(key_file, {"DATASTAGE_MASKING_KEY": value})
        with pytest.raises(EmptyMaskingKeyError):
            load_key(None, {"DATASTAGE_MASKING_KEY": value})
    assert load_key(key_file, {}).source == str(key_file)
    assert load_key(key_file, {"DATASTAGE_MASKING_KEY": KEY_OF_TESTS_TEXT}).key_id == KEY_OF_TESTS.key_id


def test_report_names_the_key_only_by_its_fingerprint(demo_project: Path) -> None:
    result = datastage.refresh("staging", config=demo_project)
    text = Path(str(result.report.json)).read_text()
    report = json.loads(text)
    assert report["provenance"]["key_id"] == KEY_OF_TESTS.key_id
    assert "test-masking-key" not in text and "test-masking-key" not in Path(str(result.report.html)).read_text()


def test_a_unique_column_of_a_million_rows_masks_without_collisions(tmp_path: Path) -> None:
    model = build_model(tmp_path)
    engine = MaskingEngine(resolve(model, rules_for("customer", {"email": "{strategy: email, unique: true}",
                                                                 "code": "tokenize"})), KEY)
    n, batch = 1_000_000, 100_000
    emails = np.array([f"user{i}@corp{i % 89}.example" for i in range(n)], dtype=object)
    codes = np.array([f"C{i:07d}" for i in range(n)], dtype=object)
    masked_emails, masked_codes = [], []
    for start in range(0, n, batch):
        frame = pd.DataFrame({"email": pd.Series(emails[start:start + batch], dtype=object),
                              "code": pd.Series(codes[start:start + batch], dtype=object)})
        out, stats = engine.mask_batch("customer", frame)
        assert stats.changed["email"] == len(frame) == stats.changed["code"]
        masked_emails.append(out["email"].to_numpy())
        masked_codes.append(out["code"].to_numpy())
    assert len(set(np.concatenate(masked_emails))) == n
    assert len(set(np.concatenate(masked_codes))) == n


REGIONS = """
CREATE TABLE site (region TEXT NOT NULL, code TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (region, code));
CREATE TABLE visit (visit_id INTEGER PRIMARY KEY, region TEXT NOT NULL, code TEXT NOT NULL,
                    FOREIGN KEY (region, code) REFERENCES site (region, code));
CREATE TABLE note (note_id INTEGER PRIMARY KEY, site_code TEXT, site_region TEXT, body TEXT);
"""


def test_composite_and_virtual_foreign_keys_get_the_key_mapping(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "prod.db")
    conn.executescript(REGIONS)
    sites = [(r, f"S{i:03d}", f"site {i}") for i, r in enumerate(["north", "south"] * 20)]
    conn.executemany("INSERT INTO site VALUES (?, ?, ?)", sites)
    conn.executemany("INSERT INTO visit VALUES (?, ?, ?)", [(i, *sites[i % 40][:2]) for i in range(200)])
    conn.executemany("INSERT INTO note VALUES (?, ?, ?, ?)", [(i, sites[i][1], sites[i][0], "x") for i in range(40)])
    conn.commit()
    conn.close()
    (tmp_path / "rules.yaml").write_text("version: 1\ndefault: keep\ntables:\n  site:\n    code: tokenize\n")
    (tmp_path / "datastage.yaml").write_text(
        "source: {url: sqlite:///prod.db}\nenvironments:\n  test:\n    url: sqlite:///test.db\n"
        "    rules: rules.yaml\n    subset:\n      virtual_foreign_keys:\n"
        "        - {table: note, columns: [site_region, site_code], references: site, ref_columns: [region, code]}\n")
    result = datastage.refresh("test", config=tmp_path / "datastage.yaml")
    assert result.verdict == "pass"
    test = sqlite3.connect(tmp_path / "test.db")
    test.execute(f"ATTACH DATABASE '{tmp_path / 'prod.db'}' AS prod")
    codes = dict(test.execute("SELECT p.label, s.code FROM prod.site p JOIN site s USING (label)").fetchall())
    assert len(set(codes.values())) == 40 and all(re.fullmatch(r"[A-Z]\d{3}", c) for c in codes.values())
    real = {label: code for code, label in test.execute("SELECT code, label FROM prod.site").fetchall()}
    assert all(codes[label] != real[label] for label in codes)
    assert test.execute("SELECT count(*) FROM visit v JOIN site s USING (region, code)").fetchone()[0] == 200
    assert test.execute("SELECT count(*) FROM note n JOIN site s ON s.region = n.site_region "
                        "AND s.code = n.site_code").fetchone()[0] == 40
    test.close()
