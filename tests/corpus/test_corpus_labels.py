"""The corpus itself: complete ground truth, reproducible and fast generation, and the failure classes it
promises (names with digits, SSNs in the 999 area, UDIs, categorical colours, notes naming people)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from corpus_dbs import GENERATED, build_generated
from corpus_kit import Label
from corpus_public import sakila_truth
from corpus_scrub import KIND_OF, measure_scrub, notes

from datastage.identify import reference
from datastage.identify.kinds import KINDS
from datastage.source.schema import reflect


def _dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{n}"'))] for n in names}
    finally:
        engine.dispose()


def _values(url: str, sql: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [str(v) for (v,) in conn.exec_driver_sql(sql) if v is not None]
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_every_column_is_labelled_and_generation_is_fast_and_seeded(name: str, tmp_path: Path) -> None:
    started = time.process_time()  # CPU time: the bound holds on a shared machine too
    db = build_generated(name, f"sqlite:///{tmp_path / 'a.db'}")
    assert time.process_time() - started < 2.0
    engine = sa.create_engine(db.url)
    with engine.connect() as conn:
        model = reflect(conn)
    engine.dispose()
    columns = {(key, column) for key, table in model.tables.items() for column in table.columns}
    assert columns == set(db.truth)
    labels = list(db.truth.values())
    assert sum(label.classification == "direct_identifier" for label in labels) >= 9
    assert sum(label.must_keep for label in labels) >= 8
    for label in labels:
        assert label.kinds or label.classification in ("non_personal", "quasi_identifier")
        if label.classification == "direct_identifier":
            assert KINDS[label.kinds[0]].classification == "direct_identifier"
    again = build_generated(name, f"sqlite:///{tmp_path / 'b.db'}")
    other = build_generated(name, f"sqlite:///{tmp_path / 'c.db'}", seed=99)
    assert _dump(db.url) == _dump(again.url)
    assert _dump(db.url) != _dump(other.url)


def test_labels_name_taxonomy_kinds_and_judgement_calls_are_explicit() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        Label("direct_identifier", ("licence_plate",))
    actor = sakila_truth("postgresql")[("actor", "first_name")]
    assert actor.must_catch and not actor.judgement
    city = sakila_truth("postgresql")[("city", "city")]
    assert city.judgement and city.accepts("quasi_identifier") and not city.accepts("direct_identifier")


def test_health_records_reproduce_the_failure_classes(tmp_path: Path) -> None:
    url = build_generated("health", f"sqlite:///{tmp_path / 'h.db'}").url
    firsts = _values(url, "SELECT first FROM patients")
    assert all(re.fullmatch(r"\D+\d{1,3}", v) for v in firsts)  # Margorie48
    assert all(re.fullmatch(r"999-\d\d-\d{4}", v) for v in _values(url, "SELECT ssn FROM patients"))
    assert all(re.fullmatch(r"S999\d{5}", v) for v in _values(url, "SELECT drivers FROM patients"))
    assert all(re.fullmatch(r"X\d{8}X", v) for v in _values(url, "SELECT passport FROM patients"))
    assert all(v.startswith("(01)") and "(21)" in v for v in _values(url, "SELECT udi FROM devices"))
    surnames = [v.split()[-1] for v in _values(url, "SELECT name FROM providers")]
    assert sum(not reference.is_last_name(s) for s in surnames) / len(surnames) > 0.9  # Peteuil
    assert set(_values(url, "SELECT DISTINCT race FROM patients")) <= {"white", "black", "asian", "native",
                                                                       "hawaiian", "other"}
    named = _values(url, "SELECT count(*) FROM encounters e JOIN patients p ON p.id = e.patient "
                         "WHERE instr(e.notes, p.first) > 0 AND e.notes LIKE '%@%'")
    assert int(named[0]) > 100


def test_crime_puzzle_keeps_colours_and_integer_ssns(tmp_path: Path) -> None:
    url = build_generated("crime", f"sqlite:///{tmp_path / 'c.db'}").url
    assert set(_values(url, "SELECT DISTINCT eye_color FROM drivers_license")) <= {"amber", "black", "blue", "brown",
                                                                                  "gray", "green"}
    assert _values(url, "SELECT typeof(ssn) FROM person LIMIT 1") == ["integer"]
    assert int(_values(url, "SELECT count(*) FROM interview i JOIN person p ON instr(i.transcript, p.name) > 0")[0])


def test_scrub_notes_label_every_span() -> None:
    items = notes()
    assert len(items) == 300
    kinds = {span.kind for note in items for span in note.spans}
    assert kinds == set(KIND_OF.values())
    for note in items:
        assert all(note.text[s.start:s.end] == s.text for s in note.spans)
    assert any(not note.text.isascii() for note in items)
    assert sum(note.text.startswith("{") for note in items) >= 15
    assert notes(seed=5)[0].text == notes(seed=5)[0].text != notes(seed=6)[0].text


def test_scrub_measurement_counts_spans_and_words() -> None:
    """The harness itself, with ``hash`` standing in for ``scrub``: every span goes, and so does every word."""
    items = notes(count=40)
    hashed = measure_scrub(items, "{strategy: hash, length: 12}")
    assert hashed.available and hashed.span_recall == 1.0 and hashed.words_kept_share < 0.05
    assert hashed.spans == sum(len(n.spans) for n in items)
    missing = measure_scrub(items, "no_such_strategy")
    assert not missing.available and "not available" in missing.report()
