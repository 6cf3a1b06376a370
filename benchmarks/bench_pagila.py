"""Pagila benchmark: 10% of the customers, end to end, datastage next to dbslice and subsetter.

One run loads the real Pagila (``$DATASTAGE_DATASETS/load.sh``, never copied into the repo) into a
uniquely named PostgreSQL database, then runs, alternating, ``--repeat`` times:

1. ``datastage refresh`` of a project whose environment takes the customers with
   ``customer_id % 10 = 0`` (the where-form of the roots, which both other tools can express)
   with their rentals and payments and every parent those rows need, masks Pagila's personal
   columns with ``rules/pagila.yaml``, loads a PostgreSQL target atomically, runs every check
   and writes the signed report: the wall time of the whole process.
2. ``dbslice extract`` (PyPI ``dbslice``) with the same predicate as seed, ``--direction both``
   and ``--anonymize``: it writes INSERT statements to a file, loaded with ``psql`` into a
   database holding Pagila's tables without constraints (wall time: extract + load).
3. ``subsetter plan`` + ``subsetter sample`` (PyPI ``subsetter``) with the predicate on
   customer, rental and the payment partitions as targets (the payments' key to staff ignored,
   see :func:`subsetter_config`), Faker filters on the personal columns, sampling straight into
   a database holding Pagila's tables without constraints.

Neither dbslice nor subsetter is a datastage dependency: each is installed into its own
virtualenv under benchmarks/work/ (git-ignored). Afterwards every output database is counted
(rows per table) and checked against every foreign key Pagila declares (rows whose key has no
parent row). ``--profile`` adds one datastage run under cProfile and prints its phases.

Usage::

    PYTHONPATH=. python benchmarks/bench_pagila.py [--repeat 5] [--profile] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
PREDICATE = "customer_id % 10 = 0"
KEY = "0123456789abcdef" * 4
TOOLS = {"subsetter": "subsetter==0.4.4", "dbslice": "dbslice==1.0.1"}
PAYMENT_PARTITIONS = [f"payment_p2022_0{i}" for i in range(1, 8)]


def datasets_dir() -> Path:
    """``$DATASTAGE_DATASETS``, else ``shared/datasets`` beside the checkout or one of its parents."""
    if os.environ.get("DATASTAGE_DATASETS"):
        return Path(os.environ["DATASTAGE_DATASETS"])
    for folder in ROOT.parents:
        if (folder / "shared" / "datasets" / "load.sh").is_file():
            return folder / "shared" / "datasets"
    raise SystemExit("Pagila not found: set DATASTAGE_DATASETS to the folder holding load.sh")


def url_for(server: str, database: str, driver: str = "postgresql+psycopg") -> str:
    return make_url(server).set(drivername=driver, database=database).render_as_string(hide_password=False)


def fresh(server: str, database: str, template: str) -> None:
    """``database`` anew, as a copy of ``template``."""
    admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
          f'CREATE DATABASE "{database}" TEMPLATE "{template}"')


def admin(server: str, *statements: str) -> None:
    engine = sa.create_engine(url_for(server, "postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def timed(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          stdin: Path | None = None) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) of one child process, which must succeed."""
    started = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as feed:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdin=feed, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        assert process.stderr is not None
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{Path(command[0]).name} failed: {stderr.decode(errors='replace')[-3000:]}")
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024}


def ensure_tool(name: str) -> Path:
    """The tool's executable in its own virtualenv under benchmarks/work/ (created on first use)."""
    venv = WORK / f"{name}-venv"
    exe = venv / "bin" / name
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", TOOLS[name], "psycopg2-binary"], check=True)
    return exe


# -- the three tools --------------------------------------------------------------------------

def datastage_project(server: str, source: str, target: str) -> Path:
    project = WORK / "pagila-project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "rules").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "pagila.yaml", project / "rules" / "pagila.yaml")
    (project / "datastage.yaml").write_text(yaml.safe_dump({
        "source": {"url": url_for(server, source)},
        "environments": {"bench": {"url": url_for(server, target), "rules": "rules/pagila.yaml",
                                   "subset": {"roots": [{"table": "customer", "where": PREDICATE}], "seed": 42}}},
    }, sort_keys=False))
    return project


def datastage_command(profile: Path | None = None) -> list[str]:
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return [sys.executable, *profiler, "-m", "datastage", "refresh", "bench", "--quiet", "--json"]


def datastage_env(code: Path, cache: Path | None) -> dict[str, str]:
    env = dict(os.environ, DATASTAGE_MASKING_KEY=KEY, PYTHONPATH=str(code))
    if cache is not None:
        env["DATASTAGE_CACHE_DIR"] = str(cache)
    return env


