"""Whole-value detectors: which values of a column *are* an identifier of each kind.

Every detector works on a whole batch of values (a pandas Series of non-blank text) and
returns a boolean mask, so the scan (on a sample) and the post-load check (on every row)
recognise exactly the same things. Each distinct value is examined once, and a cheap
profile of the batch (digits, ``@``, letters) skips the detectors that cannot match.
Validation is real where the kind has one: Luhn and issuer ranges for cards, mod 97 for
IBANs, ``python-stdnum`` for national and tax numbers (:mod:`.national`), check digits for
VINs and IMEIs (:mod:`.devices`), ``phonenumbers`` for phones (:mod:`.phones`).

Kinds whose formats other codes share count only where ``hints`` (the kinds the column name
suggests) name them: passports, driver's licences, record, account and licence numbers,
serial numbers and plates, name *shapes* beyond the dictionaries, digest-shaped secrets,
bare postcodes and URLs (a URL identifies a person only in a person's record).

Example:
    >>> values = pd.Series(["ann@example.com", "not an address", "+44 20 7946 0958", "999-33-2827"], dtype=object)
    >>> {kind: mask.tolist() for kind, mask in detect(values).items() if mask.any()}
    {'email': [True, False, False, False], 'phone': [False, False, True, False], \
'national_id': [False, False, False, True]}
    >>> detect(pd.Series(["Margorie48", "Cormier289"]), {"first_name"})["first_name"].tolist()
    [True, True]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from datastage.identify import devices, documents, names, national, phones
from datastage.identify import reference as pii
from datastage.identify.batch import Batch, as_batch
from datastage.identify.stats import ColumnStats, column_stats_of

URL = r"(?:https?://|www\.)[^\s/$.?#][^\s]*"
ISO_DATE = (r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
            r"|\d{4}/\d{2}/\d{2}|\d{8}")
OTHER_DATE = r"\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
# The kinds detect() always reports (all False where a detector was skipped), then the hint-only ones.
BASE_KINDS = ("email", "phone", "card_number", "iban", "national_id", "tax_id", "ip_address", "first_name",
              "last_name", "full_name", "street_address", "postcode", "secret", "vehicle_id", "device_id",
              "health_plan_id")
NAME_SHARE_FLOOR = 0.5  # share of name-like values below which a column without a name hint skips the name tests
HINT_KINDS = ("passport", "drivers_licence", "medical_record_number", "account_number", "licence_number", "url")


def share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def full_match(values: pd.Series, pattern: str, flags: int = 0) -> np.ndarray:
    """Per value: whether ``pattern`` matches it whole (one regex pass over the batch)."""
    return as_batch(values).fullmatch(pattern, flags)


def digits_of(values: pd.Series) -> pd.Series:
    return values.str.replace(r"\D", "", regex=True)


def phone_mask(values: pd.Series | Batch, lenient: bool) -> np.ndarray:
    """Phone numbers (``lenient``: the column name says phone, so the shape is enough); see :mod:`.phones`."""
    return phones.mask(values, hinted=lenient)


def _validate(batch: Batch, shaped: np.ndarray, check: Callable[[str], bool]) -> np.ndarray:
    """``shaped`` narrowed to the values ``check`` accepts (called only on the shaped ones)."""
    if shaped.any():
        where = np.flatnonzero(shaped)
        shaped = shaped.copy()
        shaped[where] = np.fromiter((check(v) for v in batch.values[where]), dtype=bool, count=len(where))
    return shaped


def card_mask(values: pd.Series | Batch) -> np.ndarray:
    """Payment card numbers: 13-19 digits, Luhn-valid, in a published issuer range."""
    batch = as_batch(values)
    shaped = batch.fullmatch_where((batch.digits >= 12) & (batch.digits <= 19) & (batch.lengths <= 25),
                                   pii.CARD_SHAPE)
    if shaped.any():
        where = np.flatnonzero(shaped)
        shaped = shaped.copy()
        shaped[where] = pii.plausible_cards([_NON_DIGIT.sub("", v) for v in batch.values[where].tolist()])
    return shaped


_NON_DIGIT = re.compile(r"\D")


def iban_mask(values: pd.Series | Batch) -> np.ndarray:
    """IBANs with a valid mod-97 check."""
    batch = as_batch(values)
    select = (batch.digits >= 2) & (batch.letters > 0) & (batch.lengths >= 15) & (batch.lengths <= 42)
    return _validate(batch, batch.fullmatch_where(select, pii.IBAN, re.IGNORECASE), pii.iban_valid)


def ip_mask(values: pd.Series | Batch) -> np.ndarray:
    """IPv4 and (validated) IPv6 addresses, with an optional prefix length."""
    batch = as_batch(values)
    v4 = batch.fullmatch_where(batch.count_of(".") >= 3, pii.IPV4)
    v6 = _validate(batch, batch.fullmatch_where(batch.count_of(":") >= 2, pii.IPV6), is_ip)
    return v4 | v6


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def name_masks(values: pd.Series | Batch, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """First, last and full names: dictionaries always, name shapes where ``hints`` name the kind."""
    return names.evidence(values).masks(hints)


@lru_cache(maxsize=1)
def _street_words() -> pd.Index:
    """Street-type words (``street``, ``rd``, ``straße`` ...), hashed once."""
    return pd.Index(sorted(pii.street_words()), dtype=object)


def street_mask(values: pd.Series | Batch) -> np.ndarray:
    """A house number and words, one of them a street-type word (``12 Main Street``, ``Hauptstraße 5``)."""
    batch = as_batch(values)
    select = (batch.digits >= 1) & (batch.letters > 0) & (batch.lengths <= 100) & (batch.blanks <= 8)
    street = batch.fullmatch_where(select, pii.STREET_RE.pattern, re.IGNORECASE)
    if street.any():
        words = re.sub(r"[^\w\n]+|\d+", " ", batch.text.lower())
        street &= batch.word_in(_street_words(), words)
    return street


def postcode_masks(values: pd.Series | Batch) -> tuple[np.ndarray, np.ndarray]:
    """(UK postcodes, other countries' postcode formats), the second one counting only with a name hint."""
    batch = as_batch(values)
    short = (batch.lengths >= 4) & (batch.lengths <= 10) & (batch.digits >= 1)
    strong = batch.fullmatch_where(short & (batch.letters >= 2), pii.UK_POSTCODE, re.IGNORECASE)
    return strong, batch.fullmatch_where(short, pii.OTHER_POSTCODES, re.IGNORECASE)


def secret_masks(values: pd.Series | Batch) -> tuple[np.ndarray, np.ndarray]:
    """(password-hash formats, hex digests), the second one counting only with a name hint."""
    batch = as_batch(values)
    marked = (batch.count_of("$") + batch.count_of("_") + batch.count_of(":")) >= 1  # $2b$..., pbkdf2_, scrypt:
    formats = batch.fullmatch_where(marked & (batch.digits >= 1), pii.SECRET_FORMATS)
    digests = batch.fullmatch_where(np.isin(batch.lengths, (32, 40, 64, 128)), pii.HEX_DIGEST)
    return formats, digests


def free_text(values: pd.Series) -> bool:
    words = values.str.count(r"\s+").to_numpy() + 1
    return bool(len(words)) and float(np.mean(words >= 5)) >= 0.3


SSN_IN_TEXT = re.compile(r"(?<![\d-])(?!000|666)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
# A phone number in text that is not an SSN (999-33-2827 reads as three digit groups).
PHONE_IN_TEXT = re.compile(r"(?<![\w+])(?!\d{3}-\d{2}-\d{4}(?![\w-]))" + pii.PHONE_IN_TEXT.pattern[len(r"(?<![\w+])"):])


_CAPITALISED_PAIR = r"(?<![^\W\d_])([A-Z][a-zà-ÿ'’-]+)\s+(?=([A-Z][a-zà-ÿ'’-]+)(?![^\W\d_]))"


def contains_masks(values: pd.Series | Batch) -> dict[str, np.ndarray]:
    """Which values *contain* each kind of identifier (for free text and JSON); line breaks count as blanks."""
    batch = as_batch(values)
    firsts, lasts = pii.first_names(), pii.last_names()

    def card(m: re.Match[str]) -> bool:
        return pii.plausible_card(re.sub(r"\D", "", m.group(0)))

    def full_name(m: re.Match[str]) -> bool:
        return pii.fold(m.group(1)) in firsts and pii.fold(m.group(2)) in lasts

    return {
        "email": batch.contains(pii.EMAIL_RE.pattern),
        "phone": batch.contains(PHONE_IN_TEXT.pattern),
        "card_number": batch.any_match(pii.CARD_IN_TEXT.pattern, card),
        "iban": batch.any_match(pii.IBAN_IN_TEXT.pattern, lambda m: pii.iban_valid(m.group(0))),
        "national_id": batch.contains(SSN_IN_TEXT.pattern) | batch.contains(pii.UK_NI_RE.pattern),
        "ip_address": batch.contains(rf"(?<![\d.]){pii.IPV4}(?![\d.])"),
        "full_name": batch.any_match(_CAPITALISED_PAIR, full_name),
    }


def date_mask(values: pd.Series | Batch) -> np.ndarray:
    """Values that parse as a calendar date (ISO, or day/month/year and month/day/year with separators)."""
    batch = as_batch(values)
    text = batch.series().str.strip()
    iso = batch.fullmatch(rf"\s*(?:{ISO_DATE})\s*")
    other = batch.fullmatch(rf"\s*(?:{OTHER_DATE})\s*")
    out = np.zeros(len(text), dtype=bool)
    for shaped, fmt in ((iso, "ISO8601"), (other, "mixed")):
        if shaped.any():
            where = np.flatnonzero(shaped)
            subset = text.iloc[where]
            if fmt == "ISO8601":
                subset = subset.str.replace("/", "-", regex=False)
                subset = subset.where(subset.str.len() != 8, subset.str[:4] + "-" + subset.str[4:6] + "-"
                                      + subset.str[6:])
            parsed = pd.to_datetime(subset, format=fmt, errors="coerce", utc=True)
            out[where] = parsed.notna().to_numpy(dtype=bool)
    return out


def _detect_batch(batch: Batch, hints: frozenset[str],
                  name_evidence: names.NameEvidence | None = None) -> dict[str, np.ndarray]:
    """:func:`detect` on a batch of distinct values: each detector only on what a cheap profile lets through."""
    n = len(batch)
    masks: dict[str, np.ndarray] = {kind: np.zeros(n, dtype=bool) for kind in BASE_KINDS}
    masks.update({kind: np.zeros(n, dtype=bool) for kind in HINT_KINDS if kind in hints})
    if not n:
        return masks
    digits, letters, lengths = batch.digits, batch.letters, batch.lengths
    has_letter = letters > 0
    flags = re.IGNORECASE

    def sub(select: np.ndarray) -> Batch | None:
        return batch.take(select) if select.any() else None

    def merge(select: np.ndarray, found: dict[str, np.ndarray]) -> None:
        for kind, mask in found.items():
            full = batch.spread(select, mask)
            masks[kind] = masks[kind] | full if kind in masks else full

    if (part := sub(batch.count_of("@") == 1)) is not None:
        merge(batch.count_of("@") == 1, {"email": part.fullmatch(pii.EMAIL)})
    select = (digits >= 7) & (digits <= 15)
    if (part := sub(select)) is not None:
        merge(select, {"phone": phones.mask(part, "phone" in hints)})
    masks["card_number"] = card_mask(batch)
    masks["iban"] = iban_mask(batch)
    select = digits >= 6
    if (part := sub(select)) is not None:
        merge(select, national.masks(part, hints))
    select = (digits >= 1) & (lengths <= 50)
    if (part := sub(select)) is not None:
        merge(select, {"ip_address": ip_mask(part)})
        strong, other = postcode_masks(part)
        merge(select, {"postcode": strong | other if "postcode" in hints else strong})
        merge(select, devices.masks(part, hints))
        merge(select, documents.masks(part, hints))
    masks["street_address"] = street_mask(batch)
    if name_evidence is not None:
        masks.update(name_evidence.masks(hints))
    elif (part := sub(has_letter & (lengths <= 80))) is not None:
        merge(has_letter & (lengths <= 80), names.evidence(part).masks(hints))
    formats, digests = secret_masks(batch)
    masks["secret"] = formats | digests if "secret" in hints else formats
    if "url" in hints:
        masks["url"] = batch.fullmatch(URL, flags)
    return masks


def detect(values: pd.Series, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind, which ``values`` are a whole identifier of that kind (``hints``: kinds the column name suggests)."""
    masks: dict[str, np.ndarray] = {}
    if values.empty:
        return masks
    # Python strings, not an Arrow-backed column: text may hold lone surrogates Arrow cannot encode.
    array = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(array, skipna=True) != "string":
        present = ~pd.isna(array)
        array = array.copy()
        array[present] = values[present].map(str).to_numpy(dtype=object)
    codes, uniques = pd.factorize(array)
    if (codes < 0).any():  # a missing value is no identifier
        uniques = np.append(uniques.astype(object), "")
        codes = np.where(codes < 0, len(uniques) - 1, codes)
    found = _detect_batch(Batch(uniques), frozenset(hints))
    return {kind: mask[codes] for kind, mask in found.items()}


def detect_distinct(batch: Batch, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """:func:`detect` of a batch of distinct strings, as :func:`detect` of them in that order would give.

    >>> detect_distinct(Batch(["ann@example.com", "open"]))["email"].tolist()
    [True, False]
    """
    if not len(batch):
        return {}
    return _detect_batch(batch, frozenset(hints))


@dataclass
class Analysis:
    """What a sample of one column holds, as shares of its values (never a value)."""

    sampled: int
    shares: dict[str, float] = field(default_factory=dict)  # kind -> share of values detect() flags
    names: dict[str, float] = field(default_factory=dict)  # name evidence -> share (see :class:`names.NameEvidence`)
    dates: float = 0.0  # share of values that parse as dates (when asked for)
    stats: ColumnStats | None = None
    free_text: bool = False
    contains: dict[str, float] = field(default_factory=dict)  # kind -> share of values containing one
    gender: float = 0.0  # share of gender words, for columns of at most six distinct values


def analyse(values: pd.Series, hints: frozenset[str] | set[str] = frozenset(), *, json: bool = False,
            dates: bool = False) -> Analysis:
    """Every detector's share over ``values`` (non-blank text), each distinct value examined once
    (``json``: the values are JSON documents; ``dates``: measure the share of dates too)."""
    values = values[values.notna()]
    n = len(values)
    if not n:
        return Analysis(0)
    hints = frozenset(hints)
    array = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(array, skipna=False) != "string":
        array = values.astype(str).to_numpy(dtype=object)
    codes, uniques = pd.factorize(array)
    batch = Batch(uniques)
    weights = np.bincount(codes, minlength=len(batch)).astype(np.float64)

    def weighted(mask: np.ndarray) -> float:
        return round(float(weights[mask].sum()) / n, 3)

    # Names only where enough values could be one (letters, short): a column of codes or texts skips them.
    could_be_names = (batch.letters >= 2) & (batch.lengths <= 80) & (batch.blanks <= 6)
    name_hinted = bool(hints & names.NAME_KINDS_SET) or "name_affix" in hints
    if weighted(could_be_names) >= (0.2 if name_hinted else NAME_SHARE_FLOOR):
        evidence = names.evidence(batch)
    else:
        evidence = names.NameEvidence.none(len(batch))
    found = _detect_batch(batch, hints, evidence)
    shares = {kind: weighted(mask) for kind, mask in found.items()}
    name_shares = {key: weighted(getattr(evidence, key))
                   for key in ("dict_first", "dict_last", "dict_full", "shape_part", "shape_full", "affix")}
    name_shares["multi_token"] = weighted(evidence.tokens >= 2)
    datelike = (batch.digits >= 4) & (batch.lengths <= 40)
    date_share = weighted(batch.spread(datelike, date_mask(batch.take(datelike)))) if dates and datelike.any() \
        else 0.0
    stats = column_stats_of(batch, weights)
    analysis = Analysis(n, {k: v for k, v in shares.items() if v > 0}, name_shares, date_share, stats)
    if len(batch) <= 6 and (len(batch) >= 2 or "gender" in hints):
        # A constant column says nothing about gender unless its name does.
        analysis.gender = weighted(pd.Series(batch.values, dtype=object).str.lower().isin(pii.GENDER_VALUES)
                                   .to_numpy(dtype=bool))
    words = batch.blanks + 1
    analysis.free_text = json or float(weights[words >= 5].sum()) / n >= 0.3
    if analysis.free_text:
        analysis.contains = {k: weighted(m) for k, m in contains_masks(batch.series()).items() if m.any()}
    return analysis
