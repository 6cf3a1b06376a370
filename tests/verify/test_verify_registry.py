"""The registry of check families: every check in report order, the counts before the hooks and the rest
after them, and the rules' severities turning a failure into a warning."""

from __future__ import annotations

from pathlib import Path

from verify_support import RULES, Shadow, index_of, plan_for, sqlite_file

from datastage.verify.registry import apply_severity, run_checks

CUSTOMERS = [(1, "ann@example.org", "York", "YO1", None), (2, "bob@example.org", "York", "YO1", None)]
MASKED = [(1, "u1@masked.example", "York", "YO1", None), (2, "bob@example.org", "York", "YO1", None)]
QUASI = "quasi_identifiers:\n  - {table: customer, columns: [city, zip], k_min: 2}\n"


def test_every_check_in_report_order(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    planned = plan_for(source, RULES + QUASI)
    index = index_of(source, planned, {"customer": MASKED})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": MASKED}), planned)
    with shadow.context({"customer": 2}, {"customer": 2}, index) as ctx:
        before = run_checks(ctx, before_hooks=True)
        after = run_checks(ctx, before_hooks=False)
    assert [c.name for c in before] == ["subset_counts", "row_counts"]
    assert [(c.name, c.status) for c in after] == [
        ("foreign_keys", "PASS"), ("unique_keys", "PASS"), ("leak_masked_columns", "FAIL"),
        ("leak_identifiers", "FAIL"), ("card_sweep", "PASS"), ("k_anonymity", "PASS")]


def test_a_check_at_severity_warn_warns_instead_of_failing(tmp_path: Path) -> None:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    planned = plan_for(source, RULES + "checks:\n  leak_masked_columns: warn\n")
    index = index_of(source, planned, {"customer": MASKED})
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": MASKED}), planned)
    with shadow.context({"customer": 2}, {"customer": 2}, index) as ctx:
        checks = apply_severity(run_checks(ctx, before_hooks=False), planned.checks)
    masked = next(c for c in checks if c.name == "leak_masked_columns")
    identifiers = next(c for c in checks if c.name == "leak_identifiers")
    assert (masked.status, masked.figures["matches"]) == ("WARN", {"customer.email": 1})
    assert identifiers.status == "FAIL"
