"""Proposed rules right by construction: one rule per identifier kind on a generated SQLite schema (text,
integer, date and binary columns, keys, NOT NULL, lengths), each checked by the rules checker; one person
per row (``person.*`` following the row's e-mail); REVIEW markers where a person has to decide."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from maskkit import reflect_sqlite

from datastage.discover.proposals import propose_rules
from datastage.discover.scan import ColumnFinding, ScanResult, scan_source
from datastage.identify.kinds import KINDS
from datastage.mask.policy import load_policy
from datastage.mask.registry import get_strategy
from datastage.rulescheck import check_policy_file
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect

SCRUB = get_strategy("scrub") is not None
REVIEW = "REVIEW"

# (case, column type, kind, value kinds the scan measured, the exact rule proposed; REVIEW: a person decides)
CASES: list[tuple[str, str, str, dict[str, float], str]] = [
    ("first", "TEXT", "first_name", {}, "person.first_name"),
    ("first_short", "VARCHAR(4)", "first_name", {}, "tokenize"),  # no fake name is longer than the column
    ("last", "TEXT NOT NULL", "last_name", {}, "person.last_name"),
    ("full", "TEXT", "full_name", {}, "person.full_name"),
    ("full_key", "TEXT UNIQUE", "full_name", {}, "{strategy: tokenize, unique: true}"),
    ("username", "TEXT", "username", {}, "person.username"),
    ("username_key", "TEXT NOT NULL UNIQUE", "username", {}, "{strategy: tokenize, unique: true}"),
    ("email", "TEXT", "email", {}, "email"),
    ("email_key", "TEXT NOT NULL UNIQUE", "email", {}, "{strategy: email, unique: true}"),
    ("email_short_key", "VARCHAR(20), UNIQUE (c)", "email", {}, "{strategy: tokenize, unique: true}"),
    ("phone", "TEXT", "phone", {}, "phone"),
    ("phone_key", "TEXT UNIQUE", "phone", {}, "{strategy: phone, unique: true}"),
    ("phone_int", "INTEGER", "phone", {}, "tokenize"),
    ("fax", "TEXT", "fax", {}, "phone"),
    ("card", "TEXT", "card_number", {}, "card_number"),
    ("card_int", "BIGINT", "card_number", {}, "tokenize"),
    ("iban", "TEXT", "iban", {}, "iban"),
    ("ssn", "TEXT NOT NULL UNIQUE", "national_id", {}, "{strategy: tokenize, unique: true}"),
    ("tax", "TEXT", "tax_id", {}, "tokenize"),
    ("passport", "VARCHAR(9)", "passport", {}, "tokenize"),
    ("licence", "TEXT", "drivers_licence", {}, "tokenize"),
    ("certificate", "TEXT", "licence_number", {}, "tokenize"),
    ("mrn", "INTEGER NOT NULL UNIQUE", "medical_record_number", {}, "{strategy: tokenize, unique: true}"),
    ("member", "TEXT", "health_plan_id", {}, "tokenize"),
    ("account", "TEXT", "account_number", {}, "tokenize"),
    ("plate", "TEXT", "vehicle_id", {}, "tokenize"),
    ("serial", "TEXT", "device_id", {}, "tokenize"),
    ("badge", "INTEGER", "other_identifier", {}, "tokenize"),
    ("ip", "TEXT", "ip_address", {}, "tokenize"),
    ("homepage", "TEXT", "url", {}, "{strategy: hash, length: 32}"),
    ("street", "TEXT", "street_address", {}, "fake.street_address"),
    ("street_short", "VARCHAR(10)", "street_address", {}, "tokenize"),
    ("city", "TEXT", "city", {}, "fake.city"),
    ("zip", "TEXT", "postcode", {}, "{strategy: generalize, keep: 2}"),
    ("zip_int", "INTEGER", "postcode", {}, "{strategy: generalize, bucket: 100}"),
    ("zip_key", "TEXT UNIQUE", "postcode", {}, "{strategy: tokenize, unique: true}"),
    ("geo", "REAL", "geo_coordinates", {}, "{strategy: noise, absolute: 0.01}"),
    ("geo_text", "TEXT", "geo_coordinates", {}, "tokenize"),
    ("born", "DATE", "date_of_birth", {}, "{strategy: generalize, to: year}"),
    ("born_at", "TIMESTAMP", "date_of_birth", {}, "{strategy: generalize, to: year}"),
    # Text: a date strategy only where every sampled value is an ISO date (others would stay as they are).
    ("born_text", "TEXT", "date_of_birth", {}, "tokenize"),
    ("born_iso", "TEXT", "date_of_birth", {"iso_date": 1.0}, "{strategy: generalize, to: year}"),
    ("born_year", "INTEGER", "date_of_birth", {}, REVIEW),
    ("admitted", "DATE", "event_date", {}, "date_shift"),
    ("admitted_text", "TEXT", "event_date", {}, "tokenize"),
    ("admitted_iso", "TEXT", "event_date", {"iso_date": 1.0}, "date_shift"),
    ("age", "INTEGER", "age", {}, "{strategy: generalize, bucket: 5}"),
    ("age_text", "TEXT", "age", {}, "tokenize"),
    ("salary", "NUMERIC(10, 2)", "financial", {}, "{strategy: noise, relative: 0.1}"),
    ("salary_text", "TEXT", "financial", {}, "tokenize"),
    ("password", "VARCHAR(20)", "secret", {}, "{strategy: hash, length: 20}"),
    ("token", "TEXT", "secret", {}, "{strategy: hash, length: 32}"),
    ("pin", "VARCHAR(6)", "secret", {}, "tokenize"),
    ("photo", "BLOB", "photo", {}, "'null'"),
    ("photo_required", "BLOB NOT NULL", "photo", {}, REVIEW),
    ("fingerprint", "BLOB", "biometric", {}, "'null'"),
    ("genome", "TEXT NOT NULL", "genetic", {}, REVIEW),
    ("race", "TEXT", "ethnicity", {}, "'null'"),
    ("race_required", "TEXT NOT NULL", "ethnicity", {}, REVIEW),
    ("party", "TEXT", "political_opinion", {}, "'null'"),
    ("faith", "TEXT", "religion", {}, "'null'"),
    ("union_member", "INTEGER", "trade_union", {}, "'null'"),
    ("diagnosis", "TEXT", "health_condition", {}, "'null'"),
    ("drug", "TEXT", "medication", {}, "'null'"),
    ("orientation", "TEXT", "sexual_orientation", {}, "'null'"),
    ("conviction", "TEXT", "criminal_record", {}, "'null'"),
    ("gender", "TEXT", "gender", {}, REVIEW),
    ("sex", "INTEGER NOT NULL", "gender", {}, REVIEW),
    ("title", "VARCHAR(8)", "name_affix", {}, REVIEW),  # Mr./Dr./Jr.: a quasi-identifier a person declares
    ("notes", "TEXT", "free_text", {}, "scrub" if SCRUB else "fake.paragraph"),
    ("comment", "VARCHAR(100)", "free_text", {}, "scrub" if SCRUB else "fake.sentence"),
    ("payload", "JSON", "free_text", {}, "scrub" if SCRUB else "'null'"),
]


def _finding(table: str, column: str, category: str, kind: str | None,
             value_kinds: dict[str, float] | None = None) -> ColumnFinding:
    if kind is None:
        return ColumnFinding(table, column, "", category, "non_personal", 0.9, None, [], 100)
    return ColumnFinding(table, column, "", category, KINDS[kind].classification, 0.9, kind,
                         [{"source": "name", "pattern": kind}], 100, "", dict(value_kinds or {}))


def _personal(result: ScanResult) -> dict[tuple[str, str], str]:
    """The scan's personal columns, as the coverage gate takes them."""
    return {slot: f"{f.classification}: {f.kind}" for slot, f in result.findings.items() if f.personal}


