"""Kept-column check benchmark: the whole-value detectors over kept columns, as the check runs them.

Generates the kept columns of the refresh benchmark (:mod:`bench_refresh`), ``--rows`` rows in
all (customers : orders : payments = 1 : 2 : 1): city (10 distinct), country code (1),
notes (short free text on a third of the rows, 9 distinct), order status (5), tracking code
(``TRK000000000123``, unique per row) and payment method (4), and flags them batch by batch
the way :mod:`datastage.verify.checks.kept` does (Arrow batches as the PostgreSQL reader gives
them, or pandas frames with ``--frames``; each column's distinct non-blank values flagged by a
:class:`~datastage.verify.checks.kept.ColumnFlags`). Prints CPU seconds and values/s per column and in
all, and checks that nothing is flagged (none of these values is an identifier).

Usage::

    PYTHONPATH=. python benchmarks/bench_kept.py [--rows 1400000] [--batch 10000] [--frames] [--profile]
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
import pyarrow as pa

from datastage.verify.checks.kept import ArrowRows, ColumnFlags, FrameRows, flags

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


def run(data: dict[str, pd.Series], batch: int, arrow: bool) -> dict[str, tuple[float, int, int]]:
    """Per column: (CPU seconds, values, values flagged), batch by batch as the check flags them
    (``arrow``: batches as Arrow tables, as the PostgreSQL reader gives them, else pandas frames)."""
    out = {}
    for name, series in data.items():
        table = pa.table({"value": pa.array(series.tolist(), type=pa.string())}) if arrow else None
        started = time.process_time()
        flagged = 0
        column = ColumnFlags()
        for start in range(0, len(series), batch):
            rows = ArrowRows(table.slice(start, batch)) if table is not None else \
                FrameRows(pd.DataFrame({"value": series.iloc[start:start + batch]}))
            codes, values = rows.factorized("value")
            if len(values):
                flagged += sum(int(mask.sum()) for mask in column.flag_codes(codes, values).values())
        out[name] = (time.process_time() - started, len(series), flagged)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_400_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per batch, as the check reads them")
    parser.add_argument("--profile", action="store_true", help="print the 25 costliest functions")
    parser.add_argument("--only", default=None, help="one column (table.column) alone")
    parser.add_argument("--frames", action="store_true", help="batches as pandas frames (other databases)")
    args = parser.parse_args()
    data = columns(args.rows)
    if args.only:
        data = {args.only: data[args.only]}
    flags(pd.Series(["warm-up", "ann@example.com"] * 50, dtype=object))  # dictionaries, compiled patterns
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    results = run(data, args.batch, not args.frames)
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
