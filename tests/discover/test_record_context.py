"""Whose record a row is: keys that are identifiers, dates of a person's life, a person's money and photos,
health items versus the types of visits and measurements, place names that are not free text.

Each rule is checked on schemas named unlike the labelled corpus (``tests/corpus``), on SQLite.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from maskkit import reflect_sqlite

from datastage.discover.proposals import propose_rules
from datastage.discover.scan import ScanResult, scan_source
from datastage.errors import RulesError
from datastage.identify.keys import key_identifier
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel

ROWS = 120
SCHEMA = """
CREATE TABLE passports (id INTEGER PRIMARY KEY, issuing_country TEXT);
CREATE TABLE travellers (traveller_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
    passport_id INTEGER REFERENCES passports (id), place_of_birth TEXT, joined_on DATE, updated_at TIMESTAMP,
    salary NUMERIC(10, 2), avatar BLOB);
CREATE TABLE tax_returns (tin INTEGER PRIMARY KEY, amount NUMERIC(10, 2));
CREATE TABLE trips (trip_id INTEGER PRIMARY KEY, traveller_id INTEGER REFERENCES travellers (traveller_id),
    departed_on DATE, returned_on DATE, created_at TIMESTAMP);
CREATE TABLE bookings (booking_id INTEGER PRIMARY KEY, traveller_id INTEGER REFERENCES travellers (traveller_id),
    booked_on DATE, paid_on DATE);
CREATE TABLE vehicles (id INTEGER PRIMARY KEY, traveller_id INTEGER REFERENCES travellers (traveller_id));
CREATE TABLE club_members (id TEXT PRIMARY KEY, full_name TEXT);
CREATE TABLE fares (fare_id INTEGER PRIMARY KEY, route TEXT, salary_floor NUMERIC(10, 2), valid_from DATE);
CREATE TABLE brands (brand_id INTEGER PRIMARY KEY, label TEXT, picture BLOB);
CREATE TABLE patients (patient_id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT);
CREATE TABLE measurements (patient_id TEXT REFERENCES patients (patient_id), taken_on DATE, code TEXT,
    description TEXT, value TEXT);
