"""Loading benchmark: datastage refresh vs pg_dump | pg_restore vs pynonymizer, on one PostgreSQL database.

Builds a source database of 1,000,000 rows (200,000 customers, 800,000 orders, 12 text
columns), then, in one run and against the same server:

1. ``pg_dump -Fc SRC | pg_restore -d FRESH`` — the unmasked floor;
2. ``datastage refresh`` — full copy into a PostgreSQL target, 4 of the 12 text columns masked
   (first name, last name, e-mail, shipping address), verified and swapped in;
3. ``pynonymizer`` (from PyPI, in its own virtualenv under ``benchmarks/work/``) doing the same
   masking: ``pg_dump`` of the source as SQL, restored into a fresh database and anonymised
   in place (its dump-the-result step skipped, so both end with a masked database).

Dump/restore and datastage run ``--repeat`` times (default 3), alternating, and their medians are
reported, since a shared machine's load changes from minute to minute. Wall time, peak resident
memory (of the largest process, from ``wait4``), rows/s and datastage's own CPU time are printed
as a Markdown table and written to ``benchmarks/work/load-results.json``.

Usage::

    python benchmarks/bench_load.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--rows 1000000]
                                    [--repeat 3] [--skip-pynonymizer] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
PYTHON = sys.executable

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin"]
CITIES = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem",
          "Madison", "Georgetown"]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v + "'" for v in values) + "]"


def source_sql(rows: int) -> list[str]:
    customers = rows // 5
    orders = rows - customers
    return [
        """CREATE TABLE customers (
             customer_id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
             email text NOT NULL UNIQUE, phone text, street text, city text, country_code char(2),
             signup_date date, notes text)""",
        f"""INSERT INTO customers SELECT i, ({_array(FIRST)})[1 + i % 20], ({_array(LAST)})[1 + (i * 7) % 20],
               'user' || i || '@mail.example.org', '+1-555-' || lpad((i % 10000)::text, 4, '0'),
               (i % 9999) || ' ' || (ARRAY['Main', 'Oak', 'Pine', 'Maple', 'Cedar'])[1 + i % 5] || ' Street',
               ({_array(CITIES)})[1 + i % 10], 'US', date '2015-01-01' + (i % 3000),
               CASE WHEN i % 3 = 0 THEN 'prefers e-mail, customer since ' || (2015 + i % 9) END
             FROM generate_series(1, {customers}) i""",
        """CREATE TABLE orders (
             order_id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
             status text NOT NULL, amount numeric(10, 2) NOT NULL, created_at timestamptz NOT NULL,
             shipping_address text, gift_message text, tracking_code text)""",
        f"""INSERT INTO orders SELECT i, 1 + (i::bigint * 7919) % {customers},
               (ARRAY['new', 'paid', 'shipped', 'delivered', 'returned'])[1 + i % 5], (i % 50000) / 100.0,
               timestamptz '2020-01-01 00:00:00+00' + (i || ' minutes')::interval,
               (i % 9999) || ' ' || (ARRAY['Main', 'Oak', 'Pine', 'Maple', 'Cedar'])[1 + i % 5] || ' Street, '
                 || ({_array(CITIES)})[1 + i % 10],
               CASE WHEN i % 10 = 0 THEN 'Happy birthday! Love, ' || ({_array(FIRST)})[1 + i % 20] END,
               'TRK' || lpad(i::text, 12, '0')
             FROM generate_series(1, {orders}) i""",
        "CREATE INDEX orders_customer_id_idx ON orders (customer_id)",
        "CREATE INDEX customers_last_name_idx ON customers (last_name)",
        "ANALYZE",
    ]


RULES = {
    "version": 1,
    "default": "keep",
    "tables": {
        "customers": {"first_name": "fake.first_name", "last_name": "fake.last_name",
                      "email": {"strategy": "email", "unique": True},
                      # Kept on purpose: the benchmark masks a third of the text columns.
                      **{c: {"strategy": "keep", "reason": "benchmark: a third of the text columns is masked"}
                         for c in ("phone", "street", "city")}},
        "orders": {"shipping_address": "fake.street_address"},
    },
}
PYNONYMIZER_STRATEGY = {
    "tables": {
        "customers": {"columns": {"first_name": "first_name", "last_name": "last_name", "email": "unique_email"}},
        "orders": {"columns": {"shipping_address": "street_address"}},
    },
}


def admin(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def libpq(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def sqlalchemy_url(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg", database=database).render_as_string(
        hide_password=False)


LAST_CPU = {"seconds": 0.0}


def run(command: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> tuple[float, int]:
    """Wall seconds and the peak RSS (KiB) of the largest process the command started.

    The client-side CPU seconds (user + system of the command's own process) go to ``LAST_CPU``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    process = subprocess.Popen(command, shell=shell, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {command}")
    LAST_CPU["seconds"] = usage.ru_utime + usage.ru_stime
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(usage.ru_maxrss, after if after > before else 0)


def bench_dump_restore(server: str, source: str, fresh: str) -> dict[str, float]:
    admin(server, f'DROP DATABASE IF EXISTS "{fresh}"', f'CREATE DATABASE "{fresh}"')
    # /usr/bin/time reports the peak of each side of the pipe; the larger one is recorded.
    pipeline = (f"/usr/bin/time -f 'maxrss %M' pg_dump -Fc -d '{libpq(server, source)}' 2>{WORK}/dump.time | "
                f"/usr/bin/time -f 'maxrss %M' pg_restore -d '{libpq(server, fresh)}' 2>{WORK}/restore.time")
    seconds, _ = run(pipeline, shell=True)
    peaks = [int(line.split()[1]) for name in ("dump", "restore")
             for line in (WORK / f"{name}.time").read_text().splitlines() if line.startswith("maxrss")]
    return {"seconds": seconds, "peak_rss_mib": max(peaks) / 1024}


def bench_datastage(server: str, source: str, target: str, rows: int) -> dict[str, float]:
    admin(server, f'DROP DATABASE IF EXISTS "{target}"', f'CREATE DATABASE "{target}"')
    project = WORK / "datastage-project"
    (project / "rules").mkdir(parents=True, exist_ok=True)
    (project / "rules" / "pii.yaml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    (project / "datastage.yaml").write_text(yaml.safe_dump({
        "source": {"url": sqlalchemy_url(server, source)},
        "environments": {"bench": {"url": sqlalchemy_url(server, target), "rules": "rules/pii.yaml"}},
    }, sort_keys=False))
    env = dict(os.environ, DATASTAGE_MASKING_KEY="benchmark-key-0123456789abcdef0123")
    seconds, peak = run([PYTHON, "-m", "datastage", "refresh", "bench", "--quiet", "--json"], env=env, cwd=project)
    return {"seconds": seconds, "peak_rss_mib": peak / 1024, "rows_per_second": rows / seconds,
            "client_cpu_seconds": LAST_CPU["seconds"]}


