"""Discovery against the labelled corpus, ``scrub`` on labelled notes, and scan time on a 20-table database.

Three parts, printed one after the other:

1. the corpus table: for every corpus database (``tests/corpus``), recall of direct
   identifiers (found by the scan, masked by the proposal), recall of all personal columns,
   false positives (non-personal columns the proposal masks), class and kind accuracy and
   scan seconds; then, with ``--details``, every miss and false positive by name. The
   generated databases run on SQLite; with ``DATASTAGE_TEST_PG_URL`` /
   ``DATASTAGE_TEST_MYSQL_URL`` set also ``hr`` in two schemas on PostgreSQL, ``crime`` on
   MariaDB and the public Pagila and Sakila from the shared datasets folder;
2. ``scrub`` on the labelled notes: span recall, words kept, consistency with the masked
   e-mail column ("not available" while no ``scrub`` strategy is registered);
3. scan time of a generated 20-table SQLite database of ``--rows`` rows per table with
   1,000 sampled rows per table (target: under 2 s), best of ``--repeat``, wall and CPU.

Usage::

    .venv/bin/python benchmarks/bench_discovery.py                # all three parts
    .venv/bin/python benchmarks/bench_discovery.py --details      # and every miss by name
    .venv/bin/python benchmarks/bench_discovery.py --part scan --rows 5000

Run by hand; it is not a test. Results are recorded in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "corpus"), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from corpus_dbs import GENERATED, build_generated, load_public  # noqa: E402
from corpus_measure import Measurement, measure, table  # noqa: E402
from corpus_scrub import measure_scrub, notes  # noqa: E402
from faker import Faker  # noqa: E402

from datastage.discover.scan import scan_source  # noqa: E402
from datastage.source.db import make_engine, snapshot  # noqa: E402
from datastage.source.schema import reflect  # noqa: E402

SCAN_TARGET_SECONDS = 2.0


# -- part 1: the corpus ------------------------------------------------------------------------

def _server(var: str) -> str | None:
    url = os.environ.get(var)
    if not url:
        return None
    for plain, driver in (("postgresql://", "postgresql+psycopg://"), ("mysql://", "mysql+pymysql://")):
        if url.startswith(plain):
            url = driver + url[len(plain):]
    return url


def corpus(directory: Path, servers: bool) -> list[Measurement]:
    """Build (or load) every corpus database this machine can hold and measure each."""
    results = [measure(build_generated(name, f"sqlite:///{directory / name}.db")) for name in GENERATED]
    if not servers:
        return results
    from conftest import ServerDatabases, datasets_dir

    for var, jobs in (("DATASTAGE_TEST_PG_URL", [("hr", False), ("health", False), ("pagila", True)]),
                      ("DATASTAGE_TEST_MYSQL_URL", [("crime", False), ("sakila", True)])):
        url = _server(var)
        if url is None:
            print(f"({var} not set: its corpus databases are left out)")
            continue
        server = ServerDatabases(url)
        try:
            for name, public in jobs:
                if public and not (datasets_dir() / ("pagila" if name == "pagila" else "sakila-mysql")).is_dir():
                    print(f"(datasets not found at {datasets_dir()}: {name} left out)")
                    continue
                target = server.create("ds_bench_corpus")
                db = load_public(name, target, datasets_dir()) if public else build_generated(name, target)
                results.append(measure(db))
        finally:
            server.drop_all()
    return results


# -- part 3: scan time on 20 tables --------------------------------------------------------------

def wide_database(path: Path, tables: int = 20, rows: int = 2000, seed: int = 7) -> str:
    """A SQLite database of ``tables`` tables with ``rows`` rows each: names, contacts, codes, notes, amounts."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    pools = {
        "first": np.array([fake.first_name() for _ in range(500)], dtype=object),
        "last": np.array([fake.last_name() for _ in range(500)], dtype=object),
        "city": np.array([fake.city() for _ in range(200)], dtype=object),
        "street": np.array([fake.street_address() for _ in range(500)], dtype=object),
        "sentence": np.array([fake.sentence(nb_words=12) for _ in range(300)], dtype=object),
        "status": np.array(["new", "open", "paid", "shipped", "closed"], dtype=object),
    }
    engine = sa.create_engine(f"sqlite:///{path}")
    prefixes = ["", "billing_", "ship_", "contact_", "emergency_contact_"]
    with engine.begin() as conn:
        for t in range(tables):
            p = prefixes[t % len(prefixes)]
            name = f"table_{t:02d}"
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, {p}first_name TEXT, {p}last_name TEXT, "
                f"{p}email TEXT, {p}phone TEXT, {p}street TEXT, {p}city TEXT, status TEXT, code TEXT, "
                f"amount NUMERIC, created_at TEXT, note TEXT)")
            first = pools["first"][rng.integers(0, 500, rows)]
            last = pools["last"][rng.integers(0, 500, rows)]
            ids = np.arange(1, rows + 1)
            records = [
                (int(i), f, la, f"{f.lower()}.{la.lower()}{i}@example.com",
                 f"+1-{200 + i % 700}-555-{i % 10000:04d}", s, c, st, f"SKU-{i * 7919 % 10**7:07d}",
                 round(float(a), 2), f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                 f"{n} Call {f} at +1-212-555-{i % 10000:04d}." if i % 10 == 0 else n)
                for i, f, la, s, c, st, a, n in zip(
                    ids, first, last, pools["street"][rng.integers(0, 500, rows)],
                    pools["city"][rng.integers(0, 200, rows)], pools["status"][rng.integers(0, 5, rows)],
                    rng.uniform(1, 5000, rows), pools["sentence"][rng.integers(0, 300, rows)])]
            conn.exec_driver_sql(f"INSERT INTO {name} VALUES ({', '.join('?' * 12)})", records)
    engine.dispose()
    return f"sqlite:///{path}"


