"""Whole-value detectors: each kind on values it must find and on look-alikes it must not."""

from __future__ import annotations

import random
import re
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.identify import devices, documents, names, national, phones
from datastage.identify.batch import Batch, line_safe
from datastage.identify.kinds import KINDS
from datastage.identify.stats import column_stats
from datastage.identify.values import BASE_KINDS, analyse, contains_masks, date_mask, detect


def _kinds(values: list[str], hints: frozenset[str] = frozenset()) -> list[set[str]]:
    """Per value, the kinds detect() flags."""
    found = detect(pd.Series(values, dtype=object), hints)
    return [{k for k, m in found.items() if m[i]} for i in range(len(values))]


# -- national, social security and tax numbers -------------------------------------------

VALID_IDS = {
    "999-33-2827": "national_id",  # US SSN in the 9xx test range (synthetic data)
    "123-45-6789": "national_id",
    "AB 12 34 56 C": "national_id",  # UK NINO
    "2 95 10 99 126 111 93": "national_id",  # FR NIR (mod 97 key)
    "12345678Z": "national_id",  # ES DNI (check letter)
    "X1234567L": "national_id",  # ES NIE
    "1234.56.782": "national_id",  # NL BSN with dots (elfproef)
    "19900101-0017": "national_id",  # SE personnummer (Luhn and date)
    "211062-5629": "national_id",  # DK CPR
    "131052-308T": "national_id",  # FI HETU
    "44051401359": "national_id",  # PL PESEL
    "756.9217.0769.85": "national_id",  # CH AHV
    "1234567T": "national_id",  # IE PPS
    "RSSMRA85T10A562S": "tax_id",  # IT codice fiscale
    "111.444.777-35": "tax_id",  # BR CPF
    "36 574 261 809": "tax_id",  # DE Steuer-ID
}
INVALID_IDS = [
    "000-12-3456", "666-12-3456", "123-00-4567", "123-45-0000",  # SSN groups that are never issued
    "2 95 10 99 126 111 94",  # NIR with a wrong key
    "12345678A",  # DNI with a wrong letter
    "RSSMRA85T10A562T",  # codice fiscale with a wrong check letter
    "111.444.777-36",  # CPF with a wrong check digit
    "811062-5629",  # CPR with an impossible date
    "44051401358",  # PESEL with a wrong check digit
    "ORDER-2024-000123", "2024-01-31", "3.14159265358",
]


@pytest.mark.parametrize(("value", "kind"), sorted(VALID_IDS.items()))
def test_national_and_tax_numbers_validate(value: str, kind: str) -> None:
    assert kind in _kinds([value])[0], value


@pytest.mark.parametrize("value", INVALID_IDS)
def test_invalid_national_numbers_are_not_identifiers(value: str) -> None:
    assert not _kinds([value])[0] & {"national_id", "tax_id"}, value


def test_ssn_is_never_a_phone_and_bare_numbers_need_the_column_name() -> None:
    ssns = ["999-33-2827", "999-12-3456", "123-45-6789"]
    for found in _kinds(ssns):
        assert "national_id" in found and "phone" not in found
    assert _kinds(ssns, frozenset({"phone"})) == [{"national_id"}] * 3  # even where the name says phone
    bare = ["999332827", "123456789"]
    assert [k & {"national_id"} for k in _kinds(bare)] == [set(), set()]
    assert all("national_id" in k for k in _kinds(bare, frozenset({"national_id"})))
    # Random nine-digit order numbers are not BSNs, even where the name says national id, for 9 in 10 of them.
    rng = random.Random(3)
    orders = [str(rng.randrange(10**8, 10**9)) for _ in range(500)]
    bsn = national.match(pd.Series(orders), {"national_id"}).schemes
    assert bsn.get("nl_bsn_bare", 0) < 100


def test_national_schemes_name_their_countries_and_stdnum_modules() -> None:
    assert {s.country for s in national.SCHEMES} >= {"US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "DK", "NO",
                                                    "FI", "PL", "BR"}
    assert {s.kind for s in national.SCHEMES} <= set(KINDS)
    counts = national.match(pd.Series(list(VALID_IDS))).schemes
    assert counts["us_ssn"] == 2 and counts["it_cf"] == 1


