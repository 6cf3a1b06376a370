"""Every strategy on every column type it accepts, from every source dialect into every target dialect.

One small table per source dialect holds a column per (strategy, type) cell: two rows of values and
a row of NULLs. One refresh per source -> target pair loads it; the loaded values are checked for
their driver type, their time zone, NULLs, bytes, JSON, arrays (PostgreSQL to PostgreSQL) and
numerics at their precision, and for what the strategy promises (a shifted date, a bucket, ...).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ServerDatabases
from load_support import rows, write_project

import datastage

D = decimal.Decimal
TZ = dt.timezone(dt.timedelta(hours=2))

# Source column types per dialect; a type a dialect lacks has no cells there.
TYPES: dict[str, dict[str, str]] = {
    "postgresql": {"text": "text", "integer": "integer", "decimal": "numeric(10,2)", "float": "double precision",
                   "date": "date", "datetime": "timestamp", "datetimetz": "timestamptz", "boolean": "boolean",
                   "binary": "bytea", "json": "jsonb", "array": "integer[]", "uuid": "uuid", "time": "time",
                   "interval": "interval"},
    "mysql": {"text": "varchar(200)", "integer": "int", "decimal": "decimal(10,2)", "float": "double",
              "date": "date", "datetime": "datetime(6)", "boolean": "boolean", "binary": "varbinary(64)",
              "json": "json", "time": "time(6)"},
    "sqlite": {"text": "TEXT", "integer": "INTEGER", "decimal": "NUMERIC(10,2)", "float": "REAL", "date": "DATE",
               "datetime": "TIMESTAMP", "boolean": "BOOLEAN", "binary": "BLOB", "json": "JSON", "time": "TIME"},
}
SAMPLES: dict[str, tuple[Any, Any]] = {
    "text": ("Alice Smith 12345", "Bob Jones 678"),
    "integer": (1234, -56),
    "decimal": (D("1234.56"), D("-0.05")),
    "float": (1.5, -2.25),
    "date": (dt.date(1984, 6, 12), dt.date(2001, 12, 31)),
    "datetime": (dt.datetime(2024, 3, 10, 13, 45, 30, 123456), dt.datetime(1999, 12, 31, 23, 59, 59)),
    "datetimetz": (dt.datetime(2024, 3, 10, 13, 45, 30, 123456, tzinfo=TZ),
                   dt.datetime(2000, 1, 1, 0, 30, tzinfo=dt.UTC)),
    "boolean": (True, False),
    "binary": (b"\x00\xffab", b"\x01"),
    "json": ({"name": "Ann", "n": [1, None], "d": 1.5}, {"name": "Bob", "tags": ["x"]}),
    "array": ([1, 2, None], []),
    "uuid": (uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID("00000000-0000-4000-8000-000000000001")),
    "time": (dt.time(13, 45, 30), dt.time(0, 0, 1)),
    "interval": (dt.timedelta(days=1, hours=2), dt.timedelta(minutes=5)),
}
TEXT_SAMPLES: dict[str, tuple[str, str]] = {
    "email": ("ann.lee@corp.example", "bob@corp.example"),
    "card_number": ("4111 1111 1111 1111", "5555555555554444"),
    "phone": ("+1-415-555-0142", "+44 20 7946 0958"),
    "iban": ("GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"),
    "date_shift": ("2024-03-10", "2023-01-31 08:00:00"),
    "json": ('{"name": "Ann", "n": [1, null]}', '{"name": "Bob"}'),
}
ALL = tuple(SAMPLES)


@dataclass(frozen=True)
class Cell:
    strategy: str
    category: str
    rule: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return f"{self.strategy.replace('.', '_')}_{self.category}"

    @property
    def samples(self) -> tuple[Any, Any]:
        if "samples" in self.extra:
            return tuple(self.extra["samples"])  # type: ignore[return-value]
        if self.category == "text" and self.strategy in TEXT_SAMPLES:
            return TEXT_SAMPLES[self.strategy]
        return SAMPLES[self.category]

    def rule_for(self) -> Any:
        return self.rule if self.rule is not None else self.strategy


def _cells() -> list[Cell]:
    cells = [Cell("keep", c, {"strategy": "keep", "reason": "the values as loaded"}) for c in ALL]
    cells += [Cell("null", c) for c in ALL]
    cells += [Cell("shuffle", c) for c in ALL]
    values = {"text": "x", "integer": 7, "decimal": 9.99, "float": 0.5, "boolean": False}
    cells += [Cell("value", c, {"strategy": "value", "value": v}, {"samples": (True, True)} if c == "boolean" else {})
              for c, v in values.items()]
    generalize = {"date": {"to": "year"}, "datetime": {"to": "year"}, "datetimetz": {"to": "month"},
                  "integer": {"bucket": 10}, "decimal": {"bucket": 10}, "float": {"bucket": 10},
                  "text": {"keep": 3}}
    cells += [Cell("generalize", c, {"strategy": "generalize", **p}) for c, p in generalize.items()]
    cells += [Cell("date_shift", c, {"strategy": "date_shift", "max_days": 30})
              for c in ("date", "datetime", "datetimetz", "text")]
    cells += [Cell("noise", c, {"strategy": "noise", "relative": 0.1}) for c in ("integer", "decimal", "float")]
    cells += [Cell("tokenize", c) for c in ("integer", "text")]
    cells += [Cell("json", c, {"strategy": "json", "paths": {"$.name": "fake.first_name"}}) for c in ("json", "text")]
    cells += [Cell("scrub", c) for c in ("json", "text")]
    cells += [Cell(name, "text") for name in (
        "email", "hash", "card_number", "phone", "iban", "fake.first_name", "person.first_name",
        "person.last_name", "person.full_name", "person.email", "person.username")]
    cells += [Cell("partial", "text", {"strategy": "partial", "keep_last": 2}),
              Cell("regex", "text", {"strategy": "regex", "pattern": r"\d+", "replacement": "#"}),
              Cell("template", "text", {"strategy": "template", "template": "{id}-masked"})]
    return cells


CELLS = _cells()
DIALECTS = ("sqlite", "postgresql", "mysql")


def cells_of(dialect: str) -> list[Cell]:
    return [c for c in CELLS if c.category in TYPES[dialect]]


def _create_source(url: str, dialect: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    cells = cells_of(dialect)
    quote = (lambda n: f"`{n}`") if dialect == "mysql" else (lambda n: f'"{n}"')
    columns = ", ".join(f"{quote(c.column)} {TYPES[dialect][c.category]}" for c in cells)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE typed (id integer PRIMARY KEY, {columns})")
        table = sa.Table("typed", sa.MetaData(), autoload_with=engine)
        data = [{"id": i + 1, **{c.column: c.samples[i] for c in cells}} for i in range(2)]
        data.append({"id": 3, **{c.column: None for c in cells}})
        if dialect != "postgresql":  # no JSON type reflected for MariaDB, none bound by SQLite: JSON text
            for row in data:
                for c in cells:
                    if c.category == "json" and row[c.column] is not None:
                        row[c.column] = json.dumps(row[c.column])
        with engine.begin() as conn:
            if dialect == "postgresql":
                conn.execute(table.insert(), data)
            else:  # bound as they are: SQLAlchemy's JSON type would encode the JSON text (and NULL) again
                names = ["id", *(c.column for c in cells)]
                q = "`" if dialect == "mysql" else '"'
                conn.execute(sa.text(f"INSERT INTO typed ({', '.join(q + n + q for n in names)}) VALUES "
                                     f"({', '.join(f':p{i}' for i in range(len(names)))})"),
                             [{f"p{i}": _bindable(row[n], dialect) for i, n in enumerate(names)} for row in data])
    finally:
        engine.dispose()


def _bindable(value: Any, dialect: str) -> Any:
    """SQLite source values as sqlite3 binds them (text for decimals, ISO text for dates and times)."""
    if dialect != "sqlite":
        return value
    if isinstance(value, D):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def sources(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Lazily made source databases, one per dialect, shared by the module."""
    made: dict[str, str] = {}
    servers: list[ServerDatabases] = []

    def get(dialect: str) -> str:
        if dialect not in made:
            if dialect == "sqlite":
                made[dialect] = f"sqlite:///{tmp_path_factory.mktemp('typed') / 'source.db'}"
            else:
                dbs = ServerDatabases(request.getfixturevalue("pg_server" if dialect == "postgresql"
                                                              else "mysql_server"))
                servers.append(dbs)
                made[dialect] = dbs.create("ds_typed")
            _create_source(made[dialect], dialect)
        return made[dialect]

    try:
        yield {"get": get}
    finally:
        for dbs in servers:
            dbs.drop_all()


