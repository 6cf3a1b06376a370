"""A scan of a generated health-records database (and its music-store, crime-puzzle and HR neighbours):
every column's classification and kind against ground truth, the taxonomy in the findings, no values."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import ServerDatabases
from health_records_db import GROUND_TRUTH, build, copy_to

from datastage.discover.proposals import propose_rules
from datastage.discover.scan import ScanResult, scan_source
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SchemaModel, ScanResult]:
    path = tmp_path_factory.mktemp("health") / "health.db"
    build(path, rows=1000)
    engine = make_engine(f"sqlite:///{path}", read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
            return path, model, scan_source(conn, model)
    finally:
        engine.dispose()


def test_every_column_is_classified_as_its_ground_truth(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    _, _, result = health
    wrong = {f"{t}.{c}": (want, (result.finding(t, c).classification, result.finding(t, c).kind),
                          result.finding(t, c).evidence)
             for (t, c), want in GROUND_TRUTH.items()
             if (result.finding(t, c).classification, result.finding(t, c).kind) != want}
    assert not wrong, wrong
    assert set(GROUND_TRUTH) == set(result.findings)  # the ground truth covers every column


def test_recall_of_direct_identifiers_and_no_false_positives(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    _, _, result = health
    direct = [slot for slot, (cls, _) in GROUND_TRUTH.items() if cls == "direct_identifier"]
    plain = [slot for slot, (cls, _) in GROUND_TRUTH.items() if cls == "non_personal"]
    assert len(direct) >= 40 and len(plain) >= 60
    assert all(result.finding(*slot).classification == "direct_identifier" for slot in direct)
    assert not [slot for slot in plain if result.finding(*slot).personal]


@pytest.mark.parametrize(("table", "column", "kind"), [
    ("patients", "FIRST", "first_name"),  # Margorie48
    ("patients", "LAST", "last_name"),  # Cormier289
    ("patients", "MAIDEN", "last_name"),
    ("patients", "SSN", "national_id"),  # 999-33-2827: an SSN, not a phone
    ("patients", "legacy_ref", "national_id"),  # ... even where the name says nothing
    ("patients", "DRIVERS", "drivers_licence"),
    ("patients", "PASSPORT", "passport"),
    ("payer_transitions", "MEMBERID", "health_plan_id"),
    ("payer_transitions", "OWNER_NAME", "full_name"),
    ("devices", "UDI", "device_id"),
    ("devices", "SERIAL_NUMBER", "device_id"),
    ("providers", "NAME", "full_name"),  # names no dictionary knows, by shape in a person table
    ("clinicians", "first", "first_name"),
    ("clinicians", "last", "last_name"),
    ("drivers_license", "plate_number", "vehicle_id"),
])
def test_the_identifiers_discovery_used_to_miss(health: tuple[Path, SchemaModel, ScanResult], table: str,
                                                column: str, kind: str) -> None:
    finding = health[2].finding(table, column)
    assert (finding.classification, finding.kind) == ("direct_identifier", kind), finding


@pytest.mark.parametrize(("table", "column"), [
    ("patients", "STATE"), ("drivers_license", "eye_color"), ("drivers_license", "hair_color"),
    ("facebook_event_checkin", "event_name"), ("album", "Title"), ("customer", "State"), ("track", "GenreId"),
    ("track", "genre_id"), ("genre", "Name"), ("artist", "Name"), ("films", "genre"), ("organizations", "NAME"),
    ("organizations", "ADDRESS"), ("payers", "PHONE"), ("payer_transitions", "PLAN_OWNERSHIP"),
    ("patients", "MARITAL"), ("employees", "badge"),
])
def test_categories_and_things_are_not_personal(health: tuple[Path, SchemaModel, ScanResult], table: str,
                                                column: str) -> None:
    finding = health[2].finding(table, column)
    assert finding.classification == "non_personal", finding


def test_categorical_name_words_are_noted(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    eyes = health[2].finding("drivers_license", "eye_color")
    assert eyes.note == "categorical values; name-like words are not names here"
    assert eyes.stats["distinct"] == 7 and eyes.stats["distinct_share"] < 0.01


def test_sensitive_and_quasi_identifiers_carry_their_taxonomy(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    result = health[2]
    race = result.finding("patients", "RACE").to_dict()
    assert (race["classification"], race["kind"], race["hipaa"], race["gdpr"]) == (
        "sensitive", "ethnicity", None, "racial_or_ethnic_origin")
    assert race["categories"] == ["GDPR racial or ethnic origin (art. 9)"]
    drivers = result.finding("patients", "DRIVERS").to_dict()
    assert (drivers["hipaa"], drivers["gdpr"], drivers["label"]) == ("K", None, "driver's licence number")
    assert result.finding("patients", "BIRTHPLACE").to_dict()["hipaa"] == "B"  # a place, not a date of birth
    assert result.finding("patients", "BIRTHDATE").hipaa == "C"
    assert result.finding("devices", "UDI").hipaa == "M" and result.finding("patients", "SSN").hipaa == "G"
    assert result.finding("payer_transitions", "MEMBERID").hipaa == "I"
    assert result.finding("conditions", "DESCRIPTION").gdpr == "health"
    none = result.finding("genre", "Name").to_dict()
    assert (none["kind"], none["hipaa"], none["gdpr"], none["categories"]) == (None, None, None, [])


def test_evidence_names_patterns_and_shares_never_values(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    path, _, result = health
    text = json.dumps(result.to_dict())
    conn = sqlite3.connect(path)
    try:
        values = {v for (v,) in conn.execute(
            "SELECT FIRST FROM patients UNION SELECT LAST FROM patients UNION SELECT SSN FROM patients "
            "UNION SELECT PASSPORT FROM patients UNION SELECT DRIVERS FROM patients UNION SELECT NAME FROM providers "
            "UNION SELECT MEMBERID FROM payer_transitions UNION SELECT UDI FROM devices "
            "UNION SELECT plate_number FROM drivers_license UNION SELECT eye_color FROM drivers_license") if v}
    finally:
        conn.close()
    assert len(values) > 5000
    assert not [v for v in values if f'"{v}"' in text]
    for finding in result.findings.values():
        for item in finding.evidence:
            assert set(item) <= {"source", "pattern", "share", "matched", "sampled"}
            assert item["source"] in ("name", "values")


def test_describe_and_the_proposal_read_the_new_kinds(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    _, model, result = health
    assert result.finding("patients", "SSN").describe() == (
        "direct_identifier: national identification or social security number in 100% of 1000 sampled values")
    assert result.finding("employees", "employee_number").describe().startswith(
        "direct_identifier: other unique identifying number")
    text = propose_rules(result, model, source="sqlite:///health.db")
    assert "    SSN: " in text and "    PASSPORT: " in text


def test_a_twenty_table_scan_samples_a_thousand_rows_of_each(health: tuple[Path, SchemaModel, ScanResult]) -> None:
    # Its speed is a benchmark (benchmarks/bench_discovery.py --part scan), not a test.
    path, model, _ = health
    tables = sorted(model.tables, key=lambda t: -len(model.tables[t].columns))[:20]
    engine = make_engine(f"sqlite:///{path}", read_only=True)
    try:
        with snapshot(engine) as conn:
            result = scan_source(conn, model, tables=tables, sample_rows=1000)
    finally:
        engine.dispose()
    assert len(result.sampled_tables) == 20 and max(result.sampled_tables.values()) == 1000
    assert all(result.finding(t, c).classification for t in tables for c in model.tables[t].columns)


def _wrong(result: ScanResult) -> dict[str, tuple[object, object]]:
    return {f"{t}.{c}": (want, (result.finding(t, c).classification, result.finding(t, c).kind))
            for (t, c), want in GROUND_TRUTH.items()
            if (result.finding(t, c).classification, result.finding(t, c).kind) != want}


def _scan_url(url: str) -> ScanResult:
    engine = make_engine(url, read_only=True)
    try:
        with snapshot(engine) as conn:
            return scan_source(conn, reflect(conn))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_same_classification_on_postgresql(health: tuple[Path, SchemaModel, ScanResult],
                                               pg_databases: ServerDatabases) -> None:
    url = pg_databases.create("ds_health")
    copy_to(health[0], url)
    assert not _wrong(_scan_url(url))


@pytest.mark.mysql
def test_the_same_classification_on_mariadb(health: tuple[Path, SchemaModel, ScanResult],
                                            mysql_databases: ServerDatabases) -> None:
    url = mysql_databases.create("ds_health")
    copy_to(health[0], url)
    assert not _wrong(_scan_url(url))
