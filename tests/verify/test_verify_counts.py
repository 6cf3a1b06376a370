"""The counts family: ``subset_counts`` (rows extracted against the plan) and ``row_counts`` (rows in the
shadow against the rows written), each passing and failing with its exact figures."""

from __future__ import annotations

from pathlib import Path

from verify_support import Shadow, plan_for, sqlite_file

from datastage.verify.checks import counts

CUSTOMERS = [(1, "ann@example.org", "Leeds", "LS1", None), (2, "bob@example.org", "York", "YO1", None),
             (3, "cy@example.org", "York", "YO1", None)]
ORDERS = [(10, 1, "first"), (11, 3, "second")]


def _shadow(tmp_path: Path, customers: list[tuple[object, ...]]) -> Shadow:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS, "orders": ORDERS})
    target = sqlite_file(tmp_path / "shadow.db", rows={"customer": customers, "orders": ORDERS})
    return Shadow(target, plan_for(source))


def test_counts_pass_when_every_row_arrived(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, CUSTOMERS)
    with shadow.context(written={"customer": 3, "orders": 2}, extracted={"customer": 3, "orders": 2}) as ctx:
        subset, rows = counts.check(ctx)
    assert subset.to_dict() == {"name": "subset_counts", "status": "PASS", "table": None,
                                "summary": "every table extracted exactly the planned rows",
                                "figures": {"extracted": {"customer": 3, "orders": 2}}}
    assert rows.to_dict() == {"name": "row_counts", "status": "PASS", "table": None,
                              "summary": "2 tables hold exactly the rows written",
                              "figures": {"loaded": {"customer": 3, "orders": 2}}}


def test_counts_fail_on_a_row_missing_from_the_extract_and_from_the_shadow(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, CUSTOMERS[:2])
    with shadow.context(written={"customer": 3, "orders": 2}, extracted={"customer": 2, "orders": 2}) as ctx:
        subset, rows = counts.check(ctx)
    assert (subset.status, subset.summary) == ("FAIL", "1 table(s) extracted a different number of rows than planned")
    assert subset.figures == {"mismatches": {"customer": {"planned": 3, "extracted": 2}}}
    assert (rows.status, rows.summary) == ("FAIL", "1 table(s) hold a different number of rows than were written")
    assert rows.figures == {"mismatches": {"customer": {"expected": 3, "loaded": 2}},
                            "loaded": {"customer": 2, "orders": 2}}
