"""address.* inside real refreshes (SQLite and PostgreSQL): every customer's fake street, city and
postcode lie in the customer's kept country, postcodes have that country's form, and a second
refresh writes the same addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ServerDatabases
from load_support import execute, rows, write_project

import datastage
from datastage.mask.countries import country_of
from datastage.mask.strategies.address import part_pool

COUNTRIES = ["Norway", "NO", "NOR", "Norge", "United States", "US", "USA", "DE", "Germany", "Deutschland",
             "Sweden", "FR", "GB", "Canada", "PL", None, "Atlantis"]
# The postcode form of each country, written independently of the country table; no country: en_US's.
POSTCODE = {"NO": r"\d{4}", "US": r"\d{5}", "DE": r"\d{5}", "SE": r"\d{5}", "FR": r"\d{5}",
            "GB": r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}", "CA": r"[A-Z]\d[A-Z] \d[A-Z]\d", "PL": r"\d{2}-\d{3}",
            None: r"\d{5}"}
RULES = {"version": 1, "default": "keep",
         "tables": {"customers": {"street": "address.street", "city": "address.city", "postcode": "address.postcode",
                                  "region": "address.region", "email": {"strategy": "email", "unique": True},
                                  "country": {"strategy": "keep", "reason": "countries are kept for reports"}}}}
DDL = ("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, street TEXT NOT NULL, "
       "city TEXT NOT NULL, postcode TEXT NOT NULL, region TEXT, country TEXT)")


def _source_rows() -> list[tuple[object, ...]]:
    return [(i, f"customer{i}@corp.example", f"Storgata {i}", "Debbieside", "017", "Viken",
             COUNTRIES[i % len(COUNTRIES)]) for i in range(1, 341)]


def _fill(url: str) -> None:
    values = ", ".join("(" + ", ".join("NULL" if v is None else f"'{v}'" if isinstance(v, str) else str(v)
                                       for v in row) + ")" for row in _source_rows())
    execute(url, DDL, f"INSERT INTO customers VALUES {values}")


def _check_addresses(url: str) -> list[tuple[object, ...]]:
    loaded = rows(url, "SELECT customer_id, street, city, postcode, region, country FROM customers "
                       "ORDER BY customer_id")
    assert len(loaded) == 340
    source = {r[0]: r for r in _source_rows()}
    for customer_id, street, city, postcode, region, country in loaded:
        assert country == source[customer_id][6]  # kept
        entry = country_of(country) if country else None
        assert re.fullmatch(POSTCODE[entry.iso2 if entry else None], postcode), (country, postcode)
        locale = entry.locale if entry else "en_US"
        assert city in part_pool(locale, "city") and street in part_pool(locale, "street"), (country, city)
        assert region in part_pool(locale, "region"), (country, region)
        assert city != "Debbieside" and street != source[customer_id][2]
    norwegian = [r for r in loaded if r[5] in ("Norway", "NO", "NOR", "Norge")]
    assert len(norwegian) == 80 and all(len(r[3]) == 4 for r in norwegian)
    assert len({r[2] for r in loaded}) > 100  # cities vary across customers
    return loaded


def _refresh_twice(config: Path, url: str) -> None:
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "pass", [(c.name, c.summary) for c in result.checks if c.status != "PASS"]
    first = _check_addresses(url)
    assert datastage.refresh("staging", config=config).verdict == "pass"
    assert _check_addresses(url) == first


def test_addresses_agree_with_the_kept_country_in_sqlite(tmp_path: Path) -> None:
    _fill(f"sqlite:///{tmp_path / 'prod.db'}")
    config = write_project(tmp_path, "sqlite:///prod.db", {"staging": {"url": "sqlite:///staging.db"}}, rules=RULES)
    _refresh_twice(config, f"sqlite:///{tmp_path / 'staging.db'}")


@pytest.mark.postgres
def test_addresses_agree_with_the_kept_country_in_postgresql(pg_databases: ServerDatabases, tmp_path: Path) -> None:
    source, target = pg_databases.create("ds_addr_src"), pg_databases.create("ds_addr_dst")
    _fill(source)
    config = write_project(tmp_path, source, {"staging": {"url": target}}, rules=RULES)
    _refresh_twice(config, target)
