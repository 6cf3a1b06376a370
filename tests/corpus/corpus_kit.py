"""The labelled corpus's building blocks: per-column ground truth, table specs and a portable writer.

A corpus database is a list of :class:`Table` specs. Each :class:`Col` carries its SQL type
*and its label* (what the column truly holds), so the ground truth sits on the same line as
the column it describes. :func:`write` creates the tables through SQLAlchemy Core on any
dialect (SQLite, PostgreSQL with schemas, MariaDB) and inserts the generated rows;
:func:`truth_of` gives the labels keyed like the scan's findings: ``(table_key, column)``.

The labelling rules are in ``LABELS.md`` next to this file. In short: ``D`` direct
identifier, ``Q`` quasi-identifier, ``S`` sensitive (GDPR special category, financial,
secrets), ``N`` non-personal; ``kinds`` are names from :mod:`datastage.identify.kinds`
(the first is the expected one, the others acceptable); ``alt`` names another
classification a careful reviewer could defend: such *judgement calls* are reported but
count neither as a miss nor as a false positive.

Example:
    >>> import sqlalchemy as sa
    >>> tables = [Table("person", [Col("id", sa.Integer, N("surrogate key"), pk=True),
    ...                            Col("name", sa.String(80), D("full_name"))],
    ...                 {"id": [1, 2], "name": ["Ann Lee", "Bo Chan"]})]
    >>> engine = sa.create_engine("sqlite://")
    >>> write(engine, tables)
    >>> truth_of(tables)[("person", "name")].classification
    'direct_identifier'
    >>> with engine.connect() as conn:
    ...     conn.exec_driver_sql("SELECT count(*) FROM person").scalar()
    2
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from faker import Faker

from datastage.identify.kinds import KINDS, PERSONAL

Rows = dict[str, list[Any]]


@dataclass(frozen=True)
class Label:
    """What a column truly holds: classification, acceptable kinds, defensible alternatives, and why."""

    classification: str
    kinds: tuple[str, ...] = ()
    alt: tuple[str, ...] = ()
    why: str = ""

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}: use names from datastage.identify.kinds")
        if self.classification not in (*PERSONAL, "non_personal"):
            raise ValueError(f"bad classification {self.classification}")

    @property
    def personal(self) -> bool:
        return self.classification in PERSONAL

    @property
    def must_catch(self) -> bool:
        """Personal data that no defensible reading would keep as is."""
        return self.personal and "non_personal" not in self.alt

    @property
    def must_keep(self) -> bool:
        """Non-personal data that no defensible reading would mask."""
        return not self.personal and not set(self.alt) & PERSONAL

    @property
    def judgement(self) -> bool:
        return not self.must_catch and not self.must_keep

    def accepts(self, classification: str) -> bool:
        return classification == self.classification or classification in self.alt


def D(*kinds: str, alt: Sequence[str] = (), why: str = "") -> Label:
    """A direct identifier (``alt`` abbreviations: ``Q``, ``S``, ``N``)."""
    return Label("direct_identifier", kinds, _alt(alt), why)


def Q(*kinds: str, alt: Sequence[str] = (), why: str = "") -> Label:
    """A quasi-identifier: alone or with others it narrows a person down."""
    return Label("quasi_identifier", kinds, _alt(alt), why)


def S(*kinds: str, alt: Sequence[str] = (), why: str = "") -> Label:
    """Sensitive: GDPR special category, financial data about a person, secrets."""
    return Label("sensitive", kinds, _alt(alt), why)


def N(why: str = "", alt: Sequence[str] = ()) -> Label:
    """Not personal: keys, lookups, catalogue data, data about organisations or things."""
    return Label("non_personal", (), _alt(alt), why)


_SHORT = {"D": "direct_identifier", "Q": "quasi_identifier", "S": "sensitive", "N": "non_personal"}


def _alt(alt: Sequence[str]) -> tuple[str, ...]:
    return tuple(_SHORT.get(a, a) for a in alt)


KEY = N("surrogate key: assigned by the database, carries nothing about the person")


@dataclass
class Col:
    """One column: name, SQL type, label; ``fk`` is ``table.column`` in the same schema."""

    name: str
    type: Any
    label: Label
    pk: bool = False
    fk: str | None = None
    unique: bool = False
    nullable: bool = True


@dataclass
class Table:
    """A table spec and its rows, column-wise."""

    name: str
    cols: list[Col]
    rows: Rows
    schema: str | None = None
    extra: list[Any] = field(default_factory=list)  # further constraints (composite keys)


def key_of(table: Table, default_schema: str | None = None) -> str:
    """The scan's key of ``table``: ``name`` in the default schema, else ``schema.name``."""
    return table.name if table.schema in (None, default_schema) else f"{table.schema}.{table.name}"