def pynonymizer_bin() -> Path:
    venv = WORK / "pynonymizer-venv"
    binary = venv / "bin" / "pynonymizer"
    if not binary.exists():
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "pynonymizer"], check=True)
    return binary


def bench_pynonymizer(server: str, source: str, target: str, rows: int) -> dict[str, float]:
    binary = pynonymizer_bin()
    admin(server, f'DROP DATABASE IF EXISTS "{target}"')
    strategy = WORK / "pynonymizer-strategy.yml"
    strategy.write_text(yaml.safe_dump(PYNONYMIZER_STRATEGY, sort_keys=False))
    dump = WORK / "source.sql"
    dump_seconds, dump_peak = run(["pg_dump", "-d", libpq(server, source), "-f", str(dump)])
    url = make_url(server)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    command = [str(binary), "--db-type", "postgres", "--db-host", url.host or "127.0.0.1",
               "--db-port", str(url.port or 5432), "--db-user", url.username or "postgres",
               "--db-name", target, "--input", str(dump), "--strategy", str(strategy),
               "--skip-steps", "DUMP_DB", "--skip-steps", "DROP_DB"]
    seconds, peak = run(command, env=env)
    dump.unlink(missing_ok=True)
    total = dump_seconds + seconds
    return {"seconds": total, "peak_rss_mib": max(peak, dump_peak) / 1024, "rows_per_second": rows / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pg", default=os.environ.get("DATASTAGE_TEST_PG_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-pynonymizer", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of dump/restore and datastage, alternating; medians are reported")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    server = sqlalchemy_url(args.pg, make_url(args.pg).database or "postgres")
    names = {"source": "ds_bench_source", "restore": "ds_bench_restore", "datastage": "ds_bench_datastage",
             "pynonymizer": "ds_bench_pynonymizer"}
    admin(server, f'DROP DATABASE IF EXISTS "{names["source"]}"', f'CREATE DATABASE "{names["source"]}"')
    started = time.monotonic()
    admin(sqlalchemy_url(args.pg, names["source"]), *source_sql(args.rows))
    print(f"source: {args.rows:,} rows built in {time.monotonic() - started:.1f} s", flush=True)
    results: dict[str, dict[str, float]] = {}
    runs: dict[str, list[dict[str, float]]] = {"pg_dump | pg_restore": [], "datastage refresh": []}
    try:
        for _ in range(args.repeat):  # alternate, so both see the same load on a shared machine
            runs["pg_dump | pg_restore"].append(bench_dump_restore(server, names["source"], names["restore"]))
            runs["datastage refresh"].append(bench_datastage(server, names["source"], names["datastage"], args.rows))
        for name, measured in runs.items():
            results[name] = {key: statistics.median(m[key] for m in measured) for key in measured[0]}
            results[name]["rows_per_second"] = args.rows / results[name]["seconds"]
            print(f"{name}: " + ", ".join(f"{m['seconds']:.1f} s" for m in measured), flush=True)
        if not args.skip_pynonymizer:
            results["pynonymizer"] = bench_pynonymizer(server, names["source"], names["pynonymizer"], args.rows)
    finally:
        if not args.keep:
            admin(server, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()))
    floor = results["pg_dump | pg_restore"]["seconds"]
    print(f"\n{args.rows:,} rows, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"median of {args.repeat} alternating runs (pynonymizer: one run); datastage client CPU: "
          f"{results['datastage refresh']['client_cpu_seconds']:.1f} s\n")
    print("| tool | wall time | × dump/restore | peak memory | rows/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in results.items():
        print(f"| {name} | {figures['seconds']:.1f} s | {figures['seconds'] / floor:.2f} | "
              f"{figures['peak_rss_mib']:.0f} MiB | {figures['rows_per_second']:,.0f} |")
    (WORK / "load-results.json").write_text(json.dumps({"rows": args.rows, "results": results, "runs": runs},
                                                       indent=2))


if __name__ == "__main__":
    main()
