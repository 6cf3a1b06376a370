"""``address.*``: one fake address per entity, whose parts agree with each other and with the row's country.

Like ``person.*``, every part derives from the *entity* (the ``by`` columns, default the
primary key; a foreign key names the table it points to, so ``orders.customer_id`` gets
the customer's address): the same key and entity give the same street, city, postcode and
region in every table and every run. Each part is drawn in the Faker locale of the row's
country: the ``country`` column's value after masking (kept: the real country; masked with
``address.country``: the fake one), looked up by name or ISO code in the country table
(:mod:`datastage.mask.countries`). Postcodes match the country's postcode pattern. Rows
without a country the table knows use ``locale`` (default: the rules' locale, ``en_US``).

Values come from pools drawn once per locale (:mod:`datastage.mask.fakepool`) and are picked
by keyed hash; the work per batch is one hash per part and one pick per distinct locale.

Example:
    >>> # customer: {street: address.street, city: address.city, postcode: address.postcode,
    >>> #            country: keep}   -> a Norwegian row gets a Norwegian street, city and 4-digit postcode
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from datastage.errors import RulesError
from datastage.mask.contract import Param, StrategyContext, object_series, strategy
from datastage.mask.countries import address_locale, countries, country_by_code, country_of, locale_country
from datastage.mask.fakepool import checked_locale, fake_pool, pick, provider_exists
from datastage.mask.strategies.basic import identity_hash
from datastage.mask.strategies.person import _check_by, entity_seeds
from datastage.source.schema import TableInfo
from datastage.yamlfile import did_you_mean

# Column names taken for the row's country when a rule names none (and no column has an address.country rule).
COUNTRY_COLUMNS = ("country", "country_code", "countrycode", "country_iso", "country_iso2", "country_iso3",
                   "iso_country", "country_name", "nation", "land", "pays", "pais", "paese")
_PROVIDERS = {"street": "street_address", "city": "city", "postcode": "postcode"}
_REGION_PROVIDERS = ("administrative_unit", "state", "region", "province", "county")


def _check_address(params: Mapping[str, Any], table: TableInfo | None, column: Any) -> str | None:
    problem = _check_by(params, table, column)
    if problem:
        return problem
    country = params.get("country")
    if isinstance(country, str) and table is not None and country not in table.columns:
        return f"country: table {table.key} has no column '{country}'{did_you_mean(country, list(table.columns))}"
    locale = params.get("locale")
    if isinstance(locale, str):
        try:
            checked_locale(locale)
        except RulesError as exc:
            return str(exc)
    for code in params.get("countries") or []:
        if code is False:
            return "countries: write NO in quotes ('NO'): YAML reads a bare NO as false"
        if not isinstance(code, str) or country_by_code(code) is None:
            known = [c.iso2 for c in countries()]
            return (f"countries: unknown country code {code!r}{did_you_mean(str(code), known)} "
                    f"(ISO 3166-1 alpha-2 codes: {', '.join(known)})")
    return None


@lru_cache(maxsize=512)
def part_pool(locale: str, part: str) -> tuple[str, ...]:
    """The values one address part is picked from in ``locale`` (postcodes: only the country's valid ones)."""
    entry = locale_country(locale)
    if part == "region":
        if entry is not None and entry.regions:
            return entry.regions
        providers = [entry.region_provider] if entry is not None and entry.region_provider else []
        providers += [p for p in _REGION_PROVIDERS if provider_exists(locale, p)]
        return tuple(str(v) for v in fake_pool(locale, providers[0] if providers else "city"))
    values = tuple(str(v) for v in fake_pool(locale, _PROVIDERS[part]))
    if part == "postcode" and entry is not None:
        values = tuple(v for v in values if entry.postcode.fullmatch(v))
    return values


@lru_cache(maxsize=4096)
def _locale_of(text: str, default: str) -> str:
    entry = country_of(text)
    return entry.locale if entry is not None else default


def row_locales(ctx: StrategyContext, index: pd.Index) -> tuple[np.ndarray, list[str]]:
    """(code per row, locales): the Faker locale of each row's address is ``locales[code]``: its (masked)
    country's, else the rule's."""
    default = address_locale(str(ctx.params.get("locale") or ctx.locale))
    column = ctx.params.get("country")
    rows = ctx.masked_rows(index) if column and ctx.frame is not None else None
    if rows is None or column not in rows.columns:
        return np.zeros(len(index), dtype=np.int64), [default]
    codes, uniques = pd.factorize(rows[column].to_numpy(dtype=object), use_na_sentinel=True)
    per_value = [_locale_of(str(v), default) for v in uniques]  # once per distinct country
    locales = sorted(set(per_value) | {default})
    position = {locale: i for i, locale in enumerate(locales)}
    lookup = np.array([position[v] for v in per_value] + [position[default]], dtype=np.int64)
    return lookup[codes], locales  # NULL (code -1) takes the default


def _domain(ctx: StrategyContext, part: str) -> str:
    """The hash domain of one part: shared by every table (not the column's domain), apart per redraw
    (a fake value equal to the real one is drawn again, the same way for the same entity everywhere)."""
    return f"address/{part}#{ctx.attempt}" if ctx.attempt else f"address/{part}"


def fake_address_part(ctx: StrategyContext, values: pd.Series, part: str) -> np.ndarray:
    """One part (``street``, ``city``, ``postcode``, ``region``) of each row's fake address."""
    hashes = identity_hash(ctx, entity_seeds(ctx, values), domain=_domain(ctx, part))
    codes, locales = row_locales(ctx, values.index)
    if len(locales) == 1:
        return pick(part_pool(locales[0], part), hashes)
    out = np.empty(len(values), dtype=object)
    for code, locale in enumerate(locales):  # per distinct locale, not per value
        rows = codes == code
        if rows.any():
            out[rows] = pick(part_pool(locale, part), hashes[rows])
    return out


_ADDRESS_PARAMS = [
    Param("by", (str, list), doc="column(s) of the same row naming the entity whose address it is "
                                 "(default: the primary key)"),
    Param("country", str, doc="column of the row holding the country (name, ISO-2 or ISO-3 code), after "
                              "masking (default: the column with an address.country rule, else one named "
                              "country, country_code ...)"),
    Param("locale", str, doc="Faker locale of rows whose country is empty or unknown (default: the rules' "
                             "locale, en_US)"),
]


@strategy("address.street", params=_ADDRESS_PARAMS, types={"text"}, row_independent=False, reads_masked=True,
          validate=_check_address)
def address_street(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Street and number of the entity's fake address, in its country's style.

    Example: ``street: address.street`` (a kept ``country`` column picks the locale).
    """
    return object_series(fake_address_part(ctx, values, "street"), values)


@strategy("address.city", params=_ADDRESS_PARAMS, types={"text"}, row_independent=False, reads_masked=True,
          validate=_check_address)
def address_city(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """City of the entity's fake address, in its country.

    Example: ``city: {strategy: address.city, by: customer_id}``.
    """
    return object_series(fake_address_part(ctx, values, "city"), values)


@strategy("address.postcode", params=_ADDRESS_PARAMS, types={"text"}, row_independent=False, reads_masked=True,
          validate=_check_address)
def address_postcode(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Postcode of the entity's fake address, valid in form for its country (4 digits in Norway, 5 in Germany).

    Example: ``zip: {strategy: address.postcode, country: country_code}``.
    """
    return object_series(fake_address_part(ctx, values, "postcode"), values)


@strategy("address.region", params=_ADDRESS_PARAMS, types={"text"}, row_independent=False, reads_masked=True,
          validate=_check_address)
def address_region(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """State, county or region of the entity's fake address, in its country. Example: ``state: address.region``."""
    return object_series(fake_address_part(ctx, values, "region"), values)


@strategy("address.country", params=[
    _ADDRESS_PARAMS[0],
    Param("countries", list, doc="ISO-2 codes of the countries to draw from (default: every country the "
                                 "table knows)"),
], types={"text"}, row_independent=False, validate=_check_address)
def address_country(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """A fake country per entity, written as the value was: ISO-2 code, ISO-3 code or English name.

    The row's other ``address.*`` parts follow it. Keep the country column instead (``country: keep``)
    to keep every address in its real country. Example: ``country: {strategy: address.country,
    countries: [NO, SE, DK]}``.
    """
    codes = ctx.params.get("countries")
    chosen = [country_by_code(str(c)) for c in codes] if codes else list(countries())
    choices = [c for c in chosen if c is not None]
    hashes = identity_hash(ctx, entity_seeds(ctx, values), domain=_domain(ctx, "country"))
    picked = (hashes % np.uint64(len(choices))).astype(np.int64)
    text = pd.Series(values.to_numpy(dtype=object), dtype=object).astype(str).str.strip()
    alpha = text.str.isalpha().to_numpy(dtype=bool)
    length = text.str.len().to_numpy()
    iso2 = np.array([c.iso2 for c in choices], dtype=object)[picked]
    iso3 = np.array([c.iso3 for c in choices], dtype=object)[picked]
    names = np.array([c.name for c in choices], dtype=object)[picked]
    out = np.where(alpha & (length == 2), iso2, np.where(alpha & (length == 3), iso3, names))
    return object_series(out, values)
