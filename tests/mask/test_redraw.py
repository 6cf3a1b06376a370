"""No masked value is a source identifier: the walk off a bijection (hypothesis), the set of source
identifiers, and the engine redrawing phone, e-mail, IBAN and tokenize outputs that hit one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maskkit import KEY, build_model, column, resolve, rules_for

from datastage.mask.contract import StrategyContext
from datastage.mask.engine import MaskingEngine
from datastage.mask.redraw import walk_off
from datastage.mask.source_identifiers import SourceIdentifiers, digit_key, identifier_kind, normal_form
from datastage.mask.strategies.basic import email
from datastage.mask.strategies.formats import iban, phone, tokenize
from datastage.source.schema import SchemaModel


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SchemaModel:
    return build_model(tmp_path_factory.mktemp("redraw"))


@st.composite
def permutations_and_sets(draw: st.DrawFn) -> tuple[list[int], set[int], list[int]]:
    """(a permutation of range(n), a set S of its values, inputs drawn from S)."""
    n = draw(st.integers(min_value=2, max_value=60))
    perm = draw(st.permutations(range(n)))
    taken = draw(st.sets(st.integers(min_value=0, max_value=n - 1), max_size=n))
    inputs = draw(st.lists(st.sampled_from(sorted(taken)), unique=True)) if taken else []
    return list(perm), taken, inputs


def _cycles_allow_matching(perm: list[int], taken: set[int]) -> bool:
    """Whether every cycle of ``perm`` holds more values outside ``taken`` than in it."""
    seen: set[int] = set()
    for start in range(len(perm)):
        if start in seen:
            continue
        cycle, x = [], start
        while x not in seen:
            seen.add(x)
            cycle.append(x)
            x = perm[x]
        inside = sum(v in taken for v in cycle)
        if inside and inside >= len(cycle) - inside:
            return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(permutations_and_sets())
def test_walk_off_is_injective_avoids_the_set_and_changes_only_collisions(
        case: tuple[list[int], set[int], list[int]]) -> None:
    perm, taken, inputs = case

    def step(values: np.ndarray) -> np.ndarray:
        return np.array([perm[int(v)] for v in values], dtype=object)

    def is_taken(values: np.ndarray) -> np.ndarray:
        return np.array([int(v) in taken for v in values], dtype=bool)

    first = step(np.array(inputs, dtype=object))
    out, walked, stuck = walk_off(first, step, is_taken, max_steps=2 * len(perm) + 2)
    plain = [perm[x] for x in inputs]
    assert walked == sum(p in taken for p in plain)
    assert len(set(out.tolist())) == len(inputs)  # distinct inputs stay distinct, stuck or not
    for x, y, e, s in zip(inputs, out.tolist(), plain, stuck.tolist(), strict=True):
        if e not in taken:
            assert y == e  # no collision: the plain output
        elif s:
            assert y == e  # a walk that cannot end keeps the plain output
        else:
            assert y not in taken and y != x
    if _cycles_allow_matching(perm, taken):
        assert not stuck.any()
    # The output of a value does not depend on the other inputs of the batch.
    for i, x in enumerate(inputs[:5]):
        alone, _, _ = walk_off(step(np.array([x], dtype=object)), step, is_taken, max_steps=2 * len(perm) + 2)
        assert alone[0] == out[i]


def _ctx(domain: str) -> StrategyContext:
    return StrategyContext(key=KEY, domain=domain, params={}, column=None)  # type: ignore[arg-type]


def test_normal_forms_match_however_an_identifier_is_written() -> None:
    assert normal_form("phone", np.array(["+1 (415) 555-0142", "4155550142"], dtype=object)).tolist() == [
        "4155550142", "4155550142"]
    assert normal_form("email", np.array([" Ann@Example.ORG"], dtype=object)).tolist() == ["ann@example.org"]
    assert normal_form("iban", np.array(["gb82 west 1234 5698 7654 32"], dtype=object)).tolist() == [
        "GB82WEST12345698765432"]
    found = SourceIdentifiers(KEY)
    found.add("phone", pd.Series(["+1 415 555 0142", "", None], dtype=object).dropna())
    assert found.contains("phone", np.array(["(415) 555-0142", "415 555 0143", ""], dtype=object)).tolist() == [
        True, False, False]
    assert len(found) == 1 and not found.contains("email", np.array(["x@y.z"], dtype=object)).any()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 +-()ext.a\u0663", max_size=30), min_size=1, max_size=20),
       st.sampled_from([10, 19]))
def test_digit_keys_spell_the_normal_form(texts: list[str], keep: int) -> None:
    values = np.array(texts, dtype=object)
    number, count = digit_key(values, keep)
    kind = "phone" if keep == 10 else "card"
    expected = normal_form(kind, values).tolist()
    assert [str(n).zfill(c) if c else "" for n, c in zip(number.tolist(), count.tolist(), strict=True)] == [
        "".join(str(int(ch)) for ch in e) for e in expected]


def test_identifier_kinds_of_the_strategies(model: SchemaModel) -> None:
    policy = resolve(model, rules_for("customer", {"phone": "phone", "email": "email", "code": "tokenize",
                                                   "score": "tokenize", "iban": "iban", "card": "card_number",
                                                   "first_name": "fake.first_name", "username": "fake.email"}))
    kinds = {r.column: identifier_kind(r) for r in policy.masked_columns("customer")}
    assert kinds == {"phone": "phone", "email": "email", "code": "token/tokenize", "score": None, "iban": "iban",
                     "card": "card", "first_name": None, "username": "email"}


def _engine_column(model: SchemaModel, rule: str, name: str, values: list[str],
                   source: list[str]) -> tuple[list[str], int]:
    """(masked values, redraws) of ``values`` with ``source`` as the source's identifiers of the column's kind."""
    policy = resolve(model, rules_for("customer", {name: rule}))
    (masked_rule,) = [r for r in policy.masked_columns("customer") if r.column == name]
    kind = identifier_kind(masked_rule)
    assert kind is not None
    identifiers = SourceIdentifiers(KEY)
    identifiers.add(kind, pd.Series(source, dtype=object))
    engine = MaskingEngine(policy, KEY, identifiers)
    out, _, redraws = engine.mask_column(masked_rule, pd.DataFrame({name: pd.Series(values, dtype=object)}))
    return out.tolist(), redraws


def test_bijections_walk_off_source_identifiers_and_stay_unique(model: SchemaModel) -> None:
    for rule, name, func, domain, base in [
        ("phone", "phone", phone, "phone", [f"+1-415-555-{i:04d}" for i in range(200)]),
        ("tokenize", "code", tokenize, "tokenize", [f"CU-{i:05d}" for i in range(200)]),
        ("iban", "iban", iban, "iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]),
    ]:
        once = func(pd.Series(base, dtype=object), _ctx(domain)).tolist()
        twice = func(pd.Series(once, dtype=object), _ctx(domain)).tolist()
        source = base + once + twice  # E(x) and E(E(x)) are other rows' real values
        masked, redraws = _engine_column(model, rule, name, source, source)
        assert redraws >= len(base), rule
        assert len(set(masked)) == len(source), rule
        kind = "token/tokenize" if rule == "tokenize" else rule
        real = set(normal_form(kind, np.array(source, dtype=object)).tolist())
        assert not set(normal_form(kind, np.array(masked, dtype=object)).tolist()) & real, rule
        plain = func(pd.Series(source, dtype=object), _ctx(domain)).tolist()
        kept = [m == p for m, p, in zip(masked, plain, strict=True)
                if normal_form(kind, np.array([p], dtype=object))[0] not in real]
        assert kept and all(kept), rule  # outputs change only where a collision forces it


def test_email_outputs_that_are_real_addresses_are_redrawn(model: SchemaModel) -> None:
    base = [f"customer{i}@mail.example" for i in range(100)]
    fakes = email(pd.Series(base, dtype=object), _ctx("email")).tolist()
    source = base + fakes
    masked, redraws = _engine_column(model, "{strategy: email, unique: true}", "email", source, source)
    assert redraws >= len(base)
    assert len(set(masked)) == len(source) and not {m.lower() for m in masked} & set(source)
    # Without source identifiers the engine gives exactly the plain outputs.
    assert column(model, rules_for("customer", {"email": "email"}), "customer", "email", base) == fakes