def run_datastage(server: str, project: Path, target: str, profile: Path | None = None, *, code: Path = ROOT,
                  cold: bool = False) -> dict[str, float]:
    """One refresh; ``cold``: with an empty cache of fake-value pools (as on a machine's first run)."""
    admin(server, f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)', f'CREATE DATABASE "{target}"')
    shutil.rmtree(project / ".datastage", ignore_errors=True)  # every run is a first refresh
    cache = WORK / "pagila-cache"
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    return timed(datastage_command(profile), env=datastage_env(code, cache), cwd=project)


def baseline_code(revision: str) -> Path:
    """The ``datastage`` package of ``revision`` (``git archive``), compiled, under benchmarks/work/."""
    folder = WORK / "baseline"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "datastage"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    compile_package(folder / "datastage")
    return folder


def compile_package(path: Path) -> None:
    """As an installed package would be: compiled once (this machine sets PYTHONDONTWRITEBYTECODE)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(path)], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def run_dbslice(server: str, source: str, target: str, template: str, anonymize: bool = False) -> dict[str, Any]:
    """dbslice's INSERTs into a fresh copy of the tables. With ``--anonymize`` its output does not
    load into Pagila (it fakes integer keys such as ``city.city_id`` as city names), so the timed
    runs leave masking out, which only makes dbslice faster; ``anonymize=True`` reports that load."""
    fresh(server, target, template)
    out = WORK / "dbslice-out.sql"
    out.unlink(missing_ok=True)
    # psycopg2 reads % as a parameter marker in dbslice's seed query: the same predicate written with mod().
    extract = timed([str(ensure_tool("dbslice")), "extract", url_for(server, source, "postgres"),
                     "--seed", "customer:mod(customer_id, 10) = 0", "--direction", "both",
                     "--anonymize" if anonymize else "--no-anonymize", "--out-file", str(out), "--no-progress"])
    try:
        load = timed(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url_for(server, target, "postgresql")],
                     stdin=out)
    except SystemExit as exc:
        if not anonymize:
            raise
        return {"extract_seconds": extract["seconds"], "loads": False, "error": str(exc).splitlines()[0][:300]}
    return {"seconds": extract["seconds"] + load["seconds"], "extract_seconds": extract["seconds"],
            "peak_mib": max(extract["peak_mib"], load["peak_mib"]), "loads": True}


def subsetter_config(server: str, source: str, target: str) -> dict[str, Any]:
    parsed = make_url(server)
    database = {"dialect": "postgres", "host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
                "username": parsed.username or "postgres", "password": parsed.password or ""}
    targets = {f"public.{table}": {"sql": PREDICATE} for table in ("customer", "rental", *PAYMENT_PARTITIONS)}

    def fake(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
        return [{"op": op, "columns": [column]} for column, op in pairs]

    filters = {
        "public.customer": fake(("first_name", "fake_first_name"), ("last_name", "fake_last_name"),
                                ("email", "fake_email")),
        "public.staff": [*fake(("first_name", "fake_first_name"), ("last_name", "fake_last_name"),
                               ("email", "fake_email")), {"op": "null", "columns": ["picture"]}],
        "public.actor": fake(("first_name", "fake_first_name"), ("last_name", "fake_last_name")),
        "public.address": fake(("address", "fake_street_address"), ("phone", "fake_phone_number"),
                               ("postal_code", "fake_postal_code")),
    }
    # Without ignoring the payments' staff key, subsetter's staff query joins staff to rental and six
    # payment partitions at once (a product of their rows) and had not finished after 10 minutes.
    ignore = [{"src_table": f"public.{table}", "dst_table": "public.staff"} for table in PAYMENT_PARTITIONS[:6]]
    return {"source": {**database, "database": source},
            "planner": {"select": ["public.*"], "targets": targets, "ignore_fks": ignore},
            "sampler": {"output": {"mode": "database", **database, "database": target}, "filters": filters}}


def run_subsetter(server: str, source: str, target: str, template: str) -> dict[str, float]:
    fresh(server, target, template)
    exe = str(ensure_tool("subsetter"))
    config = WORK / "subsetter-pagila.yaml"
    config.write_text(json.dumps(subsetter_config(server, source, target)))
    plan_file = WORK / "subsetter-pagila-plan.yaml"
    plan = timed([exe, "-c", str(config), "plan", "-o", str(plan_file)])
    sample = timed([exe, "-c", str(config), "sample", "--plan", str(plan_file)])
    return {"seconds": plan["seconds"] + sample["seconds"], "peak_mib": max(plan["peak_mib"], sample["peak_mib"])}


# -- what each produced ----------------------------------------------------------------------

FOREIGN_KEYS = """
SELECT c.conname, cl.relname, pl.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid
JOIN pg_namespace n ON n.oid = cl.relnamespace
WHERE c.contype = 'f' AND n.nspname = 'public' AND c.conparentid = 0 ORDER BY 1
"""

TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'datastage_refresh_log' ORDER BY 1
"""


