"""The leak check: ``leak_masked_columns`` (a masked row still holding its own original value) and
``leak_identifiers`` (source identifiers anywhere in the target), passing and failing with the exact figures."""

from __future__ import annotations

from pathlib import Path

from verify_support import RULES, Shadow, index_of, plan_for, sqlite_file

from datastage.results import CheckResult
from datastage.verify.checks import leaks

CUSTOMERS = [(1, "ann@example.org", "Leeds", "LS1", None), (2, "bob@example.org", "York", "YO1", "call me"),
             (3, "cy@example.org", "York", "YO1", None)]
ORDERS = [(10, 1, "first"), (11, 3, "second")]
MASKED = [(1, "u1@masked.example", "Leeds", "LS1", None), (2, "u2@masked.example", "York", "YO1", "call me"),
          (3, "u3@masked.example", "York", "YO1", None)]
# Text columns: customer.email, city, zip, note and orders.memo; 3 + 3 + 3 + 1 + 2 non-blank values.
TEXT = {"text_columns": 5, "values_checked": 12, "source_tokens_hashed": {"email": 3},
        "ambiguous_fake_pool_matches": 0, "exempt": []}


def _check(tmp_path: Path, customers: list[tuple[object, ...]], orders: list[tuple[object, ...]]) -> list[CheckResult]:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS, "orders": ORDERS})
    planned = plan_for(source)
    index = index_of(source, planned, {"customer": customers})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": customers, "orders": orders}), planned)
    with shadow.context(written={"customer": 3, "orders": 2}, leaks=index) as ctx:
        return leaks.check(ctx)


def test_leak_check_passes_on_a_masked_copy(tmp_path: Path) -> None:
    masked, identifiers = _check(tmp_path, MASKED, ORDERS)
    assert masked.to_dict() == {
        "name": "leak_masked_columns", "status": "PASS", "table": None,
        "summary": "no row of 1 masked column(s) still holds its original value (3 values checked)",
        "figures": {"masked_columns": 1, "values_checked": 3, "source_rows_observed": 5, "source_values_hashed": 3,
                    "matches": {}, "excused": {}, "exempt": []},
        "findings": []}
    assert identifiers.to_dict() == {
        "name": "leak_identifiers", "status": "PASS", "table": None,
        "summary": "none of 3 source identifiers appears in 5 text column(s) (12 values checked)",
        "figures": {**TEXT, "matches": {}}, "findings": []}


def test_leak_check_fails_on_a_kept_original_and_a_copied_address(tmp_path: Path) -> None:
    customers = [MASKED[0], CUSTOMERS[1], MASKED[2]]  # bob's row kept its own e-mail address
    masked, identifiers = _check(tmp_path, customers, [(10, 1, "mail ann@example.org"), ORDERS[1]])
    assert (masked.status, masked.summary) == (
        "FAIL", "1 row(s) of masked columns still hold their original value: customer.email (1)")
    assert masked.figures == {"masked_columns": 1, "values_checked": 3, "source_rows_observed": 5,
                              "source_values_hashed": 3, "matches": {"customer.email": 1}, "excused": {},
                              "exempt": []}
    assert (identifiers.status, identifiers.summary) == (
        "FAIL", "2 source identifier(s) found in the target: customer.email (1 email), orders.memo (1 email)")
    assert identifiers.figures == {**TEXT, "matches": {"customer.email": {"email": 1}, "orders.memo": {"email": 1}}}
    # Each finding: where, from which source column, what kind, how often, and the target rows (their keys).
    assert masked.findings == [{"column": "customer.email", "origin": ["customer.email"], "kind": "value",
                                "count": 1, "row_count": 1, "key_columns": ["customer_id"], "rows": [[2]]}]
    assert identifiers.findings == [
        {"column": "customer.email", "origin": ["customer.email"], "kind": "email", "count": 1, "row_count": 1,
         "key_columns": ["customer_id"], "rows": [[2]]},
        {"column": "orders.memo", "origin": ["customer.email"], "kind": "email", "count": 1, "row_count": 1,
         "key_columns": ["order_id"], "rows": [[10]]}]
    text = repr([masked.findings, identifiers.findings])
    assert not any(c[1] in text for c in CUSTOMERS), "a finding holds a source value"


