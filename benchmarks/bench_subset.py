"""Subset benchmark: plan and extract a 10% subset of a PostgreSQL database with >1M rows,
datastage next to the `subsetter` package (PyPI), on the same database and the same roots.

Run by hand (results go to benchmarks/README.md, never into timed tests):

    python benchmarks/bench_subset.py                      # build the database, run both, drop it
    python benchmarks/bench_subset.py --scale 2 --keep     # twice the rows; keep the database

The schema is a small shop, acyclic so that subsetter can plan it:
country <- customer <- orders <- order_item -> product, orders <- payment, customer <- review -> product.
Roots: every customer with ``customer_id % 10 = 0`` (10%), for both tools; both then take
the customers' descendants and every parent those rows need.

subsetter is installed into its own virtualenv under benchmarks/work/ (git-ignored), never
as a dependency of datastage. Each tool runs in its own process; peak memory is that
process's maximum resident set size. subsetter writes its rows as JSON lines to a
directory; datastage is timed both streaming its batches (what a refresh does before
masking) and writing the same JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
VENV = WORK / "subsetter-venv"
ROOT_SQL = "customer_id % 10 = 0"

SCHEMA = """
CREATE TABLE country (country_id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE product (product_id integer PRIMARY KEY, title text NOT NULL, price numeric(8, 2) NOT NULL);
CREATE TABLE customer (customer_id integer PRIMARY KEY, email text NOT NULL, name text NOT NULL,
    country_id integer NOT NULL REFERENCES country, created timestamptz NOT NULL);
CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customer,
    placed timestamptz NOT NULL, status text NOT NULL);
CREATE TABLE order_item (order_item_id integer PRIMARY KEY, order_id integer NOT NULL REFERENCES orders,
    product_id integer NOT NULL REFERENCES product, qty integer NOT NULL, price numeric(8, 2) NOT NULL);
CREATE TABLE payment (payment_id integer PRIMARY KEY, order_id integer NOT NULL REFERENCES orders,
    amount numeric(10, 2) NOT NULL, card text NOT NULL, paid timestamptz NOT NULL);
CREATE TABLE review (review_id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customer,
    product_id integer NOT NULL REFERENCES product, stars integer NOT NULL, body text);
