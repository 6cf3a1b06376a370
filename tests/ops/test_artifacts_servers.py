"""Verified artifacts against the real servers: PostgreSQL → sqlite artifact → MariaDB, PostgreSQL →
parquet → PostgreSQL, values equal (NULLs, unicode, decimals, dates, bytes), tampering refused."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from conftest import ServerDatabases

import datastage
from datastage.cli import main
from datastage.report.signing import write_signing_key

SOURCE_SQL = """
CREATE TABLE "odd/name.x" (id int PRIMARY KEY, label text);
CREATE TABLE item (id int PRIMARY KEY, title text, price numeric(10, 2), sold date, payload bytea,
                   parent int REFERENCES "odd/name.x"(id));
INSERT INTO "odd/name.x" VALUES (1, 'Zürich ☃'), (2, NULL);
INSERT INTO item VALUES (1, 'Ünïcödé “quotes”', 12.50, '2024-02-29', '\\x00ff10', 1),
                        (2, NULL, NULL, NULL, NULL, NULL), (3, 'plain', 0.01, '1999-12-31', '\\x', 2)
"""
EXPECTED = [
    (1, "Ünïcödé “quotes”", decimal.Decimal("12.50"), dt.date(2024, 2, 29), b"\x00\xff\x10", 1),
    (2, None, None, None, None, None),
    (3, "plain", decimal.Decimal("0.01"), dt.date(1999, 12, 31), b"", 2),
]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _select(url: str, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(table)
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.exec_driver_sql(f"SELECT * FROM {quoted} ORDER BY 1")]
    finally:
        engine.dispose()


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def pg_project(pg_databases: ServerDatabases, tmp_path: Path) -> Path:
    source, staging = pg_databases.create("ds_src"), pg_databases.create("ds_stage")
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        for statement in SOURCE_SQL.split(";"):
            conn.exec_driver_sql(statement)
    engine.dispose()
    write_signing_key(tmp_path / "signing.key")
    (tmp_path / "rules.yaml").write_text("version: 1\ndefault: keep\n")
    config = {"source": {"url": source}, "signing": {"key_file": "signing.key"},
              "environments": {"staging": {"url": staging, "rules": "rules.yaml"}}}
    (tmp_path / "datastage.yaml").write_text(yaml.safe_dump(config))
    assert datastage.refresh("staging", config=tmp_path / "datastage.yaml").verdict in ("pass", "warn")
    return tmp_path / "datastage.yaml"


@pytest.mark.postgres
@pytest.mark.mysql
def test_postgres_to_sqlite_artifact_to_mariadb(pg_project: Path, mysql_databases: ServerDatabases,
                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _cli("export", "staging", "--to", str(out), "--config", str(pg_project))
    assert code == 0, output
    into = mysql_databases.create("ds_import")
    code, output = _cli("import", str(out), "--into", into, "--public-key", str(tmp_path / "signing.key.pub"),
                        "--json")
    assert code == 0, output
    assert json.loads(output)["tables"] == {"item": 3, "odd/name.x": 2}
    assert _select(into, "item") == EXPECTED
    assert _select(into, "odd/name.x") == [(1, "Zürich ☃"), (2, None)]
    assert "***" not in output and (sa.engine.make_url(into).password or "\0") not in output


@pytest.mark.postgres
def test_postgres_parquet_round_trip_and_a_tampered_table(pg_project: Path, pg_databases: ServerDatabases,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = datastage.export("staging", to=out, format="parquet", config=pg_project)
    assert result.tables == {"item": 3, "odd/name.x": 2}
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["item.parquet", "odd%2Fname%2Ex.parquet"]
    schema = pq.read_schema(out / "tables" / "item.parquet")
    assert str(schema.field("price").type) == "decimal128(10, 2)" and str(schema.field("sold").type) == "date32[day]"
    definitions = json.loads((out / "schema.json").read_text())["tables"]
    item = next(t for t in definitions if t["name"] == "item")
    assert item["primary_key"] == ["id"] and item["foreign_keys"][0]["ref_table"] == "odd/name.x"
    # A changed byte in one table's file: refused, the target keeps what it had.
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    data = bytearray((tampered / "tables" / "item.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "tables" / "item.parquet").write_bytes(bytes(data))
    into = pg_databases.create("ds_import")
    code, output = _cli("import", str(tampered), "--into", into, "--config", str(pg_project))
    assert code == 3 and "tables/item.parquet: its SHA-256 is not the one SHA256SUMS lists" in output
    assert _tables(into) == []
    imported = datastage.import_artifact(out, into=into, config=pg_project)
    assert imported.tables == {"item": 3, "odd/name.x": 2}
    assert _select(into, "item") == EXPECTED
    assert _select(into, "odd/name.x") == [(1, "Zürich ☃"), (2, None)]
    log = _select(into, "datastage_refresh_log")
    assert log[-1][0] == imported.run_id and f"import of artifact {result.run_id}" in log[-1][7]
    # Importing into the source is refused before anything is written.
    source = yaml.safe_load(pg_project.read_text())["source"]["url"]
    code, output = _cli("import", str(out), "--into", source, "--config", str(pg_project))
    assert code == 2 and "is the source database; refusing to import into it" in output
    assert "datastage_refresh_log" not in _tables(source)
