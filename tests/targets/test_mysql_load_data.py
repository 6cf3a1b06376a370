"""MariaDB shadows loaded by LOAD DATA LOCAL INFILE: every value as the INSERT path stores it, the
INSERT fallback when the server or connection does not allow it, source connections without it."""

from __future__ import annotations

import datetime as dt
import decimal
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pymysql
import pytest
import sqlalchemy as sa
from conftest import ServerDatabases
from load_support import execute, rows

from datastage.errors import TargetError
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, TableInfo, reflect
from datastage.targets import mysql as mysql_target
from datastage.targets.convert import ORIGIN_ATTR, converters_for
from datastage.targets.mysql import MysqlShadow, MysqlTarget
from datastage.targets.mysql_load import encode_batch

pytestmark = pytest.mark.mysql

D = decimal.Decimal
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
PST = dt.timezone(dt.timedelta(hours=-8))
MATRIX = """CREATE TABLE matrix (
    id INT PRIMARY KEY,
    txt TEXT, vc VARCHAR(200), long_text LONGTEXT,
    bin LONGBLOB, vbin VARBINARY(600),
    doc JSON,
    amount DECIMAL(30, 10), ratio DOUBLE,
    happened DATETIME(6), stamped TIMESTAMP(6) NULL DEFAULT NULL, day DATE, clock TIME(6),
    bits BIT(8), flag BIT(1), yes BOOLEAN,
    colour ENUM('red', 'green', 'blue'), tags SET('x', 'y', 'z'),
    twice INT AS (id * 2) VIRTUAL
) DEFAULT CHARSET = utf8mb4"""
EVERY_BYTE = bytes(range(256))
TRICKY = ["", "back\\slash", "tab\there", "new\nline", "cr\rlf\r\n", "quotes ' \" `", "\\N", "N", "NULL",
          "emoji 😀🎉 𝄞", "nul\x00byte", "\\", "\t", "\n", "trailing\\"]


@pytest.fixture
def server(mysql_databases: ServerDatabases) -> Iterator[tuple[str, SchemaModel]]:
    """A MariaDB database holding the matrix table, and its model (the source and the target)."""
    url = mysql_databases.create("ds_loaddata")
    execute(url, MATRIX)
    engine = make_engine(url, read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn)
    finally:
        engine.dispose()
    # MariaDB reports JSON as text; a PostgreSQL source's model has it as JSON (parsed values to encode).
    model.table("matrix").columns["doc"].category = "json"
    yield url, model


def _column(values: list[Any]) -> pd.Series:
    return pd.Series(values, dtype=object)


