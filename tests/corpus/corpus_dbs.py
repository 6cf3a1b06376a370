"""The corpus's databases: build a generated one on SQLite, PostgreSQL or MariaDB, or load a public one.

Each builder returns a :class:`CorpusDB`: where the database is, which schemas to read, and
the label of every column, keyed like the scan's findings.

Example:
    >>> import tempfile
    >>> db = build_generated("crime", f"sqlite:///{tempfile.mkdtemp()}/crime.db")
    >>> db.name, db.dialect, db.truth[("person", "ssn")].kinds
    ('crime', 'sqlite', ('national_id',))
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
for _folder in (HERE, HERE.parent):  # corpus modules, and tests/ for conftest's dataset loaders
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import corpus_crime  # noqa: E402
import corpus_health  # noqa: E402
import corpus_hr  # noqa: E402
import corpus_music  # noqa: E402
import corpus_trading  # noqa: E402
from corpus_kit import Label, truth_of, write  # noqa: E402
from corpus_public import sakila_truth  # noqa: E402

GENERATED: dict[str, ModuleType] = {"health": corpus_health, "hr": corpus_hr, "music": corpus_music,
                                    "trading": corpus_trading, "crime": corpus_crime}
PUBLIC = {"pagila": "DVD rental (Pagila, public dataset)", "sakila": "DVD rental (Sakila, public dataset)"}


@dataclass
class CorpusDB:
    """One labelled database of the corpus."""

    name: str
    style: str
    url: str
    truth: dict[tuple[str, str], Label]
    schemas: tuple[str, ...] = ()
    build_seconds: float = 0.0

    @property
    def dialect(self) -> str:
        return sa.make_url(self.url).get_backend_name()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.dialect}{', schemas ' + '+'.join(self.schemas) if self.schemas else ''})"


def build_generated(name: str, url: str, seed: int | None = None) -> CorpusDB:
    """Generate corpus database ``name`` into the (empty, existing) database at ``url``.

    ``hr`` on PostgreSQL goes into two schemas, ``hr`` and ``sales``; everywhere else into
    the database's default schema.
    """
    module = GENERATED[name]
    started = time.monotonic()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    dialect = engine.dialect.name
    schemas: tuple[str, ...] = ()
    kwargs = {} if seed is None else {"seed": seed}
    if name == "hr" and dialect == "postgresql":
        schemas = ("hr", "sales")
        specs = module.tables(schemas=True, **kwargs)
    else:
        specs = module.tables(**kwargs)
    try:
        write(engine, specs, schemas)
        with engine.connect() as conn:
            default = conn.dialect.default_schema_name if dialect == "postgresql" else None
    finally:
        engine.dispose()
    return CorpusDB(name, module.STYLE, url, truth_of(specs, default), schemas, time.monotonic() - started)


def load_public(name: str, url: str, datasets: Path) -> CorpusDB:
    """Load ``pagila`` (PostgreSQL) or ``sakila`` (MariaDB) from ``datasets`` into the empty database at ``url``."""
    from conftest import load_pagila, load_sakila

    started = time.monotonic()
    (load_pagila if name == "pagila" else load_sakila)(datasets, url)
    dialect = "postgresql" if name == "pagila" else "mysql"
    return CorpusDB(name, PUBLIC[name], url, sakila_truth(dialect), (), time.monotonic() - started)