# -- phones ----------------------------------------------------------------------------------

def test_phone_numbers_are_validated_and_look_alikes_are_not() -> None:
    good = ["+44 20 7946 0958", "(415) 555-2671", "+49 30 901820", "020 7946 0958", "+33 1 42 68 53 00",
            "+1-202-456-1111"]
    bad = ["999-33-2827", "2024-01-31", "12.50", "192.168.1.1", "123-456", "1234 5678 9012 3456 7890"]
    assert phones.mask(pd.Series(good)).tolist() == [True] * len(good)
    assert phones.mask(pd.Series(bad)).tolist() == [False] * len(bad)
    # Digits in the shape of a phone that no numbering plan has: not without a column name, yes with one.
    fake = pd.Series(["000-000-0000", "(111) 222-3333"])
    assert phones.mask(fake).tolist() == [False, False]
    assert phones.mask(fake, hinted=True).tolist() == [True, True]


def test_phone_validation_samples_large_batches() -> None:
    rng = random.Random(1)
    numbers = pd.Series([f"+1 415 {rng.randint(200, 999)} {rng.randint(0, 9999):04d}" for _ in range(3000)])
    started = time.monotonic()
    found = phones.mask(numbers)
    assert found.mean() > 0.95
    assert time.monotonic() - started < 2.0  # at most VALIDATE parses, the rest by shape


# -- documents: passports, driver's licences, health plan, records ---------------------------

def test_passports_and_licences_count_only_where_the_name_says_so() -> None:
    values = pd.Series(["X12345678X", "S99912345", "123456789", "A1234567"])
    assert "passport" not in documents.masks(values)
    assert documents.masks(values, {"passport"})["passport"].tolist() == [True, True, True, True]
    licences = documents.masks(values, {"drivers_licence"})["drivers_licence"]
    assert licences.tolist() == [True, True, True, True]
    not_documents = pd.Series(["N/A", "unknown", "12", "passport lost"])
    assert not documents.masks(not_documents, {"passport", "drivers_licence"})["passport"].any()
    assert not documents.masks(not_documents, {"passport", "drivers_licence"})["drivers_licence"].any()
    assert set(documents.US_DRIVERS_LICENCE) >= {"CA", "NY", "TX", "FL", "MA", "WA", "IL"}
    assert re.fullmatch(documents.US_DRIVERS_LICENCE["CA"], "A1234567")
    assert re.fullmatch(documents.US_DRIVERS_LICENCE["FL"], "A123456789012")


def test_health_plan_numbers_mbi_without_a_hint_member_ids_with_one() -> None:
    values = pd.Series(["1EG4-TE5-MK73", "W123456789", "2b5e8c1e-3f7a-4c1d-9b2a-8f6e5d4c3b2a", "hello"])
    assert documents.masks(values)["health_plan_id"].tolist() == [True, False, False, False]
    hinted = documents.masks(values, {"health_plan_id"})["health_plan_id"]
    assert hinted.tolist() == [True, True, True, False]


# -- vehicles and devices --------------------------------------------------------------------

def test_vins_need_their_check_digit_without_a_hint() -> None:
    assert devices.vin_valid("1M8GDM9AXKP042788") and not devices.vin_valid("1M8GDM9A1KP042788")
    found = devices.masks(pd.Series(["1M8GDM9AXKP042788", "1M8GDM9A1KP042788"]))["vehicle_id"]
    assert found.tolist() == [True, False]
    assert devices.masks(pd.Series(["1M8GDM9A1KP042788"]), {"vehicle_id"})["vehicle_id"].tolist() == [True]


def test_plates_by_country_layout_and_with_a_hint() -> None:
    plates = pd.Series(["AB12 CDE", "AB-123-CD", "B-MW 1234", "0H42W2"])
    assert devices.masks(plates)["vehicle_id"].tolist() == [True, True, True, False]
    assert devices.masks(plates, {"vehicle_id"})["vehicle_id"].tolist() == [True, True, True, True]
    assert not devices.masks(pd.Series(["red", "Toyota", "2024"]), {"vehicle_id"})["vehicle_id"][:2].any()