def _frames() -> list[tuple[str, pd.DataFrame]]:
    """(origin, frame) pairs as the readers and masking give them: object columns of driver values."""
    n = len(TRICKY)
    text = pd.DataFrame({
        "id": _column(list(range(1, n + 1))), "txt": _column(TRICKY), "vc": _column(TRICKY[::-1]),
        "long_text": _column([("x\\\t\n😀" * 50_000) if i == 0 else None for i in range(n)]),
        "colour": _column(["red", "green", "blue", None] * (n // 4) + ["red"] * (n % 4)),
        "tags": _column(["x,z", "", "y", None] * (n // 4) + ["x"] * (n % 4)),
    })
    binary = pd.DataFrame({
        "id": _column([101, 102, 103, 104, 105]),
        "bin": _column([EVERY_BYTE, b"", None, b"\t\n\\N", EVERY_BYTE * 40]),
        "vbin": _column([EVERY_BYTE[::-1], memoryview(b"\x00\x00"), None, b"\xff", bytearray(b"\\")]),
        "bits": _column([b"\x05", b"\xff", None, b"\x00", b"\x80"]),
        "flag": _column([b"\x01", b"\x00", None, b"\x01", b"\x00"]),
    })
    numbers = pd.DataFrame({
        "id": _column([201, 202, 203, 204, 205, 206]),
        "amount": _column([D("12345678901234567890.1234567890"), D("-0.0000000001"), D("0E-10"), D("1E+5"),
                           D("0.0000001"), None]),
        "ratio": _column([0.1, 1e20, -1.5e-7, 3.0, None, 2.0 ** 0.5]),
        "yes": _column([True, False, None, True, False, True]),
    })
    times = pd.DataFrame({
        "id": _column([301, 302, 303, 304, 305]),
        "happened": _column([dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.datetime(2020, 1, 1, 5, 0, tzinfo=IST),
                             pd.Timestamp("2021-06-01 12:00:00.123456"), None, dt.datetime(1000, 1, 1)]),
        "stamped": _column([dt.datetime(2024, 3, 1, 1, 2, 3, 4, tzinfo=PST), dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                            dt.datetime(2021, 6, 1, 12, 0, tzinfo=IST), None, dt.datetime(2030, 1, 1, 0, 0, 0, 1)]),
        "day": _column([dt.date(2024, 2, 29), dt.date(1000, 1, 1), None, dt.date(9999, 12, 31), dt.date(1970, 1, 1)]),
        "clock": _column([dt.time(23, 59, 59, 999999), dt.time(0, 0), None, dt.time(12, 30, 1, 5), dt.time(1, 2, 3)]),
    })
    postgres_json = pd.DataFrame({
        "id": _column([401, 402, 403, 404, 405]),
        "doc": _column([{"a": [1, "x\ty"], "emoji": "😀", "back": "\\"}, "abc", [1, 2.5, None], None, 7]),
    })
    mariadb_json = pd.DataFrame({
        "id": _column([501, 502, 503]),
        "doc": _column(['{"a": "tab\\there"}', '"abc"', None]),
        "day": _column(["2024-02-29", None, "1999-12-31"]),  # text for a DATE column, as a mask may give
        "vc": _column([1, 2, 3]),  # numbers for a text column
    })
    return [("mysql", text), ("mysql", binary), ("postgresql", numbers), ("postgresql", times),
            ("postgresql", postgres_json), ("mysql", mariadb_json)]


def _shadow(url: str, model: SchemaModel, table: TableInfo, load_data: bool) -> MysqlShadow:
    target = MysqlTarget(url, "staging")
    shadow = target.create_shadow(model, f"20261202_000000-{secrets.token_hex(3)}")
    shadow.create_tables([table])
    if not load_data:
        shadow.load_data = False
    return shadow


def _stored(shadow: MysqlShadow) -> list[tuple[Any, ...]]:
    url = make_url_for(shadow)
    columns = ("id, txt, vc, long_text, bin, vbin, doc, amount, ratio, happened, stamped, day, clock, "
               "bits, flag, yes, colour, tags, twice")
    return rows(url, f"SELECT {columns} FROM `{shadow.database}`.matrix ORDER BY id")


def make_url_for(shadow: MysqlShadow) -> str:
    return shadow.target.server_url.set(database=shadow.database).render_as_string(hide_password=False)


def test_load_data_stores_every_value_as_insert_does(server: tuple[str, SchemaModel]) -> None:
    url, model = server
    table = model.table("matrix")
    by_insert = _shadow(url, model, table, load_data=False)
    by_load = _shadow(url, model, table, load_data=True)
    try:
        assert by_load.load_data and not by_insert.load_data
        for origin, frame in _frames():
            frame.attrs[ORIGIN_ATTR] = origin
            columns = [c for c in table.insertable_columns if c in frame.columns]
            converters = converters_for(table, columns, "mysql", origin)
            # Every one of these batches goes by LOAD DATA, not by the INSERT fallback.
            assert encode_batch(frame, columns, converters, by_load._families["matrix"]) is not None, columns
            assert by_insert.write(table, frame) == len(frame)
            assert by_load.write(table, frame) == len(frame)
        by_load.flush()
        inserted, loaded = _stored(by_insert), _stored(by_load)
        assert len(loaded) == sum(len(f) for _, f in _frames())
        assert loaded == inserted
        values = {row[0]: row for row in loaded}
        assert [values[i + 1][1] for i in range(len(TRICKY))] == [t.replace("\r\n", "\r\n") for t in TRICKY]
        assert values[1][3] == "x\\\t\n😀" * 50_000
        assert values[101][4] == EVERY_BYTE and values[102][4] == b"" and values[103][4] is None
        assert values[101][13] == b"\x05" and values[101][14] == b"\x01"
        assert values[201][7] == D("12345678901234567890.1234567890") and values[205][7] == D("0.0000001")
        assert values[302][9] == dt.datetime(2019, 12, 31, 23, 30)  # 05:00 +05:30 as UTC
        assert values[301][10] == dt.datetime(2024, 3, 1, 9, 2, 3, 4)  # the TIMESTAMP in UTC
        assert values[401][6] == '{"a": [1, "x\\ty"], "emoji": "😀", "back": "\\\\"}' and values[402][6] == '"abc"'
        assert values[1][16:19] == ("red", "x,z", 2)
    finally:
        by_insert.discard()
        by_load.discard()


def test_batches_without_a_load_data_form_go_by_insert(server: tuple[str, SchemaModel]) -> None:
    url, model = server
    table = model.table("matrix")
    frame = pd.DataFrame({"id": _column([1, 2]), "clock": _column([dt.timedelta(hours=-1, seconds=5), None]),
                          "ratio": _column([2 ** 64 - 1, 1])})
    families = {"id": "integer", "clock": "time", "ratio": "numeric"}
    assert encode_batch(frame, ["id", "clock"], {}, families) is None  # a MariaDB TIME read as timedelta
    assert encode_batch(frame, ["id", "ratio"], {}, families) is None  # beyond 64-bit integers
    shadow = _shadow(url, model, table, load_data=True)
    try:
        assert shadow.write(table, frame[["id", "clock", "ratio"]]) == 2
        assert rows(make_url_for(shadow), f"SELECT clock, ratio FROM `{shadow.database}`.matrix ORDER BY id") == [
            (dt.timedelta(hours=-1, seconds=5), float(2 ** 64 - 1)), (None, 1.0)]
    finally:
        shadow.discard()


def test_a_value_insert_would_refuse_fails_the_load(server: tuple[str, SchemaModel]) -> None:
    url, model = server
    table = model.table("matrix")
    # LOAD DATA LOCAL only warns where strict INSERT fails: a duplicate key, a value not in the ENUM.
    for duplicate, error in ((1, "Duplicate entry"), (2, "'colour'")):
        shadow = _shadow(url, model, table, load_data=True)
        try:
            shadow.write(table, pd.DataFrame({"id": _column([1]), "colour": _column(["red"])}))
            shadow.flush()
            shadow.write(table, pd.DataFrame({"id": _column([duplicate, 3]), "colour": _column(["green", "purple"])}))
            with pytest.raises(TargetError, match=error):
                shadow.flush()
            with pytest.raises(TargetError, match=error):  # and every write after it
                shadow.write(table, pd.DataFrame({"id": _column([4]), "colour": _column(["red"])}))
            # The batch is one transaction: none of its rows stays behind.
            assert rows(make_url_for(shadow), f"SELECT id, colour FROM `{shadow.database}`.matrix") == [(1, "red")]
        finally:
            shadow.discard()


@pytest.mark.parametrize("why", ["server", "connection"])
def test_insert_fallback_when_local_infile_is_not_allowed(server: tuple[str, SchemaModel], why: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url, model = server
    table = model.table("matrix")
    if why == "server":  # as with local_infile=OFF (a server-wide setting, so not changed here)
        monkeypatch.setattr(mysql_target, "local_infile_refusal",
                            lambda conn: "the target server does not allow it (local_infile is OFF)")
    else:  # a loading connection without the capability
        monkeypatch.setattr(MysqlTarget, "load_engine", MysqlTarget.engine)

    def no_load_data(*_args: Any) -> None:
        raise AssertionError("LOAD DATA used although not allowed")

    monkeypatch.setattr(mysql_target, "encode_batch", no_load_data)
    shadow = _shadow(url, model, table, load_data=True)
    try:
        assert not shadow.load_data
        assert len(shadow.target.notes) == 1
        note = shadow.target.notes[0]
        assert note.startswith("rows written by multi-row INSERT, not LOAD DATA LOCAL INFILE: ")
        assert ("local_infile is OFF" if why == "server" else "does not enable local_infile") in note
        assert shadow.write(table, pd.DataFrame({"id": _column([7]), "txt": _column(["a\tb"])})) == 1
        assert rows(make_url_for(shadow), f"SELECT id, txt FROM `{shadow.database}`.matrix") == [(7, "a\tb")]
    finally:
        shadow.discard()


def test_the_server_refusing_load_data_mid_load_falls_back(server: tuple[str, SchemaModel],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url, model = server
    table = model.table("matrix")
    shadow = _shadow(url, model, table, load_data=True)

    class Refusing:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self.conn, name)

        def cursor(self, *args: Any) -> Any:
            cursor = self.conn.cursor(*args)
            execute_sql = cursor.execute

            def refuse(sql: str | bytes | bytearray, args: Any = None) -> Any:
                if (sql if isinstance(sql, str) else bytes(sql).decode()).startswith("LOAD DATA"):
                    raise pymysql.err.OperationalError(1148, "The used command is not allowed with this MariaDB "
                                                             "version")
                return execute_sql(sql, args)

            cursor.execute = refuse
            return cursor

    try:
        shadow.conn = Refusing(shadow.conn)  # type: ignore[assignment]
        assert shadow.write(table, pd.DataFrame({"id": _column([1, 2]), "txt": _column(["a", None])})) == 2
        shadow.flush()
        assert not shadow.load_data
        assert any("refused it" in note for note in shadow.target.notes)
        assert rows(make_url_for(shadow), f"SELECT id, txt FROM `{shadow.database}`.matrix ORDER BY id") == [
            (1, "a"), (2, None)]
    finally:
        shadow.conn = getattr(shadow.conn, "conn", shadow.conn)
        shadow.discard()


def test_source_connections_refuse_load_data_local(server: tuple[str, SchemaModel], tmp_path: Path) -> None:
    url, _ = server
    secret = tmp_path / "client-file.tsv"
    secret.write_text("1\tfrom the client\n")
    with pytest.raises(ValueError, match="never enabled on a read-only"):
        make_engine(url, read_only=True, local_infile=True)
    engine = make_engine(url, read_only=True)
    try:
        with snapshot(engine) as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            assert not raw._local_infile and not raw.client_flag & pymysql.constants.CLIENT.LOCAL_FILES
            with pytest.raises(sa.exc.OperationalError, match="not allowed"):
                conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE matrix (id, txt)")
    finally:
        engine.dispose()
    target = MysqlTarget(url, "staging")
    lock = target.raw()  # the lock, verification and keep connections of a target have it neither
    try:
        assert not lock._local_infile
    finally:
        lock.close()
    assert rows(url, "SELECT count(*) FROM matrix") == [(0,)]
