"""The address.* strategies: one fake address per entity, in the row's country, with valid postcodes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskkit import OTHER_KEY, build_model, mask_frame, resolve, rules_for

from datastage.errors import RulesError
from datastage.mask.countries import address_locale, countries, country_of
from datastage.mask.strategies.address import part_pool
from datastage.source.schema import SchemaModel

DDL = """
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY, street TEXT, city TEXT, postcode TEXT, region TEXT, country TEXT
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer (customer_id),
    ship_street TEXT, ship_city TEXT, ship_country TEXT
);
CREATE TABLE visit (place TEXT, country TEXT);
"""

ADDRESS = {"street": "address.street", "city": "address.city", "postcode": "address.postcode",
           "region": "address.region", "country": "keep"}
# Postcode forms per country, written independently of the country table.
POSTCODES = {"Norway": r"\d{4}", "NO": r"\d{4}", "NOR": r"\d{4}", "Norge": r"\d{4}", "United States": r"\d{5}",
             "US": r"\d{5}", "USA": r"\d{5}", "DE": r"\d{5}", "Deutschland": r"\d{5}",
             "GB": r"[A-Z0-9]{2,4} \d[A-Z]{2}", "Sweden": r"\d{5}",
             "NL": r"\d{4} ?[A-Z]{2}", "PL": r"\d{2}-\d{3}", "JP": r"\d{3}-\d{4}",
             "Canada": r"[A-Z]\d[A-Z] \d[A-Z]\d", "pt": r"\d{4}-\d{3}"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("address"), DDL)


def _rows(countries_: list[str | None]) -> dict[str, list[object]]:
    n = len(countries_)
    return {"customer_id": list(range(1, n + 1)), "street": [f"Real street {i}" for i in range(n)],
            "city": ["Debbieside"] * n, "postcode": ["017"] * n, "region": ["Viken"] * n, "country": countries_}


def test_every_part_is_in_the_kept_country_with_its_postcode_form(model: SchemaModel) -> None:
    written = list(POSTCODES) * 5
    masked = mask_frame(model, rules_for("customer", ADDRESS), "customer", _rows(written))
    assert masked["country"].tolist() == written
    for country, postcode in zip(masked["country"], masked["postcode"], strict=True):
        assert re.fullmatch(POSTCODES[country], postcode), (country, postcode)
    for column in ("street", "city", "region"):
        assert not masked[column].isin(["Debbieside", "Viken"]).any()
    # a Norwegian row's city and street come from the Norwegian pools, an American row's from the American ones
    for country, locale in (("Norway", "no_NO"), ("US", "en_US"), ("Deutschland", "de_DE")):
        rows = masked[masked["country"] == country]
        assert set(rows["city"]) <= set(part_pool(locale, "city"))
        assert set(rows["street"]) <= set(part_pool(locale, "street"))
        assert set(rows["region"]) <= set(part_pool(locale, "region"))
    assert set(masked[masked["country"] == "Norway"]["region"]) <= set(country_of("NO").regions)  # type: ignore[union-attr]


def test_same_entity_same_address_in_every_table_and_run(model: SchemaModel) -> None:
    rules = rules_for("customer", ADDRESS) + (
        "  orders:\n    ship_street: {strategy: address.street, by: customer_id, country: ship_country}\n"
        "    ship_city: {strategy: address.city, by: customer_id, country: ship_country}\n")
    customers = mask_frame(model, rules, "customer", _rows(["NO", "DE", "US"]))
    again = mask_frame(model, rules, "customer", _rows(["NO", "DE", "US"]))
    assert customers.equals(again)
    orders = mask_frame(model, rules, "orders", {"order_id": [10, 11, 12], "customer_id": [3, 1, 3],
                                                  "ship_street": ["a", "b", "c"], "ship_city": ["x", "y", "z"],
                                                  "ship_country": ["US", "NO", "US"]})
    by_id = customers.set_index("customer_id")
    assert orders["ship_street"].tolist() == [by_id.loc[i, "street"] for i in (3, 1, 3)]
    assert orders["ship_city"].tolist() == [by_id.loc[i, "city"] for i in (3, 1, 3)]
    other = mask_frame(model, rules, "customer", _rows(["NO", "DE", "US"]), key=OTHER_KEY)
    assert other["street"].tolist() != customers["street"].tolist()


def test_unknown_or_missing_country_uses_the_rules_locale(model: SchemaModel) -> None:
    rows = _rows(["Atlantis", None, ""])
    masked = mask_frame(model, rules_for("customer", ADDRESS), "customer", rows)
    assert set(masked["city"]) <= set(part_pool("en_US", "city"))
    assert all(re.fullmatch(r"\d{5}", p) for p in masked["postcode"])
    german = mask_frame(model, rules_for("customer", ADDRESS, "locale: de_DE\n"), "customer", rows)
    assert set(german["city"]) <= set(part_pool("de_DE", "city"))
    # a locale without addresses of its own takes its country's (fr_BE: Belgium's, 4-digit postcodes)
    assert address_locale("fr_BE") == "nl_BE" and address_locale("en_GB") == "en_GB"
    assert address_locale("la") == "en_US"
    belgian = mask_frame(model, rules_for("customer", ADDRESS, "locale: fr_BE\n"), "customer", rows)
    assert all(re.fullmatch(r"\d{4}", p) for p in belgian["postcode"])


def test_a_masked_country_leads_the_other_parts(model: SchemaModel) -> None:
    rules = rules_for("customer", {**ADDRESS, "country": "{strategy: address.country, countries: ['NO', DE, PL]}"})
    written = ["Norway", "NO", "NOR", "France", "FR", "FRA"] * 4
    masked = mask_frame(model, rules, "customer", _rows(written))
    forms = {"NO": r"\d{4}", "NOR": r"\d{4}", "Norway": r"\d{4}", "DE": r"\d{5}", "DEU": r"\d{5}",
             "Germany": r"\d{5}", "PL": r"\d{2}-\d{3}", "POL": r"\d{2}-\d{3}", "Poland": r"\d{2}-\d{3}"}
    for before, after, postcode in zip(written, masked["country"], masked["postcode"], strict=True):
        assert len(after) == len(before) if len(before) <= 3 else len(after) > 3
        assert re.fullmatch(forms[after], postcode), (after, postcode)
    assert len(set(masked["country"])) > 3


def test_the_country_column_is_found_by_name_and_rules_are_checked(model: SchemaModel) -> None:
    resolved = resolve(model, rules_for("customer", {"city": "address.city"}))
    assert resolved.decisions[("customer", "city")].rule.params["country"] == "country"  # type: ignore[union-attr]
    with pytest.raises(RulesError, match=r"country: table customer has no column 'contry'.*did you mean 'country'"):
        resolve(model, rules_for("customer", {"city": "{strategy: address.city, country: contry}"}))
    with pytest.raises(RulesError, match=r"countries: unknown country code 'XX'"):
        resolve(model, rules_for("customer", {"country": "{strategy: address.country, countries: ['NO', XX]}"}))
    with pytest.raises(RulesError, match=r"write NO in quotes"):
        resolve(model, rules_for("customer", {"country": "{strategy: address.country, countries: [NO]}"}))
    with pytest.raises(RulesError, match=r"visit.place: strategy address.city needs 'by'"):
        resolve(model, rules_for("visit", {"place": "address.city"}))
    with pytest.raises(RulesError, match=r"address.citty.*did you mean 'address.city'"):
        resolve(model, rules_for("customer", {"city": "address.citty"}))


def test_the_country_table_is_whole() -> None:
    table = countries()
    assert len({c.iso2 for c in table}) == len({c.iso3 for c in table}) == len(table) >= 40
    for entry in table:
        assert country_of(entry.iso2) is entry and country_of(entry.iso3.lower()) is entry
        assert country_of(f" {entry.name.upper()} ") is entry
        postcodes = part_pool(entry.locale, "postcode")
        assert len(postcodes) >= 50, entry.iso2
        assert all(entry.postcode.fullmatch(p) for p in postcodes)
        assert len(part_pool(entry.locale, "city")) > 5 and len(part_pool(entry.locale, "region")) > 3, entry.iso2
    assert country_of("Österreich") is country_of("oesterreich".replace("oe", "o")) is country_of("AT")


def test_a_fake_part_equal_to_the_real_one_is_drawn_again(model: SchemaModel) -> None:
    first = mask_frame(model, rules_for("customer", ADDRESS), "customer", _rows(["Sweden"] * 40))
    rows = _rows(["Sweden"] * 40)
    rows["city"] = first["city"].tolist()  # the real cities are now what the mask would draw
    rows["postcode"] = first["postcode"].tolist()
    again = mask_frame(model, rules_for("customer", ADDRESS), "customer", rows)
    assert (again["city"] != first["city"]).all() and (again["postcode"] != first["postcode"]).all()
    assert set(again["city"]) <= set(part_pool("sv_SE", "city"))
    assert again["street"].tolist() == first["street"].tolist()
    per_rule = mask_frame(model, rules_for("customer", {"city": "{strategy: address.city, locale: de_DE}"}),
                          "customer", _rows(["Atlantis", "NO"]))
    assert per_rule["city"][0] in part_pool("de_DE", "city") and per_rule["city"][1] in part_pool("no_NO", "city")