def source_foreign_keys(server: str, source: str) -> list[tuple[str, str, str, list[str], list[str]]]:
    engine = sa.create_engine(url_for(server, source), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        keys = [tuple(row) for row in conn.exec_driver_sql(FOREIGN_KEYS)]
    engine.dispose()
    return keys  # type: ignore[return-value]


def audit(server: str, database: str, keys: list[tuple[str, str, str, list[str], list[str]]]) -> dict[str, Any]:
    """Rows per table (payment partitions summed as ``payment``) and rows breaking each declared FK."""
    engine = sa.create_engine(url_for(server, database), poolclass=sa.pool.NullPool)
    rows: dict[str, int] = {}
    broken: dict[str, int] = {}
    digests: list[str] = []
    with engine.connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(TABLES)]
        for table in tables:
            name = "payment" if table.startswith("payment_p") else table
            count, digest = conn.exec_driver_sql(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), \'\')) '
                f'FROM public."{table}" t').one()
            rows[name] = rows.get(name, 0) + int(count)
            digests.append(f"{table}:{digest}")
        for name, child, parent, columns, referenced in keys:
            if child not in tables or parent not in tables:
                continue
            present = " AND ".join(f'c."{c}" IS NOT NULL' for c in columns)
            match = " AND ".join(f'p."{r}" = c."{c}"' for c, r in zip(columns, referenced, strict=True))
            count = int(conn.exec_driver_sql(
                f'SELECT count(*) FROM public."{child}" c WHERE {present} AND NOT EXISTS '
                f'(SELECT 1 FROM public."{parent}" p WHERE {match})').scalar_one())
            if count:
                broken[name] = count
    engine.dispose()
    return {"rows": rows, "total_rows": sum(rows.values()), "fk_violations": sum(broken.values()), "broken": broken,
            "digest": hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]}


# -- datastage's phases ------------------------------------------------------------------------

PHASES = [  # (label, file suffix, function): cumulative seconds of that function in the profile
    ("refresh (after start-up)", "datastage/api.py", "refresh"),
    ("reflect the source", "datastage/source/schema.py", "reflect"),
    ("PII scan of samples", "datastage/discover/scan.py", "scan_source"),
    ("plan the subset", "datastage/subset/planner.py", "plan_subset"),
    ("copy: extract, mask, load", "datastage/pipeline.py", "load_into_shadow"),
    ("  of which masking", "datastage/mask/engine.py", "mask_batch"),
    ("  of which Faker pools", "datastage/mask/fakepool.py", "_pool"),
    ("verify (every check)", "datastage/pipeline.py", "verify_shadow"),
    ("swap", "datastage/pipeline.py", "swap"),
    ("report and finish", "datastage/pipeline.py", "finish"),
]


def phases(profile: Path) -> dict[str, float]:
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    total = max(entry[3] for entry in stats.values())
    out = {"whole process (profiled)": total}
    for label, suffix, function in PHASES:
        out[label] = sum(entry[3] for (file, _, name), entry in stats.items()
                         if file.endswith(suffix) and name == function)
    out["start-up (imports, CLI, settings)"] = total - out["refresh (after start-up)"]
    return out