def truth_of(tables: Sequence[Table], default_schema: str | None = None) -> dict[tuple[str, str], Label]:
    """``(table_key, column) -> Label`` for every column of ``tables``."""
    return {(key_of(t, default_schema), c.name): c.label for t in tables for c in t.cols}


def write(engine: sa.Engine, tables: Sequence[Table], schemas: Sequence[str] = ()) -> None:
    """Create ``tables`` (and ``schemas``, on PostgreSQL) and insert their rows, in order."""
    metadata = sa.MetaData()
    built: list[tuple[sa.Table, Table]] = []
    for spec in tables:
        columns = []
        for col in spec.cols:
            args: list[Any] = []
            if col.fk:
                ref = f"{spec.schema}.{col.fk}" if spec.schema else col.fk
                args.append(sa.ForeignKey(ref))
            columns.append(sa.Column(col.name, col.type, *args, primary_key=col.pk, unique=col.unique or None,
                                     nullable=col.nullable and not col.pk, autoincrement=False))
        built.append((sa.Table(spec.name, metadata, *columns, *spec.extra, schema=spec.schema), spec))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for schema in schemas:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        metadata.create_all(conn)
        for sa_table, spec in built:
            data = spec.rows
            names = [c.name for c in spec.cols]
            missing = set(names) ^ set(data)
            if missing:
                raise ValueError(f"{spec.name}: rows and columns differ: {sorted(missing)}")
            count = len(data[names[0]])
            records = [{n: data[n][i] for n in names} for i in range(count)]
            if records:
                conn.execute(sa_table.insert(), records)


# -- value makers shared by the generators ---------------------------------------------------

def faker(seed: int, locale: str | Sequence[str] = "en_US") -> Faker:
    """A Faker seeded for this corpus database alone (the same seed gives the same database)."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def with_digits(name: str, rng: random.Random) -> str:
    """A name with a number glued on, as Synthea writes them: ``Margorie48``, ``Cormier289``."""
    return f"{name}{rng.randint(1, 999)}"


_SYLLABLES = ("pe", "teu", "il", "mar", "quo", "vin", "dra", "sko", "ul", "bre", "ga", "zio", "len", "tho", "ry",
              "ca", "ux", "mo", "ne", "fi", "dov", "ka", "sha", "rin", "lo", "tes", "wy", "bel", "ot", "ja")


def invented_surname(rng: random.Random) -> str:
    """A surname in no dictionary: ``Peteuil``, ``Skovinul``."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def misspelt(name: str, rng: random.Random) -> str:
    """``name`` with one letter dropped, doubled or swapped: ``Christopher`` -> ``Christoper``."""
    if len(name) < 4:
        return name + rng.choice("aeiy")
    i = rng.randint(1, len(name) - 2)
    how = rng.randint(0, 2)
    if how == 0:
        return name[:i] + name[i + 1:]
    if how == 1:
        return name[:i] + name[i] + name[i:]
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def letters(rng: random.Random, n: int, alphabet: str = string.ascii_uppercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def luhn_complete(prefix: str) -> str:
    """``prefix`` with its Luhn check digit appended.

    >>> luhn_complete("411111111111111")
    '4111111111111111'
    """
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return prefix + str((10 - total % 10) % 10)


def us_phone(rng: random.Random) -> str:
    """A US number in one of the formats people type."""
    area, mid, end = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice((f"{area}-{mid}-{end:04d}", f"({area}) {mid}-{end:04d}", f"+1-{area}-{mid}-{end:04d}",
                       f"{area}.{mid}.{end:04d}", f"+1 {area} {mid} {end:04d}"))


def plate(rng: random.Random) -> str:
    """A licence plate: ``7ABC123`` or ``H42W9K`` style."""
    if rng.random() < 0.5:
        return f"{rng.randint(1, 9)}{letters(rng, 3)}{digits(rng, 3)}"
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))


def pick(rng: random.Random, options: Sequence[Any], n: int, weights: Sequence[float] | None = None) -> list[Any]:
    return rng.choices(list(options), weights=weights, k=n)
