"""Masking throughput on one core: 1,000,000 distinct values per strategy, through the engine.

Each case masks a column of 1M distinct values in batches of 100,000 rows (as a refresh
does) through :class:`~datastage.mask.engine.MaskingEngine`, so the numbers include
the engine's work: distinct-value factorization, fixed-point checks, the collision
tracker of unique strategies and the fit to the column type. Cases: ``hash``, ``tokenize``
(text, integers, and the FF1 cases), ``phone``, ``fake.first_name``, ``fake.last_name``,
``fake.street_address`` (pools drawn before the timing: once per process), ``email``
(unique) and ``card_number`` (``4000 0000 0000 0042``: spaced 16-digit numbers, Luhn over the
whole column). A last case calls Faker once per row on the same data, for comparison.

Usage::

    .venv/bin/python benchmarks/bench_masking.py            # all cases, 1M values
    .venv/bin/python benchmarks/bench_masking.py --rows 200000 --case hash

CPU time (``time.process_time``) is reported next to wall time, best of ``--repeat`` runs:
on a shared machine it is the steadier number. Results are recorded in ``benchmarks/README.md``.
``--case FF1`` runs the format-preserving encryption cases only (``--case FF1,hash``: either).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import sqlalchemy as sa
from faker import Faker

from datastage.mask.engine import MaskingEngine
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.source.schema import SchemaModel, reflect

BATCH = 100_000
KERNEL_TARGET = 2_000_000  # values/s per core the data plane promises for hash, tokenize, phone and email
KEY = MaskingKey(b"benchmark key, not a secret: 0123456789", source="benchmark")
SCHEMA = """
CREATE TABLE person (
    id INTEGER PRIMARY KEY, email TEXT UNIQUE, first_name TEXT, code TEXT UNIQUE, token TEXT, ref INTEGER UNIQUE,
    account BIGINT UNIQUE, phone TEXT UNIQUE, word TEXT UNIQUE, card TEXT UNIQUE, last_name TEXT, street TEXT
);
"""


@dataclass
class Case:
    name: str
    column: str
    rule: str
    values: Callable[[int], np.ndarray]
    target: int  # values per second the product promises


def _text(fmt: Callable[[int], str]) -> Callable[[int], np.ndarray]:
    return lambda n: np.array([fmt(i) for i in range(n)], dtype=object)


def _letters(i: int, length: int = 24) -> str:
    """A distinct ``length``-letter word per i (i spread over the domain by an odd multiplier)."""
    x = (i * 0x9E3779B97F4A7C15 + 12345) % 26**length
    out = []
    for _ in range(length):
        x, r = divmod(x, 26)
        out.append(chr(97 + r))
    return "".join(out)


CASES = [
    Case("hash", "token", "{strategy: hash, length: 16}", _text(lambda i: f"tok-{i:09d}-x"), KERNEL_TARGET),
    Case("tokenize (text)", "code", "tokenize", _text(lambda i: f"SKU-{i:07d}"), KERNEL_TARGET),
    Case("tokenize (integer)", "ref", "tokenize", lambda n: np.arange(1, n + 1, dtype=object), KERNEL_TARGET),
    # FF1 (NIST SP 800-38G) at radix 10 over 16 digits, radix 2 over the integer range, radix 26 over 24 letters.
    Case("tokenize FF1 16-digit integers", "account", "tokenize",
         lambda n: (np.arange(n, dtype=np.int64) * 7919 + 4_000_000_000_000_000).astype(object), KERNEL_TARGET),
    Case("tokenize FF1 16-digit text", "code", "tokenize", _text(lambda i: f"{4_000_000_000_000_000 + i * 7919:016d}"),
         KERNEL_TARGET),
    Case("phone FF1", "phone", "phone", _text(lambda i: f"+1-415-{i // 10_000:03d}-{i % 10_000:04d}"), KERNEL_TARGET),
    Case("tokenize FF1 24 letters", "word", "tokenize", _text(_letters), KERNEL_TARGET),
    Case("fake.first_name", "first_name", "fake.first_name", _text(lambda i: f"name{i}"), 1_000_000),
    Case("fake.last_name", "last_name", "fake.last_name", _text(lambda i: f"name{i}"), 1_000_000),
    Case("fake.street_address", "street", "fake.street_address", _text(lambda i: f"{i} Main Street"), 1_000_000),
    Case("card_number", "card", "card_number",
         _text(lambda i: f"4000 {i // 10**8:04d} {i // 10**4 % 10**4:04d} {i % 10**4:04d}"), 1_000_000),
    Case("email (unique)", "email", "{strategy: email, unique: true}",
         _text(lambda i: f"user{i}@corp{i % 97}.example"), KERNEL_TARGET),
]


def model(schema: str = SCHEMA) -> SchemaModel:
    """The reflected model of ``schema`` (SQL) created in a fresh SQLite file."""
    path = Path(tempfile.mkdtemp()) / "bench.db"
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn_sa:
        return reflect(conn_sa)


def run_case(schema: SchemaModel, case: Case, rows: int, repeat: int) -> tuple[float, float]:
    """Best (wall seconds, CPU seconds) of ``repeat`` runs masking ``rows`` distinct values.

    Every run starts with a fresh engine (no state from the previous run) and checks
    that the outputs of unique strategies are distinct.
    Faker pools are drawn (once per process) before the timing starts, as a refresh draws
    them once per process whatever its size.
    """
    rules = f"version: 1\ndefault: keep\ntables:\n  person:\n    {case.column}: {case.rule}\n"
    resolved = resolve_policy(policy_from_text(rules), schema)
    values = case.values(rows)
    MaskingEngine(resolved, KEY).mask_batch("person", pd.DataFrame({case.column: pd.Series(values[:2], dtype=object)}))
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        engine = MaskingEngine(resolved, KEY)
        batches = [pd.DataFrame({case.column: pd.Series(values[s:s + BATCH], dtype=object)})
                   for s in range(0, rows, BATCH)]
        wall, cpu = time.perf_counter(), time.process_time()
        outputs = [engine.mask_batch("person", batch)[0][case.column].to_numpy() for batch in batches]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if not case.name.startswith("fake."):
            assert len(set(np.concatenate(outputs))) == rows, f"{case.name}: outputs collided"
        best = min(best, (wall, cpu), key=lambda t: t[1])
    return best


def faker_per_row(rows: int) -> tuple[float, float]:
    """Per-row Faker calls (what many masking tools do): seed by value, then draw."""
    fake = Faker("en_US")
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(rows):
        fake.seed_instance(i)
        fake.first_name()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", default=None, help="run only cases whose name contains this (or one of a,b,...)")
    parser.add_argument("--faker-rows", type=int, default=50_000, help="rows for the per-row Faker comparison")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is reported")
    args = parser.parse_args()
    schema = model()
    print(f"{'case':<32} {'rows':>10} {'wall s':>8} {'cpu s':>8} {'values/s (cpu)':>15} {'target':>10}")
    fake_rate = None
    for case in CASES:
        if args.case and not any(part in case.name for part in args.case.split(",")):
            continue
        wall, cpu = run_case(schema, case, args.rows, args.repeat)
        rate = args.rows / cpu
        mark = "ok" if rate >= case.target else "MISSED"
        print(f"{case.name:<32} {args.rows:>10,} {wall:>8.2f} {cpu:>8.2f} {rate:>15,.0f} {case.target:>10,} {mark}")
        if case.name == "fake.first_name":
            fake_rate = rate
    if not args.case or "faker" in args.case:
        wall, cpu = faker_per_row(args.faker_rows)
        rate = args.faker_rows / cpu
        print(f"{'Faker per row':<32} {args.faker_rows:>10,} {wall:>8.2f} {cpu:>8.2f} {rate:>15,.0f}")
        if fake_rate:
            print(f"fake.first_name through the engine is {fake_rate / rate:,.0f}x per-row Faker")


if __name__ == "__main__":
    main()
