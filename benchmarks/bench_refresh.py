"""Refresh benchmark: datastage refresh (every check on) against ``pg_dump -Fc | pg_restore``, side by side.

Builds a PostgreSQL source of ``--rows`` rows in 3 tables (customers : orders : payments =
1 : 2 : 1 by default), 6 masked columns (first name, last name, unique e-mail, phone,
shipping address, card number) and kept text columns with reasons, then in one run against the
same server, alternating ``--repeat`` times:

1. ``pg_dump -Fc SRC | pg_restore -d FRESH``, the unmasked floor;
2. ``datastage refresh`` into a PostgreSQL target (``--target mysql`` for a MariaDB one), with
   every post-load check on, the executor and worker count given (``--executor local --workers 2``).

Wall time, peak resident memory of the largest process (``wait4``; for the pipe, either side) and
rows/s are printed as a Markdown table and written to ``benchmarks/work/refresh-results.json``.

Usage::

    PYTHONPATH=. python benchmarks/bench_refresh.py [--rows 1400000] [--repeat 3] [--workers N]
                                                    [--target postgres|mysql] [--tag NAME] [--keep]

``--tag`` suffixes every database name, so runs on a shared server do not drop each other's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import (
    CITIES,
    FIRST,
    LAST,
    LAST_CPU,
    PYTHON,
    WORK,
    _array,
    admin,
    bench_dump_restore,
    run,
    sqlalchemy_url,
)


def source_sql(rows: int) -> list[str]:
    """Three tables of ``rows`` rows in all: customers, their orders, the orders' payments."""
    customers = rows // 4
    orders = rows // 2
    payments = rows - customers - orders
    return [
        """CREATE TABLE customers (
             customer_id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
             email text NOT NULL UNIQUE, phone text, city text, country_code char(2),
             signup_date date, notes text)""",
        f"""INSERT INTO customers SELECT i, ({_array(FIRST)})[1 + i % 20], ({_array(LAST)})[1 + (i * 7) % 20],
               'user' || i || '@mail.example.org',
               '+1-415-' || lpad(((i * 37) % 1000)::text, 3, '0') || '-' || lpad((i % 10000)::text, 4, '0'),
               ({_array(CITIES)})[1 + i % 10], 'US', date '2015-01-01' + (i % 3000),
               CASE WHEN i % 3 = 0 THEN 'prefers e-mail, customer since ' || (2015 + i % 9) END
             FROM generate_series(1, {customers}) i""",
        """CREATE TABLE orders (
             order_id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
             status text NOT NULL, amount numeric(10, 2) NOT NULL, created_at timestamptz NOT NULL,
             shipping_address text, tracking_code text)""",
        f"""INSERT INTO orders SELECT i, 1 + (i::bigint * 7919) % {customers},
               (ARRAY['new', 'paid', 'shipped', 'delivered', 'returned'])[1 + i % 5], (i % 50000) / 100.0,
               timestamptz '2020-01-01 00:00:00+00' + (i || ' minutes')::interval,
               (i % 9999) || ' ' || (ARRAY['Main', 'Oak', 'Pine', 'Maple', 'Cedar'])[1 + i % 5] || ' Street, '
                 || ({_array(CITIES)})[1 + i % 10],
               'TRK' || lpad(i::text, 12, '0')
             FROM generate_series(1, {orders}) i""",
        """CREATE TABLE payments (
             payment_id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders,
             method text NOT NULL, card_number text, paid_at timestamptz NOT NULL)""",
        f"""INSERT INTO payments SELECT i, 1 + (i::bigint * 104729) % {orders},
               (ARRAY['card', 'card', 'card', 'transfer'])[1 + i % 4],
               CASE WHEN i % 4 <> 3 THEN '4' || lpad(((i::bigint * 2654435761) % 1000000000000000)::text, 15, '0')
               END,
               timestamptz '2020-01-01 00:00:00+00' + (i || ' minutes')::interval
             FROM generate_series(1, {payments}) i""",
        "CREATE INDEX orders_customer_id_idx ON orders (customer_id)",
        "CREATE INDEX payments_order_id_idx ON payments (order_id)",
        "ANALYZE",
    ]


KEPT = "benchmark: kept on purpose, not personal"
RULES = {
    "version": 1,
    "default": "keep",
    "tables": {
        "customers": {"first_name": "fake.first_name", "last_name": "fake.last_name",
                      "email": {"strategy": "email", "unique": True}, "phone": "phone",
                      "city": {"strategy": "keep", "reason": KEPT}, "notes": {"strategy": "keep", "reason": KEPT},
                      "signup_date": {"strategy": "keep", "reason": KEPT}},
        "orders": {"shipping_address": "fake.street_address",
                   "tracking_code": {"strategy": "keep", "reason": KEPT}},
        "payments": {"card_number": "card_number"},
    },
}


def target_url(args: argparse.Namespace, server: str, name: str) -> str:
    if args.target == "mysql":
        return make_url(args.mysql).set(database=name).render_as_string(hide_password=False)
    return sqlalchemy_url(server, name)