def _scan_of(model: SchemaModel, kinds: dict[tuple[str, str], tuple[str, dict[str, float]]]) -> ScanResult:
    """What a scan would find: the given kinds, every other column non-personal."""
    findings = {}
    for key, table in model.tables.items():
        for name, column in table.columns.items():
            kind, shares = kinds.get((key, name), (None, {}))
            findings[(key, name)] = _finding(key, name, column.category, kind, shares)
    return ScanResult(findings, 100, 0)


def _rules(text: str) -> dict[tuple[str, str], str]:
    """(table, column) -> the rule as written in the proposal (the comment cut off)."""
    out: dict[tuple[str, str], str] = {}
    table = None
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.endswith(":"):
            table = line.strip()[:-1]
        elif line.startswith("    ") and not line.startswith("    #") and table:
            column, rule = line.strip().split(": ", 1)
            out[(table, column)] = rule.split("   # ")[0]
        elif line.startswith("    # ") and table:
            out[(table, line[6:].split(": ", 1)[0])] = "(inherited)"
    return out


@pytest.fixture(scope="module")
def per_kind(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SchemaModel, ScanResult, str]:
    folder = tmp_path_factory.mktemp("kinds")
    ddl = "".join(f"CREATE TABLE t_{case} (id INTEGER PRIMARY KEY, c {type_});" for case, type_, *_ in CASES)
    model = reflect_sqlite(folder / "prod.db", ddl)
    result = _scan_of(model, {(f"t_{case}", "c"): (kind, shares) for case, _, kind, shares, _ in CASES})
    text = propose_rules(result, model, source="sqlite:///prod.db")
    rules = folder / "proposed.yaml"
    rules.write_text(text, encoding="utf-8")
    return rules, model, result, text


