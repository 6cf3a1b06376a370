"""MariaDB/MySQL reads through connectorx: the values PyMySQL gives, its own connection only where it connects
as the driver does, and PyMySQL where it cannot start."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from datastage.source import mysqlarrow
from datastage.source.schema import reflect
from datastage.verify.checks.kept import ArrowRows, FrameRows, read_loaded
from datastage.verify.leaks.scanner import stream_loaded

pytestmark = pytest.mark.usefixtures("mysql_server")

HOSTILE = ["😀 \\ \n tab\t", "café", "", " ", "a,b;\"c'", "\\N", "NULL", "x" * 70_000, "Zbigniew Brzęczyszczykiewicz",
           "\u2028line\u2029", "trailing  "]
PASSWORD = "p@ss:w/rd%#?&=[]" + secrets.token_hex(2)


def _fill(url: str) -> None:
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, v MEDIUMTEXT, l VARCHAR(40) CHARACTER SET latin1,"
            " c CHAR(6), e ENUM('x', 'y z'), s SET('p', 'q'), n TINYINT, big BIGINT)")
        rows = [(2**64 - 1 - i, value, "café" if i % 2 else None, "ab  " if i % 3 else "", "y z" if i % 2 else None,
                 "p,q" if i % 2 else "", -5 if i % 2 else None, -(2**63) if i == 0 else i)
                for i, value in enumerate([*HOSTILE, None])]
        conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)


def _sorted(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.itertuples(index=False, name=None), key=lambda row: row[0])


def test_rows_read_by_connectorx_are_those_pymysql_gives(mysql_databases: object,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    _fill(url)
    started: list[str] = []
    real = mysqlarrow.read_frames

    def spy(url: str, *args: object) -> object:
        started.append(url)
        return real(url, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(mysqlarrow, "read_frames", spy)
    columns = ["id", "v", "l", "c", "e", "s", "n", "big"]
    with sa.create_engine(url).connect() as conn:
        arrow = mysqlarrow.arrow_url(conn)
        assert arrow is not None and mysqlarrow.usable(arrow)
        table = reflect(conn).tables["t"]
        read = list(stream_loaded(conn, table, columns, "t", batch_size=4))
        rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM t").all()
    plain = pd.DataFrame({name: pd.Series([row[i] for row in rows], dtype=object) for i, name in enumerate(columns)})
    assert len(started) == 1 and len(read) == 3  # read by connectorx, 12 rows in batches of 4
    got = pd.concat(read, ignore_index=True)
    assert _sorted(got) == _sorted(plain)
    for name in columns:  # the same Python types: str, int, None (no floats, no numpy scalars)
        assert {type(v) for v in got[name]} == {type(v) for v in plain[name]}, name


def test_the_kept_check_reads_arrow_tables_from_connectorx(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    _fill(url)
    with sa.create_engine(url).connect() as conn:
        table = reflect(conn).tables["t"]
        batches = list(read_loaded(conn, table, ["id", "v"], "t", batch_size=5))
    assert [type(b) for b in batches] == [ArrowRows] * 3 and sum(len(b) for b in batches) == 12
    values = sorted(v for b in batches for v in b.frame(np.arange(len(b)))["v"].tolist() if v is not None)
    assert values == sorted(HOSTILE)


def test_a_password_of_url_syntax_reaches_connectorx_intact(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    _fill(url)
    user = f"ds_cx_{secrets.token_hex(3)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    database = make_url(url).database
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%%'")
    try:
        as_user = make_url(url).set(username=user, password=PASSWORD)
        with sa.create_engine(as_user).connect() as conn:
            arrow = mysqlarrow.arrow_url(conn)
            assert arrow is not None and PASSWORD not in arrow  # quoted in the URL ...
            tables = mysqlarrow.read_tables(arrow, "SELECT id FROM t", 100)
            assert tables is not None  # ... and connectorx logs in with it
            assert sum(t.num_rows for t in tables) == 12
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER '{user}'@'%%'")
        admin.dispose()


def test_connections_connectorx_would_not_open_as_the_driver_does_read_through_the_driver(
        mysql_databases: object, tmp_path: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    _fill(url)
    with sa.create_engine(sa.engine.make_url(url).update_query_dict({"charset": "utf8mb4"})).connect() as conn:
        assert mysqlarrow.arrow_url(conn) is None  # driver options in the URL
        table = reflect(conn).tables["t"]
        assert sum(len(f) for f in stream_loaded(conn, table, ["id", "v"], "t", 5)) == 12
        assert all(isinstance(rows, FrameRows) for rows in read_loaded(conn, table, ["id", "v"], "t", 5))
    with sa.create_engine("sqlite://").connect() as conn:
        assert mysqlarrow.arrow_url(conn) is None


def test_a_read_connectorx_cannot_start_is_none_and_names_nothing(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    with sa.create_engine(url).connect() as conn:
        arrow = mysqlarrow.arrow_url(conn)
    assert arrow is not None
    assert mysqlarrow.read_tables(arrow, "SELECT nope FROM missing_table", 10) is None
    # In a fresh process, nothing reaches stderr from connectorx's own log, whatever fails.
    code = ("import sys; from datastage.source import mysqlarrow as m; "
            f"print(m.read_tables({arrow!r}, 'SELECT nope FROM missing_table', 10))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "None" and done.stderr == ""


def test_a_connection_with_no_current_database_reads_tables_named_in_full(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    _fill(url)
    database = make_url(url).database
    with sa.create_engine(url).connect() as conn:
        table = reflect(conn).tables["t"]
    parsed = make_url(url)
    bare = sa.engine.URL.create(parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port)
    with sa.create_engine(bare).connect() as conn:
        arrow = mysqlarrow.arrow_url(conn)
        assert arrow is not None and "/information_schema?" in arrow
        frames = list(stream_loaded(conn, table, ["id", "v"], f"`{database}`.`t`", 100))
    assert sorted(v for f in frames for v in f["v"].tolist() if v is not None) == sorted(HOSTILE)


def test_hostile_names_read_by_connectorx_give_the_driver_rows(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    database = make_url(url).database
    table, key, text = "`t``x y;-- LIMIT 0`", "`i``d`", "`c ö; SELECT`"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} ({key} INT PRIMARY KEY, {text} TEXT, `limit` TEXT)")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 'a', 'b'), (2, NULL, 'x'), (3, 'z', NULL)")
    with sa.create_engine(url).connect() as conn:
        arrow = mysqlarrow.arrow_url(conn)
        assert arrow is not None
        for sql in [f"SELECT {key}, {text}, `limit` FROM {table}",
                    f"SELECT {key}, {text} FROM `{database}`.{table} WHERE {key} > 1",
                    f"SELECT {key} FROM {table} ORDER BY {key} LIMIT 2"]:
            tables = mysqlarrow.read_tables(arrow, sql, 10)
            assert tables is not None, sql
            got = sorted(row for t in tables for row in zip(*(c.to_pylist() for c in t.columns), strict=True))
            assert got == sorted(tuple(row) for row in conn.exec_driver_sql(sql).all()), sql


_MID_READ = """
import sys
import sqlalchemy as sa
from datastage.errors import StepError
from datastage.source.schema import reflect
from datastage.verify.checks.kept import read_loaded
from datastage.verify.leaks.scanner import stream_loaded
failing = "(SELECT id, IF(id = 2500, (SELECT 'a' UNION SELECT 'b'), v) AS v FROM big) AS x"
with sa.create_engine(sys.argv[1]).connect() as conn:
    table = reflect(conn).tables["big"]
    for read in (stream_loaded, read_loaded):
        rows = 0
        try:
            for batch in read(conn, table, ["id", "v"], failing, 1000):
                rows += len(batch)
        except StepError as exc:
            print(read.__name__, rows, exc)
