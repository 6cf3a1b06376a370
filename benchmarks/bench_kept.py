"""Kept-column check benchmark: the whole-value detectors over kept columns, as the check runs them.

Generates the kept columns of the refresh benchmark (:mod:`bench_refresh`), ``--rows`` rows in
all (customers : orders : payments = 1 : 2 : 1): city (10 distinct), country code (1),
notes (short free text on a third of the rows, 9 distinct), order status (5), tracking code
(``TRK000000000123``, unique per row) and payment method (4), and flags them batch by batch
the way :mod:`datastage.verify.checks.kept` does (non-blank text, then
:func:`~datastage.verify.checks.kept.flags`). Prints CPU seconds and values/s per column and in
all, and checks that nothing is flagged (none of these values is an identifier).

Usage::

    PYTHONPATH=. python benchmarks/bench_kept.py [--rows 1400000] [--batch 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datastage.verify.checks.kept import flags
from datastage.verify.leaks.tokens import nonblank_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import CITIES


def columns(rows: int) -> dict[str, pd.Series]:
    """The kept columns of the refresh benchmark's three tables, as the shadow holds them."""
    customers, orders = rows // 4, rows // 2
    payments = rows - customers - orders
    c = np.arange(1, customers + 1)
    o = np.arange(1, orders + 1)
    p = np.arange(1, payments + 1)

    def text(values: np.ndarray) -> pd.Series:
        return pd.Series(values.astype(object), dtype=object)

    notes = np.char.add("prefers e-mail, customer since ", (2015 + c % 9).astype(str)).astype(object)
    notes[c % 3 != 0] = None
    return {
        "customers.city": text(np.array(CITIES, dtype=object)[c % 10]),
        "customers.country_code": text(np.full(customers, "US", dtype=object)),
        "customers.notes": pd.Series(notes, dtype=object),
        "orders.status": text(np.array(["new", "paid", "shipped", "delivered", "returned"], dtype=object)[o % 5]),
        "orders.tracking_code": text(np.char.add("TRK", np.char.zfill(o.astype(str), 12))),
        "payments.method": text(np.array(["card", "card", "card", "transfer"], dtype=object)[p % 4]),
    }


def run(data: dict[str, pd.Series], batch: int) -> dict[str, tuple[float, int, int]]:
    """Per column: (CPU seconds, values, values flagged)."""
    out = {}
    for name, series in data.items():
        started = time.process_time()
        flagged = 0
        for start in range(0, len(series), batch):
            text = nonblank_text(series.iloc[start:start + batch])
            if len(text):
                flagged += sum(int(mask.sum()) for mask in flags(text).values())
        out[name] = (time.process_time() - started, len(series), flagged)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_400_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per batch, as the check reads them")
    parser.add_argument("--profile", action="store_true", help="print the 25 costliest functions")
    parser.add_argument("--only", default=None, help="one column (table.column) alone")
    args = parser.parse_args()
    data = columns(args.rows)
    if args.only:
        data = {args.only: data[args.only]}
    flags(pd.Series(["warm-up", "ann@example.com"] * 50, dtype=object))  # dictionaries, compiled patterns
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    results = run(data, args.batch)
    if profiler:
        profiler.disable()
    total = sum(seconds for seconds, _, _ in results.values())
    values = sum(count for _, count, _ in results.values())
    print(f"{args.rows:,} rows, batches of {args.batch:,}, load {os.getloadavg()[0]:.1f}\n")
    print("| column | values | CPU s | values/s | flagged |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (seconds, count, flagged) in results.items():
        print(f"| {name} | {count:,} | {seconds:.2f} | {count / max(seconds, 1e-9):,.0f} | {flagged} |")
    print(f"| all | {values:,} | {total:.2f} | {values / max(total, 1e-9):,.0f} | |")
    if profiler:
        stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
        stats.print_stats(int(os.environ.get("TOP", "25")))


if __name__ == "__main__":
    main()