def test_imei_mac_and_udi() -> None:
    values = pd.Series(["490154203237518", "490154203237519", "4111111111111111", "00:1A:2B:3C:4D:5E",
                        "001a.2b3c.4d5e", "(01)51022222233936(11)141231(17)150707(10)A213B1(21)1234",
                        "+H123PARTNO1/$$420020216LOT123", "SN-4F3A9921"])
    assert devices.masks(values)["device_id"].tolist() == [True, False, False, True, True, True, True, False]
    assert devices.masks(values, {"device_id"})["device_id"][-1]  # a serial number: only by its column's name


# -- names -----------------------------------------------------------------------------------

def test_names_tolerate_digits_case_and_diacritics() -> None:
    found = names.evidence(pd.Series(["Margorie48", "Cormier289", "MARÍA", "josé", "Gómez206", "O'Brien",
                                      "Mary-Jane"]))
    assert found.shape_part.all()
    assert found.dict_last[[1, 4, 5]].all()  # Cormier, Gomez, O'Brien: family names once digits are gone
    assert found.dict_first[[2, 3, 6]].all()  # María, José, Mary-Jane: given names whatever the case
    hinted = detect(pd.Series(["Margorie48", "Cormier289"]), {"first_name"})["first_name"]
    assert hinted.all()  # the shape counts where the column name says names
    assert not detect(pd.Series(["Margorie48"]))["first_name"].any()  # ... and only there


def test_full_names_by_shape_and_by_dictionary() -> None:
    values = pd.Series(["Christoper Peteuil", "Hyman89 Ebert178", "Mr. John Smith Jr.", "Smith, John",
                        "Ludwig van Beethoven", "The Funky Grooves Tour", "hello world", "AC/DC", "CA"])
    found = names.evidence(values)
    assert found.shape_full.tolist() == [True, True, True, True, True, False, False, False, False]
    assert found.dict_full.tolist()[:4] == [False, True, True, True]
    assert not found.shape_part[[7, 8]].any()  # codes are not names


def test_name_prefixes_and_suffixes() -> None:
    found = names.evidence(pd.Series(["Mr.", "Mrs.", "Dr", "PhD", "Jr.", "Smith"]))
    assert found.affix.tolist() == [True, True, True, True, True, False]


# -- column statistics ----------------------------------------------------------------------

def test_categorical_columns_and_identifier_like_columns() -> None:
    race = column_stats(pd.Series(["white", "black", "asian", "white", "native"] * 200))
    assert race.categorical and not race.identifier_like
    eyes = column_stats(pd.Series(["brown", "blue", "green", "hazel", "amber", "black", "grey"] * 100))
    assert eyes.categorical
    codes = column_stats(pd.Series([f"NL{i * 7919 % 100000:05d}X" for i in range(500)]))
    assert codes.identifier_like and not codes.categorical
    uuids = column_stats(pd.Series([f"2b5e8c1e-3f7a-4c1d-9b2a-{i:012x}" for i in range(500)]))
    assert not uuids.identifier_like  # a surrogate key, not a person's number
    small = column_stats(pd.Series(["Ann", "Bob", "Eve"]))
    assert not small.categorical  # three rows cannot tell a category from a tiny table
    assert set(race.to_dict()) == {"sampled", "distinct", "distinct_share", "mean_length", "entropy"}


def test_analyse_keeps_names_apart_from_categories() -> None:
    race = pd.Series(["White", "Black", "Brown", "Green"] * 250)
    analysis = analyse(race, {"full_name"})
    assert analysis.stats is not None and analysis.stats.categorical
    assert analysis.names["dict_last"] >= 0.75  # White, Black, Brown, Green are all family names ...
    assert analysis.gender == 0.0  # ... and no gender words


# -- detect() as the post-load check uses it -------------------------------------------------

def test_detect_reports_every_base_kind_and_hinted_kinds() -> None:
    found = detect(pd.Series(["hello"]))
    assert set(found) >= set(BASE_KINDS) and set(found) <= set(KINDS)
    hinted = detect(pd.Series(["X12345678X", "https://example.org/~ann"]), {"passport", "url"})
    assert hinted["passport"].tolist() == [True, False] and hinted["url"].tolist() == [False, True]
    assert "url" not in detect(pd.Series(["https://example.org/~ann"]))  # a URL is personal by context only