"""


def test_a_server_error_in_the_middle_of_a_read_is_one_step_error_and_nothing_on_stderr(
        mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big (id INT PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO big VALUES (%s, %s)", [(i, f"v{i}") for i in range(1, 5001)])
    done = subprocess.run([sys.executable, "-c", _MID_READ, url], capture_output=True, text=True, timeout=120,
                          check=True, env={**os.environ, "RUST_BACKTRACE": "1"})
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    for line, name in zip(lines, ("stream_loaded", "read_loaded"), strict=True):
        read, rows, message = line.split(" ", 2)
        assert read == name and int(rows) < 2500  # the rows before the error, then the error: never "complete"
        assert "reading big for the " in message and message.endswith("the Arrow reader failed")


def test_connectorx_logs_in_over_tcp_as_the_driver_does_and_only_for_pymysql(mysql_databases: object) -> None:
    url = mysql_databases.create()  # type: ignore[attr-defined]
    with sa.create_engine(url).connect() as conn:
        arrow = mysqlarrow.arrow_url(conn)
        assert arrow is not None
        driver_user = conn.exec_driver_sql("SELECT USER()").scalar()
    tables = mysqlarrow.read_tables(arrow, "SELECT USER() AS u", 10)
    assert tables is not None
    assert [t.column(0).to_pylist() for t in tables] == [[driver_user]]  # not user@localhost over a socket
    parsed = make_url(url)
    no_user = sa.engine.URL.create(parsed.drivername, None, None, parsed.host, parsed.port, parsed.database)
    with sa.create_engine(no_user).connect() as conn:  # PyMySQL logs in as the OS user: connectorx is not used
        assert mysqlarrow.arrow_url(conn) is None
