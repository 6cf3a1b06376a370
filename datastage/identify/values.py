"""Whole-value detectors: which values of a column *are* an identifier of each kind.

Every detector works on a whole batch of values (a pandas Series of non-blank text) and
returns a boolean mask, so the scan (on a sample) and the post-load check (on every row)
recognise exactly the same things. Validation is real where the kind has a checksum
(Luhn and issuer ranges for cards, mod 97 for IBANs).

Example:
    >>> values = pd.Series(["ann@example.com", "not an address", "+44 20 7946 0958"], dtype=object)
    >>> {kind: mask.tolist() for kind, mask in detect(values).items() if mask.any()}
    {'email': [True, False, False], 'phone': [False, False, True]}
"""

from __future__ import annotations

import ipaddress
import itertools
import re

import numpy as np
import pandas as pd

from datastage.identify import reference as pii


def share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def full_match(values: pd.Series, pattern: str, flags: int = 0) -> np.ndarray:
    return np.array(values.str.fullmatch(pattern, flags=flags).fillna(False).to_numpy(dtype=bool))


def digits_of(values: pd.Series) -> pd.Series:
    return values.str.replace(r"\D", "", regex=True)


def phone_mask(values: pd.Series, lenient: bool) -> np.ndarray:
    shaped = full_match(values, pii.PHONE_SHAPE, re.IGNORECASE)
    count = values.str.count(r"\d").to_numpy()
    dates = values.str.match(pii.DATE_SHAPE).fillna(False).to_numpy(dtype=bool)
    decimal = full_match(values, r"-?\d+[.,]\d{1,3}")
    structured = values.str.contains(r"^\+|^00|\(|\d[\s.\-/]\d", regex=True).fillna(False).to_numpy(dtype=bool)
    low = 7 if lenient else 8
    mask = shaped & (count >= low) & (count <= 15) & ~dates & ~decimal & ~full_match(values, pii.IPV4) \
        & ~full_match(values, pii.SSN)
    return mask if lenient else mask & structured


def card_mask(values: pd.Series) -> np.ndarray:
    shaped = full_match(values, pii.CARD_SHAPE)
    if not shaped.any():
        return shaped
    digits = digits_of(values[shaped])
    shaped[np.flatnonzero(shaped)] = [pii.plausible_card(d) for d in digits]
    return shaped


def iban_mask(values: pd.Series) -> np.ndarray:
    upper = values.str.upper()
    shaped = full_match(upper, pii.IBAN)
    if shaped.any():
        shaped[np.flatnonzero(shaped)] = [pii.iban_valid(v) for v in upper[shaped]]
    return shaped


def ip_mask(values: pd.Series) -> np.ndarray:
    v4 = full_match(values, pii.IPV4)
    v6 = full_match(values, pii.IPV6)
    if v6.any():
        v6[np.flatnonzero(v6)] = [is_ip(v) for v in values[v6]]
    return v4 | v6


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def name_masks(values: pd.Series) -> dict[str, np.ndarray]:
    folded = values.map(pii.fold)
    firsts, lasts = pii.first_names(), pii.last_names()
    tokens = folded.str.split()
    count = tokens.map(len).to_numpy()
    single = count == 1
    first = single & folded.isin(firsts).to_numpy()
    last = single & folded.isin(lasts).to_numpy()
    multi = (count >= 2) & (count <= 4)
    head = tokens.str[0].fillna("").str.strip(",.").isin(firsts).to_numpy()
    tail = tokens.str[-1].fillna("").str.strip(",.").isin(lasts).to_numpy()
    tail_first = tokens.str[-1].fillna("").str.strip(",.").isin(firsts).to_numpy()
    head_last = tokens.str[0].fillna("").str.strip(",.").isin(lasts).to_numpy()
    full = multi & ((head & tail) | (head_last & tail_first))
    return {"first_name": first, "last_name": last, "full_name": full}


def street_mask(values: pd.Series) -> np.ndarray:
    words = pii.street_words()
    shaped = full_match(values, pii.STREET_RE.pattern, re.IGNORECASE)
    short = (values.str.count(r"\s+").to_numpy() <= 8) & (values.str.len().to_numpy() <= 100)
    tokens = values.str.lower().str.findall(r"[^\W\d_]+\.?")
    has_word = tokens.map(lambda ws: any(w.rstrip(".") in words for w in ws) if isinstance(ws, list) else False)
    return shaped & short & has_word.to_numpy(dtype=bool)


def postcode_masks(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    upper = values.str.upper()
    strong = full_match(upper, pii.UK_POSTCODE)
    other = full_match(upper, pii.OTHER_POSTCODES)
    return strong, other


def secret_masks(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    return full_match(values, pii.SECRET_FORMATS), full_match(values, pii.HEX_DIGEST)


def free_text(values: pd.Series) -> bool:
    words = values.str.count(r"\s+").to_numpy() + 1
    return bool(len(words)) and float(np.mean(words >= 5)) >= 0.3


def contains_masks(values: pd.Series) -> dict[str, np.ndarray]:
    """Which values *contain* each kind of identifier (for free text and JSON)."""
    masks: dict[str, np.ndarray] = {}
    masks["email"] = values.str.contains(pii.EMAIL_RE).fillna(False).to_numpy(dtype=bool)
    masks["phone"] = values.str.contains(pii.PHONE_IN_TEXT).fillna(False).to_numpy(dtype=bool)
    cards = values.str.findall(pii.CARD_IN_TEXT)
    masks["card_number"] = cards.map(
        lambda found: any(pii.plausible_card(re.sub(r"\D", "", c)) for c in found) if found else False
    ).to_numpy(dtype=bool)
    ibans = values.str.findall(pii.IBAN_IN_TEXT)
    masks["iban"] = ibans.map(lambda found: any(pii.iban_valid(c) for c in found) if found else False
                              ).to_numpy(dtype=bool)
    masks["national_id"] = (values.str.contains(pii.SSN_RE).fillna(False).to_numpy(dtype=bool)
                            | values.str.contains(pii.UK_NI_RE).fillna(False).to_numpy(dtype=bool))
    masks["ip_address"] = values.str.contains(rf"(?<![\d.]){pii.IPV4}(?![\d.])").fillna(False).to_numpy(dtype=bool)
    firsts, lasts = pii.first_names(), pii.last_names()

    def has_full_name(text: str) -> bool:
        words = re.findall(r"\b[A-Z][a-zà-ÿ'’-]+\b", text)
        return any(pii.fold(a) in firsts and pii.fold(b) in lasts for a, b in itertools.pairwise(words))

    masks["full_name"] = values.map(has_full_name).to_numpy(dtype=bool)
    return masks


def detect(values: pd.Series, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind, which ``values`` are a whole identifier of that kind (``hints``: kinds the column name suggests)."""
    masks: dict[str, np.ndarray] = {}
    if values.empty:
        return masks
    masks["email"] = full_match(values, pii.EMAIL)
    masks["phone"] = phone_mask(values, lenient="phone" in hints)
    masks["card_number"] = card_mask(values)
    masks["iban"] = iban_mask(values)
    masks["national_id"] = full_match(values, pii.SSN) | full_match(values.str.upper(), pii.UK_NI)
    masks["ip_address"] = ip_mask(values)
    masks.update(name_masks(values))
    masks["street_address"] = street_mask(values)
    strong_postcode, other_postcode = postcode_masks(values)
    masks["postcode"] = strong_postcode | other_postcode if "postcode" in hints else strong_postcode
    formats, digests = secret_masks(values)
    masks["secret"] = formats | digests if "secret" in hints else formats
    return masks