# -- main --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pg", default=os.environ.get("DATASTAGE_TEST_PG_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="one more datastage run under cProfile: its phases")
    parser.add_argument("--keep", action="store_true", help="keep the databases (names are printed)")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also time datastage as of git revision REV (before/after, same runs)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    for name in TOOLS:
        ensure_tool(name)
    compile_package(ROOT / "datastage")
    baseline = baseline_code(args.baseline) if args.baseline else None
    server = args.pg
    stem = f"ds_bench_pagila_{secrets.token_hex(3)}"
    source, template = stem, f"{stem}_tables"
    targets = {"datastage refresh": f"{stem}_datastage", "dbslice": f"{stem}_dbslice", "subsetter": f"{stem}_subsetter"}
    created = [source, template, *targets.values(), f"{stem}_dbslice_anon"]
    try:
        subprocess.run(["bash", str(datasets_dir() / "load.sh"), "--quiet", "pagila",
                        url_for(server, source, "postgresql")], check=True, stdout=subprocess.DEVNULL)
        # Pagila's tables without constraints or indexes, for the tools that write INSERTs into a database.
        admin(server, f'CREATE DATABASE "{template}"')
        schema = subprocess.run(["pg_dump", "--schema-only", "--section=pre-data", "--no-owner",
                                 "-d", url_for(server, source, "postgresql")], check=True, capture_output=True).stdout
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url_for(server, template, "postgresql")],
                       input=schema, check=True, capture_output=True)
        project = datastage_project(server, source, targets["datastage refresh"])
        runners = {
            "datastage refresh": lambda: run_datastage(server, project, targets["datastage refresh"]),
            "datastage refresh, cold pool cache": lambda: run_datastage(server, project, targets["datastage refresh"],
                                                                        cold=True),
            "dbslice": lambda: run_dbslice(server, source, targets["dbslice"], template),
            "subsetter": lambda: run_subsetter(server, source, targets["subsetter"], template),
        }
        if baseline is not None:
            runners[f"datastage refresh at {args.baseline}"] = lambda: run_datastage(
                server, project, targets["datastage refresh"], code=baseline)
        load_before = os.getloadavg()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
        order = list(runners)
        for i in range(args.repeat):  # alternating, each tool first in turn, so all see the same load
            for name in order[i % len(order):] + order[:i % len(order)]:
                runs[name].append(runners[name]())
        load_after = os.getloadavg()
        keys = source_foreign_keys(server, source)
        audits = {name: audit(server, database, keys) for name, database in targets.items()}
        same = None
        if baseline is not None:  # the same rows and the same masked values, byte for byte, before and after
            run_datastage(server, project, targets["datastage refresh"], code=baseline)
            before = audit(server, targets["datastage refresh"], keys)["digest"]
            run_datastage(server, project, targets["datastage refresh"])
            same = before == audit(server, targets["datastage refresh"], keys)["digest"]
        anonymized = run_dbslice(server, source, f"{stem}_dbslice_anon", template, anonymize=True)
        profiled: dict[str, dict[str, float]] = {}
        if args.profile:
            for label, code in (("after", ROOT), ("before", baseline)):
                if code is not None:
                    profile = WORK / f"datastage-pagila-{label}.prof"
                    run_datastage(server, project, targets["datastage refresh"], profile, code=code)
                    profiled[label] = phases(profile)
    finally:
        if not args.keep:
            admin(server, *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in created))
        else:
            print("kept databases:", ", ".join(created))

    print(f"\nPagila, 10% of customers ({PREDICATE}), {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.2f} before / {load_after[0]:.2f} after, median of {args.repeat} alternating runs\n")
    for name, measured in runs.items():
        print(f"{name}: " + ", ".join(f"{m['seconds']:.2f} s" for m in measured))
    print("\n| tool | wall s (median) | min | rows | customer | rental | payment | inventory | film "
          "| FK violations | peak RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary: dict[str, Any] = {}
    for name, measured in runs.items():
        seconds = [m["seconds"] for m in measured]
        audits.setdefault(name, audits["datastage refresh"])  # the variants load the same target
        rows = audits[name]["rows"]
        summary[name] = {"median_seconds": statistics.median(seconds), "min_seconds": min(seconds),
                         "peak_mib": max(m["peak_mib"] for m in measured), **audits[name], "runs": measured}
        print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {audits[name]['total_rows']:,} | "
              + " | ".join(str(rows.get(t, 0)) for t in ("customer", "rental", "payment", "inventory", "film"))
              + f" | {audits[name]['fk_violations']} | {summary[name]['peak_mib']:.0f} MiB |")
    for name, result in audits.items():
        if result["broken"]:
            print(f"{name} dangling foreign keys: " + ", ".join(f"{k} {v}" for k, v in result["broken"].items()))
    if same is not None:
        print(f"datastage target content (every row, masked values included) the same before and after: {same}")
    print(f"dbslice --anonymize: extract {anonymized['extract_seconds']:.2f} s, output loads: {anonymized['loads']}"
          + (f" ({anonymized['error']})" if not anonymized["loads"] else ""))
    if profiled:
        labels = list(profiled)
        print(f"\n| datastage phase (one run under cProfile, warm cache) | {' | '.join(labels)} |")
        print("| --- |" + " ---: |" * len(labels))
        for phase in profiled[labels[0]]:
            print(f"| {phase} | " + " | ".join(f"{profiled[label][phase]:.2f}" for label in labels) + " |")
    (WORK / "pagila-results.json").write_text(json.dumps(
        {"load_before": load_before, "load_after": load_after, "results": summary, "phases": profiled,
         "dbslice_anonymize": anonymized, "same_content_as_baseline": same}, indent=2))


if __name__ == "__main__":
    main()
