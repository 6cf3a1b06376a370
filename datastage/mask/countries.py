"""The country table of the ``address.*`` strategies: names and ISO codes to Faker locales.

The table is data (``datastage/mask/data/countries.csv``): per country its ISO 3166-1
alpha-2 and alpha-3 codes, English name, the Faker locale that makes its addresses, the
pattern its postcodes match, where its regions come from and other names it goes by. A
country written in a row (``Norway``, ``NO``, ``NOR``, ``Norge``, `` norway ``) is matched
trimmed and without case, accents or dots.

Example:
    >>> country_of("Norge").locale, country_of(" nor ").iso2, country_of("U.S.A.").name
    ('no_NO', 'NO', 'United States')
    >>> country_of("Atlantis") is None
    True
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from datastage.identify.reference import faker_provider_class

DEFAULT_LOCALE = "en_US"  # where neither the row's country nor the rule's locale has addresses of its own


@dataclass(frozen=True)
class Country:
    """One row of the country table."""

    iso2: str
    iso3: str
    name: str
    locale: str
    postcode: re.Pattern[str]
    region_provider: str | None  # a Faker provider name, or None when ``regions`` lists them
    regions: tuple[str, ...]
    aliases: tuple[str, ...]


def country_key(text: str) -> str:
    """How a country name or code is compared: trimmed, case-folded, without accents, dots or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace(".", "").casefold().split())


@lru_cache(maxsize=1)
def countries() -> tuple[Country, ...]:
    """Every country of the table, in table order."""
    text = resources.files("datastage.mask").joinpath("data/countries.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    out = []
    for row in csv.DictReader(lines):
        region = row["region"].strip()
        provider = region[5:] if region.startswith("fake.") else None
        out.append(Country(
            iso2=row["iso2"], iso3=row["iso3"], name=row["name"], locale=row["locale"],
            postcode=re.compile(row["postcode"]), region_provider=provider,
            regions=() if provider else tuple(r for r in region.split("|") if r),
            aliases=tuple(a for a in row["aliases"].split("|") if a),
        ))
    return tuple(out)


@lru_cache(maxsize=1)
def _index() -> dict[str, Country]:
    index: dict[str, Country] = {}
    for entry in countries():
        for written in (entry.name, *entry.aliases, entry.iso3, entry.iso2):
            index[country_key(written)] = entry
    return index


def country_of(text: str) -> Country | None:
    """The country a name or ISO code stands for, or None when the table does not know it."""
    return _index().get(country_key(text))


def country_by_code(iso2: str) -> Country | None:
    """The country with ISO 3166-1 alpha-2 code ``iso2`` (any case), or None."""
    entry = _index().get(country_key(iso2))
    return entry if entry is not None and entry.iso2 == iso2.upper() else None


@lru_cache(maxsize=64)
def address_locale(locale: str) -> str:
    """The locale whose addresses stand in for ``locale``'s.

    ``locale`` itself when Faker has an address provider for it; else the table's locale of
    its country (``nb_NO`` -> ``no_NO``); else ``en_US``.
    """
    if faker_provider_class("address", locale) is not None:
        return locale
    entry = country_by_code(locale.rpartition("_")[2]) if "_" in locale else None
    return entry.locale if entry is not None else DEFAULT_LOCALE


def locale_country(locale: str) -> Country | None:
    """The table's country whose addresses ``locale`` makes, or None."""
    for entry in countries():
        if entry.locale == locale:
            return entry
    return None
