"""Property tests of the masking guarantees (hypothesis), through the engine on a real schema.

Deterministic and keyed · unique stays unique · NULL stays NULL · outputs fit the column
· no fixed points where a change is promised.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maskkit import KEY, OTHER_KEY, build_model, column, mask_frame, resolve, rules_for

from datastage.mask.engine import MaskingEngine
from datastage.source.schema import SchemaModel

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=24)
codes = st.from_regex(r"[A-Z]{2,4}-[0-9]{4,8}[a-z]{0,3}", fullmatch=True)
emails = st.from_regex(r"[a-z][a-z0-9._]{0,14}@[a-z]{2,10}\.(com|org|net)", fullmatch=True)
phones = st.from_regex(r"\+(1|44|353) [0-9]{3} [0-9]{3} [0-9]{4}", fullmatch=True)
ints = st.integers(min_value=10, max_value=2**31 - 1)

# (rule, column, values): every strategy that promises output determined by (key, domain, value)
CASES = [
    ("hash", "notes", words),
    ("tokenize", "notes", codes),
    ("tokenize", "tier", words),
    ("tokenize", "score", ints),
    ("email", "email", emails),
    ("fake.first_name", "first_name", words),
    ("phone", "phone", phones),
    ("card_number", "card", st.from_regex(r"4[0-9]{15}", fullmatch=True)),
    ("iban", "iban", st.from_regex(r"DE[0-9]{20}", fullmatch=True)),
    ("{strategy: noise, relative: 0.2}", "score", ints),
    ("{strategy: partial, keep_last: 2}", "notes", words),
]
UNIQUE = [c for c in CASES if c[0] in ("hash", "tokenize", "email", "phone", "card_number", "iban")]
# Free text may hold no ASCII letter or digit at all ("é!"): tokenize has nothing to change there.
CHANGING = [c for c in CASES if not c[0].startswith("{strategy: partial") and c[1] != "tier"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("props"))


_ENGINES: dict[tuple[int, str, str, str], MaskingEngine] = {}


def run(model: SchemaModel, rule: str, name: str, values: list, key=KEY) -> list:
    """Mask one column with an engine built once per (rule, key): the policy is resolved once."""
    slot = (id(model), rule, name, key.key_id)
    if slot not in _ENGINES:
        _ENGINES[slot] = MaskingEngine(resolve(model, rules_for("customer", {name: rule})), key)
    engine = _ENGINES[slot]
    engine.trackers.clear()
    return mask_frame(model, "", "customer", {name: values}, key, engine=engine)[name].tolist()


@pytest.mark.parametrize(("rule", "name", "values"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_output_depends_only_on_key_domain_and_value(model: SchemaModel, rule: str, name: str,
                                                     values: st.SearchStrategy) -> None:
    @SETTINGS
    @given(st.lists(values, min_size=1, max_size=30))
    def check(batch: list) -> None:
        out = run(model, rule, name, batch)
        assert out == run(model, rule, name, batch)  # deterministic
        assert out[::-1] == run(model, rule, name, batch[::-1])  # no dependence on the rest of the batch
        assert run(model, rule, name, batch[:1]) == out[:1]
        seen: dict = {}
        for before, after in zip(batch, out, strict=True):
            assert seen.setdefault(before, after) == after  # equal inputs, equal outputs

    check()


@pytest.mark.parametrize(("rule", "name", "values"), CHANGING, ids=[f"{c[0]}-{c[1]}" for c in CHANGING])
def test_another_key_gives_unrelated_output(model: SchemaModel, rule: str, name: str,
                                            values: st.SearchStrategy) -> None:
    @SETTINGS
    @given(st.lists(values, min_size=8, max_size=30, unique=True))
    def check(batch: list) -> None:
        mine, theirs = run(model, rule, name, batch), run(model, rule, name, batch, key=OTHER_KEY)
        assert sum(a != b for a, b in zip(mine, theirs, strict=True)) >= len(batch) // 2

    check()


@pytest.mark.parametrize(("rule", "name", "values"), UNIQUE, ids=[f"{c[0]}-{c[1]}" for c in UNIQUE])
def test_distinct_inputs_give_distinct_outputs(model: SchemaModel, rule: str, name: str,
                                               values: st.SearchStrategy) -> None:
    @SETTINGS
    @given(st.lists(values, min_size=2, max_size=60, unique=True))
    def check(batch: list) -> None:
        out = run(model, f"{{strategy: {rule}, unique: true}}", name, batch)
        assert len(set(out)) == len(batch)

    check()


@pytest.mark.parametrize(("rule", "name", "values"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_null_stays_null(model: SchemaModel, rule: str, name: str, values: st.SearchStrategy) -> None:
    @SETTINGS
    @given(st.lists(st.one_of(st.none(), values), min_size=1, max_size=30))
    def check(batch: list) -> None:
        out = run(model, rule, name, batch)
        assert [v is None for v in out] == [v is None for v in batch]

    check()


@pytest.mark.parametrize(("rule", "name", "values"), CHANGING, ids=[f"{c[0]}-{c[1]}" for c in CHANGING])
def test_no_fixed_points_when_a_change_is_promised(model: SchemaModel, rule: str, name: str,
                                                   values: st.SearchStrategy) -> None:
    @SETTINGS
    @given(st.lists(values, min_size=1, max_size=30))
    def check(batch: list) -> None:
        out = run(model, rule, name, batch)
        assert all(a != b for a, b in zip(batch, out, strict=True))

    check()


@SETTINGS
@given(st.lists(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)), min_size=1, max_size=20),
       st.integers(min_value=1, max_value=400))
def test_date_shift_never_zero_and_within_max_days(model: SchemaModel, dates: list, max_days: int) -> None:
    out = column(model, rules_for("customer", {"born": f"{{strategy: date_shift, max_days: {max_days}}}"}),
                 "customer", "born", dates, extra={"customer_id": list(range(len(dates)))})
    for before, after in zip(dates, out, strict=True):
        assert isinstance(after, dt.date) and 1 <= abs((after - before).days) <= max_days


@pytest.mark.parametrize("rule", ["fake.paragraph", "email", "tokenize", "{strategy: hash, length: 12}",
                                  "fake.address", "{strategy: template, template: '{fake.sentence} {notes}'}"])
def test_outputs_fit_the_column_length(model: SchemaModel, rule: str) -> None:
    @SETTINGS
    @given(st.lists(st.from_regex(r"[a-z0-9.@]{1,12}", fullmatch=True), min_size=1, max_size=20))
    def check(batch: list) -> None:
        out = column(model, rules_for("customer", {"code": rule}), "customer", "code", batch,
                     extra={"notes": batch})
        assert all(isinstance(v, str) and len(v) <= 12 for v in out)  # code is VARCHAR(12)

    check()


@SETTINGS
@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), min_size=1, max_size=40, unique=True))
def test_tokenized_integers_fit_the_integer_type(model: SchemaModel, batch: list) -> None:
    out = column(model, rules_for("customer", {"score": "{strategy: tokenize, unique: true}"}), "customer",
                 "score", batch)
    assert len(set(out)) == len(batch)
    for before, after in zip(batch, out, strict=True):
        assert -(2**31) <= after <= 2**31 - 1
        assert (after < 0) == (before < 0) and len(str(abs(after))) == len(str(abs(before)))


@SETTINGS
@given(st.lists(phones, min_size=1, max_size=20))
def test_phone_keeps_the_country_code(model: SchemaModel, batch: list) -> None:
    out = column(model, rules_for("customer", {"phone": "phone"}), "customer", "phone", batch)
    for before, after in zip(batch, out, strict=True):
        assert before.split(" ")[0] == after.split(" ")[0]
        assert re.sub(r"\d", "0", before) == re.sub(r"\d", "0", after)