CREATE TABLE allergies (patient_id TEXT REFERENCES patients (patient_id), code TEXT, description TEXT);
"""
FIRST = ["Anna", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Lars"]
LAST = ["Berg", "Costa", "Dahl", "Eriksen", "Ferreira", "Gomez", "Holm", "Ivanova", "Jensen", "Kowalski"]
TOWNS = ["Port Anthony  Ohio  US", "Lake Marymouth  North Carolina  US", "West Jessica  New Mexico  US",
         "North Brandon  Rhode Island  US", "East Aaron  South Dakota  US", "New Katherine  West Virginia  US"]
MEASURED = [("8302-2", "Body Height"), ("29463-7", "Body Weight"), ("72514-3", "Pain severity score"),
            ("8867-4", "Heart rate")]
ALLERGENS = [("300916003", "Latex allergy"), ("91930004", "Allergy to eggs"), ("419474003", "Allergy to mould")]


def _build(path: Path) -> SchemaModel:
    rng = random.Random(7)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    passports = rng.sample(range(100_000_000, 999_999_999), ROWS)
    db.executemany("INSERT INTO passports VALUES (?, ?)", [(p, rng.choice(["DE", "FR", "US"])) for p in passports])
    db.executemany("INSERT INTO travellers VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", [
        (i, rng.choice(FIRST), rng.choice(LAST), passports[i], rng.choice(TOWNS), f"2020-01-{1 + i % 28:02d}",
         "2024-05-01 10:00:00", rng.randint(30_000, 90_000)) for i in range(ROWS)])
    db.executemany("INSERT INTO tax_returns VALUES (?, ?)",
                   [(t, rng.randint(0, 9000)) for t in rng.sample(range(100_000_000, 999_999_999), ROWS)])
    db.executemany("INSERT INTO trips VALUES (?, ?, ?, ?, ?)", [
        (i, i % ROWS, f"2023-03-{1 + i % 28:02d}", f"2023-04-{1 + i % 28:02d}", "2024-01-01") for i in range(ROWS)])
    db.executemany("INSERT INTO bookings VALUES (?, ?, ?, ?)",
                   [(i, i % ROWS, f"2023-02-{1 + i % 28:02d}", f"2023-02-{1 + i % 28:02d}") for i in range(ROWS)])
    db.executemany("INSERT INTO vehicles VALUES (?, ?)", [(i + 1, i) for i in range(ROWS)])
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    codes = {"".join(rng.choice(letters + "0123456789") for _ in range(2)) + str(rng.randint(100, 999))
             for _ in range(ROWS * 2)}
    db.executemany("INSERT INTO club_members VALUES (?, ?)",
                   [(c, f"{rng.choice(FIRST)} {rng.choice(LAST)}") for c in sorted(codes)[:ROWS]])
    db.executemany("INSERT INTO fares VALUES (?, ?, ?, ?)",
                   [(i, f"R{i}", rng.randint(100, 900), "2024-01-01") for i in range(ROWS)])
    db.executemany("INSERT INTO brands VALUES (?, ?, NULL)", [(i, f"Brand {i}") for i in range(20)])
    db.executemany("INSERT INTO patients VALUES (?, ?, ?)",
                   [(f"p{i}", rng.choice(FIRST), rng.choice(LAST)) for i in range(ROWS)])
    db.executemany("INSERT INTO measurements VALUES (?, ?, ?, ?, ?)", [
        (f"p{i % ROWS}", "2023-01-05", *rng.choice(MEASURED), f"{rng.uniform(1, 200):.1f}") for i in range(ROWS)])
    db.executemany("INSERT INTO allergies VALUES (?, ?, ?)",
                   [(f"p{i % ROWS}", *rng.choice(ALLERGENS)) for i in range(ROWS)])
    db.commit()
    db.close()
    return reflect_sqlite(path)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[SchemaModel, ScanResult]:
    path = tmp_path_factory.mktemp("context") / "travel.db"
    model = _build(path)
    engine = make_engine(f"sqlite:///{path}", read_only=True)
    try:
        with snapshot(engine) as conn:
            return model, scan_source(conn, model)
    finally:
        engine.dispose()


def _read(result: ScanResult, table: str, column: str) -> tuple[str, str | None]:
    finding = result.finding(table, column)
    return finding.classification, finding.kind


@pytest.mark.parametrize(("table", "column", "expected"), [
    ("passports", "id", ("direct_identifier", "passport")),  # a bare id of a table named for a document
    ("travellers", "passport_id", ("direct_identifier", "passport")),  # a key referencing it holds it too
    ("tax_returns", "tin", ("direct_identifier", "tax_id")),  # a key named for the number it is
    ("travellers", "traveller_id", ("non_personal", None)),  # a row number
    ("vehicles", "id", ("non_personal", None)),  # a thing's row number (its VIN would be a column)
    ("club_members", "id", ("direct_identifier", "other_identifier")),  # a text membership code, by its values
])
def test_keys_that_are_identifiers(scanned: tuple[SchemaModel, ScanResult], table: str, column: str,
                                   expected: tuple[str, str | None]) -> None:
    assert _read(scanned[1], table, column) == expected


def test_key_names() -> None:
    assert key_identifier("id", "licenses", "integer") == "licence_number"
    assert key_identifier("id", "members", "integer") is None  # a weak name over a number: a row counter
    assert key_identifier("passport_no", "travellers", "text") == "passport"
    assert key_identifier("id", "devices", "uuid") is None


@pytest.mark.parametrize(("table", "column", "expected"), [
    ("travellers", "joined_on", ("quasi_identifier", "event_date")),  # a date in a person's own row
    ("trips", "departed_on", ("quasi_identifier", "event_date")),  # a row that belongs to a person
    ("trips", "returned_on", ("quasi_identifier", "event_date")),
    ("measurements", "taken_on", ("quasi_identifier", "event_date")),
    ("travellers", "updated_at", ("non_personal", None)),  # record keeping
    ("trips", "created_at", ("non_personal", None)),
    ("bookings", "booked_on", ("non_personal", None)),  # a sale: the business's record
    ("fares", "valid_from", ("non_personal", None)),  # nobody's
])
def test_dates_of_a_persons_life(scanned: tuple[SchemaModel, ScanResult], table: str, column: str,
                                 expected: tuple[str, str | None]) -> None:
    assert _read(scanned[1], table, column) == expected


@pytest.mark.parametrize(("table", "column", "expected"), [
    ("travellers", "salary", ("sensitive", "financial")),
    ("fares", "salary_floor", ("non_personal", None)),  # a band in a table that is nobody's record
    ("travellers", "avatar", ("direct_identifier", "photo")),
    ("travellers", "place_of_birth", ("quasi_identifier", "city")),  # multi-word places are not free text
    ("measurements", "code", ("non_personal", None)),  # what was measured
    ("measurements", "description", ("non_personal", None)),
    ("measurements", "value", ("sensitive", "health_condition")),  # the patient's value
    ("allergies", "code", ("sensitive", "health_condition")),  # what the patient has
    ("allergies", "description", ("sensitive", "health_condition")),
])
def test_a_persons_record(scanned: tuple[SchemaModel, ScanResult], table: str, column: str,
                          expected: tuple[str, str | None]) -> None:
    assert _read(scanned[1], table, column) == expected


def test_a_things_picture_is_no_photo(scanned: tuple[SchemaModel, ScanResult]) -> None:
    assert not scanned[1].finding("brands", "picture").personal


def test_identifier_keys_get_unique_tokens_and_the_gate_does_not_waive_them(
        scanned: tuple[SchemaModel, ScanResult]) -> None:
    model, result = scanned
    text = propose_rules(result, model, source="sqlite:///travel.db")
    assert "    id: {strategy: tokenize, unique: true}" in text.split("  passports:\n")[1].split("\n  ")[0] + "\n"
    assert "# passport_id: references passports.id" in text
    assert "departed_on: {strategy: date_shift, by: traveller_id}" in text
    kept = policy_from_text("version: 1\ndefault: keep\ntables: {}\n")
    with pytest.raises(RulesError, match=r"passports\.id .* kept without a reason"):
        resolve_policy(kept, model, personal={("passports", "id"): result.personal()[("passports", "id")]})
    decisions = resolve_policy(policy_from_text(text), model, personal=result.personal(), errors=[]).decisions
    assert decisions[("passports", "id")].status == "protected"
    assert decisions[("travellers", "passport_id")].status == "protected"  # inherited from the key
    waived = resolve_policy(kept, model, personal={}).decisions
    assert waived[("vehicles", "id")].reason == "surrogate key"
    assert waived[("passports", "id")].status == "kept-by-default"  # not waived as a surrogate key