"""


def populate(url: str, scale: int) -> dict[str, int]:
    """Generate the data in SQL (deterministic: every value is a function of its id)."""
    n_customer, n_product = 100_000 * scale, 10_000 * scale
    n_orders, n_item, n_payment, n_review = 300_000 * scale, 750_000 * scale, 250_000 * scale, 100_000 * scale
    statements = [
        "INSERT INTO country SELECT g, 'country ' || g FROM generate_series(1::bigint, 200) g",
        f"INSERT INTO product SELECT g, 'product ' || g, (g % 500) + 0.99 "
        f"FROM generate_series(1::bigint, {n_product}) g",
        f"INSERT INTO customer SELECT g, 'user' || g || '@example.com', 'name ' || g, 1 + (g * 7) % 200, "
        f"timestamptz '2020-01-01' + g * interval '1 minute' FROM generate_series(1::bigint, {n_customer}) g",
        f"INSERT INTO orders SELECT g, 1 + (g * 7919) % {n_customer}, timestamptz '2021-01-01' + g * interval '1 min', "
        f"(ARRAY['new', 'paid', 'shipped'])[1 + g % 3] FROM generate_series(1::bigint, {n_orders}) g",
        f"INSERT INTO order_item SELECT g, 1 + (g * 104729) % {n_orders}, 1 + (g * 31) % {n_product}, 1 + g % 5, "
        f"(g % 300) + 0.5 FROM generate_series(1::bigint, {n_item}) g",
        f"INSERT INTO payment SELECT g, 1 + (g * 15485863) % {n_orders}, (g % 1000) + 0.25, "
        f"'4111 1111 1111 ' || lpad((g % 10000)::text, 4, '0'), timestamptz '2021-02-01' + g * interval '1 min' "
        f"FROM generate_series(1::bigint, {n_payment}) g",
        f"INSERT INTO review SELECT g, 1 + (g * 613) % {n_customer}, 1 + (g * 17) % {n_product}, 1 + g % 5, "
        f"repeat('nice ', (1 + g % 20)::int) FROM generate_series(1::bigint, {n_review}) g",
    ]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        for statement in statements:
            conn.exec_driver_sql(statement.replace("%", "%%"))
        for table in ("orders(customer_id)", "order_item(order_id)", "order_item(product_id)", "payment(order_id)",
                      "review(customer_id)", "review(product_id)", "customer(country_id)"):
            conn.exec_driver_sql(f"CREATE INDEX ON {table}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
        counts = {t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one())
                  for t in ("country", "product", "customer", "orders", "order_item", "payment", "review")}
    engine.dispose()
    return counts


# -- datastage (runs in a child process) ----------------------------------------------------

def run_datastage(url: str, out_dir: str | None, percent: bool) -> dict[str, Any]:
    from datastage.settings import RootSpec, SubsetSpec
    from datastage.source.db import make_engine, snapshot
    from datastage.source.schema import reflect
    from datastage.subset.extract import extract_table
    from datastage.subset.planner import plan_subset

    root = RootSpec("customer", percent=10) if percent else RootSpec("customer", where=ROOT_SQL)
    spec = SubsetSpec(roots=(root,), seed=1)
    engine = make_engine(url, read_only=True)
    started = time.perf_counter()
    with snapshot(engine) as conn:
        model = reflect(conn, (), spec)
        plan = plan_subset(conn, model, spec)
        planned = time.perf_counter()
        rows: dict[str, int] = {}
        for key, table in model.tables.items():
            count = 0
            handle = open(Path(out_dir) / f"{key}.json", "w", encoding="utf-8") if out_dir else None  # noqa: SIM115
            for batch in extract_table(conn, table, plan.tables[key], plan.seed):
                count += len(batch)
                if handle is not None:
                    handle.write(batch.to_json(orient="records", lines=True, date_format="iso", default_handler=str))
            if handle is not None:
                handle.close()
            rows[key] = count
        extracted = time.perf_counter()
    engine.dispose()
    return {"plan_seconds": planned - started, "extract_seconds": extracted - planned, "rows": rows,
            "queries": plan.queries}


# -- subsetter -------------------------------------------------------------------------------

def ensure_subsetter() -> Path:
    exe = VENV / "bin" / "subsetter"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "subsetter", "psycopg2-binary"], check=True)
    return exe


def subsetter_config(url: str, out_dir: Path) -> dict[str, Any]:
    parsed = sa.engine.make_url(url)
    return {
        "source": {"dialect": "postgres", "host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
                   "database": parsed.database, "username": parsed.username or "postgres",
                   "password": parsed.password or ""},
        "planner": {"select": ["public.*"], "targets": {"public.customer": {"sql": ROOT_SQL}}},
        "sampler": {"output": {"mode": "directory", "directory": str(out_dir)}},
    }


def run_subsetter(url: str) -> dict[str, Any]:
    exe = ensure_subsetter()
    out_dir = WORK / "subsetter-out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    config = WORK / "subsetter.yaml"
    config.write_text(json.dumps(subsetter_config(url, out_dir)))
    plan_file = WORK / "subsetter-plan.yaml"
    plan = timed([str(exe), "-c", str(config), "plan", "-o", str(plan_file)])
    sample = timed([str(exe), "-c", str(config), "sample", "--plan", str(plan_file)])
    rows = {}
    for path in out_dir.glob("*.json"):
        with path.open(encoding="utf-8") as handle:
            rows[path.stem.split(".", 1)[1]] = sum(1 for _ in handle)
    return {"plan_seconds": plan["seconds"], "extract_seconds": sample["seconds"], "rows": rows,
            "peak_mb": max(plan["peak_mb"], sample["peak_mb"]), "wall_seconds": plan["seconds"] + sample["seconds"],
            "timed_as": "process"}


def timed(command: list[str]) -> dict[str, float]:
    """Wall time and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if status != 0:
        raise RuntimeError(f"{command[0]} failed: {stderr[-2000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def datastage_child(url: str, out_dir: Path | None, percent: bool) -> dict[str, Any]:
    result_file = WORK / f"datastage-{secrets.token_hex(3)}.json"
    command = [sys.executable, __file__, "--child", url, "--result", str(result_file)]
    if out_dir is not None:
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        command += ["--out", str(out_dir)]
    if percent:
        command.append("--percent")
    run = timed(command)
    result = json.loads(result_file.read_text())
    result_file.unlink()
    result["peak_mb"] = run["peak_mb"]
    result["wall_seconds"] = run["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATASTAGE_BENCH_PG_URL",
                                                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server (a database named ds_bench_subset_* is created on it)")
    parser.add_argument("--scale", type=int, default=1, help="1 = 1.5 million rows")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--database", help="use this existing, already generated database")
    parser.add_argument("--skip-subsetter", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the fastest is reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--percent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.result).write_text(json.dumps(run_datastage(args.child, args.out, args.percent)))
        return

    WORK.mkdir(exist_ok=True)
    admin = sa.create_engine(args.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    name = args.database or f"ds_bench_subset_{secrets.token_hex(3)}"
    url = sa.engine.make_url(args.url).set(database=name).render_as_string(hide_password=False)
    created = False
    try:
        if not args.database:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            created = True
            started = time.perf_counter()
            counts = populate(url, args.scale)
            print(f"generated {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f}s: {counts}")
        runs: dict[str, Any] = {
            "datastage (stream batches)": lambda: datastage_child(url, None, False),
            "datastage (write JSON lines)": lambda: datastage_child(url, WORK / "datastage-out", False),
            "datastage, percent: 10 (seeded sample)": lambda: datastage_child(url, None, True),
        }
        if not args.skip_subsetter:
            runs["subsetter 0.4.4 (write JSON lines)"] = lambda: run_subsetter(url)
        results: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):  # interleaved, so background load hits every tool alike
            for tool, run in runs.items():
                result = run()
                best = results.get(tool)
                if best is None or result["wall_seconds"] < best["wall_seconds"]:
                    results[tool] = result
        print("| tool | plan (s) | extract (s) | plan + extract (s) | process wall (s) | peak RSS (MB) | rows |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for tool, r in results.items():
            print(f"| {tool} | {r['plan_seconds']:.2f} | {r['extract_seconds']:.2f} | "
                  f"{r['plan_seconds'] + r['extract_seconds']:.2f} | {r['wall_seconds']:.2f} | {r['peak_mb']:.0f} | "
                  f"{sum(r['rows'].values()):,} |")
        print(json.dumps({tool: r["rows"] for tool, r in results.items()}, indent=1))
    finally:
        if created and not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