def reset_target(args: argparse.Namespace, server: str, name: str) -> None:
    if args.target == "mysql":
        base = make_url(args.mysql).render_as_string(hide_password=False)
        admin(base, f"DROP DATABASE IF EXISTS `{name}`", f"DROP DATABASE IF EXISTS `{name}__ds_prev`",
              f"CREATE DATABASE `{name}`")
    else:
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


def drop_mysql_target(args: argparse.Namespace, name: str) -> None:
    """Drop the MariaDB target and the databases a refresh keeps beside it (previous copy, lock record)."""
    base = make_url(args.mysql).render_as_string(hide_password=False)
    admin(base, *(f"DROP DATABASE IF EXISTS `{name}{suffix}`" for suffix in ("", "__ds_prev", "__ds_lock")))


def bench_datastage(args: argparse.Namespace, server: str, source: str, target: str) -> dict[str, float]:
    reset_target(args, server, target)
    project = WORK / "refresh-project"
    (project / "rules").mkdir(parents=True, exist_ok=True)
    (project / "rules" / "pii.yaml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    environment: dict[str, object] = {"url": target_url(args, server, target), "rules": "rules/pii.yaml"}
    if args.executor:
        environment["executor"] = args.executor
    if args.workers:
        environment["workers"] = args.workers
    (project / "datastage.yaml").write_text(yaml.safe_dump({
        "source": {"url": sqlalchemy_url(server, source)}, "environments": {"bench": environment},
    }, sort_keys=False))
    for state in (project / ".datastage").glob("**/*"):  # every run is a first refresh
        if state.is_file():
            state.unlink()
    env = dict(os.environ, DATASTAGE_MASKING_KEY="0123456789abcdef" * 4)
    seconds, peak = run([PYTHON, "-m", "datastage", "refresh", "bench", "--quiet", "--json"], env=env, cwd=project)
    return {"seconds": seconds, "peak_rss_mib": peak / 1024, "client_cpu_seconds": LAST_CPU["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pg", default=os.environ.get("DATASTAGE_TEST_PG_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--mysql", default=os.environ.get("DATASTAGE_TEST_MYSQL_URL",
                                                          "mysql+pymysql://root@127.0.0.1:3306/test"))
    parser.add_argument("--rows", type=int, default=1_400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", choices=["postgres", "mysql"], default="postgres")
    parser.add_argument("--executor", default=None, help="the environment's executor: setting (default: local)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--reuse-source", action="store_true", help="keep a source built by an earlier run")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--tag", default="", help="suffix of the benchmark databases' names (for shared servers)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    server = sqlalchemy_url(args.pg, make_url(args.pg).database or "postgres")
    tag = f"_{args.tag}" if args.tag else ""
    source = f"ds_bench_refresh_{args.rows}{tag}"
    names = {"restore": f"ds_bench_refresh_restore{tag}", "datastage": f"ds_bench_refresh_target{tag}"}
    if not args.reuse_source:
        admin(server, f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)', f'CREATE DATABASE "{source}"')
        started = time.monotonic()
        admin(sqlalchemy_url(args.pg, source), *source_sql(args.rows))
        print(f"source: {args.rows:,} rows built in {time.monotonic() - started:.1f} s", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"pg_dump | pg_restore": [], "datastage refresh": []}
    try:
        for _ in range(args.repeat):  # alternating, so both see the same load on a shared machine
            runs["pg_dump | pg_restore"].append(bench_dump_restore(server, source, names["restore"]))
            runs["datastage refresh"].append(bench_datastage(args, server, source, names["datastage"]))
    finally:
        if not args.keep:
            admin(server, f'DROP DATABASE IF EXISTS "{names["restore"]}" WITH (FORCE)',
                  f'DROP DATABASE IF EXISTS "{names["datastage"]}" WITH (FORCE)')
            if args.target == "mysql":
                drop_mysql_target(args, names["datastage"])
    results = {name: {key: statistics.median(m[key] for m in measured) for key in measured[0]}
               for name, measured in runs.items()}
    floor = results["pg_dump | pg_restore"]["seconds"]
    load = os.getloadavg()[0]
    print(f"\n{args.rows:,} rows, target {args.target}, {platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}, "
          f"median of {args.repeat} alternating runs; datastage client CPU "
          f"{results['datastage refresh']['client_cpu_seconds']:.1f} s\n")
    for name, measured in runs.items():
        print(f"{name}: " + ", ".join(f"{m['seconds']:.1f} s" for m in measured))
    print("\n| tool | wall time | × dump/restore | peak memory | rows/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in results.items():
        print(f"| {name} | {figures['seconds']:.1f} s | {figures['seconds'] / floor:.2f} | "
              f"{figures['peak_rss_mib']:.0f} MiB | {args.rows / figures['seconds']:,.0f} |")
    (WORK / f"refresh-results-{args.target}-{args.rows}.json").write_text(
        json.dumps({"rows": args.rows, "load": load, "results": results, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
