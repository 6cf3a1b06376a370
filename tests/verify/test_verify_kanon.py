"""The k-anonymity family: the equivalence classes of a declared quasi-identifier set, passing and
failing (and warning at severity ``warn``) with the exact figures."""

from __future__ import annotations

from pathlib import Path

from verify_support import RULES, Shadow, plan_for, sqlite_file

from datastage.verify.checks import kanon

QUASI = "quasi_identifiers:\n  - {table: customer, columns: [city, zip], k_min: 2, max_unique_share: 0.5}\n"


def _customers(*places: tuple[str, str]) -> list[tuple[object, ...]]:
    return [(i, f"c{i}@example.org", city, zip_code, None) for i, (city, zip_code) in enumerate(places, 1)]


def _shadow(tmp_path: Path, customers: list[tuple[object, ...]], rules: str = RULES + QUASI) -> Shadow:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": customers})
    return Shadow(sqlite_file(tmp_path / "shadow.db", rows={"customer": customers}), plan_for(source, rules))


def test_k_anonymity_passes_when_every_class_is_large_enough(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, _customers(("York", "YO1"), ("York", "YO1"), ("Leeds", "LS1"), ("Leeds", "LS1"),
                                          ("Leeds", "LS1")))
    with shadow.context() as ctx:
        [result] = kanon.check(ctx)
    assert result.to_dict() == {
        "name": "k_anonymity", "status": "PASS", "table": "customer",
        "summary": "customer(city, zip): 5 rows in 2 classes, k = 2 (>= 2), 0.0% unique",
        "figures": {"columns": ["city", "zip"], "k_min": 2, "max_unique_share": 0.5, "rows": 5, "classes": 2,
                    "k": 2, "unique_rows": 0, "unique_share": 0.0, "classes_below_k_min": 0,
                    "rows_below_k_min": 0}}


def test_k_anonymity_fails_on_rows_alone_in_their_class(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, _customers(("York", "YO1"), ("York", "YO2"), ("Hull", "HU1"), ("Leeds", "LS1"),
                                          ("Leeds", "LS1")))
    with shadow.context() as ctx:
        [result] = kanon.check(ctx)
    assert (result.status, result.summary) == (
        "FAIL", "customer(city, zip): k = 1 < 2; 60.0% unique rows > 50.0% (3 rows in classes below k_min)")
    assert result.figures == {"columns": ["city", "zip"], "k_min": 2, "max_unique_share": 0.5, "rows": 5,
                              "classes": 4, "k": 1, "unique_rows": 3, "unique_share": 0.6,
                              "classes_below_k_min": 3, "rows_below_k_min": 3}


def test_k_anonymity_warns_at_severity_warn(tmp_path: Path) -> None:
    rules = RULES + "checks:\n  k_anonymity: warn\n" + QUASI
    shadow = _shadow(tmp_path, _customers(("York", "YO1"), ("Leeds", "LS1")), rules)
    with shadow.context() as ctx:
        [result] = kanon.check(ctx)
    assert (result.status, result.figures["k"], result.figures["rows_below_k_min"]) == ("WARN", 1, 2)
