"""The integrity family: ``foreign_keys`` (every child row finds its parent) and ``unique_keys`` (no
duplicated primary or unique key), each passing and failing with its exact figures."""

from __future__ import annotations

from pathlib import Path

from verify_support import Shadow, plan_for, sqlite_file

from datastage.verify.checks import integrity

# The shadow without constraints, so that it can hold what the checks must catch.
LOOSE = """
CREATE TABLE customer (customer_id INTEGER, email TEXT, city TEXT, zip TEXT, note TEXT);
CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, memo TEXT);
"""
CUSTOMERS = [(1, "ann@example.org", "Leeds", "LS1", None), (2, "bob@example.org", "York", "YO1", None)]


def _shadow(tmp_path: Path, customers: list[tuple[object, ...]], orders: list[tuple[object, ...]]) -> Shadow:
    source = sqlite_file(tmp_path / "source.db", rows={"customer": CUSTOMERS})
    return Shadow(sqlite_file(tmp_path / "shadow.db", LOOSE, {"customer": customers, "orders": orders}),
                  plan_for(source))


def test_integrity_passes_when_keys_hold(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, CUSTOMERS, [(10, 1, "a"), (11, None, "no customer")])
    with shadow.context() as ctx:
        fks, keys = integrity.check(ctx)
    assert fks.to_dict() == {"name": "foreign_keys", "status": "PASS", "summary": "all 1 foreign keys hold",
                             "table": None, "figures": {"checked": 1}}
    # customer: its primary key and the unique e-mail; orders: its primary key.
    assert keys.to_dict() == {"name": "unique_keys", "status": "PASS", "table": None,
                              "summary": "all 3 primary and unique keys hold", "figures": {"checked": 3}}


def test_integrity_fails_on_orphans_and_duplicates(tmp_path: Path) -> None:
    customers = [*CUSTOMERS, (2, "ann@example.org", "Hull", "HU1", None)]
    shadow = _shadow(tmp_path, customers, [(10, 1, "a"), (11, 7, "orphan"), (12, 8, "orphan"), (12, 1, "b")])
    with shadow.context() as ctx:
        fks, keys = integrity.check(ctx)
    assert (fks.status, fks.summary) == ("FAIL", "2 row(s) reference a missing parent")
    assert fks.figures == {"checked": 1, "orphans": {"orders(customer_id) -> customer(customer_id)": 2}}
    assert (keys.status, keys.summary) == ("FAIL", "3 duplicated key value(s)")
    assert keys.figures == {"checked": 3, "duplicates": {"customer(customer_id)": 1, "customer(email)": 1,
                                                         "orders(order_id)": 1}}
