"""Leak-check kernel benchmark: building the leak index and searching a loaded copy, in values/s per core.

Generates ``--rows`` customers (first and last name, e-mail, phone, free-text note with
e-mails, phones, card numbers and names) and as many payments (card number), about
``6 * rows`` text values in all, as the extract streams them (pandas ``object`` batches
of 10,000 rows), then

1. ``LeakIndex.observe`` over every source batch (what the refresh does while it loads), and
2. ``Scanner.scan_frame`` over the masked copy (what the post-load search does per batch read
   back), with the source's values left in every 1000th row (masked columns and the kept
   note) so the search finds leaks.

CPU time of this process (``time.process_time``) is reported per step as text values per
second, with the wall time beside it; the findings are printed so two versions can be compared
(run this script with ``PYTHONPATH`` naming the version to measure).

Usage::

    PYTHONPATH=. python benchmarks/bench_leaks.py [--rows 330000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from datastage.discover.scan import ColumnFinding, ScanResult
from datastage.mask.checkspec import parse_check_settings
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.plan import PlanResult
from datastage.settings import SubsetSpec
from datastage.source.schema import reflect
from datastage.subset.planner import plan_subset
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.scanner import Found, Scanner

SCHEMA = [
    "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,"
    " phone TEXT, notes TEXT)",
    "CREATE TABLE payments (payment_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers,"
    " card_number TEXT)",
]
RULES = """version: 1
default: keep
tables:
  customers:
    first_name: fake.first_name
    last_name: fake.last_name
    email: {strategy: email, unique: true}
    phone: phone
    notes: {strategy: keep, reason: "benchmark: kept on purpose"}
  payments:
    card_number: card_number