def scan_time(url: str, repeat: int, sample_rows: int = 1000) -> tuple[float, float, int, int]:
    """Best (wall, CPU) seconds of ``scan_source`` over ``repeat`` runs, and the tables and columns scanned."""
    best = (float("inf"), float("inf"))
    tables = columns = 0
    for _ in range(repeat):
        engine = make_engine(url, read_only=True)
        try:
            with snapshot(engine) as conn:
                model = reflect(conn)
                wall, cpu = time.perf_counter(), time.process_time()
                result = scan_source(conn, model, sample_rows=sample_rows)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            engine.dispose()
        tables, columns = len(model.tables), len(result.findings)
        best = min(best, (wall, cpu), key=lambda t: t[1])
    return best[0], best[1], tables, columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "corpus", "scrub", "scan"], default="all")
    parser.add_argument("--details", action="store_true", help="list every miss and false positive by name")
    parser.add_argument("--no-servers", action="store_true", help="SQLite only, even with server URLs set")
    parser.add_argument("--rows", type=int, default=2000, help="rows per table of the 20-table database")
    parser.add_argument("--repeat", type=int, default=3, help="scan runs; the best is reported")
    parser.add_argument("--scrub-rule", default="scrub", help="the rule for the notes column (default: scrub)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        if args.part in ("all", "corpus"):
            results = corpus(directory, servers=not args.no_servers)
            print("## Discovery on the labelled corpus\n")
            print(table(results))
            if args.details:
                for result in results:
                    print("\n" + result.report())
            print()
        if args.part in ("all", "scrub"):
            print("## scrub on labelled notes\n")
            print(measure_scrub(notes(), args.scrub_rule).report())
            print()
        if args.part in ("all", "scan"):
            url = wide_database(directory / "wide.db", rows=args.rows)
            wall, cpu, tables, columns = scan_time(url, args.repeat)
            mark = "ok" if wall < SCAN_TARGET_SECONDS else "MISSED"
            print("## Scan time\n")
            print("| database | tables | columns | rows/table | sampled/table | wall s | CPU s | target |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            print(f"| generated, SQLite | {tables} | {columns} | {args.rows:,} | 1,000 | {wall:.2f} | {cpu:.2f} "
                  f"| < {SCAN_TARGET_SECONDS:.0f} s {mark} |")


if __name__ == "__main__":
    main()
