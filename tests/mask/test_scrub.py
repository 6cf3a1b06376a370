"""``scrub``: identifiers inside free text and JSON strings masked exactly as their columns are, every other
character kept; real refreshes on SQLite, PostgreSQL and MariaDB whose leak checks search the scrubbed
columns; the labelled corpus's span recall and share of other words kept."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from load_support import rows as server_rows
from maskkit import KEY, OTHER_KEY, build_model, mask_frame, resolve, rules_for
from scrub_corpus import generate, measure, replaced_regions

import datastage
from datastage.cards import is_test_card, luhn_valid
from datastage.errors import RulesError
from datastage.identify.spans import find_spans
from datastage.mask.engine import MaskingEngine
from datastage.mask.strategies.scrub import is_name_rule
from datastage.source.schema import SchemaModel

COLUMNS = {"email": "email", "first_name": "person.first_name", "last_name": "person.last_name", "phone": "phone",
           "card": "card_number", "iban": "iban", "username": "tokenize", "notes": "scrub"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("scrub"))


def customers(**columns: list[Any]) -> dict[str, list[Any]]:
    n = len(next(iter(columns.values())))
    base = {"customer_id": list(range(1, n + 1)), "email": [f"c{i}@shop.example" for i in range(n)],
            "first_name": [f"Xandrel{i}" for i in range(n)], "last_name": [f"Quorvin{i}" for i in range(n)],
            "phone": [None] * n, "card": [None] * n, "iban": [None] * n, "username": [None] * n}
    return {**base, **columns}


def scrubbed(model: SchemaModel, data: dict[str, list[Any]], columns: dict[str, str] | None = None,
             key: Any = KEY) -> pd.DataFrame:
    return mask_frame(model, rules_for("customer", columns or COLUMNS), "customer", data, key=key)


# -- each kind masks to what its column gives it ---------------------------------------------

def test_each_kind_in_a_note_masks_to_its_columns_value(model: SchemaModel) -> None:
    template = ("Spoke with {first_name} {last_name} <{email}>, tel {phone}; card {card}, IBAN {iban}, "
                "passport no. {username}. Thanks!")
    real = {"email": "Margorie.C@example.org", "first_name": "Margorie48", "last_name": "Cormier289",
            "phone": "(415) 555-0142", "card": "4539 1488 0343 6467", "iban": "GB82 WEST 1234 5698 7654 32",
            "username": "X1234567"}
    note = template.format(**real)
    out = scrubbed(model, customers(**{k: [v] for k, v in real.items()}, notes=[note]))
    masked = {k: out[k][0] for k in real}
    assert out["notes"][0] == template.format(**masked)
    assert masked["first_name"] != "Margorie48" and is_test_card(masked["card"].replace(" ", ""))


@pytest.mark.parametrize(("note", "kind"), [
    ("SSN 999-33-2827 verified", "national_id"),
    ("NI number AB 12 34 56 C verified", "national_id"),
    ("DL# S123-4567-8901 verified", "drivers_licence"),
    ("Member ID: ABC123456 verified", "health_plan_id"),
    ("login from 192.168.10.20 verified", "ip_address"),
    ("https://www.linkedin.com/in/ann-lee-42 verified", "url"),
])
def test_ids_mask_like_a_tokenize_column(model: SchemaModel, note: str, kind: str) -> None:
    span = next(t for k, t in zip(find_spans([note]).kind, find_spans([note]).texts([note]), strict=True) if k == kind)
    out = scrubbed(model, customers(username=[span], notes=[note]))
    assert out["notes"][0] == note.replace(span, out["username"][0]) and out["username"][0] != span


def test_names_come_from_the_row_then_the_table_then_the_dictionaries(model: SchemaModel) -> None:
    notes = ["MARGORIE asked about quorvin7; Xandrel Brixtoul is her brother, Dr. Peteuil and Mary Smith agreed.",
             "Nothing personal, just Dr. Peteuil and Mary Smith again."]
    # Digits glued to a stored name are no part of it: quorvin7 is Quorvin7, Margorie the same as Margorie48.
    data = customers(first_name=["Margorie48", "Xandrel"], last_name=["Quorvin7", "Brixtoul12"], notes=notes)
    out = scrubbed(model, data)
    first, last = out["first_name"].tolist(), out["last_name"].tolist()
    words = out["notes"][0].split(" ")
    assert words[0] == first[0].upper() and words[3] == last[0].lower() + ";"
    assert words[4:6] == [first[1], last[1]]  # another row's name: that row's masked name
    # Dictionary names get a keyed fake, the same in every value; titles and other words stay.
    tail = out["notes"][0].split("brother, ")[1]
    assert tail.startswith("Dr. ") and "Peteuil" not in tail and "Mary" not in tail and tail.endswith(" agreed.")
    assert tail.replace(" agreed.", "") in out["notes"][1]


def test_other_words_spaces_and_non_ascii_text_stay_exactly(model: SchemaModel) -> None:
    note = ("顧客 Zoë Ørsted様、メール zoë.orsted@exemple.fr 😀 電話 +33 1 23 45 67 89 ありがとう!\n"
            "Straße,  Größe ß…   café — naïve\t«ok» Zoë's file.")
    data = customers(first_name=["Zoë"], last_name=["Ørsted"], email=["zoë.orsted@exemple.fr"],
                     phone=["+33 1 23 45 67 89"], notes=[note])
    out = scrubbed(model, data)
    expected = (note.replace("Zoë Ørsted", f"{out['first_name'][0]} {out['last_name'][0]}")
                .replace("zoë.orsted@exemple.fr", out["email"][0]).replace("+33 1 23 45 67 89", out["phone"][0])
                .replace("Zoë's", f"{out['first_name'][0]}'s"))
    assert out["notes"][0] == expected


def test_names_in_scripts_without_spaces_become_the_rows_masked_names(model: SchemaModel) -> None:
    out = scrubbed(model, customers(first_name=["太郎"], last_name=["田中"], notes=["田中太郎様、ご連絡ください。"]))
    assert out["notes"][0] == f"{out['last_name'][0]}{out['first_name'][0]}様、ご連絡ください。"


def test_text_without_identifiers_is_returned_unchanged(model: SchemaModel) -> None:
    notes = ["Order #48213 shipped on 2024-01-15, total $1,234.56.", "", "   ", "Will call back in May.", None]
    out = scrubbed(model, customers(notes=notes))
    assert out["notes"].tolist() == notes


def test_scrub_is_deterministic_and_keyed(model: SchemaModel) -> None:
    data = customers(notes=["Dr. Peteuil wrote to ann@x.org from +44 20 7946 0018."] * 2)
    first, again = scrubbed(model, data), scrubbed(model, data)
    other = scrubbed(model, data, key=OTHER_KEY)
    assert first["notes"].tolist() == again["notes"].tolist()
    assert first["notes"][0] == first["notes"][1] != other["notes"][0]


def test_json_strings_are_scrubbed_keys_numbers_and_layout_kept(model: SchemaModel) -> None:
    doc = '{"contact": {"email": "ann@x.org", "Ann Lee": 5},\n  "notes": ["Ann Lee called", "no data"], "n": 7}'
    untouched = '{"notes": ["nothing here"], "n": 1}'
    columns = {**COLUMNS, "doc": "scrub"}
    out = scrubbed(model, customers(first_name=["Ann", "Bob"], last_name=["Lee", "Ray"], email=["ann@x.org", "b@x.org"],
                                    doc=[doc, untouched]), columns)
    masked = json.loads(out["doc"][0])
    assert list(masked["contact"]) == ["email", "Ann Lee"] and masked["contact"]["Ann Lee"] == 5
    assert masked["contact"]["email"] == out["email"][0] and masked["n"] == 7
    assert masked["notes"] == [f"{out['first_name'][0]} {out['last_name'][0]} called", "no data"]
    assert out["doc"][0].startswith('{"contact": {"email": "') and ',\n  "notes": [' in out["doc"][0]
    assert out["doc"][1] == untouched
    # Text that only looks like JSON is scrubbed as text.
    text = scrubbed(model, customers(notes=["{Mary} wrote mary@x.org"]))["notes"][0]
    assert re.fullmatch(r"\{[A-Z][a-z]+\} wrote [a-z]+\.[a-z]+\.\w{8}@example\.com", text) and "ary" not in text


def test_json_values_of_a_json_column_are_copied_not_changed(tmp_path: Path) -> None:
    model = build_model(tmp_path, "CREATE TABLE person (id INTEGER PRIMARY KEY, first TEXT, profile JSON);")
    document = {"note": "Xandrel called", "tags": ["Xandrel", 3], "meta": {"Xandrel": None}}
    rules = rules_for("person", {"first": "person.first_name", "profile": "scrub"})
    out = mask_frame(model, rules, "person", {"id": [1], "first": ["Xandrel"], "profile": [document]})
    masked = out["profile"][0]
    assert masked == {"note": f"{out['first'][0]} called", "tags": [out["first"][0], 3], "meta": {"Xandrel": None}}
    assert document["note"] == "Xandrel called"  # the source value is never changed in place


# -- the rules file --------------------------------------------------------------------------

def test_scrub_needs_no_parameters_and_defaults_to_the_tables_name_and_email_rules(model: SchemaModel) -> None:
    rules = rules_for("customer", {"email": "{strategy: email, keep_domain: true}", "first_name": "person.first_name",
                                   "full_name": "fake.name", "username": "person.username", "notes": "scrub"})
    rule = resolve(model, rules).decision("customer", "notes").rule
    assert rule is not None and rule.params["names_from"] == ["first_name", "full_name"]
    assert rule.params["emails_from"] == ["email"]
    # The nested e-mail rule follows the table's own: an address in a note keeps its domain too.
    assert rule.nested["email"].params["keep_domain"] is True
    assert set(rule.nested) == {"email", "phone", "card_number", "iban", "id"}
    out = mask_frame(model, rules, "customer", {"customer_id": [1, 2], "email": ["a@b.org", "z@y.org"],
                                                "notes": ["mail a@b.org or other@corp.example", "x"]})
    assert out["notes"][0].endswith("@corp.example") and out["email"][0] in out["notes"][0]
    assert is_name_rule("fake.last_name_female") and not is_name_rule("fake.company")


def test_columns_named_by_hand_but_kept_never_put_real_values_back(model: SchemaModel) -> None:
    columns = {"notes": "{strategy: scrub, names_from: [first_name, last_name], emails_from: email}"}
    out = scrubbed(model, customers(first_name=["Margorie"], last_name=["Peteuil"], email=["mp@x.org"],
                                    notes=["Margorie Peteuil <mp@x.org>"]), columns)
    assert out["first_name"][0] == "Margorie" and out["email"][0] == "mp@x.org"  # kept (default: keep)
    assert not any(real in out["notes"][0] for real in ("Margorie", "Peteuil", "mp@x.org")), out["notes"][0]


def test_with_overrides_a_kinds_strategy_and_kinds_limit_the_search(model: SchemaModel) -> None:
    columns = {"notes": "{strategy: scrub, kinds: [phone], with: {phone: {strategy: partial, keep_last: 2}}}"}
    out = scrubbed(model, customers(notes=["Ann: ann@x.org, +44 20 7946 0018"]), columns)
    assert out["notes"][0] == "Ann: ann@x.org, **************18"


@pytest.mark.parametrize(("rule", "message"), [
    ("{strategy: scrub, kinds: [emails]}", "kinds: unknown kind 'emails' (did you mean 'email'?)"),
    ("{strategy: scrub, kinds: []}", "kinds: give a list of kinds"),
    ("{strategy: scrub, with: {mail: email}}", "with: unknown kind 'mail'"),
    ("{strategy: scrub, names_from: [frist_name]}", "names_from: table customer has no column 'frist_name'"),
    ("{strategy: scrub, with: {email: person.email}}", "email: strategy person.email reads other columns"),
])
def test_bad_scrub_rules_give_one_clear_error(model: SchemaModel, rule: str, message: str) -> None:
    with pytest.raises(RulesError) as error:
        resolve(model, rules_for("customer", {"notes": rule}))
    assert message in str(error.value) and "\n" not in str(error.value)


# -- refreshes ---------------------------------------------------------------------------------

RULES = {"version": 1, "default": "fail", "tables": {"customer": {
    "email": {"strategy": "email", "unique": True}, "first_name": "person.first_name",
    "last_name": "person.last_name", "phone": "phone", "notes": "scrub", "profile": "scrub"}}}
NOTE = ("Spoke with {first} {last} ({email}, {phone}) about the refund. SSN {ssn} checked; "
        "Dr. Peteuil agreed. Café ☕ 東京 ok.")


def _card(i: int) -> str:
    body = f"453914880343{i:03d}"
    return body + next(str(d) for d in range(10) if luhn_valid(f"{body}{d}"))


def _people(count: int = 60) -> list[dict[str, Any]]:
    people = []
    for i in range(1, count + 1):
        first, last = f"Xandrel{i}", f"Quorvin{i % 7}"
        person = {"id": i, "first": first, "last": last, "email": f"xq{i}@mail{i % 3}.example",
                  "phone": f"+1 415 555 {i:04d}", "ssn": f"9{i:02d}-33-{2000 + i}"}
        person["note"] = NOTE.format(**person)
        person["profile"] = json.dumps({"contact": {"email": person["email"], "note": f"call {first} on "
                                                    f"{person['phone']}, card {_card(i)}"}, "age": 40 + i})
        people.append(person)
    return people


def _fill(url: str, profile_type: str) -> list[dict[str, Any]]:
    people = _people()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL "
                                 "UNIQUE, first_name VARCHAR(40), last_name VARCHAR(40), phone VARCHAR(30), "
                                 f"notes TEXT, profile {profile_type})"))
            conn.execute(sa.text("INSERT INTO customer VALUES (:id, :email, :first, :last, :phone, :note, :profile)"),
                         people)
    finally:
        engine.dispose()
    return people


def _project(directory: Path, source: str, target: str, rules: dict[str, Any] = RULES) -> Path:
    (directory / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {"source": {"url": source}, "environments": {"test": {"url": target, "rules": "rules.yaml"}}}
    (directory / "datastage.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return directory / "datastage.yaml"


def _checks(result: Any) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def _assert_scrubbed(people: list[dict[str, Any]], loaded: list[tuple[Any, ...]]) -> None:
    assert len(loaded) == len(people)
    reals = {v for p in people for v in (p["email"], p["phone"], p["first"], p["last"], p["ssn"])}
    for person, (_, email, first, last, phone, note, profile) in zip(people, loaded, strict=True):
        document = profile if isinstance(profile, dict) else json.loads(profile)
        # The note agrees with the row's masked columns; the SSN is tokenized, every other word kept.
        ssn = re.search(r"SSN (\S+) checked", note)
        assert ssn is not None and re.fullmatch(r"\d{3}-\d{2}-\d{4}", ssn.group(1))
        assert note == NOTE.format(first=first, last=last, email=email, phone=phone, ssn=ssn.group(1)).replace(
            "Dr. Peteuil", note.split("checked; ")[1].split(" agreed")[0])
        assert not any(real in note for real in reals), note
        assert document["age"] == person["id"] + 40 and document["contact"]["email"] == email
        assert document["contact"]["note"].startswith(f"call {first} on {phone}, card ")
        assert is_test_card(document["contact"]["note"].rsplit(" ", 1)[1])


def test_sqlite_refresh_scrubs_notes_consistently_and_passes_its_leak_checks(tmp_path: Path) -> None:
    people = _fill(f"sqlite:///{tmp_path / 'prod.db'}", "JSON")
    result = datastage.refresh("test", config=_project(tmp_path, "sqlite:///prod.db", "sqlite:///test.db"))
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert {_checks(result)[name] for name in ("leak_masked_columns", "leak_identifiers", "card_sweep")} == {"PASS"}
    with sqlite3.connect(tmp_path / "test.db") as conn:
        loaded = conn.execute("SELECT customer_id, email, first_name, last_name, phone, notes, profile FROM customer "
                              "ORDER BY customer_id").fetchall()
    _assert_scrubbed(people, loaded)


def test_the_leak_check_searches_scrubbed_columns_like_any_other(tmp_path: Path) -> None:
    _fill(f"sqlite:///{tmp_path / 'prod.db'}", "JSON")
    only_names = {**RULES, "tables": {"customer": {**RULES["tables"]["customer"],  # type: ignore[dict-item]
                                                   "notes": {"strategy": "scrub", "kinds": ["name"]}}}}
    result = datastage.refresh("test", config=_project(tmp_path, "sqlite:///prod.db", "sqlite:///test.db",
                                                       only_names))
    assert result.verdict == "fail" and _checks(result)["leak_identifiers"] == "FAIL"
    summary = next(c.summary for c in result.checks if c.name == "leak_identifiers")
    assert "customer.notes" in summary and "email" in summary and "phone" in summary


@pytest.mark.postgres
def test_postgres_refresh_scrubs_text_and_jsonb(pg_databases: Any, tmp_path: Path) -> None:
    source, target = pg_databases.create("ds_scrub_src"), pg_databases.create("ds_scrub_dst")
    people = _fill(source, "JSONB")
    result = datastage.refresh("test", config=_project(tmp_path, source, target))
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert _checks(result)["leak_identifiers"] == "PASS"
    loaded = server_rows(target, "SELECT customer_id, email, first_name, last_name, phone, notes, profile "
                                 "FROM customer ORDER BY customer_id")
    assert isinstance(loaded[0][6], dict)
    _assert_scrubbed(people, loaded)


@pytest.mark.mysql
def test_mariadb_refresh_scrubs_text_and_json(mysql_databases: Any, tmp_path: Path) -> None:
    source, target = mysql_databases.create("ds_scrub_src"), mysql_databases.create("ds_scrub_dst")
    people = _fill(source, "JSON")
    result = datastage.refresh("test", config=_project(tmp_path, source, target))
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert _checks(result)["leak_identifiers"] == "PASS"
    _assert_scrubbed(people, server_rows(target, "SELECT customer_id, email, first_name, last_name, phone, notes, "
                                                 "profile FROM customer ORDER BY customer_id"))


# -- the labelled corpus -------------------------------------------------------------------------

def test_corpus_span_recall_and_other_words_kept() -> None:
    corpus = generate(1500, seed=11)
    spans = find_spans(corpus.notes, names=[pd.Series(corpus.first_names), pd.Series(corpus.last_names)])
    figures = measure(corpus, replaced_regions(spans, len(corpus.notes)))
    assert figures["span_recall"] >= 0.99, figures["missed"]
    assert figures["other_words_kept"] >= 0.99, figures["lost_words"]
    assert min(figures["recall_by_kind"].values()) >= 0.98, figures["recall_by_kind"]


def test_corpus_scrubbed_end_to_end_holds_no_labelled_identifier(tmp_path: Path) -> None:
    corpus = generate(400, seed=5)
    model = build_model(tmp_path, "CREATE TABLE patient (id INTEGER PRIMARY KEY, first TEXT, last TEXT, notes TEXT);")
    rules = rules_for("patient", {"first": "person.first_name", "last": "person.last_name", "notes": "scrub"})
    engine = MaskingEngine(resolve(model, rules), KEY)
    frame = pd.DataFrame({"id": np.arange(1, 401, dtype=object), "first": corpus.first_names,
                          "last": corpus.last_names, "notes": corpus.notes}, dtype=object)
    masked, _ = engine.mask_batch("patient", frame)
    left = [(kind, note[a:b]) for note, out, labels in zip(corpus.notes, masked["notes"], corpus.spans, strict=True)
            for a, b, kind in labels if kind != "name" and note[a:b] in out]
    assert left == []
    names = [(note[a:b], out) for note, out, labels in zip(corpus.notes, masked["notes"], corpus.spans, strict=True)
             for a, b, kind in labels if kind == "name"]
    kept = sum(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", out) is not None for name, out in names)
    assert kept <= len(names) * 0.01  # a fake name may equal a real one by chance