def _target(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any]:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'staging.db'}", None
    dbs: ServerDatabases = request.getfixturevalue("pg_databases" if dialect == "postgresql" else "mysql_databases")
    return dbs.create("ds_typed_t"), dbs


def _loaded(url: str, dialect: str, columns: list[str]) -> dict[str, list[Any]]:
    """Per column, the values of rows 1, 2, 3 as the target's own driver returns them."""
    if dialect == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            quoted = ", ".join(f'"{c}"' for c in columns)
            got = conn.execute(f"SELECT {quoted} FROM typed ORDER BY id").fetchall()
        finally:
            conn.close()
    else:
        q = "`" if dialect == "mysql" else '"'
        got = rows(url, f"SELECT {', '.join(q + c + q for c in columns)} FROM typed ORDER BY id")
    assert len(got) == 3
    return {c: [row[i] for row in got] for i, c in enumerate(columns)}


def _instant(value: Any, source: str, target: str) -> dt.datetime:
    """A loaded datetime (or SQLite text) as a naive UTC instant, naive values read as UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime), value
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _date(value: Any) -> dt.date:
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    assert type(value) is dt.date, (type(value), value)
    return value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _check_type(cell: Cell, value: Any, source: str, target: str) -> None:
    """The driver type of a loaded non-NULL value, per target dialect."""
    category = cell.category
    if category == "text":
        assert type(value) is str, (cell.column, value)
        return
    if target == "sqlite":
        expected: dict[str, tuple[type, ...]] = {
            "integer": (int,), "decimal": (int, float), "float": (float, int), "date": (str,), "datetime": (str,),
            "datetimetz": (str,), "boolean": (int,), "binary": (bytes,), "json": (str,), "array": (str,),
            "uuid": (str,), "time": (str,), "interval": (str,)}
    elif target == "postgresql":
        expected = {
            "integer": (int,), "decimal": (D,), "float": (float,), "date": (dt.date,), "datetime": (dt.datetime,),
            "datetimetz": (dt.datetime,), "boolean": (bool,), "binary": (bytes,), "json": (dict, list, str),
            "array": (list,), "uuid": (uuid.UUID,), "time": (dt.time,), "interval": (dt.timedelta,)}
        if source == "mysql":
            expected["boolean"] = (int, bool)
            expected["json"] = (dict, list, str)
        if source == "sqlite":
            expected["boolean"] = (bool, int)
            expected["decimal"] = (D,)
    else:
        expected = {
            "integer": (int,), "decimal": (D,), "float": (float,), "date": (dt.date,), "datetime": (dt.datetime,),
            "datetimetz": (dt.datetime,), "boolean": (int,), "binary": (bytes,), "json": (str,), "array": (str,),
            "uuid": (str,), "time": (dt.timedelta,), "interval": (str,)}
    assert isinstance(value, expected[category]), (cell.column, source, target, type(value), value)
    if category == "decimal" and target != "sqlite":
        assert value.as_tuple().exponent == -2, (cell.column, value)  # numeric(10,2) keeps its scale
    if category == "datetimetz" and target == "postgresql" and source == "postgresql":
        assert value.tzinfo is not None, (cell.column, value)
    if category in ("datetime",) and target != "sqlite":
        assert value.tzinfo is None, (cell.column, value)


def _canon(value: Any, category: str, source: str, target: str) -> Any:
    """A comparable form of a source or loaded value."""
    if value is None:
        return None
    if category == "date":
        return _date(value)
    if category in ("datetime", "datetimetz"):
        return _instant(value, source, target)
    if category == "decimal":
        return D(str(value)).quantize(D("0.01"))
    if category == "float":
        return float(value)
    if category == "boolean":
        return bool(value)
    if category == "binary":
        return bytes(value)
    if category in ("json", "array"):
        return _json(value)
    if category == "uuid":
        return str(value)
    if category == "time":
        if isinstance(value, dt.timedelta):
            return (dt.datetime.min + value).time()
        return dt.time.fromisoformat(value) if isinstance(value, str) else value
    if category == "interval":
        if isinstance(value, str):
            return value
        return str(value) if target != "postgresql" else value
    return value


def _check_cell(cell: Cell, loaded: list[Any], source: str, target: str) -> None:
    category = cell.category
    assert loaded[2] is None, (cell.column, "a NULL stays NULL", loaded[2])
    if cell.strategy == "null":
        assert loaded[:2] == [None, None], (cell.column, loaded)
        return
    for value in loaded[:2]:
        assert value is not None, (cell.column, loaded)
        _check_type(cell, value, source, target)
    before = [_canon(v, category, source, target) for v in cell.samples]
    after = [_canon(v, category, source, target) for v in loaded[:2]]
    strategy = cell.strategy
    if strategy == "keep":
        if category == "interval" and target != "postgresql":
            assert all(isinstance(v, str) and v for v in after), (cell.column, after)
            return
        if category == "json" and target == "sqlite" and source != "postgresql":
            assert after == before
            return
        assert after == before, (cell.column, source, target, before, after)
    elif strategy == "shuffle":
        def key(v: Any) -> str:
            return json.dumps(v, sort_keys=True, default=str)
        if category == "interval" and target != "postgresql":
            return
        assert sorted(map(key, after)) == sorted(map(key, before)), (cell.column, before, after)
    elif strategy == "value":
        constant = {"text": "x", "integer": 7, "decimal": D("9.99"), "float": 0.5, "boolean": False}[category]
        assert after == [constant, constant], (cell.column, after)
    elif strategy == "generalize":
        if category == "text":
            assert after == [b[:3] for b in before]
        elif category in ("integer", "decimal", "float"):
            floor = [(b / 10).to_integral_value(rounding=decimal.ROUND_FLOOR) * 10 if category == "decimal"
                     else type(b)(math.floor(b / 10) * 10) for b in before]
            assert after == floor, (cell.column, before, after)
        else:
            for b, a in zip(before, after, strict=True):
                if category == "datetimetz":  # truncated in the source's zone, compared in UTC
                    assert a.day in (1, 28, 29, 30, 31) and a.minute in (0, 30), (cell.column, b, a)
                else:
                    assert (a.year, a.month, a.day) == (b.year, 1, 1), (cell.column, b, a)
    elif strategy == "date_shift":
        for b, a in zip(cell.samples, loaded[:2], strict=True):
            if category == "text":
                assert isinstance(a, str) and len(a) == len(b) and a != b, (cell.column, b, a)
                b_parsed, a_parsed = dt.datetime.fromisoformat(b), dt.datetime.fromisoformat(a)
            else:
                b_parsed = _canon(b, category, source, target)
                a_parsed = _canon(a, category, source, target)
            delta = a_parsed - b_parsed
            assert delta.days != 0 and abs(delta.days) <= 30 and delta.seconds == 0, (cell.column, b, a)
    elif strategy == "noise":
        for b, a in zip(before, after, strict=True):
            assert a != b and abs(float(a) - float(b)) <= abs(float(b)) * 0.1 + 0.011, (cell.column, b, a)
    elif strategy == "json":
        for b, a in zip(before, after, strict=True):
            document = _json(a) if category == "text" else a
            original = _json(b) if category == "text" else b
            assert document["name"] != original["name"] and isinstance(document["name"], str)
            assert {k: v for k, v in document.items() if k != "name"} == {
                k: v for k, v in original.items() if k != "name"}, (cell.column, b, a)
    elif strategy == "tokenize" and category == "integer":
        assert all(isinstance(a, int) for a in after) and after != before
    elif strategy == "partial":
        assert after == ["*" * (len(b) - 2) + b[-2:] for b in before]
    elif strategy == "regex":
        assert after == ["Alice Smith #", "Bob Jones #"]
    elif strategy == "template":
        assert after == ["1-masked", "2-masked"]
    elif strategy == "scrub":
        assert len(after) == 2
    else:  # text pseudonyms
        assert all(isinstance(a, str) and a for a in after) and after != before, (cell.column, before, after)


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("source", DIALECTS)
def test_every_strategy_and_type_loads_across_dialects(source: str, target: str, sources: dict[str, Any],
                                                        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source_url = sources["get"](source)
    target_url, _ = _target(target, request, tmp_path)
    cells = cells_of(source)
    rules = {"version": 1, "default": "keep", "tables": {"typed": {
        c.column: c.rule_for() for c in cells}}}
    config = write_project(tmp_path / "project", source_url, {"staging": {"url": target_url}}, rules=rules)
    result = datastage.refresh("staging", config=config)
    assert result.verdict in ("pass", "warn"), [c.to_dict() for c in result.checks if c.status.lower() != "pass"]
    loaded = _loaded(target_url, target, [c.column for c in cells])
    failures = []
    for cell in cells:
        try:
            _check_cell(cell, loaded[cell.column], source, target)
        except AssertionError as exc:
            failures.append(f"{cell.column}: {exc}")
    assert not failures, "\n".join(failures)
