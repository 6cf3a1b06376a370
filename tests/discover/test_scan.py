"""PII discovery: classification of the demo and of planted kinds, the proposal, the coverage gate."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.discover.proposals import propose_rules
from datastage.discover.scan import scan_source
from datastage.errors import RulesError
from datastage.mask.policy import load_policy, policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import reflect


def _scan(db: Path, sample_rows: int = 1000):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{db}", read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
            return model, scan_source(conn, model, sample_rows=sample_rows)
    finally:
        engine.dispose()


def test_demo_columns_are_classified(demo_project: Path) -> None:
    _, result = _scan(demo_project.parent / "prod.db")
    expected = {
        ("customer", "email"): ("direct_identifier", "email"),
        ("customer", "first_name"): ("direct_identifier", "first_name"),
        ("customer", "last_name"): ("direct_identifier", "last_name"),
        ("customer", "phone"): ("direct_identifier", "phone"),
        ("customer", "birth_date"): ("quasi_identifier", "date_of_birth"),
        ("address", "line1"): ("direct_identifier", "street_address"),
        ("address", "postcode"): ("quasi_identifier", "postcode"),
        ("employee", "salary"): ("sensitive", "financial"),
        ("orders", "ship_email"): ("direct_identifier", "email"),
        ("payment", "card_number"): ("direct_identifier", "card_number"),
        ("payment", "card_holder"): ("direct_identifier", "full_name"),
        ("page_view", "ip_address"): ("direct_identifier", "ip_address"),
        ("support_ticket", "body"): ("direct_identifier", "free_text"),
    }
    for (table, column), (classification, kind) in expected.items():
        finding = result.finding(table, column)
        assert (finding.classification, finding.kind) == (classification, kind), (table, column, finding)
    for table, column in [("product", "name"), ("product", "sku"), ("customer", "country_code"),
                          ("support_ticket", "subject"), ("page_view", "url"), ("orders", "status"),
                          ("department", "name"), ("customer", "created_at"), ("country", "name")]:
        assert result.finding(table, column).classification == "non_personal", (table, column)
    email = result.finding("customer", "email")
    values = next(e for e in email.evidence if e["source"] == "values")
    assert values == {"source": "values", "pattern": "email", "share": 1.0, "matched": 1000, "sampled": 1000}
    assert email.confidence >= 0.95


def test_findings_never_contain_sampled_values(demo_project: Path) -> None:
    db = demo_project.parent / "prod.db"
    _, result = _scan(db)
    text = json.dumps(result.to_dict())
    conn = sqlite3.connect(db)
    values = [r[0] for r in conn.execute("SELECT email FROM customer UNION SELECT first_name || ' ' || last_name "
                                         "FROM customer UNION SELECT card_number FROM payment UNION SELECT body "
                                         "FROM support_ticket")]
    conn.close()
    assert values and not [v for v in values if v in text]


def _planted_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE member (
            member_id INTEGER PRIMARY KEY, account TEXT, reference TEXT, ref2 TEXT, addr TEXT, hash_value TEXT,
            notes TEXT, area TEXT, gender TEXT, api_token TEXT, comment TEXT, mystery BLOB, empty_text TEXT
        );
    """)
    rows = []
    ibans = ["GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
             "NL91ABNA0417164300"]
    ssns = ["123-45-6789", "234-56-7890", "345-67-8901", "456-78-9012"]
    nis = ["AB123456C", "CE 12 34 56 D", "JK987654A", "ST 24 68 02 B"]
    ipv6 = ["2001:db8::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::ffff:c000:280"]
    postcodes = ["SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE"]
    for i in range(200):
        rows.append((i + 1, ibans[i % 4], ssns[i % 4], nis[i % 4], ipv6[i % 4],
                     "$2b$12$" + ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0")[:53],
                     f"Customer asked to refund to IBAN {ibans[i % 4]} before friday, please check soon",
                     postcodes[i % 4], ["female", "male", "diverse"][i % 3], f"{i:032x}",
                     "shipping was quick and the parcel arrived in good condition", b"\x00\x01", None))
    conn.executemany("INSERT INTO member VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_value_patterns_without_telling_names(tmp_path: Path) -> None:
    _, result = _scan(_planted_db(tmp_path / "planted.db"))
    kinds = {c: (result.finding("member", c).classification, result.finding("member", c).kind)
             for c in ("account", "reference", "ref2", "addr", "hash_value", "notes", "area", "gender",
                       "api_token", "comment", "mystery", "empty_text")}
    assert kinds["account"] == ("direct_identifier", "iban")
    assert kinds["reference"] == ("direct_identifier", "national_id")
    assert kinds["ref2"] == ("direct_identifier", "national_id")
    assert kinds["addr"] == ("direct_identifier", "ip_address")
    assert kinds["hash_value"] == ("sensitive", "secret")
    assert kinds["notes"] == ("direct_identifier", "free_text")
    assert kinds["area"] == ("quasi_identifier", "postcode")
    assert kinds["gender"] == ("quasi_identifier", "gender")
    assert kinds["api_token"] == ("sensitive", "secret")  # hex digests count only with a telling name
    assert kinds["comment"] == ("non_personal", None)
    assert kinds["mystery"][0] == "unknown"
    assert kinds["empty_text"][0] == "unknown"


def test_sampling_is_bounded_and_seeded(demo_project: Path) -> None:
    db = demo_project.parent / "prod.db"
    _, small = _scan(db, sample_rows=50)
    assert small.sampled_tables["page_view"] == 50
    _, again = _scan(db, sample_rows=50)
    assert json.dumps(small.to_dict()["columns"]) == json.dumps(again.to_dict()["columns"])
    assert small.finding("customer", "email").classification == "direct_identifier"


def test_proposal_covers_every_column_and_passes_the_rules_checker(demo_project: Path) -> None:
    model, result = _scan(demo_project.parent / "prod.db")
    text = propose_rules(result, model, source="sqlite:///prod.db")
    for table in model.tables.values():
        for column in table.columns:
            assert f"    {column}: " in text or f"    # {column}: " in text, (table.key, column)
    assert "email: {strategy: email, unique: true}   # direct_identifier: e-mail address in 100%" in text
    assert "card_number: card_number" in text
    resolved = resolve_policy(policy_from_text(text), model, personal=result.personal())
    assert resolved.decision("customer", "email").status == "protected"
    assert resolved.decision("support_ticket", "body").status == "protected"
    assert resolved.decision("product", "name").status == "non_personal"


def test_refresh_with_the_proposed_rules_passes_every_check(demo_project: Path) -> None:
    proposed = demo_project.parent / "rules" / "proposed.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["scan", "--config", str(demo_project), "--write", str(proposed)])
    assert result.exit_code == 0, result.output
    assert "proposed rules written to" in result.output
    again = runner.invoke(main, ["scan", "--config", str(demo_project), "--write", str(proposed)])
    assert again.exit_code == 2 and "pass --force" in again.output
    refreshed = datastage.refresh("staging", rules=proposed, config=demo_project)
    assert refreshed.verdict == "pass", [c.summary for c in refreshed.checks if c.status != "PASS"]
    assert {c.status for c in refreshed.checks} == {"PASS"}


def test_scan_write_creates_the_folders_of_its_file(demo_project: Path) -> None:
    proposed = demo_project.parent / "new" / "folder" / "proposed.yaml"
    result = CliRunner().invoke(main, ["scan", "--config", str(demo_project), "--write", str(proposed)])
    assert result.exit_code == 0, result.output
    assert proposed.read_text(encoding="utf-8").startswith("# Proposed by `datastage scan --write`")
    assert datastage.check_rules(proposed, config=demo_project).ok
    # A folder that cannot be made (a file holds its name) is one error line, and nothing is written.
    blocked = demo_project.parent / "prod.db" / "proposed.yaml"
    refused = CliRunner().invoke(main, ["scan", "--config", str(demo_project), "--write", str(blocked)])
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines()[-1].startswith(f"error: cannot write {blocked}: ")
    assert "Traceback" not in refused.output


def test_scan_cli_json_and_env_gaps(demo_project: Path) -> None:
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(_keep_body(rules.read_text()))
    result = CliRunner().invoke(main, ["scan", "--config", str(demo_project), "--env", "staging", "--json",
                                       "--sample", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["sample_rows"] == 200 and data["environment"] == "staging"
    assert data["gaps"] == ["support_ticket.body"]
    body = next(c for c in data["columns"] if c["column"] == "body")
    assert body["rule"] == "keep" and body["classification"] == "direct_identifier"
    text = CliRunner().invoke(main, ["scan", "--config", str(demo_project), "--env", "staging"])
    assert text.exit_code == 0
    assert "kept without a reason or without a rule" in text.output


def _keep_body(rules_text: str) -> str:
    """The demo rules with support_ticket.body kept as is (its regex block replaced)."""
    edited = re.sub(r"(?ms)^    body:.*?(?=^    status: keep)", "    body: keep\n", rules_text)
    assert edited != rules_text
    return edited


def _with_rule(demo_project: Path, old: str, new: str) -> Path:
    rules = demo_project.parent / "rules" / "pii.yaml"
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new))
    return rules


def test_gate_stops_a_personal_column_kept_without_reason(demo_project: Path) -> None:
    rules = demo_project.parent / "rules" / "pii.yaml"
    rules.write_text(_keep_body(rules.read_text()))
    line = next(n for n, text in enumerate(rules.read_text().splitlines(), 1) if text.startswith("    body: keep"))
    staging = demo_project.parent / "staging.db"
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith(f"error: {rules}:{line}: ")
    assert "support_ticket.body (direct_identifier: free text containing personal data" in message
    assert "kept without a reason" in message
    assert not staging.exists()


def test_gate_accepts_a_reason(demo_project: Path) -> None:
    _with_rule(demo_project, "    card_holder: fake.name", "    card_holder: {strategy: keep, reason: \"reviewed\"}")
    planned = datastage.plan("staging", config=demo_project)
    assert planned.policy.decision("payment", "card_holder").status == "kept-with-reason"


def test_gate_covers_default_keep_and_kept_tables(demo_project: Path) -> None:
    model, result = _scan(demo_project.parent / "prod.db")
    text = (demo_project.parent / "rules" / "pii.yaml").read_text()
    defaulted = text.replace("default: fail", "default: keep").replace("    ip_address: fake.ipv4\n", "")
    with pytest.raises(RulesError, match=r"page_view.ip_address \(direct_identifier: IP address"):
        resolve_policy(policy_from_text(defaulted), model, personal=result.personal())
    table_kept = re.sub(r"(?ms)^  payment:\n.*?(?=^  support_ticket:)", "  payment: keep\n", text)
    assert table_kept != text
    with pytest.raises(RulesError, match=r"payment.card_holder .* also payment.card_number"):
        resolve_policy(policy_from_text(table_kept), model, personal=result.personal(),
                       kept_from_target={"app_settings"})
    # Without the scan's classification the same policy resolves (the gate is what stops it).
    resolve_policy(policy_from_text(table_kept), model, kept_from_target={"app_settings"})
    resolve_policy(load_policy(demo_project.parent / "rules" / "pii.yaml"), model, personal=result.personal(),
                   kept_from_target={"app_settings"})


# -- scan --write round trip: names YAML would misread --------------------------------------

# Names every dialect allows (MariaDB: the Unicode BMP, no trailing blank), then per dialect.
HOSTILE_NAMES = [
    "no", "on", "off", "yes", "null", "~", "true", "false", "1e3", "0x1F", "010", "0o17", ".5", "-1", "+1", ".inf",
    "a:b", "a: b", "#hash", "a #b", " lead", "quote'", 'dq"', "back\\slash", "<<", "? q", "[x", "{x}", "*star",
    "&amp", "!bang", "%pct", "@at", "`tick", "|pipe", ">gt", ",comma", "-dash", "- item", "=", "'", '"',
    "名前", "new\nline", "tab\there", "cr\rlf", "line\u2028sep", "nel\x85x", "bom\ufeff",
]
MORE_NAMES = {"sqlite": ["😀", "trail ", "x" * 1100], "postgresql": ["😀", "trail "], "mysql": []}
HOSTILE_TABLES = {"sqlite": ["no", "客户 😀", "a: b #c", "new\nline", "~"],
                  "postgresql": ["no", "客户 😀", "a: b #c", "new\nline", "~"],
                  "mysql": ["no", "客户", "a: b #c", "new\nline", "~"]}


def _hostile_source(url: str, dialect: str) -> dict[str, set[str]]:
    """Tables and columns with hostile names (and a foreign key between two of them) at ``url``."""
    names = HOSTILE_NAMES + MORE_NAMES[dialect]
    fifth_column = "new\nline"
    if dialect == "mysql":
        # SQLAlchemy's MariaDB reflection doubles a backtick in a column name and drops a column
        # whose name holds a line feed (problems of reflection, not of writing YAML): left out there.
        names = [n for n in names if "`" not in n and "\n" not in n]
        fifth_column = "new\rline"
    first, second, third, fourth, fifth = HOSTILE_TABLES[dialect]
    metadata = sa.MetaData()
    sa.Table(first, metadata, sa.Column("id", sa.Integer, primary_key=True),
             *[sa.Column(n, sa.String(100)) for n in names])
    sa.Table(second, metadata, sa.Column("010", sa.String(100), primary_key=True), sa.Column("yes", sa.String(100)))
    sa.Table(third, metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("no", sa.String(100), sa.ForeignKey(metadata.tables[second].c["010"])),
             sa.Column("null", sa.String(100)))
    sa.Table(fourth, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("~", sa.String(100)))
    sa.Table(fifth, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column(fifth_column, sa.String(100)))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            emails = [f"person{i}@example.com" for i in range(30)]
            conn.execute(metadata.tables[second].insert(), [{"010": e, "yes": "x"} for e in emails])
            conn.execute(metadata.tables[third].insert(), [{"id": i, "no": e} for i, e in enumerate(emails, 1)])
            conn.execute(metadata.tables[first].insert(), [{"id": i, "no": e, "on": f"+44 20 7946 {i:04d}"}
                                                           for i, e in enumerate(emails, 1)])
    finally:
        engine.dispose()
    return {t.name: {c.name for c in t.columns} for t in metadata.tables.values()}


def _scan_round_trip(url: str, dialect: str, tmp_path: Path) -> None:
    created = _hostile_source(url, dialect)
    config = tmp_path / "datastage.yaml"
    config.write_text(f"source: {{url: {json.dumps(url)}}}\nenvironments:\n  staging: {{url: 'sqlite:///s.db'}}\n")
    proposed = tmp_path / "proposed.yaml"
    result = CliRunner().invoke(main, ["scan", "--config", str(config), "--write", str(proposed)])
    assert result.exit_code == 0, result.output
    policy = load_policy(proposed)
    # Every table and column name reads back as exactly the name the database has.
    assert set(policy.tables) == set(created)
    written = {t: set(rule.columns) for t, rule in policy.tables.items()}
    second, third = HOSTILE_TABLES[dialect][1], HOSTILE_TABLES[dialect][2]
    assert written[third] == created[third] - {"no"}  # the foreign key inherits its parent's masking rule
    assert {t: c for t, c in written.items() if t != third} == {t: c for t, c in created.items() if t != third}
    assert policy.tables[second].columns["010"].strategy == "email"  # a masked key under a hostile name
    assert policy.tables[HOSTILE_TABLES[dialect][0]].columns["no"].strategy == "email"
    # Nothing a name holds escapes its line: the file has one line per entry (plus '? key' pairs).
    text = proposed.read_text(encoding="utf-8")
    rules_lines = [line for line in text.split("\n") if line.startswith("    ") and not line.startswith("    #")]
    columns = sum(len(c) for c in written.values())
    long_keys = sum(1 for line in rules_lines if line.startswith("    ? "))
    assert len(rules_lines) == columns + long_keys
    # ... and the rules checker accepts it against the real database.
    checked = CliRunner().invoke(main, ["rules", "check", "--config", str(config), "--rules", str(proposed)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.strip().endswith("0 warning(s))"), checked.output


def test_scan_write_round_trips_hostile_names_on_sqlite(tmp_path: Path) -> None:
    _scan_round_trip(f"sqlite:///{tmp_path / 'hostile.db'}", "sqlite", tmp_path)


def test_scan_write_round_trips_hostile_names_on_postgresql(pg_databases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _scan_round_trip(pg_databases.create("ds_names"), "postgresql", tmp_path)


# The table named with a line feed reflects fine; SQLAlchemy only warns about the first line of its DDL.
@pytest.mark.filterwarnings("ignore:Unknown schema content")
def test_scan_write_round_trips_hostile_names_on_mariadb(mysql_databases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _scan_round_trip(mysql_databases.create("ds_names"), "mysql", tmp_path)
