"""The card sweep: card numbers outside the reserved test ranges anywhere in the target, whatever their
origin, passing (test numbers only counted) and failing with the exact figures."""

from __future__ import annotations

from pathlib import Path

from verify_support import Shadow, index_of, plan_for, sqlite_file

from datastage.results import CheckResult
from datastage.verify.checks import cards

CUSTOMERS = [(1, "ann@example.org", "Leeds", "LS1", None), (2, "bob@example.org", "York", "YO1", None)]
MASKED = [(1, "u1@masked.example", "Leeds", "LS1", None), (2, "u2@masked.example", "York", "YO1", None)]


def _sweep(tmp_path: Path, notes: list[str | None]) -> CheckResult:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    planned = plan_for(source)
    loaded = [(*row[:4], note) for row, note in zip(MASKED, notes, strict=True)]
    index = index_of(source, planned, {"customer": loaded})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": loaded}), planned)
    with shadow.context(written={"customer": 2}, leaks=index) as ctx:
        [result] = cards.check(ctx)
    return result


def test_card_sweep_passes_with_test_numbers_only(tmp_path: Path) -> None:
    result = _sweep(tmp_path, ["paid with 4111 1111 1111 1111", None])
    # Text columns: customer.email, city, zip, note and orders.memo (empty); 2 + 2 + 2 + 1 values.
    assert result.to_dict() == {
        "name": "card_sweep", "status": "PASS", "table": None,
        "summary": "no card number outside the test ranges in 5 text column(s) (7 values checked)",
        "figures": {"text_columns": 5, "values_checked": 7, "matches": {}, "test_range_numbers": 1,
                    "exempt": []},
        "findings": []}


def test_card_sweep_fails_on_a_live_card_number_that_never_was_in_the_source(tmp_path: Path) -> None:
    result = _sweep(tmp_path, ["card 4539 1488 0343 6467", "4111111111111111 and 4532015112830366"])
    assert (result.status, result.summary) == ("FAIL", "2 card number(s) outside the test ranges: customer.note (2)")
    assert result.figures == {"text_columns": 5, "values_checked": 8, "matches": {"customer.note": 2},
                              "test_range_numbers": 1, "exempt": []}
    # Neither number was in the source: a finding with no origin, naming the rows by their primary key.
    assert result.findings == [{"column": "customer.note", "origin": [], "kind": "card", "count": 2,
                                "row_count": 2, "key_columns": ["customer_id"], "rows": [[1], [2]]}]


def test_a_card_number_from_a_masked_source_column_names_that_column(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": [(1, "ann@example.org", "Leeds", "LS1",
                                                                     "card 4532015112830366")]})
    rules = "version: 1\ndefault: keep\ntables:\n  customer:\n    email: email\n    note: {strategy: 'null'}\n"
    planned = plan_for(source, rules)
    loaded = [(1, "u1@masked.example", "4532015112830366", "LS1", None)]  # the card moved into city
    index = index_of(source, planned, {"customer": loaded})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": loaded}), planned)
    with shadow.context(written={"customer": 1}, leaks=index) as ctx:
        [result] = cards.check(ctx)
    assert result.findings == [{"column": "customer.city", "origin": ["customer.note"], "kind": "card", "count": 1,
                                "row_count": 1, "key_columns": ["customer_id"], "rows": [[1]]}]