def test_the_cases_cover_every_kind_of_the_taxonomy() -> None:
    assert {kind for _, _, kind, _, _ in CASES} == set(KINDS)


@pytest.mark.parametrize(("case", "type_", "kind", "shares", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_gets_its_rule(per_kind: tuple[Path, SchemaModel, ScanResult, str], case: str, type_: str,
                                 kind: str, shares: dict[str, float], expected: str) -> None:
    path, _, _, text = per_kind
    written = _rules(text)[(f"t_{case}", "c")]
    rule = load_policy(path).tables[f"t_{case}"].columns["c"]
    if expected == REVIEW:
        assert written.startswith("{strategy: keep, reason: ") and rule.is_keep, written
        assert rule.review is not None and rule.review.startswith("REVIEW: "), written
        assert KINDS[kind].label in rule.review
    else:
        assert written == expected
        assert rule.review is None
    assert written.split()[0] != "keep"  # a personal column is never kept without a word


def test_the_proposal_passes_the_rules_checker_but_for_its_review_markers(
        per_kind: tuple[Path, SchemaModel, ScanResult, str]) -> None:
    path, model, result, text = per_kind
    checked = check_policy_file(path, model, personal=_personal(result), strict=True)
    lines = text.splitlines()
    reviews = {f"t_{case}" for case, *_, expected in CASES if expected == REVIEW}
    assert sorted(e.key for e in checked.errors) == sorted(f"tables.{t}.c" for t in reviews), checked.failed
    for error in checked.errors:
        assert error.file == str(path) and error.line is not None
        assert lines[error.line - 1].startswith("    c: {strategy: keep, reason: "), error
        assert "REVIEW: " in str(error) and "a person has to decide this rule" in str(error)
    assert checked.exit_code == 2
    # Once a person has decided (here: the marker edited away), the file passes, --strict included.
    decided = path.with_name("decided.yaml")
    decided.write_text(text.replace("REVIEW: ", "kept after review: "), encoding="utf-8")
    again = check_policy_file(decided, model, personal=_personal(result), strict=True)
    assert again.ok, again.failed
    assert again.policy is not None
    statuses = {d.status for (t, c), d in again.policy.decisions.items() if c == "c"}
    assert statuses == {"protected", "kept-with-reason"}


# -- one person per row ---------------------------------------------------------------------------

PEOPLE_DDL = """
CREATE TABLE patient (id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL, maiden TEXT,
    email TEXT UNIQUE, login TEXT, emergency_contact_first_name TEXT, emergency_contact_last_name TEXT,
    card_holder TEXT);
CREATE TABLE encounter (id INTEGER PRIMARY KEY, patient_id INTEGER REFERENCES patient (id), started DATE,
    code TEXT);
CREATE TABLE contact (first_name TEXT, last_name TEXT, phone TEXT);
CREATE TABLE member (code TEXT NOT NULL UNIQUE, display_name TEXT);
CREATE TABLE kunde (id INTEGER PRIMARY KEY, vorname TEXT, nachname TEXT);
CREATE TABLE account (user_name TEXT PRIMARY KEY, email TEXT);
CREATE TABLE session (id INTEGER PRIMARY KEY, user_name TEXT REFERENCES account (user_name), started DATE);
"""
PEOPLE = {
    ("patient", "first"): "first_name", ("patient", "last"): "last_name", ("patient", "maiden"): "last_name",
    ("patient", "email"): "email", ("patient", "login"): "username",
    ("patient", "emergency_contact_first_name"): "first_name",
    ("patient", "emergency_contact_last_name"): "last_name", ("patient", "card_holder"): "full_name",
    ("encounter", "started"): "event_date",
    ("contact", "first_name"): "first_name", ("contact", "last_name"): "last_name", ("contact", "phone"): "phone",
    ("member", "display_name"): "full_name",
    ("kunde", "vorname"): "first_name", ("kunde", "nachname"): "last_name",
    ("account", "user_name"): "username", ("account", "email"): "email",
    ("session", "user_name"): "username", ("session", "started"): "event_date",
}


def test_the_names_of_one_person_follow_the_rows_email(tmp_path: Path) -> None:
    model = reflect_sqlite(tmp_path / "prod.db", PEOPLE_DDL)
    result = _scan_of(model, {slot: (kind, {}) for slot, kind in PEOPLE.items()})
    text = propose_rules(result, model)
    rules = _rules(text)
    assert {c: r for (t, c), r in rules.items() if t == "patient"} == {
        "id": "keep",
        "first": "person.first_name", "last": "person.last_name",  # by the e-mail (the engine's default)
        "email": "{strategy: email, unique: true}",
        "login": "person.username",
        # Other people in the row: each named by their own name columns.
        "card_holder": "{strategy: person.full_name, by: card_holder}",
        "maiden": "{strategy: person.last_name, by: maiden}",
        "emergency_contact_first_name": "{strategy: person.first_name, by: [emergency_contact_first_name, "
                                        "emergency_contact_last_name]}",
        "emergency_contact_last_name": "{strategy: person.last_name, by: [emergency_contact_first_name, "
                                       "emergency_contact_last_name]}",
    }
    # Every date of one patient shifts alike, so intervals between a patient's encounters survive.
    assert rules[("encounter", "started")] == "{strategy: date_shift, by: patient_id}"
    # No e-mail rule and no primary key: the person's own names name them; a unique key where there is one.
    assert rules[("contact", "first_name")] == "{strategy: person.first_name, by: [first_name, last_name]}"
    assert rules[("contact", "last_name")] == "{strategy: person.last_name, by: [first_name, last_name]}"
    assert rules[("contact", "phone")] == "phone"
    assert rules[("member", "display_name")] == "{strategy: person.full_name, by: code}"
    assert (rules[("kunde", "vorname")], rules[("kunde", "nachname")]) == ("person.first_name", "person.last_name")
    # A user name that is a key is tokenized (unique by construction); the reference inherits it.
    assert rules[("account", "user_name")] == "{strategy: tokenize, unique: true}"
    assert rules[("session", "user_name")] == "(inherited)"
    assert rules[("session", "started")] == "{strategy: date_shift, by: user_name}"
    path = tmp_path / "proposed.yaml"
    path.write_text(text)
    checked = check_policy_file(path, model, personal=_personal(result), strict=True)
    assert checked.ok, checked.failed
    assert checked.policy is not None
    by = {c: d.rule.params.get("by") for (t, c), d in checked.policy.decisions.items()
          if t == "patient" and d.rule is not None and (d.rule.strategy or "").startswith("person.")}
    assert by["first"] == by["last"] == by["login"] == "email"


def test_a_refresh_with_the_proposal_gives_each_row_one_person(tmp_path: Path) -> None:
    import datastage

    source = tmp_path / "prod.db"
    connection = sqlite3.connect(source)
    connection.executescript(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,"
        " email TEXT NOT NULL UNIQUE, phone TEXT);")
    people = [("James", "Smith"), ("Mary", "Johnson"), ("Robert", "Williams"), ("Patricia", "Brown"),
              ("John", "Jones"), ("Jennifer", "Garcia"), ("Michael", "Miller"), ("Linda", "Davis")] * 5
    connection.executemany(
        "INSERT INTO customer (first_name, last_name, email, phone) VALUES (?, ?, ?, ?)",
        [(f, lname, f"{f.lower()}.{lname.lower()}{i}@example.org", f"+1 415 555 {i:04d}")
         for i, (f, lname) in enumerate(people)])
    connection.commit()
    connection.close()
    config = tmp_path / "datastage.yaml"
    config.write_text("source: {url: 'sqlite:///prod.db'}\n"
                      "environments: {staging: {url: 'sqlite:///staging.db', rules: proposed.yaml}}\n")
    outcome = datastage.scan(config=config)
    (tmp_path / "proposed.yaml").write_text(datastage.propose_rules(outcome))
    refreshed = datastage.refresh("staging", config=config)
    assert refreshed.verdict == "pass", [(c.name, c.summary) for c in refreshed.checks if c.status != "PASS"]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'staging.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT first_name, last_name, email, phone FROM customer").fetchall()
    finally:
        engine.dispose()
    assert len(rows) == len(people)
    for first, last, email, phone in rows:
        local = email.split("@")[0].split(".")
        assert (local[0], local[1]) == (_ascii(first), _ascii(last))  # the names are the e-mail's person
        assert phone.startswith("+1 ") and len(phone) == len("+1 415 555 0000")  # format kept
    assert not {(f, lname) for f, lname, _, _ in rows} & set(people)


def _ascii(name: str) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
                   if ch.isalnum())


def test_a_real_scan_proposes_no_date_strategy_for_a_text_column_named_birth(tmp_path: Path) -> None:
    """``birthplace`` (text, town names) and ``birth_date`` (text, not dates) never get a date strategy."""
    source = tmp_path / "prod.db"
    connection = sqlite3.connect(source)
    connection.executescript("CREATE TABLE person (id INTEGER PRIMARY KEY, birthplace TEXT, birth_date TEXT,"
                             " born DATE);")
    connection.executemany("INSERT INTO person (birthplace, birth_date, born) VALUES (?, ?, ?)",
                           [("Springfield", "12/06/1984", "1984-06-12"), ("Shelbyville", "03/01/1990", "1990-01-03")]
                           * 10)
    connection.commit()
    connection.close()
    engine = make_engine(f"sqlite:///{source}", read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
            result = scan_source(conn, model)
    finally:
        engine.dispose()
    rules = _rules(propose_rules(result, model))
    for column in ("birthplace", "birth_date"):
        assert "generalize" not in rules[("person", column)] and "date_shift" not in rules[("person", column)]
    if result.finding("person", "born").personal:
        assert rules[("person", "born")] == "{strategy: generalize, to: year}"



def test_free_text_gets_scrub_where_it_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datastage.mask.contract import REGISTRY, StrategySpec

    monkeypatch.setitem(REGISTRY, "scrub", StrategySpec(name="scrub", func=lambda values, ctx: values,
                                                        types=frozenset({"text", "json"})))
    model = reflect_sqlite(tmp_path / "prod.db", "CREATE TABLE ticket (id INTEGER PRIMARY KEY, body TEXT NOT NULL,"
                                         " short VARCHAR(80), payload JSON);")
    result = _scan_of(model, {("ticket", c): ("free_text", {}) for c in ("body", "short", "payload")})
    rules = _rules(propose_rules(result, model))
    assert [rules[("ticket", c)] for c in ("body", "short", "payload")] == ["scrub", "scrub", "scrub"]
