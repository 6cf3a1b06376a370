"""Each built-in strategy on real batches through the engine, with a resolved policy on SQLite."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from maskkit import KEY, OTHER_KEY, build_model, column, mask_frame, rules_for

from datastage.cards import is_test_card, luhn_valid
from datastage.errors import RulesError, StepError
from datastage.mask import contract, registry
from datastage.mask.fpe import tokenize_int, tokenize_text
from datastage.mask.registry import get_strategy
from datastage.source.schema import SchemaModel


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("schema"))


def one(model: SchemaModel, rule: str, name: str, values: list, **extra: list) -> list:
    return column(model, rules_for("customer", {name: rule}), "customer", name, values, extra=extra or None)


# -- tokenize ----------------------------------------------------------------------------

def test_tokenize_text_keeps_classes_length_and_separators(model: SchemaModel) -> None:
    values = ["SKU-004211", "SKU-004212", "ab-12 Zz", "x", "--", "Émile 7"]
    out = one(model, "tokenize", "notes", values)
    assert len(set(out)) == len(values)
    for before, after in zip(values, out, strict=True):
        assert len(after) == len(before)
        for a, b in zip(before, after, strict=True):
            if a.isascii() and a.isdigit():
                assert b.isdigit()
            elif a.isascii() and a.islower():
                assert b.islower() and b.isascii()
            elif a.isascii() and a.isupper():
                assert b.isupper() and b.isascii()
            else:
                assert a == b
    assert out[4] == "--"  # nothing to tokenize
    assert all(a != b for a, b in zip(values, out, strict=True) if a != "--")


def test_tokenize_is_a_bijection_without_fixed_points_on_a_whole_domain() -> None:
    import itertools
    import string

    values = np.array(["".join(p) for p in itertools.product(string.ascii_lowercase, repeat=3)], dtype=object)
    out = tokenize_text(KEY, "tokenize", values)
    assert sorted(out) == sorted(values)  # a permutation of all 17,576 three-letter words
    assert not (out == values).any()
    numbers = np.arange(1000, 10000)
    mapped = np.array(tokenize_int(KEY, "tokenize", numbers), dtype=np.int64)
    assert sorted(mapped) == list(numbers) and not (mapped == numbers).any()


def test_tokenize_integers_keep_sign_digits_and_type_range(model: SchemaModel) -> None:
    ids = [1, 7, 42, 999, 123456, 2_000_000_000, -35, 0]
    out = one(model, "tokenize", "score", ids)
    assert out[-1] == 0
    for before, after in zip(ids[:-1], out[:-1], strict=True):
        assert isinstance(after, int) and after != before
        assert len(str(abs(after))) == len(str(abs(before))) and (after < 0) == (before < 0)
    assert out[5] <= 2**31 - 1  # INTEGER column: a 10-digit id stays within int32
    small = one(model, "tokenize", "small", [30000, 12345])
    assert all(10000 <= v <= 32767 for v in small)
    big = one(model, "tokenize", "big", [9_000_000_000_000_000_000])
    assert 10**18 <= big[0] <= 2**63 - 1


def test_tokenize_depends_on_key_and_domain() -> None:
    values = np.array([f"AB{i:06d}" for i in range(200)], dtype=object)
    first = tokenize_text(KEY, "tokenize", values)
    assert (first == tokenize_text(KEY, "tokenize", values)).all()
    assert (first != tokenize_text(OTHER_KEY, "tokenize", values)).mean() > 0.95
    assert (first != tokenize_text(KEY, "sku", values)).mean() > 0.95


# -- phone, iban, card -------------------------------------------------------------------

def test_phone_keeps_format_and_country_code(model: SchemaModel) -> None:
    values = ["+1-415-555-0142", "+44 20 7946 0958", "0044 20 7946 0958", "+353 1 234 5678", "(030) 1234-567",
              "+1-415-555-0143", "555 0199 ext. 12"]
    out = one(model, "phone", "phone", values)
    assert len(set(out)) == len(values)
    assert out[0].startswith("+1-") and out[1].startswith("+44 ") and out[2].startswith("0044 ")
    assert out[3].startswith("+353 ")
    assert "ext." in out[6]
    for before, after in zip(values, out, strict=True):
        assert re.sub(r"\d", "9", before) == re.sub(r"\d", "9", after)
        assert before != after


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    numeric = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


def test_iban_keeps_country_length_layout_and_check_digits(model: SchemaModel) -> None:
    values = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606",
              "DE89370400440532013001"]
    assert _iban_ok(values[0]) and _iban_ok(values[1])
    out = one(model, "iban", "iban", values)
    assert len(set(out)) == 4
    assert out[0][:2] == "GB" and re.sub(r"\S", "x", out[0]) == re.sub(r"\S", "x", values[0])
    assert out[1][:2] == "DE" and len(out[1]) == len(values[1])
    assert all(_iban_ok(v) for v in out[:3])
    assert out[0][5:9].isalpha() and out[1][4:].isdigit()


def test_card_numbers_are_luhn_valid_test_numbers_in_the_same_layout(model: SchemaModel) -> None:
    values = ["4532 0151 1283 0366", "5425-2334-3010-9903", "378282246310005", "6011111111111117"]
    out = one(model, "card_number", "card", values)
    assert len(set(out)) == 4
    for before, after in zip(values, out, strict=True):
        digits = re.sub(r"\D", "", after)
        assert luhn_valid(digits) and is_test_card(digits)
        assert re.sub(r"\d", "9", before) == re.sub(r"\d", "9", after)


# -- e-mail and person -------------------------------------------------------------------

def test_email_is_deterministic_unique_and_can_keep_the_domain(model: SchemaModel) -> None:
    values = ["Ann.Lee@corp.example", "bob@mail.example", "ann.lee@corp.example"]
    out = one(model, "email", "email", values)
    assert len(set(out)) == 3 and all(v.endswith("@example.com") for v in out)
    assert out == one(model, "email", "email", values)
    kept = one(model, "{strategy: email, keep_domain: true}", "email", values)
    assert kept[0].endswith("@corp.example") and kept[1].endswith("@mail.example")
    own = one(model, "{strategy: email, mail_domain: test.invalid}", "email", values)
    assert all(v.endswith("@test.invalid") for v in own)


def test_person_fields_agree_with_the_masked_email(model: SchemaModel) -> None:
    rules = rules_for("customer", {"email": "email", "first_name": "person.first_name",
                                   "last_name": "person.last_name", "full_name": "person.full_name",
                                   "username": "person.username"})
    data = {"customer_id": [1, 2, 3], "email": ["a@x.org", "b@x.org", None], "first_name": ["Ann", "Bob", "Cy"],
            "last_name": ["Lee", "Ray", "Oz"], "full_name": ["Ann Lee", "Bob Ray", "Cy Oz"],
            "username": ["alee", "bray", "coz"]}
    out = mask_frame(model, rules, "customer", data)
    for i in range(2):
        first, last = out["first_name"][i], out["last_name"][i]
        local = out["email"][i].split("@")[0]
        assert local.startswith(re.sub(r"[^a-z0-9]", "", first.lower()) + "." + re.sub(r"[^a-z0-9]", "", last.lower()))
        assert out["full_name"][i] == f"{first} {last}"
        assert out["username"][i].startswith(re.sub(r"[^a-z0-9]", "", first.lower()))
    assert out["email"][2] is None and out["first_name"][2] not in (None, "Cy")  # falls back to the key
    # person.email with by: email is exactly the email strategy's output
    same = mask_frame(model, rules_for("customer", {"email": "email", "notes": "{strategy: person.email, by: email}"}),
                      "customer", {"customer_id": [1], "email": ["a@x.org"], "notes": ["a@x.org"]})
    assert same["notes"][0] == same["email"][0] == out["email"][0]


def test_person_by_key_is_shared_by_referencing_tables(model: SchemaModel) -> None:
    rules = ("version: 1\ndefault: keep\ntables:\n  customer:\n    full_name: person.full_name\n"
             "  orders:\n    note: {strategy: person.full_name, by: customer_id}\n")
    customers = mask_frame(model, rules, "customer", {"customer_id": [5, 6], "full_name": ["A B", "C D"]})
    orders = mask_frame(model, rules, "orders", {"order_id": [1, 2, 3], "customer_id": [6, 5, 6],
                                                 "note": ["x", "y", "z"]})
    assert list(orders["note"]) == [customers["full_name"][1], customers["full_name"][0], customers["full_name"][1]]


def test_fake_provider_with_locale_is_deterministic(model: SchemaModel) -> None:
    values = ["Anna", "Bert", "Anna"]
    out = one(model, "{strategy: fake.first_name, locale: de_DE}", "first_name", values)
    assert out[0] == out[2] and all(isinstance(v, str) and v for v in out)
    assert out != values
    assert one(model, "fake.city", "notes", ["x"]) == one(model, "fake.city", "notes", ["x"])


# -- dates, numbers ----------------------------------------------------------------------

def test_date_shift_is_constant_per_entity_across_tables(model: SchemaModel) -> None:
    rules = ("version: 1\ndefault: keep\ntables:\n  customer:\n    seen: {strategy: date_shift, max_days: 10}\n"
             "  orders:\n    ordered_at: {strategy: date_shift, by: customer_id, max_days: 10}\n")
    when = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    customers = mask_frame(model, rules, "customer", {"customer_id": [1, 2], "seen": [when, when]})
    orders = mask_frame(model, rules, "orders", {
        "order_id": [10, 11, 12], "customer_id": [1, 1, 2],
        "ordered_at": [when, when + dt.timedelta(days=3, hours=1), "2024-03-01 12:30:00"]})
    shift_1 = customers["seen"][0] - when
    assert orders["ordered_at"][0] - when == shift_1
    assert orders["ordered_at"][1] - orders["ordered_at"][0] == dt.timedelta(days=3, hours=1)  # interval kept
    assert orders["ordered_at"][0].tzinfo == when.tzinfo and orders["ordered_at"][0].time() == when.time()
    shift_2 = customers["seen"][1] - when
    assert orders["ordered_at"][2] == (dt.datetime(2024, 3, 1, 12, 30) + shift_2).isoformat(sep=" ")
    for shift in (shift_1, shift_2):
        assert shift.days != 0 and abs(shift.days) <= 10 and shift.seconds == 0


def test_date_shift_on_dates_and_iso_text(model: SchemaModel) -> None:
    out = one(model, "{strategy: date_shift, max_days: 3}", "born", [dt.date(1990, 1, 5), "1990-01-05"],
              customer_id=[1, 1])
    assert isinstance(out[0], dt.date) and out[1] == out[0].isoformat() and out[0] != dt.date(1990, 1, 5)


def test_noise_keeps_types_and_scale_and_never_returns_the_input(model: SchemaModel) -> None:
    ints = one(model, "{strategy: noise, relative: 0.1}", "score", [100, 1000, 0, -50, 3])
    assert all(isinstance(v, int) for v in ints)
    assert all(a != b for a, b in zip([100, 1000, 0, -50, 3], ints, strict=True))
    assert 90 <= ints[0] <= 110 and 900 <= ints[1] <= 1100
    decimals = one(model, "{strategy: noise, absolute: 5}", "amount",
                   [decimal.Decimal("10.50"), decimal.Decimal("99.99")])
    for before, after in zip([decimal.Decimal("10.50"), decimal.Decimal("99.99")], decimals, strict=True):
        assert after.as_tuple().exponent == -2 and after != before and abs(after - before) <= 5
    floats = one(model, "{strategy: noise, relative: 0.5}", "ratio", [0.25, 8.0])
    assert floats[0] != 0.25 and 0.125 <= floats[0] <= 0.375


def test_generalize_partial_hash_null_value(model: SchemaModel) -> None:
    assert one(model, "{strategy: generalize, to: year}", "born", [dt.date(1984, 6, 12)]) == [dt.date(1984, 1, 1)]
    assert one(model, "{strategy: generalize, to: month}", "born", ["1984-06-12"]) == ["1984-06-01"]
    assert one(model, "{strategy: generalize, bucket: 5000}", "score", [123456]) == [120000]
    assert one(model, "{strategy: generalize, keep: 3}", "notes", ["SW1A 1AA"]) == ["SW1"]
    assert one(model, "{strategy: partial, keep_last: 2}", "notes", ["555-0142"]) == ["******42"]
    assert one(model, "{strategy: partial, keep_first: 1, mask_char: '#'}", "notes", ["secret"]) == ["s#####"]
    hashed = one(model, "{strategy: hash, length: 20, encoding: base32}", "notes", ["a", "b", "a"])
    assert hashed[0] == hashed[2] != hashed[1] and len(hashed[0]) == 20 and re.fullmatch(r"[a-z2-7]+", hashed[0])
    assert one(model, '"null"', "notes", ["x", None]) == [None, None]
    assert one(model, "{strategy: value, value: redacted}", "notes", ["x", None]) == ["redacted", None]


def test_shuffle_permutes_within_groups(model: SchemaModel) -> None:
    tiers = ["a", "b"] * 50
    scores = list(range(100))
    out = one(model, "{strategy: shuffle, within: tier}", "score", scores, tier=tiers)
    assert sorted(out) == scores and out != scores
    for tier in ("a", "b"):
        assert sorted(o for o, t in zip(out, tiers, strict=True) if t == tier) == \
            sorted(s for s, t in zip(scores, tiers, strict=True) if t == tier)
    assert out == one(model, "{strategy: shuffle, within: tier}", "score", scores, tier=tiers)


# -- text, template, json, when ----------------------------------------------------------

def test_regex_masks_matches_like_the_column_rules(model: SchemaModel) -> None:
    rules = rules_for("customer", {
        "email": "email", "phone": "phone",
        "notes": "{strategy: regex, patterns: [{pattern: '[\\w.]+@[\\w.]+', with: email}, "
                 "{pattern: '\\+\\d[\\d-]{6,}\\d', with: phone}, {pattern: 'secret', replacement: '[x]'}]}"})
    data = {"customer_id": [1], "email": ["ann@x.org"], "phone": ["+1-415-555-0142"],
            "notes": ["mail ann@x.org or +1-415-555-0142, secret"]}
    out = mask_frame(model, rules, "customer", data)
    assert out["notes"][0] == f"mail {out['email'][0]} or {out['phone'][0]}, [x]"


def test_template_uses_masked_columns_and_fake_fields(model: SchemaModel) -> None:
    rules = rules_for("customer", {
        "first_name": "fake.first_name", "last_name": "fake.last_name",
        "notes": '{strategy: template, template: "{first_name|slug}.{last_name|slug}@example.com {fake.word}"}'})
    out = mask_frame(model, rules, "customer", {"first_name": ["Ann"], "last_name": ["Lee"], "notes": ["n"]})
    local, word = out["notes"][0].split(" ")
    assert local == f"{re.sub('[^a-z0-9]', '', out['first_name'][0].lower())}." \
                    f"{re.sub('[^a-z0-9]', '', out['last_name'][0].lower())}@example.com"
    assert word.isalpha()


def test_json_paths_apply_nested_strategies(model: SchemaModel) -> None:
    rules = rules_for("customer", {
        "email": "email",
        "doc": '{strategy: json, paths: {"$.contact.email": email, "$.cards[*].number": card_number, '
               '"$.missing": hash}}'})
    doc = {"contact": {"email": "ann@x.org", "city": "Oslo"}, "cards": [{"number": "4532015112830366"},
                                                                      {"number": None}]}
    out = mask_frame(model, rules, "customer", {"email": ["ann@x.org"], "doc": [json.dumps(doc)]})
    masked = json.loads(out["doc"][0])
    assert masked["contact"] == {"email": out["email"][0], "city": "Oslo"}
    assert masked["cards"][1]["number"] is None and is_test_card(masked["cards"][0]["number"])
    with pytest.raises(StepError, match="not valid JSON"):
        mask_frame(model, rules, "customer", {"email": ["a@b.c"], "doc": ["not json"]})


def test_when_condition_limits_a_rule(model: SchemaModel) -> None:
    out = one(model, '{strategy: value, value: hidden, when: "tier == \'vip\'"}', "notes", ["a", "b"],
              tier=["vip", "std"])
    assert out == ["hidden", "b"]


def test_null_stays_null_for_every_value_strategy(model: SchemaModel) -> None:
    for rule, name in [("tokenize", "notes"), ("email", "email"), ("phone", "phone"), ("fake.city", "notes"),
                       ("hash", "notes"), ("card_number", "card"), ("{strategy: noise, absolute: 1}", "score")]:
        out = one(model, rule, name, [None, "1" if name != "score" else 1, None])
        assert out[0] is None and out[2] is None, rule


def test_outputs_fit_the_column_length(model: SchemaModel) -> None:
    out = one(model, "fake.paragraph", "code", ["a", "b"])
    assert all(len(v) <= 12 for v in out)


# -- custom strategies -------------------------------------------------------------------

PLUGIN = '''
import pandas as pd

def shout(values, ctx):
    """Upper-case with a suffix. Example: ``name: {strategy: shout, suffix: "!"}``."""
    return values.astype(str).str.upper() + ctx.params.get("suffix", "")

shout.datastage_strategy = {"params": ["suffix"], "types": ["text"], "changes": False}

def loose(values, ctx):
    return values
'''


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"ds_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    for key in [k for k in contract.REGISTRY if k.startswith(name)]:
        contract.REGISTRY.pop(key)


def test_module_function_names_are_rejected_without_importing(model: SchemaModel, plugin_module: str) -> None:
    for rule in (f'{{strategy: "{plugin_module}:shout", suffix: "!"}}', '"os:system"', '"no_such_module_xyz:f"'):
        with pytest.raises(RulesError, match=r"strategies are named, not imported; register a plugin via the "
                                             r"datastage\.strategies entry point"):
            one(model, rule, "notes", ["ab"])
    assert plugin_module not in sys.modules


def test_entry_point_strategy_is_found_and_listed(model: SchemaModel, plugin_module: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "dsplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dsplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[datastage.strategies]\nshout = {plugin_module}:shout\n"
                                           f"loose = {plugin_module}:loose\n")
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.delitem(contract.REGISTRY, "shout", raising=False)
    monkeypatch.delitem(contract.REGISTRY, "loose", raising=False)
    try:
        spec = get_strategy("shout")
        assert spec is not None and spec.origin == f"entry point {plugin_module}:shout"
        assert "shout" in [s.name for s in registry.all_strategies()]
        assert one(model, '{strategy: shout, suffix: "?"}', "notes", ["hi", None]) == ["HI?", None]
        # A plugin gets the same checks as a built-in strategy.
        with pytest.raises(RulesError, match=r"unknown parameter 'sufix' for strategy shout.*did you mean 'suffix'"):
            one(model, '{strategy: shout, sufix: "!"}', "notes", ["ab"])
        with pytest.raises(RulesError, match=r"is marked unique, but strategy loose cannot keep distinct values"):
            one(model, "{strategy: loose, unique: true}", "notes", ["ab"])
        with pytest.raises(RulesError, match=r"does not apply to customer\.score of type INTEGER"):
            one(model, "shout", "score", [1])
    finally:
        contract.REGISTRY.pop("shout", None)
        contract.REGISTRY.pop("loose", None)
        registry._entry_points_loaded = False


def test_strategy_registry_documents_every_strategy() -> None:
    specs = registry.all_strategies()
    names = {s.name for s in specs}
    assert {"tokenize", "phone", "iban", "email", "person.first_name", "person.email", "date_shift", "noise",
            "shuffle", "regex", "template", "json", "hash", "card_number", "partial", "generalize", "null",
            "value"} <= names
    for spec in specs:
        if spec.origin == "built-in":
            assert spec.doc and "Example" in spec.doc, spec.name
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for spec in specs:
        if spec.origin == "built-in":
            assert f"`{spec.name}`" in readme, f"README's strategy table misses {spec.name}"