"""
FIRST = np.array(["Ann", "Bob", "Zbigniew", "Maria", "Oluwaseun", "Kai", "Ingrid", "Xochitl", "Jan", "Siobhan"])
LAST = np.array(["Smith", "Brzeczyszczykiewicz", "Okonkwo", "Lee", "Vandersloot", "Nakamura", "Quixley",
                 "Garcia", "Thorvaldsen", "Papadopoulos"])


def _luhn_complete(prefix: np.ndarray) -> np.ndarray:
    """15-digit strings completed with their Luhn check digit."""
    codes = np.frombuffer("".join(prefix).encode(), dtype=np.uint8).reshape(len(prefix), 15).astype(np.int64) - 48
    doubled = codes[:, ::-1].copy()
    doubled[:, ::2] *= 2
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return np.char.add(prefix.astype(str), check.astype(str))


def generate(rows: int, seed: int = 7) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(source, masked copy) frames of both tables."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows + 1)
    first = FIRST[rng.integers(0, len(FIRST), rows)]
    last = LAST[rng.integers(0, len(LAST), rows)]
    email = np.char.add(np.char.add("user", ids.astype(str)), "@mail.example.org")
    phone = np.char.add("+1-415-", np.char.add(np.char.zfill((ids * 37 % 1000).astype(str), 3),
                                                np.char.add("-", np.char.zfill((ids % 10000).astype(str), 4))))
    cards = _luhn_complete(np.char.add("4", np.char.zfill((ids * 2654435761 % 10**14).astype(str), 14)))
    kind = ids % 6
    notes = np.where(kind == 0, np.char.add("prefers e-mail, write to ", email),
             np.where(kind == 1, np.char.add("call back on ", phone),
             np.where(kind == 2, np.char.add(np.char.add("met ", np.char.add(np.char.add(first, " "), last)),
                                             " at the fair"),
             np.where(kind == 3, np.char.add("paid with card ", cards),
             np.where(kind == 4, "customer since 2019, no complaints", "")))))
    source = {
        "customers": pd.DataFrame({"customer_id": ids, "first_name": first, "last_name": last, "email": email,
                                   "phone": phone, "notes": notes}).astype(object),
        "payments": pd.DataFrame({"payment_id": ids, "customer_id": ids, "card_number": cards}).astype(object),
    }
    # The masked copy: other names, e-mails, phones and test cards; every 1000th row keeps its original.
    leak = ids % 1000 == 0
    masked_email = np.where(leak, email, np.char.add(np.char.add("x", ids.astype(str)), "@example.net"))
    masked_phone = np.where(leak, phone, np.char.add("+1-555-", np.char.zfill((ids % 10000).astype(str), 4)))
    masked_cards = np.where(leak, cards, "4111111111111111")
    masked_first = FIRST[(ids + 3) % len(FIRST)]
    masked_last = np.array(["Jones", "Brown", "Miller", "Davis"])[ids % 4]
    # Kept notes as a masked copy would hold them: the source's identifiers only in the leaking rows.
    masked_notes = np.where(kind == 0, np.char.add("prefers e-mail, write to ", masked_email),
                   np.where(kind == 1, np.char.add("call back on ", masked_phone),
                   np.where(kind == 2, np.char.add(np.char.add("met ", np.char.add(np.char.add(masked_first, " "),
                                                                                  masked_last)), " at the fair"),
                   np.where(kind == 3, np.char.add("paid with card ", masked_cards),
                   np.where(kind == 4, "customer since 2019, no complaints", "")))))
    masked_notes = np.where(leak, notes, masked_notes)
    target = {
        "customers": pd.DataFrame({"customer_id": ids, "first_name": masked_first, "last_name": masked_last,
                                   "email": masked_email, "phone": masked_phone,
                                   "notes": masked_notes}).astype(object),
        "payments": pd.DataFrame({"payment_id": ids, "customer_id": ids, "card_number": masked_cards}).astype(object),
    }
    return source, target


def plan(conn: sa.Connection) -> PlanResult:
    for ddl in SCHEMA:
        conn.exec_driver_sql(ddl)
    model = reflect(conn)
    policy = policy_from_text(RULES, "rules.yaml")
    resolved = resolve_policy(policy, model)
    settings = parse_check_settings(policy, model)
    subset = plan_subset(conn, model, SubsetSpec())
    tables = [model.tables[k] for k in model.load_order()]

    def finding(table: str, column: str, kind: str, classification: str = "direct_identifier",
                shares: dict[str, float] | None = None) -> ColumnFinding:
        return ColumnFinding(table, column, "TEXT", "text", classification, 0.9, kind,  # type: ignore[arg-type]
                             value_kinds=shares or {})

    findings = {(f.table, f.column): f for f in [
        finding("customers", "first_name", "first_name"), finding("customers", "last_name", "last_name"),
        finding("customers", "email", "email"), finding("customers", "phone", "phone"),
        finding("customers", "notes", "free_text", "sensitive",
                {"free_text:phone": 0.2, "free_text:full_name": 0.2, "free_text:email": 0.2}),
        finding("payments", "card_number", "card_number")]}
    scan = ScanResult(findings, 1000, 0)
    return PlanResult("staging", model, subset, resolved, {}, tables, {t.key: list(t.columns) for t in tables},
                      scan, settings)


def batches(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[a:a + size].reset_index(drop=True) for a in range(0, len(frame), size)]


def text_values(frames: dict[str, pd.DataFrame]) -> int:
    return sum(int(frame[c].map(lambda v: isinstance(v, str)).sum()) for frame in frames.values()
               for c in frame.columns if c not in ("customer_id", "payment_id"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=330_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    key = MaskingKey(b"a benchmark key, not a real one!", source="benchmark")
    source, target = generate(args.rows)
    values = text_values(source)
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        planned = plan(conn)
    index = LeakIndex.for_plan(key, planned)
    parts = {t: batches(f, args.batch) for t, f in source.items()}
    masked_parts = {t: batches(f, args.batch) for t, f in target.items()}
    started, wall = time.process_time(), time.perf_counter()
    for table, frames in parts.items():
        for frame, masked in zip(frames, masked_parts[table], strict=True):
            index.observe(table, frame, masked)
    observe_s, observe_wall = time.process_time() - started, time.perf_counter() - wall
    started = time.process_time()
    scanner = Scanner(planned, index, key, planned.checks)
    setup_s = time.process_time() - started
    found = Found()
    tables = {t.key: t for t in planned.tables}
    started, wall = time.process_time(), time.perf_counter()
    for table, frames in masked_parts.items():
        info = tables[table]
        rules, text_columns, _ = scanner.columns(info)
        for frame in frames:
            scanner.scan_frame(info, frame, rules, text_columns, found)
    search_s, search_wall = time.process_time() - started, time.perf_counter() - wall
    result = {
        "rows": args.rows, "text_values": values, "load_average": os.getloadavg()[0],
        "observe_cpu_s": round(observe_s, 3), "observe_values_per_s": round(values / observe_s),
        "observe_wall_s": round(observe_wall, 3),
        "scanner_setup_cpu_s": round(setup_s, 3),
        "search_cpu_s": round(search_s, 3), "search_values_per_s": round(values / search_s),
        "search_wall_s": round(search_wall, 3),
        "findings": {"masked": dict(found.masked.matches), "identifiers": dict(found.identifiers.matches),
                     "by_kind": {k: dict(v) for k, v in found.identifiers.by_kind.items()},
                     "cards": dict(found.cards.matches), "test_cards": found.test_cards,
                     "ambiguous": found.ambiguous, "values": [found.masked.values, found.identifiers.values,
                                                              found.cards.values],
                     "details": {"|".join([k[0], k[1], k[2], ",".join(k[3])]): [f.count, f.row_count, f.rows[:3]]
                                 for k, f in sorted(found.findings.items())}},
    }
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
