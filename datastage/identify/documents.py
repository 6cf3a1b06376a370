"""Numbers of documents and memberships: passports, driver's licences, health-plan and record numbers.

None of these carries a checksum anyone can verify, and their formats overlap with every
other code (nine digits is a US passport, a New York driver's licence and an order number).
So each counts only where the column name says which document it is (the ``hints``), and
then only when the value has that document's shape:

* passports: ICAO machine-readable numbers (up to 9 letters and digits, digits dominant),
  the US 9-digit and letter + 8 digit forms, and the ``X12345678X`` form synthetic data uses;
* US driver's licences by state format (:data:`US_DRIVERS_LICENCE`), the UK DVLA format, and
  the letters-and-digits forms of other countries;
* health plan member/beneficiary numbers, the US Medicare Beneficiary Identifier (MBI; its
  letter positions are distinctive enough to count without a hint), and UUID member ids;
* medical record, account and licence numbers: codes with digits.

Example:
    >>> values = pd.Series(["S99912345", "X12345678X", "1EG4-TE5-MK73", "hello"])
    >>> {k: m.tolist() for k, m in masks(values, {"passport"}).items() if m.any()}
    {'passport': [True, True, False, False], 'health_plan_id': [False, False, True, False]}
    >>> licences = pd.Series(["S99912345", "F123-456-78-901-2", "12", "N/A"])
    >>> masks(licences, {"drivers_licence"})["drivers_licence"].tolist()
    [True, True, False, False]
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from datastage.identify.batch import Batch, as_batch

# Driver's licence number formats by US state (letters and digits, separators removed).
US_DRIVERS_LICENCE: dict[str, str] = {
    "AL": r"\d{1,8}", "AK": r"\d{1,7}", "AZ": r"[A-Z]\d{8}|\d{9}", "AR": r"\d{4,9}", "CA": r"[A-Z]\d{7}",
    "CO": r"\d{9}|[A-Z]\d{3,6}|[A-Z]{2}\d{2,5}", "CT": r"\d{9}", "DE": r"\d{1,7}", "DC": r"\d{7}|\d{9}",
    "FL": r"[A-Z]\d{12}", "GA": r"\d{7,9}", "HI": r"[A-Z]\d{8}|\d{9}", "ID": r"[A-Z]{2}\d{6}[A-Z]|\d{9}",
    "IL": r"[A-Z]\d{11,12}", "IN": r"[A-Z]\d{9}|\d{9,10}", "IA": r"\d{9}|\d{3}[A-Z]{2}\d{4}",
    "KS": r"[A-Z]\d[A-Z]\d[A-Z]|[A-Z]\d{8}|\d{9}", "KY": r"[A-Z]\d{8,9}|\d{9}", "LA": r"\d{1,9}",
    "ME": r"\d{7,8}|\d{7}[A-Z]", "MD": r"[A-Z]\d{12}", "MA": r"[A-Z]\d{8}|\d{9}", "MI": r"[A-Z]\d{10}|[A-Z]\d{12}",
    "MN": r"[A-Z]\d{12}", "MS": r"\d{9}", "MO": r"[A-Z]\d{5,9}|[A-Z]\d{6}R|\d{8}[A-Z]{2}|\d{9}[A-Z]?",
    "MT": r"[A-Z]\d{8}|\d{9}|\d{13,14}", "NE": r"[A-Z]\d{6,8}", "NV": r"\d{9,10}|\d{12}|X\d{8}",
    "NH": r"\d{2}[A-Z]{3}\d{5}", "NJ": r"[A-Z]\d{14}", "NM": r"\d{8,9}",
    "NY": r"[A-Z]\d{7}|[A-Z]\d{18}|\d{8,9}|\d{16}|[A-Z]{8}", "NC": r"\d{1,12}", "ND": r"[A-Z]{3}\d{6}|\d{9}",
    "OH": r"[A-Z]\d{4,8}|[A-Z]{2}\d{3,7}|\d{8}", "OK": r"[A-Z]\d{9}|\d{9}", "OR": r"\d{1,9}|[A-Z]\d{6}|[A-Z]{2}\d{5}",
    "PA": r"\d{8}", "RI": r"\d{7}|[A-Z]\d{6}", "SC": r"\d{5,11}", "SD": r"\d{6,10}|\d{12}", "TN": r"\d{7,9}",
    "TX": r"\d{7,8}", "UT": r"\d{4,10}", "VT": r"\d{8}|\d{7}A", "VA": r"[A-Z]\d{8,11}|\d{9}",
    "WA": r"WDL[A-Z0-9]{9}|[A-Z*]{1,7}[A-Z0-9*]{5,11}", "WV": r"\d{7}|[A-Z]{1,2}\d{5,6}", "WI": r"[A-Z]\d{13}",
    "WY": r"\d{9,10}",
}
OTHER_DRIVERS_LICENCE = (
    r"[A-Z9]{5}\d{6}[A-Z9]{2}\d[A-Z]{2}(?:\d{2})?",  # UK DVLA
    r"[A-Z0-9]{1,3}\d{5,12}[A-Z0-9]{0,3}",  # letters and digits, digits dominant (DE, FR, IT, ES, NL, ...)
)
PASSPORT = (
    r"[A-Z]\d{8}[A-Z]?",  # US next generation, many others; X12345678X in synthetic data
    r"\d{9}",  # US, UK
    r"[A-Z]{1,2}\d{6,8}",  # IT, ES, IN, CN, ...
    r"\d{2}[A-Z]{2}\d{5}",  # FR
    r"[A-Z]{3}\d{6}",  # ES
    r"[CFGHJKLMNPRTVWXYZ0-9]{9}",  # DE (ICAO alphabet)
    r"[A-NP-Z]{2}[A-NP-Z0-9]{6}\d",  # NL
)
# Medicare Beneficiary Identifier: digit, letter, alnum, digit, letter, alnum, digit, letter, letter, digit, digit.
_MBI_LETTER = "[AC-HJKMNP-RT-Y]"
MBI = (rf"[1-9]{_MBI_LETTER}[{_MBI_LETTER[1:-1]}0-9]\d{_MBI_LETTER}[{_MBI_LETTER[1:-1]}0-9]\d"
       rf"{_MBI_LETTER}{{2}}\d{{2}}")
UUID = r"[0-9A-F]{8}-?[0-9A-F]{4}-?[0-9A-F]{4}-?[0-9A-F]{4}-?[0-9A-F]{12}"
# A code with digits: what member, record, account and licence numbers look like when nothing more is known.
CODE = r"(?=(?:[^0-9]*[0-9]){3})[A-Z0-9][A-Z0-9 ./_-]{2,30}[A-Z0-9]"
KINDS = ("passport", "drivers_licence", "health_plan_id", "medical_record_number", "account_number",
         "licence_number")


def _alternatives(patterns: tuple[str, ...] | list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


_US_DL = _alternatives(list(dict.fromkeys(US_DRIVERS_LICENCE.values())))


def masks(values: pd.Series | Batch, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per document kind: which values have its shape (all kinds but MBIs only where ``hints`` name them)."""
    batch = as_batch(values)
    out: dict[str, np.ndarray] = {}
    if not len(batch):
        return out
    flags = re.IGNORECASE
    compact = Batch(re.sub(r"[^\S\n]|-", "", batch.text).split("\n"))
    digits = batch.digits
    if "passport" in hints:
        out["passport"] = compact.fullmatch(_alternatives(PASSPORT), flags) & (digits >= 5)
    if "drivers_licence" in hints:
        out["drivers_licence"] = compact.fullmatch(f"{_US_DL}|{_alternatives(OTHER_DRIVERS_LICENCE)}", flags) \
            & (digits >= 4)
    plan = compact.fullmatch(MBI, flags) if (digits >= 5).any() else np.zeros(len(batch), dtype=bool)
    if "health_plan_id" in hints:
        plan |= batch.fullmatch(rf"\s*(?:{CODE}|{UUID})\s*", flags)
    if plan.any():
        out["health_plan_id"] = plan
    for kind in ("medical_record_number", "account_number", "licence_number"):
        if kind in hints:
            out[kind] = batch.fullmatch(rf"\s*(?:{CODE})\s*", flags)
    return out
