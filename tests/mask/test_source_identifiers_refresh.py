"""Real refreshes (SQLite and PostgreSQL) of customers whose real phone numbers, e-mail addresses and
codes are what masking would give other customers: no masked value is a source identifier, unique
columns stay unique, and the refresh passes its own ``leak_identifiers`` check."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from load_support import rows

import datastage
from datastage.mask.contract import StrategyContext
from datastage.mask.keys import MaskingKey
from datastage.mask.source_identifiers import SourceIdentifiers, normal_form
from datastage.mask.strategies.basic import email
from datastage.mask.strategies.formats import phone, tokenize

KEY = MaskingKey(b"test-masking-key-0123456789abcdef", source="test")  # the tests' DATASTAGE_MASKING_KEY
BASE = 150
CHAINS = 40
DDL = ("CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, phone VARCHAR(40) NOT NULL UNIQUE, "
       "email VARCHAR(120) NOT NULL UNIQUE, code VARCHAR(20) NOT NULL UNIQUE)")
RULES = {"version": 1, "default": "fail", "tables": {"customer": {
    "phone": "phone", "email": {"strategy": "email", "unique": True}, "code": "tokenize"}}}
KINDS = {"phone": "phone", "email": "email", "code": "token/tokenize"}


def _plain(func: Any, domain: str, values: list[str]) -> list[str]:
    """What the strategy gives ``values`` on its own (no source identifiers to avoid)."""
    ctx = StrategyContext(key=KEY, domain=domain, params={}, column=None)  # type: ignore[arg-type]
    return [str(v) for v in func(pd.Series(values, dtype=object), ctx).tolist()]


def customers() -> list[tuple[int, str, str, str]]:
    """Customers 1..BASE, then for the first CHAINS of them two more whose real values are the first
    one's masked value and the masked value of that (x, E(x), E(E(x))): collisions are certain."""
    phones = [f"+1-415-555-{i:04d}" for i in range(1, BASE + 1)]
    emails = [f"customer{i}@mail.example" for i in range(1, BASE + 1)]
    codes = [f"CU-{i:05d}" for i in range(1, BASE + 1)]
    p1, c1 = _plain(phone, "phone", phones[:CHAINS]), _plain(tokenize, "tokenize", codes[:CHAINS])
    p2, c2 = _plain(phone, "phone", p1), _plain(tokenize, "tokenize", c1)
    e1 = _plain(email, "email", emails[:CHAINS])
    phones += p1 + p2
    codes += c1 + c2
    emails += e1 + [f"other{i}@mail.example" for i in range(CHAINS)]
    out = list(zip(range(1, len(phones) + 1), phones, emails, codes, strict=True))
    for i in (1, 2, 3):
        assert len({r[i] for r in out}) == len(out)  # the source itself is unique
    return out


def _write_project(directory: Path, source: str, target: str) -> Path:
    (directory / "rules.yaml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    config = {"source": {"url": source}, "environments": {"test": {"url": target, "rules": "rules.yaml"}}}
    path = directory / "datastage.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _fill(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(DDL))
            conn.execute(sa.text("INSERT INTO customer VALUES (:i, :p, :e, :c)"),
                         [{"i": i, "p": p, "e": e, "c": c} for i, p, e, c in customers()])
    finally:
        engine.dispose()


def _assert_no_source_identifier(source: list[tuple[Any, ...]], masked: list[tuple[Any, ...]]) -> None:
    assert len(masked) == len(source)
    plain = {"phone": _plain(phone, "phone", [r[1] for r in source]),
             "email": _plain(email, "email", [r[2] for r in source]),
             "code": _plain(tokenize, "tokenize", [r[3] for r in source])}
    for i, name in enumerate(("phone", "email", "code"), start=1):
        kind = KINDS[name]
        real = set(normal_form(kind, np.array([r[i] for r in source], dtype=object)).tolist())
        out = [r[i] for r in masked]
        assert len(set(out)) == len(out), f"{name}: uniqueness lost"
        assert not set(normal_form(kind, np.array(out, dtype=object)).tolist()) & real, f"{name}: a real value"
        by_id = {r[0]: r[i] for r in masked}
        would_hit = [r[0] for r, p in zip(source, plain[name], strict=True)
                     if normal_form(kind, np.array([p], dtype=object))[0] in real]
        assert len(would_hit) >= CHAINS, name  # without the redraw these rows would get real values
        # Only the colliding rows change; every other row keeps the plain output.
        assert all(by_id[r[0]] == p for r, p in zip(source, plain[name], strict=True) if r[0] not in would_hit)


def _checks(result: Any) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def test_sqlite_refresh_emits_no_source_identifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(f"sqlite:///{tmp_path / 'prod.db'}")
    config = _write_project(tmp_path, "sqlite:///prod.db", "sqlite:///test.db")
    result = datastage.refresh("test", config=config)
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert _checks(result)["leak_identifiers"] == "PASS"
    query = "SELECT customer_id, phone, email, code FROM customer ORDER BY customer_id"
    with sqlite3.connect(tmp_path / "prod.db") as prod, sqlite3.connect(tmp_path / "test.db") as test:
        source, masked = prod.execute(query).fetchall(), test.execute(query).fetchall()
    _assert_no_source_identifier(source, masked)
    # The same data without the pre-pass: the masked phones and e-mails are other customers' real
    # ones, and the refresh's own leak check fails it.
    monkeypatch.setattr(SourceIdentifiers, "collect", classmethod(lambda cls, conn, tables, policy, key,
                                                                  batch_size=0: cls(key)))
    failed = datastage.refresh("test", config=config)
    assert failed.verdict == "fail" and _checks(failed)["leak_identifiers"] == "FAIL"


@pytest.mark.postgres
def test_postgres_refresh_emits_no_source_identifier(pg_databases: Any, tmp_path: Path) -> None:
    source_url, target_url = pg_databases.create("ds_ids_src"), pg_databases.create("ds_ids_dst")
    _fill(source_url)
    config = _write_project(tmp_path, source_url, target_url)
    result = datastage.refresh("test", config=config)
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    assert _checks(result)["leak_identifiers"] == "PASS"
    query = "SELECT customer_id, phone, email, code FROM customer ORDER BY customer_id"
    _assert_no_source_identifier(rows(source_url, query), rows(target_url, query))
