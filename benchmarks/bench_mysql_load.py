"""MariaDB/MySQL shadow load alone: multi-row ``INSERT`` against ``LOAD DATA LOCAL INFILE``, side by side.

The rows of the refresh benchmark's three tables (customers : orders : payments = 1 : 2 : 1), as the
PostgreSQL reader hands them over (object columns of ints, text, ``Decimal``, aware datetimes,
dates, NULLs), are written into a MariaDB shadow in batches of ``--batch`` rows by each path in
turn, ``--repeat`` times alternating; the write time (``Shadow.write`` for every batch) and the
index build (``Shadow.finish``) are printed as a Markdown table.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_mysql_load.py [--rows 400000] [--repeat 3] [--batch 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import os
import secrets
import statistics
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect
from datastage.targets.mysql import MysqlTarget

TABLES = [
    """CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
         email VARCHAR(255) NOT NULL UNIQUE, phone TEXT, city TEXT, country_code CHAR(2), signup_date DATE,
         notes TEXT)""",
    """CREATE TABLE orders (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, status TEXT NOT NULL,
         amount DECIMAL(10, 2) NOT NULL, created_at DATETIME(6) NOT NULL, shipping_address TEXT, tracking_code TEXT,
         KEY (customer_id), FOREIGN KEY (customer_id) REFERENCES customers (customer_id))""",
    """CREATE TABLE payments (payment_id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, method TEXT NOT NULL,
         card_number TEXT, paid_at DATETIME(6) NOT NULL, KEY (order_id),
         FOREIGN KEY (order_id) REFERENCES orders (order_id))""",
]


def _objects(values: list[object] | np.ndarray) -> pd.Series:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return pd.Series(array, dtype=object, copy=False)


def frames(rows: int) -> dict[str, pd.DataFrame]:
    """The three tables' rows as the PostgreSQL reader gives them."""
    customers, orders = rows // 4, rows // 2
    payments = rows - customers - orders
    utc = dt.UTC
    start = dt.datetime(2020, 1, 1, tzinfo=utc)
    c = range(1, customers + 1)
    o = range(1, orders + 1)
    p = range(1, payments + 1)
    return {
        "customers": pd.DataFrame({
            "customer_id": _objects(list(c)), "first_name": _objects([f"First{i % 20}" for i in c]),
            "last_name": _objects([f"Last{i % 20} \\ \t" for i in c]),
            "email": _objects([f"user{i}@mail.example.org" for i in c]),
            "phone": _objects([f"+1-415-{i % 1000:03d}-{i % 10000:04d}" for i in c]),
            "city": _objects([f"City {i % 10} 😀" for i in c]), "country_code": _objects(["US"] * customers),
            "signup_date": _objects([dt.date(2015, 1, 1) + dt.timedelta(days=i % 3000) for i in c]),
            "notes": _objects([f"prefers e-mail, customer since {2015 + i % 9}" if i % 3 == 0 else None for i in c]),
        }),
        "orders": pd.DataFrame({
            "order_id": _objects(list(o)), "customer_id": _objects([1 + (i * 7919) % customers for i in o]),
            "status": _objects([("new", "paid", "shipped", "delivered", "returned")[i % 5] for i in o]),
            "amount": _objects([decimal.Decimal(i % 50000) / 100 for i in o]),
            "created_at": _objects([start + dt.timedelta(minutes=i) for i in o]),
            "shipping_address": _objects([f"{i % 9999} Main Street, City {i % 10}" for i in o]),
            "tracking_code": _objects([f"TRK{i:012d}" for i in o]),
        }),
        "payments": pd.DataFrame({
            "payment_id": _objects(list(p)), "order_id": _objects([1 + (i * 104729) % orders for i in p]),
            "method": _objects([("card", "card", "card", "transfer")[i % 4] for i in p]),
            "card_number": _objects([f"4{(i * 2654435761) % 10 ** 15:015d}" if i % 4 != 3 else None for i in p]),
            "paid_at": _objects([start + dt.timedelta(minutes=i) for i in p]),
        }),
    }


def load(url: str, model: SchemaModel, data: dict[str, pd.DataFrame], load_data: bool, batch: int) -> dict[str, float]:
    target = MysqlTarget(url, "bench")
    shadow = target.create_shadow(model, f"bench-{secrets.token_hex(3)}")
    try:
        if not load_data:
            shadow.load_data = False
        assert shadow.load_data == load_data, target.notes
        tables = [model.table(name) for name in data]
        shadow.create_tables(tables)
        started = time.monotonic()
        for table in tables:
            frame = data[table.name]
            for offset in range(0, len(frame), batch):
                shadow.write(table, frame.iloc[offset:offset + batch])
        shadow.flush()  # every row in the shadow
        written = time.monotonic()
        shadow.finish()
        return {"write": written - started, "finish": time.monotonic() - written}
    finally:
        shadow.discard()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mysql", default=os.environ.get("DATASTAGE_TEST_MYSQL_URL",
                                                          "mysql+pymysql://root@127.0.0.1:3306/test"))
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    name = f"ds_bench_load_{secrets.token_hex(3)}"
    admin = sa.create_engine(args.mysql, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    url = make_url(args.mysql).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        with sa.create_engine(url, poolclass=sa.pool.NullPool).begin() as conn:
            for statement in TABLES:
                conn.exec_driver_sql(statement)
        engine = make_engine(url, read_only=True)
        with snapshot(engine) as conn:
            model = reflect(conn)
        engine.dispose()
        data = frames(args.rows)
        runs: dict[str, list[dict[str, float]]] = {"INSERT": [], "LOAD DATA LOCAL INFILE": []}
        for _ in range(args.repeat):
            runs["INSERT"].append(load(url, model, data, False, args.batch))
            runs["LOAD DATA LOCAL INFILE"].append(load(url, model, data, True, args.batch))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()
    print(f"\n{args.rows:,} rows in batches of {args.batch:,}, load average {os.getloadavg()[0]:.1f}, "
          f"median of {args.repeat} alternating runs\n")
    print("| path | rows written | indexes | rows/s written |")
    print("| --- | ---: | ---: | ---: |")
    for path, measured in runs.items():
        write = statistics.median(m["write"] for m in measured)
        finish = statistics.median(m["finish"] for m in measured)
        print(f"| {path} | {write:.2f} s | {finish:.2f} s | {args.rows / write:,.0f} |")
        print(f"  ({path}: " + ", ".join(f"{m['write']:.2f} s" for m in measured) + ")")


if __name__ == "__main__":
    main()