def test_detect_is_fast_over_many_rows() -> None:
    rng = random.Random(5)
    rows = 200_000
    pool = [f"{rng.choice(['Ann', 'Bob', 'Eve'])}{i}@example.com" for i in range(5000)] + [
        f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}" for _ in range(5000)] + [
        f"Order {i} shipped" for i in range(5000)]
    values = pd.Series([pool[rng.randrange(len(pool))] for _ in range(rows)], dtype=object)
    started = time.monotonic()
    found = detect(values)
    elapsed = time.monotonic() - started
    assert found["email"].sum() + found["national_id"].sum() + (~(found["email"] | found["national_id"])).sum() \
        == rows
    assert 0.25 < found["email"].mean() < 0.42 and 0.25 < found["national_id"].mean() < 0.42
    assert elapsed < 10.0  # measured about 1 s on two cores; distinct values are examined once


def test_contains_masks_find_identifiers_inside_text() -> None:
    texts = pd.Series(["Call John Smith on +44 20 7946 0958 or ann@example.com", "ssn 999-33-2827 on file",
                       "card 4111 1111 1111 1111", "nothing to see\nhere"])
    found = contains_masks(texts)
    assert found["email"].tolist() == [True, False, False, False]
    assert found["national_id"].tolist() == [False, True, False, False]
    assert found["card_number"].tolist() == [False, False, True, False]
    assert found["full_name"].tolist() == [True, False, False, False]
    assert not found["phone"][1]  # an SSN in text is not a phone number


def test_dates_parse_in_iso_and_day_month_forms() -> None:
    values = pd.Series(["1989-05-25", "2020-01-31T10:00:00Z", "25/05/1989", "1989-13-45", "Boston MA US", "42"])
    assert date_mask(values).tolist() == [True, True, True, False, False, False]


# -- the batch engine: one regex pass equals a per-value pass ---------------------------------

PATTERNS = [r"\d{3}-\d{2}-\d{4}", r"[^@\s]+@[^@\s]+", r"\s*\w+\s+\w+\s*", r"(?=(?:[^0-9]*[0-9]){3})[A-Z0-9 -]{3,}",
            r"(?<![\d-])\d+", r"\W+", r"[A-Z][a-z]+(?:\s[A-Z][a-z]+)?"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab AB12-@\n\t.é"), min_size=1, max_size=12), min_size=1,
                max_size=25))
def test_batch_scans_equal_per_value_regex(values: list[str]) -> None:
    batch = Batch(values)
    for pattern in PATTERNS:
        compiled = re.compile(pattern)
        blanked = [v.replace("\n", " ") for v in values]
        assert batch.fullmatch(pattern).tolist() == [compiled.fullmatch(v) is not None for v in blanked], pattern
        assert batch.contains(pattern).tolist() == [compiled.search(v) is not None for v in blanked], pattern
    assert batch.digits.tolist() == [sum(c.isdigit() for c in v) for v in values]


def test_line_safe_patterns_never_match_a_line_feed() -> None:
    for pattern in PATTERNS:
        assert not re.search(line_safe(pattern), "\n") or re.search(pattern, "\n") is None
    assert re.fullmatch(line_safe(r"[^x]"), "\n") is None and re.fullmatch(r"[^x]", "\n")


def test_masks_are_numpy_booleans_of_the_input_length() -> None:
    values = pd.Series(["a", "b", "a", "ann@example.com"] * 3, dtype=object)
    for kind, mask in detect(values).items():
        assert isinstance(mask, np.ndarray) and mask.dtype == bool and len(mask) == 12, kind


def test_odd_values_never_break_detection() -> None:
    values = pd.Series(["", "  ", "😀", "\x01", "a\nb", "x" * 10_000, "名前 太郎", "İstanbul", "ab\udcff",
                        "Ann\ud800 Smith", "\u2028", "ann@example.com"], dtype=object)
    found = detect(values, {"first_name", "full_name", "passport", "url", "phone", "secret"})
    assert found["email"].tolist() == [False] * 11 + [True]
    assert all(len(mask) == len(values) for mask in found.values())
    assert analyse(values, {"full_name"}).sampled == len(values)
