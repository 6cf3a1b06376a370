"""Golden values: the exact output of every deterministic strategy for a fixed key and inputs.

Masked values must not move between runs: joins between refreshes, the same pseudonym in
every environment and FK-consistency across databases all rely on it. They depend on our
code and on Faker's data, pandas' and numpy's hashing and AES (cryptography). An upgrade of
any of them (pinned in ``pyproject.toml``, locked in ``requirements.lock``) that changes a
masked value fails here; if the change is intended, regenerate the values deliberately
(``python tests/mask/test_golden_pseudonyms.py`` prints them) and say so in the changelog.
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pandas import Timestamp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from maskkit import build_model, column, rules_for

from datastage.mask import registry
from datastage.report.compose import OUTPUT_LIBRARIES, compose_report
from datastage.results import RunRecord
from datastage.source.schema import SchemaModel

ROOT = Path(__file__).resolve().parents[2]
IDS = [1, 2, 3, 4]
EMAILS = ["ann@corp.example", "bob.smith@x.org", "ANN@corp.example ", "zoë@mail.example"]
EXTRA = {"customer_id": IDS, "email": EMAILS}

# name: (column, rule, inputs)
CASES: dict[str, tuple[str, str, list[Any]]] = {
    "hash": ("notes", "{strategy: hash, length: 16}", ["alpha", "beta", "", "Ünïcode ✓"]),
    "hash/base32": ("notes", "{strategy: hash, length: 26, encoding: base32, prefix: 'tok_'}",
                    ["alpha", "beta", "gamma", "delta"]),
    "tokenize/text": ("notes", "tokenize", ["SKU-004211", "4111111111111111", "ab-12 Zz", "Émile 7",
                                            "abcdefghijklmnopqrstuvwx", "x"]),
    "tokenize/long": ("notes", "tokenize", ["1" * 40, "Ab3" * 14]),
    "tokenize/int": ("score", "tokenize", [1, 42, 123456, 2_000_000_000, -35, 0]),
    "tokenize/bigint": ("big", "tokenize", [9_000_000_000_000_000_000, 1_234_567_890_123_456, -77]),
    "tokenize/smallint": ("small", "tokenize", [30000, 12345, -5]),
    "phone": ("phone", "phone", ["+1-415-555-0142", "+44 20 7946 0958", "0044 20 7946 0958", "(030) 1234-567"]),
    "iban": ("iban", "iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606",
                              "not an iban 12"]),
    "email": ("email", "email", EMAILS),
    "email/keep_domain": ("email", "{strategy: email, keep_domain: true}", EMAILS),
    "fake.first_name": ("first_name", "fake.first_name", ["Ann", "Bob", "Cleo", "Ann"]),
    "fake.last_name/de_DE": ("last_name", "{strategy: fake.last_name, locale: de_DE}", ["Smith", "Jones", "Lee"]),
    "fake.city": ("notes", "fake.city", ["Paris", "Rome", "Oslo"]),
    "fake.company": ("notes", "fake.company", ["Acme", "Initech", "Globex"]),
    "fake.pyint/args": ("score", "{strategy: fake.pyint, args: {min_value: 0, max_value: 999}, pool_size: 50}",
                        [5, 6, 7]),
    "person.first_name": ("first_name", "{strategy: person.first_name, by: email}", ["a", "b", "c", "d"]),
    "person.last_name": ("last_name", "{strategy: person.last_name, by: email}", ["a", "b", "c", "d"]),
    "person.full_name": ("full_name", "person.full_name", ["a", "b", "c", "d"]),
    "person.email": ("notes", "{strategy: person.email, by: email}", ["a", "b", "c", "d"]),
    "person.username": ("username", "person.username", ["a", "b", "c", "d"]),
    "card_number": ("card", "card_number", ["4532 0151 1283 0366", "5425-2334-3010-9903", "378282246310005",
                                            "6011111111111117"]),
    "generalize/year": ("born", "{strategy: generalize, to: year}",
                        [datetime.date(1984, 6, 12), datetime.date(2001, 12, 31), datetime.date(1970, 1, 1),
                         datetime.date(1999, 2, 28)]),
    "generalize/bucket": ("amount", "{strategy: generalize, bucket: 10}",
                          [Decimal("123.45"), Decimal("9.99"), Decimal("-0.01"), Decimal("100.00")]),
    "generalize/keep": ("notes", "{strategy: generalize, keep: 3}", ["SW1A 1AA", "75001", "x", "10115"]),
    "date_shift": ("born", "{strategy: date_shift, by: customer_id, max_days: 60}",
                   [datetime.date(1984, 6, 12), datetime.date(2001, 12, 31), datetime.date(1970, 1, 1),
                    datetime.date(1999, 2, 28)]),
    "date_shift/datetime": ("seen", "date_shift",
                            [datetime.datetime(2024, 5, 1, 12, 30), datetime.datetime(2023, 1, 1, 0, 0, 1),
                             datetime.datetime(2020, 2, 29, 23, 59), datetime.datetime(2026, 11, 27, 9, 1, 2)]),
    "noise/relative": ("amount", "{strategy: noise, relative: 0.1}",
                       [Decimal("123.45"), Decimal("9.99"), Decimal("-0.01"), Decimal("100.00")]),
    "noise/absolute": ("score", "{strategy: noise, absolute: 5}", [10, 20, 30, 40]),
    "partial": ("phone", "{strategy: partial, keep_last: 2}", ["555-0142", "+44 20 7946 0958", "1", ""]),
    "regex/replacement": ("notes", "{strategy: regex, pattern: '\\d{4}', replacement: '####'}",
                          ["pin 1234 and 5678", "none", "12345"]),
    "regex/with": ("notes", "{strategy: regex, patterns: [{pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', with: email}, "
                            "{pattern: '\\+\\d[\\d -]{7,}\\d', with: phone}]}",
                   ["mail ann@corp.example or +1 415 555 0142", "no match", "bob.smith@x.org"]),
    "json": ("doc", "{strategy: json, paths: {'$.contact.email': email, '$.cards[*].number': card_number}}",
             ['{"contact": {"email": "ann@corp.example"}, "cards": [{"number": "4111111111111111"}]}',
              '{"contact": {}, "cards": []}']),
    "scrub": ("notes", "scrub", ["Mail ann@corp.example or call +1 415 555 0142. Dr. Peteuil saw Mary Smith.",
                                 "card 4532 0151 1283 0366, SSN 999-33-2827, café ☕", "nothing personal"]),
    "null": ("notes", "'null'", ["x", "y"]),
    "value": ("notes", "{strategy: value, value: redacted}", ["x", "y"]),
}

# template reads other columns' masked values: it is pinned with the rules it reads.
TEMPLATE_RULES = {"first_name": "person.first_name", "last_name": "person.last_name",
                  "username": '{strategy: template, template: "{first_name|slug}.{last_name|upper}-{fake.city}"}'}


# address.* reads the row's country: pinned on a table of its own, with kept and masked countries.
ADDRESS_DDL = ("CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, street TEXT, city TEXT, postcode TEXT, "
               "region TEXT, country TEXT, country_code TEXT);")
ADDRESS_RULES = {"street": "address.street", "city": "address.city", "postcode": "address.postcode",
                 "region": "address.region", "country": "keep",
                 "country_code": "{strategy: address.country, countries: ['NO', DE, US]}"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("golden"))


def mask_case(model: SchemaModel, name: str) -> list[Any]:
    column_name, rule, values = CASES[name]
    n = len(values)
    extra = {k: (v + [f"{k}{i}@more.example" if k == "email" else i for i in range(len(v) + 1, n + 1)])[:n]
             for k, v in EXTRA.items() if k != column_name}
    return column(model, rules_for("customer", {column_name: rule}), "customer", column_name, values, extra=extra)


def mask_template(model: SchemaModel) -> list[Any]:
    from maskkit import mask_frame

    data = {"customer_id": IDS, "first_name": ["a", "b", "c", "d"], "last_name": ["e", "f", "g", "h"],
            "username": ["u1", "u2", "u3", "u4"]}
    return mask_frame(model, rules_for("customer", TEMPLATE_RULES), "customer", data)["username"].tolist()


def mask_address(directory: Path) -> dict[str, dict[str, list[Any]]]:
    """The masked address columns with the country kept (``kept``) and with ``country_code`` masked."""
    from maskkit import mask_frame

    data = {"customer_id": IDS, "street": ["a", "b", "c", "d"], "city": ["e", "f", "g", "h"],
            "postcode": ["1", "2", "3", "4"], "region": ["r", "s", "t", "u"],
            "country": ["Norway", "NO", "DE", "Atlantis"], "country_code": ["NO", "NOR", "Norway", "US"]}
    address_model = build_model(directory, ADDRESS_DDL)
    out = {}
    for name, rules in (("kept", {**ADDRESS_RULES, "country_code": "keep"}), ("masked", ADDRESS_RULES)):
        masked = mask_frame(address_model, rules_for("customer", rules), "customer", data)
        out[name] = {column: masked[column].tolist() for column in ADDRESS_RULES}
    return out


GOLDEN: dict[str, list[Any]] = {
    'card_number': ['4111 1199 0801 8522', '5555-5588-5213-7541', '378282759269671', '6011118470170360'],
    'date_shift': [
        datetime.date(1984, 6, 23),
        datetime.date(2001, 11, 6),
        datetime.date(1970, 2, 26),
        datetime.date(1999, 1, 18),
    ],
    'date_shift/datetime': [
        Timestamp('2024-05-12 12:30:00'),
        Timestamp('2022-12-07 00:00:01'),
        Timestamp('2020-03-26 23:59:00'),
        Timestamp('2026-11-16 09:01:02'),
    ],
    'email': [
        'rodney.merritt.t5bj6ihu@example.com',
        'mia.andrews.dgn7nkk2@example.com',
        'rodney.merritt.wmafmrpk@example.com',
        'corey.richard.ojj856gm@example.com',
    ],
    'email/keep_domain': [
        'rodney.merritt.t5bj6ihu@corp.example',
        'mia.andrews.dgn7nkk2@x.org',
        'rodney.merritt.wmafmrpk@corp.example ',
        'corey.richard.ojj856gm@mail.example',
    ],
    'fake.city': ['East Jodi', 'Deniseberg', 'New Michael'],
    'fake.company': ['Dawson-Jackson', 'Espinoza-Henderson', 'Green, Thomas and Santos'],
    'fake.first_name': ['Bailey', 'Isaiah', 'Francis', 'Bailey'],
    'fake.last_name/de_DE': ['Beier', 'Segebahn', 'Hartung'],
    'fake.pyint/args': [352, 249, 155],
    'generalize/bucket': [Decimal('120'), Decimal('0'), Decimal('-10'), Decimal('100')],
    'generalize/keep': ['SW1', '750', 'x', '101'],
    'generalize/year': [
        datetime.date(1984, 1, 1),
        datetime.date(2001, 1, 1),
        datetime.date(1970, 1, 1),
        datetime.date(1999, 1, 1),
    ],
    'hash': ['69248b8bf8a282c5', 'a4e874cac77a8b91', 'c5873b0d643a9f00', 'c728cd201f7184cf'],
    'hash/base32': [
        'tok_wuqql46rkbkyrooao5tsesjsdk',
        'tok_ksdpewsphfotshfnggdwwk4r5i',
        'tok_5np4h262gajhx2yyayj6dqkwka',
        'tok_trcwtelns3s7bekvorddqioism',
    ],
    'iban': ['GB86 GNHX 0136 9051 7442 12', 'DE31890623148926348354', 'FR8715464654441223431R76064', 'ssj vm taml 17'],
    'json': [
        '{"contact": {"email": "rodney.merritt.t5bj6ihu@example.com"}, "cards": [{"number": "4111113029516092"}]}',
        '{"contact": {}, "cards": []}',
    ],
    'noise/absolute': [11, 15, 28, 42],
    'noise/relative': [Decimal('118.47'), Decimal('9.32'), Decimal('-0.02'), Decimal('95.14')],
    'null': [None, None],
    'partial': ['******42', '**************58', '1', ''],
    'person.email': [
        'rodney.merritt.t5bj6ihu@example.com',
        'mia.andrews.dgn7nkk2@example.com',
        'rodney.merritt.wmafmrpk@example.com',
        'corey.richard.ojj856gm@example.com',
    ],
    'person.first_name': ['Rodney', 'Mia', 'Rodney', 'Corey'],
    'person.full_name': ['Eileen Henry', 'Misty Burke', 'Lacey Delacruz', 'Sheri Figueroa'],
    'person.last_name': ['Merritt', 'Andrews', 'Merritt', 'Richard'],
    'person.username': ['eileen.henry74', 'misty.burke95', 'lacey.delacruz41', 'sheri.figueroa57'],
    'phone': ['+1-045-177-3797', '+44 51 8579 8521', '0044 51 8579 8521', '(505) 7090-891'],
    'regex/replacement': ['pin #### and ####', 'none', '####5'],
    'regex/with': [
        'mail rodney.merritt.t5bj6ihu@example.com or +1 045 177 3797',
        'no match',
        'mia.andrews.dgn7nkk2@example.com',
    ],
    'scrub': [
        'Mail rodney.merritt.t5bj6ihu@example.com or call +1 045 177 3797. Dr. Christensen saw Maria Little.',
        'card 4111 1199 0801 8522, SSN 246-96-4447, café ☕',
        'nothing personal',
    ],
    'tokenize/bigint': [4633630960508303823, 4047612864022568, -19],
    'tokenize/int': [4, 95, 661959, 1622770731, -56, 0],
    'tokenize/long': ['8454863423067503642846375879387933292738', 'Rz9Bi0Zd1Dd5Dm8Te6Vr5Sp4Ap7To6Hh9Dd0Et1Dm3'],
    'tokenize/smallint': [31240, 27042, -7],
    'tokenize/text': ['CMO-370298', '1491549073607735', 'zm-13 Gm', 'Élibu 5', 'ghovhkdecpydiuzcfjzjcbqa', 'z'],
    'value': ['redacted', 'redacted'],
    'template': [
        'eileen.HENRY-Port Robertbury',
        'misty.BURKE-Rivasland',
        'lacey.DELACRUZ-West Taraville',
        'sheri.FIGUEROA-East Barbara',
    ],
}

GOLDEN_ADDRESS: dict[str, dict[str, list[Any]]] = {'kept': {'street': ['Danielsengata 2',
                     'Olsenhaugen 6B',
                     'Gertraud-Neuschäfer-Straße 68',
                     '5023 Tasha Trace Apt. 979'],
          'city': ['Unnivik', 'Martehavn', 'Gardelegen', 'Copelandfort'],
          'postcode': ['4561', '7134', '24843', '05105'],
          'region': ['Oslo', 'Finnmark', 'Rheinland-Pfalz', 'Pennsylvania'],
          'country': ['Norway', 'NO', 'DE', 'Atlantis'],
          'country_code': ['NO', 'NOR', 'Norway', 'US']},
 'masked': {'street': ['268 Richard Point', 'Döringstraße 42', '51320 Edward Heights Suite 552', 'Aasalléen 3'],
            'city': ['Lake Marissa', 'Grevesmühlen', 'Foxburgh', 'Ellenfoss'],
            'postcode': ['51152', '86309', '84535', '2280'],
            'region': ['Ohio', 'Hamburg', 'Indiana', 'Telemark'],
            'country': ['Norway', 'NO', 'DE', 'Atlantis'],
            'country_code': ['US', 'DEU', 'United States', 'NO']}}


def test_every_deterministic_strategy_is_pinned() -> None:
    pinned = {name.split("/")[0] for name in CASES} | {"template"} | {
        f"address.{part}" for part in ("street", "city", "postcode", "region", "country")}
    for spec in registry.all_strategies():
        if spec.origin == "built-in" and spec.deterministic:
            assert spec.name in pinned, f"strategy {spec.name} has no golden values"
    assert any(name.startswith("fake.") for name in pinned)
    assert set(GOLDEN) == set(CASES) | {"template"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_values(model: SchemaModel, name: str) -> None:
    assert mask_case(model, name) == GOLDEN[name]


def test_golden_template(model: SchemaModel) -> None:
    assert mask_template(model) == GOLDEN["template"]


def test_golden_address(tmp_path: Path) -> None:
    assert mask_address(tmp_path) == GOLDEN_ADDRESS


def test_the_report_records_the_versions_of_the_libraries_outputs_depend_on() -> None:
    report = compose_report(RunRecord(run_id="20261127-090102-3fa9c1", environment="staging", trigger="library",
                                      started_at="2026-11-27T09:01:02Z", source="sqlite:///prod.db",
                                      target="sqlite:///staging.db"))
    libraries = report["provenance"]["libraries"]
    assert set(libraries) == set(OUTPUT_LIBRARIES) == {"Faker", "numpy", "pandas", "cryptography", "phonenumbers",
                                                       "python-stdnum"}
    assert all(libraries[name] == version(name) for name in libraries)
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    provenance = schema["properties"]["provenance"]
    jsonschema.validate(report["provenance"], provenance | {"$defs": schema["$defs"]})
    broken = dict(report["provenance"], libraries={"Faker": 40})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, provenance | {"$defs": schema["$defs"]})


def test_pyproject_pins_the_libraries_and_the_lock_file_names_the_installed_versions() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    lock = (ROOT / "requirements.lock").read_text().lower().splitlines()
    for name in OUTPUT_LIBRARIES:
        assert f'"{name}>=' in pyproject and "<" in pyproject.split(f'"{name}>=')[1].split('"')[0], name
        assert f"{name.lower()}=={version(name).lower()}" in lock, name


if __name__ == "__main__":  # print the golden values (after an intended change)
    import tempfile

    golden_model = build_model(Path(tempfile.mkdtemp()))
    print("GOLDEN.update({")
    for case in sorted(CASES):
        print(f"    {case!r}: {mask_case(golden_model, case)!r},")
    print(f"    'template': {mask_template(golden_model)!r},")
    print("})")
    print(f"GOLDEN_ADDRESS = {mask_address(Path(tempfile.mkdtemp()))!r}")
