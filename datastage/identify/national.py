"""National identification, social security and tax numbers of the supported countries.

Each scheme has a format (a regular expression over the trimmed, upper-cased value) and a
real validation: the check digits, check letters and embedded dates that ``python-stdnum``
implements. A cheap prefilter (enough digits, a plausible length) and the format run over
the whole batch; only the few values they let through are validated one by one.

A bare run of digits (nine digits could be a Dutch BSN, a US SSN without dashes, an order
number) counts only when the column name says it is a national or tax number
(``needs_hint``). A US SSN written ``ddd-dd-dddd`` counts as one even in the 9xx range that
the Social Security Administration never issues, because test and synthetic data use it:
``999-33-2827`` is an SSN (never a phone number).

Example:
    >>> values = pd.Series(["999-33-2827", "123-45-6789", "2 95 10 99 126 111 93", "12345678Z", "hello"])
    >>> {kind: mask.tolist() for kind, mask in masks(values).items() if mask.any()}
    {'national_id': [True, True, True, True, False]}
    >>> sorted({s.country for s in SCHEMES if s.kind == "tax_id"})[:4]
    ['BR', 'DE', 'FR', 'GB']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

import numpy as np
import pandas as pd

from datastage.identify.batch import Batch, as_batch


@dataclass(frozen=True)
class Scheme:
    """One number format of one country."""

    name: str
    kind: str  # national_id, tax_id or medical_record_number
    country: str
    label: str
    pattern: str  # full match on the trimmed, upper-cased value
    module: str | None  # stdnum module whose is_valid() validates it ("ssn": SSN groups; None: the format only)
    needs_hint: bool = False  # a bare number: only where the column name says so


def _ssn_groups(value: str) -> bool:
    """Area, group and serial of a dashed US SSN are not all-zero and the area is not 666 (9xx allowed)."""
    digits = re.sub(r"\D", "", value)
    return len(digits) == 9 and digits[:3] not in ("000", "666") and digits[3:5] != "00" and digits[5:] != "0000"


def _format_only(value: str) -> bool:
    return True


SCHEMES: tuple[Scheme, ...] = (
    Scheme("us_itin", "tax_id", "US", "ITIN", r"9\d{2}-?[5-9]\d-?\d{4}", "us.itin", True),
    Scheme("us_ssn", "national_id", "US", "social security number", r"\d{3}-\d{2}-\d{4}", "ssn"),
    Scheme("us_ssn_bare", "national_id", "US", "social security number", r"\d{3} ?\d{2} ?\d{4}", "ssn", True),
    Scheme("gb_nino", "national_id", "GB", "national insurance number",
           r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]", None),
    Scheme("fr_nir", "national_id", "FR", "numéro de sécurité sociale (NIR)",
           r"[1-478] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}", "fr.nir"),
    Scheme("es_dni", "national_id", "ES", "DNI", r"\d{8}-?[A-Z]", "es.dni"),
    Scheme("es_nie", "national_id", "ES", "NIE", r"[XYZ]-?\d{7}-?[A-Z]", "es.nie"),
    Scheme("nl_bsn", "national_id", "NL", "burgerservicenummer (BSN)", r"\d{4}\.\d{2}\.\d{3}", "nl.bsn"),
    Scheme("nl_bsn_bare", "national_id", "NL", "burgerservicenummer (BSN)", r"\d{9}", "nl.bsn", True),
    Scheme("se_pnr", "national_id", "SE", "personnummer", r"(?:\d{2})?\d{6}[-+]\d{4}", "se.personnummer"),
    Scheme("se_pnr_bare", "national_id", "SE", "personnummer", r"(?:19|20)\d{10}", "se.personnummer", True),
    Scheme("dk_cpr", "national_id", "DK", "CPR-nummer", r"\d{6}-\d{4}", "dk.cpr"),
    Scheme("no_fnr", "national_id", "NO", "fødselsnummer", r"\d{6} ?\d{5}", "no.fodselsnummer"),
    Scheme("fi_hetu", "national_id", "FI", "henkilötunnus", r"\d{6}[-+A-FU-Y]\d{3}[0-9A-FHJ-NPR-Y]", "fi.hetu"),
    Scheme("pl_pesel", "national_id", "PL", "PESEL", r"\d{11}", "pl.pesel"),
    Scheme("cz_rc", "national_id", "CZ", "rodné číslo", r"\d{6}/\d{3,4}", "cz.rc"),
    Scheme("cz_rc_bare", "national_id", "CZ", "rodné číslo", r"\d{9,10}", "cz.rc", True),
    Scheme("be_nn", "national_id", "BE", "numéro national", r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}", "be.nn"),
    Scheme("ch_ssn", "national_id", "CH", "AHV-Nummer", r"756\.\d{4}\.\d{4}\.\d{2}", "ch.ssn"),
    Scheme("at_vnr", "national_id", "AT", "Versicherungsnummer", r"\d{4} ?\d{6}", "at.vnr", True),
    Scheme("ie_pps", "national_id", "IE", "PPS number", r"\d{7}[A-W][ABHWTX]?", "ie.pps"),
    Scheme("pt_cc", "national_id", "PT", "cartão de cidadão", r"\d{8} ?\d ?[A-Z0-9]{2}\d", "pt.cc"),
    Scheme("de_idnr", "tax_id", "DE", "Steuer-Identifikationsnummer",
           r"\d{2} ?\d{3} ?\d{3} ?\d{3}", "de.idnr"),
    Scheme("it_cf", "tax_id", "IT", "codice fiscale",
           r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]",
           "it.codicefiscale"),
    Scheme("br_cpf", "tax_id", "BR", "CPF", r"\d{3}\.\d{3}\.\d{3}-\d{2}", "br.cpf"),
    Scheme("br_cpf_bare", "tax_id", "BR", "CPF", r"\d{11}", "br.cpf", True),
    Scheme("fr_nif", "tax_id", "FR", "numéro fiscal", r"[0-3]\d ?\d{2} ?\d{3} ?\d{3} ?\d{3}", "fr.nif", True),
    Scheme("pt_nif", "tax_id", "PT", "NIF", r"\d{9}", "pt.nif", True),
    Scheme("us_ein", "tax_id", "US", "EIN", r"\d{2}-\d{7}", "us.ein", True),
    Scheme("gb_utr", "tax_id", "GB", "unique taxpayer reference", r"\d{10}", "gb.utr", True),
    Scheme("gb_nhs", "medical_record_number", "GB", "NHS number", r"\d{3} ?\d{3} ?\d{4}", "gb.nhs", True),
)
KINDS = ("national_id", "tax_id", "medical_record_number")


def _validator(module: str | None) -> Callable[[str], bool]:
    if module is None:
        return _format_only
    if module == "ssn":
        return _ssn_groups
    is_valid: Callable[[str], bool] = import_module(f"stdnum.{module}").is_valid
    return is_valid


@dataclass
class Match:
    """Per value: the kind (or None) and the scheme that validated it."""

    kinds: dict[str, np.ndarray]
    schemes: dict[str, int]  # scheme name -> values it validated


def match(values: pd.Series | Batch, hints: frozenset[str] | set[str] = frozenset()) -> Match:
    """Which ``values`` validate as a national, tax or health-service number (``hints``: kinds the column name
    suggests; a bare number counts only for its hinted kind)."""
    batch = as_batch(values)
    n = len(batch)
    kinds = {kind: np.zeros(n, dtype=bool) for kind in KINDS}
    counts: dict[str, int] = {}
    candidate = (batch.digits >= 6) & (batch.lengths >= 8) & (batch.lengths <= 30)
    if not candidate.any():
        return Match(kinds, counts)
    pool = batch.take(candidate)
    positions = np.flatnonzero(candidate)
    taken = np.zeros(len(pool), dtype=bool)
    for scheme in SCHEMES:
        if scheme.needs_hint and scheme.kind not in hints:
            continue
        shaped = pool.fullmatch_where(~taken, rf"\s*(?:{scheme.pattern})\s*", re.IGNORECASE)
        if not shaped.any():
            continue
        valid = _validator(scheme.module)
        where = np.flatnonzero(shaped)
        ok = np.fromiter((valid(v.strip().upper()) for v in pool.values[where]), dtype=bool, count=len(where))
        if ok.any():
            hit = where[ok]
            taken[hit] = True
            kinds[scheme.kind][positions[hit]] = True
            counts[scheme.name] = counts.get(scheme.name, 0) + int(ok.sum())
    return Match(kinds, counts)


def masks(values: pd.Series | Batch, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind (``national_id``, ``tax_id``, ``medical_record_number``): which values validate."""
    return match(values, hints).kinds