def test_another_rows_original_is_no_masked_column_leak_but_an_identifier_in_the_target(tmp_path: Path) -> None:
    customers = [(1, "bob@example.org", "Leeds", "LS1", None), *MASKED[1:]]  # bob's address on ann's row
    masked, identifiers = _check(tmp_path, customers, ORDERS)
    assert (masked.status, masked.figures["matches"]) == ("PASS", {})
    assert (identifiers.status, identifiers.figures["matches"]) == ("FAIL", {"customer.email": {"email": 1}})


def test_no_leak_check_without_a_leak_index(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": MASKED}), plan_for(source))
    with shadow.context() as ctx:
        assert leaks.check(ctx) == []



KEYED = """
CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, email TEXT, city TEXT, zip TEXT, note TEXT);
CREATE TABLE log (line TEXT);
CREATE TABLE track (track_id TEXT, position INTEGER, memo TEXT, PRIMARY KEY (track_id, position));
"""


def test_findings_name_composite_keys_and_say_when_a_table_has_no_primary_key(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", KEYED, {"customer": CUSTOMERS})
    planned = plan_for(source)
    loaded = {"customer": MASKED, "log": [("sent to ann@example.org",)],
              "track": [("t1", 1, "fine"), ("t1", 2, "by bob@example.org"), ("t2", 1, "Bob@Example.org")]}
    index = index_of(source, planned, {"customer": MASKED})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", KEYED, loaded), planned)
    with shadow.context(written={"customer": 3, "log": 1, "track": 3}, leaks=index) as ctx:
        _, identifiers = leaks.check(ctx)
    assert identifiers.findings == [
        {"column": "track.memo", "origin": ["customer.email"], "kind": "email", "count": 2, "row_count": 2,
         "key_columns": ["track_id", "position"], "rows": [["t1", 2], ["t2", 1]]},
        {"column": "log.line", "origin": ["customer.email"], "kind": "email", "count": 1, "row_count": 1,
         "key_columns": None, "rows": []}]


def test_exemptions_and_a_downgrade_are_in_the_summary_line(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS, "orders": ORDERS})
    rules = RULES + "checks:\n  leak_identifiers: {severity: warn, exempt: [orders.memo]}\n"
    planned = plan_for(source, rules)
    customers = [MASKED[0], CUSTOMERS[1], MASKED[2]]
    index = index_of(source, planned, {"customer": customers})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": customers, "orders": ORDERS}), planned)
    with shadow.context(written={"customer": 3, "orders": 2}, leaks=index) as ctx:
        _, identifiers = leaks.check(ctx)
    assert (identifiers.status, identifiers.summary) == (
        "WARN", "1 source identifier(s) found in the target: customer.email (1 email) "
                "[exempt by the rules: orders.memo; would fail, severity warn in the rules]")
    assert identifiers.figures["severity"] == "warn"


def test_the_index_remembers_which_source_columns_a_token_came_from(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    index = index_of(source, plan_for(source), {"customer": MASKED})
    index._add("album", "title", ["email:ann@example.org"], masked=False)  # a kept column's identifier
    index._add("orders", "memo", ["email:cy@example.org"], masked=True)
    hashes = index.hash_tokens(["email:ann@example.org", "email:bob@example.org", "email:cy@example.org",
                                "email:nobody@example.org"])
    assert index.origins(hashes) == [("album.title", "customer.email"), ("customer.email",),
                                     ("customer.email", "orders.memo"), ()]
    assert index.origins(hashes[:1], skip=("album", "title")) == [("customer.email",)]
