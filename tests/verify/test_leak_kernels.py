"""The leak check's array kernels find exactly what the patterns find value by value."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from datastage.cards import is_test_card, luhn_check_digit
from datastage.identify import reference as pii
from datastage.verify.leaks import tokens as kernels


def _values(seed: int, count: int = 6000) -> list[str]:
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "ar_EG", "pl_PL"])
    fake.seed_instance(seed)
    rng = random.Random(seed)
    pieces = ["12", "345", "-", " ", "+1", "(020)", "7946", "0018", "x12", "ext.", "ß", "AB", "2020-01-02",
              "4111111111111111", "Ann", "Lee", ".", "_", "@", "a@b.co"]
    makers = [fake.email, fake.phone_number, fake.credit_card_number, fake.iban, fake.ssn, fake.name, fake.address,
              lambda: "Straße " + fake.iban(), lambda: "NI AB 12 34 56 C, Weißstraße", lambda: fake.text(80),
              lambda: f"call {fake.phone_number()} or {fake.email()}, card {fake.credit_card_number()}",
              lambda: "x\x00y " + fake.ssn(), lambda: "Zbigniew Brzęczyszczykiewicz", lambda: str(rng.getrandbits(56)),
              lambda: "٤١١١١١١١١١١١١١١١ and ٠١٢٣-٤٥-٦٧٨٩",
              lambda: "000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 123-45-6789",
              lambda: "4111 1111 1111 1111, 5555555555554444 378282246310005 " + fake.credit_card_number(),
              lambda: " ".join(rng.choice(pieces) for _ in range(12)),
              lambda: "Mr. Jan Okonkwo, and Maria  Xochitl\nPapadopoulos met Oluwaseun Quixley.\x1cKai Thorvaldsen"]
    return [rng.choice(makers)() for _ in range(count)]


@pytest.mark.parametrize("seed", [3, 8])
@pytest.mark.parametrize("options", [{}, {"whole_phone": True, "names": True}, {"phones": False}])
def test_tokens_of_a_batch_are_those_of_the_patterns_value_by_value(seed: int, options: dict[str, bool]) -> None:
    values = pd.Series(_values(seed), dtype=object)
    fast = kernels.identifier_tokens(values, **options)
    reference = kernels.value_by_value_tokens(values, **options)
    assert fast.tokens == reference.tokens
    assert fast.origins == reference.origins
    assert fast.kinds == reference.kinds == [token.split(":", 1)[0] for token in reference.tokens]
    assert fast.test_card_origins == reference.test_card_origins
    expected = {"email", "card", "iban", "ssn", "ni"} | ({"phone"} if options.get("phones", True) else set())
    assert expected <= set(fast.kinds) and ("phone" in fast.kinds) == options.get("phones", True)


@pytest.mark.parametrize("mode", ["all", "names", "text"])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_name_pairs_of_a_batch_are_those_of_the_patterns(mode: str, ascii_only: bool) -> None:
    values = _values(5)
    if ascii_only:
        values = [v for v in values if v.isascii()]
    series = pd.Series(values, dtype=object)
    found = kernels.name_bigrams(series, mode)
    assert found == kernels._pattern_bigrams(kernels._joined(series), mode)
    assert found  # the data holds name pairs of every mode


def test_card_checks_agree_with_the_luhn_and_issuer_rules() -> None:
    rng = random.Random(3)
    numbers = ["4111111111111111", "5555555555554444", "٤١١١١١١١١١١١١١١١", "41111111111111x1", "6011111111111117",
               "3530111333300000", "30569309025904", "378282246310005", "6200000000000005", "5000000000000009"]
    numbers += ["".join(rng.choice("0123456789") for _ in range(rng.randint(10, 21))) for _ in range(3000)]
    for prefix in ["4", "51", "55", "2221", "2720", "2721", "34", "37", "6011", "65", "644", "649", "3528", "3589",
                   "300", "305", "306", "36", "38", "39", "62", "50", "56", "57", "58", "67", "63", "1", "9"]:
        for length in range(12, 21):
            for _ in range(10):
                body = prefix + "".join(rng.choice("0123456789") for _ in range(max(0, length - len(prefix) - 1)))
                numbers.append(body + luhn_check_digit(body))
    plausible, test = kernels.card_checks(np.array(numbers, dtype=object))
    assert plausible.tolist() == [pii.plausible_card(n) for n in numbers]
    assert test.tolist() == [pii.plausible_card(n) and is_test_card(n) for n in numbers]
    assert plausible.sum() > 500 and test.sum() >= 3
